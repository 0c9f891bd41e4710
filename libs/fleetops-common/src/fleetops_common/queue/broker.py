"""Build a Dramatiq broker from a URL: stub:// (in-process), amqp://…, redis://…."""

from __future__ import annotations

from collections.abc import Sequence

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware

from fleetops_common.queue.tracing import TracePropagation


def make_broker(
    url: str, *, middleware_extra: Sequence[Middleware] = (), set_global: bool = True
) -> dramatiq.Broker:
    broker: dramatiq.Broker
    if url.startswith("stub://"):
        broker = StubBroker()
        system = "stub"
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Confirmed publishes: the outbox marks a message sent only once RabbitMQ has it, so
        # a process killed right after a publish cannot lose the message.
        broker = RabbitmqBroker(url=url, confirm_delivery=True)
        system = "rabbitmq"
    elif url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url)  # type: ignore[no-untyped-call]
        system = "redis"
    else:
        raise ValueError(f"unsupported broker URL '{url}' (stub://, amqp://, redis://)")
    broker.add_middleware(TracePropagation(system=system))
    for middleware in middleware_extra:
        broker.add_middleware(middleware)
    if set_global:
        dramatiq.set_broker(broker)
    return broker
