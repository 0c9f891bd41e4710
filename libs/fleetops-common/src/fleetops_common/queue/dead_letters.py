"""Dead letters: give up on a message that keeps killing its worker, and keep it replayable.

Dramatiq counts retries of messages whose actor raised, but a message whose worker died
comes back from RabbitMQ with no count at all. `DeliveryLimit` counts deliveries by message
id in a shared log, and sets the message aside after `max_deliveries`.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Protocol

import dramatiq
from dramatiq.middleware import Middleware, SkipMessage


class DeliveryLog(Protocol):
    def record_delivery(self, message_id: str, *, queue: str, actor: str) -> int: ...

    def dead_letter(
        self,
        *,
        message_id: str,
        queue: str,
        actor: str,
        payload: dict[str, Any],
        reason: str,
        deliveries: int,
    ) -> None: ...

    def forget(self, message_id: str) -> None: ...


class InMemoryDeliveryLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.deliveries: dict[str, int] = {}
        self.dead: list[dict[str, Any]] = []

    def record_delivery(self, message_id: str, *, queue: str, actor: str) -> int:
        with self._lock:
            self.deliveries[message_id] = self.deliveries.get(message_id, 0) + 1
            return self.deliveries[message_id]

    def dead_letter(self, **entry: Any) -> None:
        with self._lock:
            self.dead.append(entry)

    def forget(self, message_id: str) -> None:
        with self._lock:
            self.deliveries.pop(message_id, None)


def _payload(message: Any) -> dict[str, Any]:
    return {
        "queue_name": message.queue_name,
        "actor_name": message.actor_name,
        "args": list(message.args),
        "kwargs": dict(message.kwargs),
        "options": {k: v for k, v in message.options.items() if k not in ("retries", "traceback")},
    }


class DeliveryLimit(Middleware):
    def __init__(self, log: DeliveryLog, *, max_deliveries: int = 5) -> None:
        self.log = log
        self.max_deliveries = max_deliveries

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        count = self.log.record_delivery(
            message.message_id, queue=message.queue_name, actor=message.actor_name
        )
        if count > self.max_deliveries:
            self.log.dead_letter(
                message_id=message.message_id,
                queue=message.queue_name,
                actor=message.actor_name,
                payload=_payload(message),
                reason=f"delivered {count} times without finishing "
                "(worker crashed or hung each time)",
                deliveries=count,
            )
            self.log.forget(message.message_id)
            raise SkipMessage()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            self.log.forget(message.message_id)
        elif message.failed:  # Dramatiq's own retries are exhausted
            self.log.dead_letter(
                message_id=message.message_id,
                queue=message.queue_name,
                actor=message.actor_name,
                payload=_payload(message),
                reason=f"failed after its retries: {type(exception).__name__}: {exception}",
                deliveries=int(message.options.get("retries", 0)) + 1,
            )
            self.log.forget(message.message_id)


def replay(broker: dramatiq.Broker, payload: dict[str, Any]) -> str:
    """Send a dead-lettered message again, as a new message; returns its id."""
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=payload["queue_name"],
        actor_name=payload["actor_name"],
        args=tuple(payload.get("args", ())),
        kwargs=dict(payload.get("kwargs", {})),
        options={k: v for k, v in payload.get("options", {}).items() if k != "otel"},
        message_id=str(uuid.uuid4()),
    )
    broker.enqueue(message)
    return message.message_id
