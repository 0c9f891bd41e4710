"""Fixtures of the iot-sync end-to-end tests: the broker, and a whole platform per test.

Which broker: under `CI=true` Mosquitto on 127.0.0.1:1883 is required (MQTT v5); otherwise
Mosquitto if it answers, else the embedded amqtt broker (3.1.1 only: tests that need v5
properties are skipped there, naming why); `IOT_SYNC_TEST_MQTT_BROKER=amqtt` (ignored under
CI) takes that path next to a running Mosquitto. The database is `fresh_database_url` from
tests/conftest.py: a new PostgreSQL database per test (always under CI), else SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from typing import Any

import pytest

from fleetops_devstack.mqtt_broker import Broker, broker_for_tests

from .harness import IotPlatform, running_iot_platform


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[Broker]:
    with broker_for_tests() as broker:
        yield broker


@pytest.fixture
def v5_broker(mqtt_broker: Broker) -> Broker:
    if not mqtt_broker.speaks_v5:
        pytest.skip("needs an MQTT v5 broker (Mosquitto); amqtt speaks only 3.1.1")
    return mqtt_broker


StartPlatform = Callable[..., IotPlatform]


@pytest.fixture
def start_platform(mqtt_broker: Broker, fresh_database_url: str) -> Iterator[StartPlatform]:
    """`start(**settings_overrides)`: the ARM simulator, iot-sync and a webhook receiver on
    a fresh database, iot-sync ready; everything is stopped after the test."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> IotPlatform:
            running: AbstractContextManager[IotPlatform] = running_iot_platform(
                broker=mqtt_broker, database_url=fresh_database_url, **overrides
            )
            return stack.enter_context(running)

        yield start


@pytest.fixture
def platform(start_platform: StartPlatform) -> IotPlatform:
    return start_platform()
