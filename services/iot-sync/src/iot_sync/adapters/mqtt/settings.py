"""Where and how iot-sync talks MQTT; the defaults point at the embedded broker of `make run`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class MqttSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 1884  # the embedded amqtt broker; Mosquitto listens on 1883
    protocol: Literal["5", "3.1.1"] = "5"  # amqtt speaks only "3.1.1"
    client_id: str = "iot-sync-1"  # fixed: the broker keeps the persistent session under it
    username: str | None = "iot-sync"  # amqtt keeps no offline messages for anonymous clients
    password: str | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600  # v5 only; 3.1.1 sessions never expire
    # v5: how many unacknowledged messages the broker may send us. Mosquitto allows only
    # max_inflight_messages (default 20) when the client names no Receive Maximum. Twice
    # the batch, so the next batch arrives while one is being committed.
    receive_maximum: int = Field(default=4000, ge=1, le=65535)
    # 3.1.1: the broker's own in-flight limit (Mosquitto's max_inflight_messages, default 20).
    # A batch that reaches it is handed over at once: no more can arrive before the acks.
    broker_inflight_v311: int = Field(default=20, ge=1)
    shared_group: str | None = None  # "$share/{group}/…" so several processes split the load
    # A batch costs about 20 round trips whatever its size, each also waiting for the GIL
    # behind paho's network thread: on the 2-core bench, 500 -> 2,479 signals/s,
    # 1,000 -> 4,565/s, 2,000 -> 4,999/s (all offered). Only a backlog fills a batch.
    batch_max_size: int = Field(default=2000, ge=1)
    # How long after its first message a batch may wait for more while the inbox is empty.
    # A backlog fills batches whatever this is; below capacity it only adds latency.
    # Stop 14, 5,000 signals/s, alternating runs: 1 ms -> p50 12-17 ms, p99 28-73 ms
    # (batches of ~50); 5 ms -> p50 18-24, p99 38-53 (~90), for ~15 % less CPU per signal.
    batch_max_wait_s: float = Field(default=0.001, ge=0)
    max_payload_bytes: int = Field(default=64 * 1024, ge=1)
    message_expiry_s: int = 300  # on what iot-sync publishes, except retained state
    publish_timeout_s: float = 10.0  # every PUBACK of one publish() call within this
    connect_timeout_s: float = 10.0
    reconnect_min_delay_s: int = Field(default=1, ge=1)  # paho's backoff counts whole seconds
    reconnect_max_delay_s: int = Field(default=30, ge=1)
    # after a handler failure: wait, then reconnect for redelivery; doubles per failure in a row
    failure_backoff_s: float = Field(default=0.1, ge=0)
    # the signal topic families iot-sync consumes; tests narrow them under a unique prefix
    topic_prefix: str = ""

    @property
    def is_v5(self) -> bool:
        return self.protocol == "5"
