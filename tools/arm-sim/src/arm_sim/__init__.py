"""A faithful simulator of the ARM asset-inventory API, with fault injection."""

from arm_sim.app import create_app
from arm_sim.config import Faults, SimConfig

__all__ = ["Faults", "SimConfig", "create_app"]
