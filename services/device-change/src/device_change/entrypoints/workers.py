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

    dramatiq.actor(  # type: ignore[call-overload]
        send_carrier_batch,
        actor_name=SEND_BATCH,
        queue_name=CARRIER_QUEUE,
        broker=broker,
        max_retries=10,
        min_backoff=500,
        max_backoff=30_000,
    )
    dramatiq.actor(  # type: ignore[call-overload]
        poll_carrier_batch,
        actor_name=POLL_BATCH,
        queue_name=CARRIER_QUEUE,
        broker=broker,
        max_retries=10,
        min_backoff=1000,
        max_backoff=60_000,
    )
    dramatiq.actor(  # type: ignore[call-overload]
        settle_carrier_callbacks,
        actor_name=SETTLE_CALLBACKS,
        queue_name=CALLBACK_QUEUE,
        broker=broker,
        max_retries=10,
        min_backoff=200,
        max_backoff=10_000,
    )
