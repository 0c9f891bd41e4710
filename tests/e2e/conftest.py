"""Fixtures shared by the end-to-end tests that need the real servers."""

from __future__ import annotations

import pytest

from fleetops_devstack.databases import under_ci

from .platform import RABBIT

QUEUES = ("device_change.carrier", "device_change.callbacks")


def _purge_queues() -> None:
    """Start from empty queues: a previous run's messages must not leak into this one."""
    import pika
    from pika.exceptions import ChannelClosedByBroker

    connection = pika.BlockingConnection(pika.URLParameters(RABBIT))
    try:
        for queue in QUEUES:
            for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                channel = connection.channel()
                try:
                    channel.queue_declare(name, passive=True)  # absent: nothing to purge
                    channel.queue_purge(name)
                    channel.close()
                except ChannelClosedByBroker:
                    pass
    finally:
        connection.close()


@pytest.fixture
def rabbitmq(postgres_available: bool) -> str:
    """RabbitMQ's URL, its device-change queues emptied; fails under CI if it is missing."""
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(RABBIT)).close()
    except Exception as exc:
        if under_ci():
            pytest.fail(f"CI=true and RabbitMQ is not reachable at {RABBIT}: {exc}", pytrace=False)
        pytest.skip("RabbitMQ is not running on this laptop (CI requires it)")
    if not postgres_available:
        pytest.skip("separate worker processes need PostgreSQL (CI requires it)")
    _purge_queues()
    return RABBIT
