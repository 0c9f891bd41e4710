"""Dramatiq actors: thin, idempotent, taking ids. Each hands its message to a use case."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dramatiq

from device_change.app.callbacks import SETTLE_CALLBACKS
from device_change.app.processing import POLL_BATCH
from device_change.app.submit import SEND_BATCH

if TYPE_CHECKING:
    from device_change.bootstrap import Container

CARRIER_QUEUE = "device_change.carrier"
CALLBACK_QUEUE = "device_change.callbacks"


def declare_actors(broker: dramatiq.Broker, container: Container) -> None:
    """Declare this service's actors on `broker` (once per broker)."""
    if SEND_BATCH in broker.get_declared_actors():
        return

    def send_carrier_batch(batch_id: str) -> None:
        container.sender.handle(batch_id)

    def poll_carrier_batch(batch_id: str, round: int = 1) -> None:
        container.poller.handle(batch_id, round)

    def settle_carrier_callbacks() -> None:
        container.callback_settlement.drain()

    # actor, name, queue, min/max backoff (ms) of Dramatiq's own retries
    declared = [
        (send_carrier_batch, SEND_BATCH, CARRIER_QUEUE, 500, 30_000),
        (poll_carrier_batch, POLL_BATCH, CARRIER_QUEUE, 1000, 60_000),
        (settle_carrier_callbacks, SETTLE_CALLBACKS, CALLBACK_QUEUE, 200, 10_000),
    ]
    for fn, name, queue, min_backoff, max_backoff in declared:
        dramatiq.actor(  # type: ignore[call-overload]
            fn,
            actor_name=name,
            queue_name=queue,
            broker=broker,
            max_retries=10,
            min_backoff=min_backoff,
            max_backoff=max_backoff,
        )
