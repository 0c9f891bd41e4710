"""Dramatiq plumbing every service shares: broker factory, trace propagation, dead letters."""

from fleetops_common.queue.broker import make_broker
from fleetops_common.queue.dead_letters import (
    DeliveryLimit,
    DeliveryLog,
    InMemoryDeliveryLog,
    replay,
)
from fleetops_common.queue.tracing import TracePropagation

__all__ = [
    "DeliveryLimit",
    "DeliveryLog",
    "InMemoryDeliveryLog",
    "TracePropagation",
    "make_broker",
    "replay",
]
