"""iot-sync settings: environment variables prefixed IOT_SYNC_ (nested with __).

For example `IOT_SYNC_DATABASE_URL`, `IOT_SYNC_MQTT__PORT`, `IOT_SYNC_ARM__BASE_URL`,
`IOT_SYNC_WEBHOOK_URL`, `IOT_SYNC_ALLOWED_AREAS='{"region-1": [-1.5, 36.6, -1.1, 37.1]}'`.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from fleetops_common.settings import CommonSettings
from iot_sync.adapters.arm.settings import ArmSettings
from iot_sync.adapters.mqtt.settings import MqttSettings


class IotSyncSettings(CommonSettings):
    model_config = SettingsConfigDict(
        env_prefix="IOT_SYNC_", env_nested_delimiter="__", extra="ignore", env_file=".env"
    )

    database_url: str = "sqlite:///var/iot-sync.db"
    host: str = "127.0.0.1"
    port: int = 8002
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    arm: ArmSettings = Field(default_factory=ArmSettings)

    # Customer notifications: the webhook (empty: notices go out on MQTT only).
    webhook_url: str = ""
    webhook_secret: str = ""
    webhook_timeout_s: float = 5.0

    # Per-sender ordering: how long a station/personnel message after a `seq` gap waits.
    hold_for_s: float = Field(default=30.0, ge=0)
    # How long a battery granted by `authorize` stays promised to that customer.
    reservation_ttl_s: float = Field(default=120.0, gt=0)
    # Loss evidence (S3).
    loss_silence_timeout_s: float = Field(default=2 * 3600.0, gt=0)
    loss_dwell_s: float = Field(default=30 * 60.0, gt=0)
    # region -> [min_latitude, min_longitude, max_latitude, max_longitude]; a region
    # without an area has no geofence (only silence and manual reports count there).
    allowed_areas: dict[str, list[float]] = Field(default_factory=dict)

    # Background work of the API process.
    relay_every_s: float = Field(default=0.5, gt=0)
    loss_check_every_s: float = Field(default=30.0, gt=0)
    release_held_every_s: float = Field(default=1.0, gt=0)
    outbox_max_attempts: int = Field(default=20, ge=1)

    # Startup of `make run`.
    seed_demo_data: bool = True
    sync_arm_on_start: bool = True
    # The API process also consumes MQTT (the embedded default: one process does it all).
    # False: `iot-sync consume` does, in a process of its own.
    mqtt_in_process: bool = True
    # The API process runs the outbox relay (on PostgreSQL woken by a NOTIFY from every
    # commit that wrote outbox rows, whichever process made it). Exactly one process relays:
    # one relay keeps each battery's ARM movements in order.
    relay_in_process: bool = True
    # `iot-sync consume` relays too (woken by its own commits); the API process then runs
    # with `relay_in_process` false. Off: the batch worker then shares its process's GIL
    # only with paho, and the relay's ARM calls and publishes run on the other core.
    consume_relays: bool = False
    # `iot-sync consume` answers GET /ingest-stats, /healthz and /readyz here (on `host`).
    consume_port: int = 8012

    @field_validator("allowed_areas")
    @classmethod
    def _four_corners(cls, value: dict[str, list[float]]) -> dict[str, list[float]]:
        for region, box in value.items():
            if len(box) != 4:
                raise ValueError(
                    f"allowed_areas[{region}] needs [min_lat, min_lon, max_lat, max_lon]"
                )
        return value
