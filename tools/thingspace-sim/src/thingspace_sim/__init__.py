"""A faithful simulator of Verizon ThingSpace Connectivity Management, with fault injection."""

from thingspace_sim.app import create_app
from thingspace_sim.config import SimConfig

__all__ = ["SimConfig", "create_app"]
