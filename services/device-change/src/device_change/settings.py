"""device-change settings: environment variables prefixed DEVICE_CHANGE_ (nested with __)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from device_change.adapters.thingspace.settings import ThingSpaceSettings
from fleetops_common.settings import CommonSettings

CALLBACK_PATH = "/v1/callbacks/thingspace"


class DeviceChangeSettings(CommonSettings):
    model_config = SettingsConfigDict(
        env_prefix="DEVICE_CHANGE_", env_nested_delimiter="__", extra="ignore", env_file=".env"
    )

    database_url: str = "sqlite:///var/device-change.db"
    # stub:// runs Dramatiq in-process (embedded default); amqp://… or redis://… for real.
    broker_url: str = "stub://"
    in_process_workers: bool = True
    worker_threads: int = 8
    max_deliveries: int = Field(default=5, description="deliveries before a message dead-letters")
    host: str = "127.0.0.1"
    port: int = 8001
    # Where the carrier can reach us, for callback registration.
    public_url: str = "http://127.0.0.1:8001"
    callback_receiver_port: int = Field(
        default=0,
        description="embedded default: `serve` also starts `receive-callbacks` on this port, so "
        "carrier callbacks are parsed and stored in a process (and on a core) of their own; "
        "0 = the API process takes them",
    )
    callback_url: str | None = Field(
        default=None,
        description="the URL registered with the carrier for its callbacks; default: the "
        "receiver's if one runs, else PUBLIC_URL's",
    )
    callback_settle_batch: int = Field(
        default=64,
        ge=1,
        description="stored callbacks settled per transaction: smaller keeps the write lock "
        "free for arriving callbacks (their p99), larger costs less CPU per callback",
    )
    callback_username: str = "fleetops-callbacks"
    callback_password: str = "fleetops-callback-secret"
    register_callback_on_start: bool = True
    sync_tenants_on_start: list[str] = Field(default_factory=lambda: ["demo"])
    thingspace: ThingSpaceSettings = Field(default_factory=ThingSpaceSettings)
    # tenant -> carrier account name
    tenant_accounts: dict[str, str] = Field(default_factory=lambda: {"demo": "0000123456-00001"})
    carrier_rate_limit_per_s: float = Field(
        default=5.0, description="carrier calls per second across every process; 0 = no limit"
    )
    max_devices_per_request: int = 50
    max_devices_in_flight: int = Field(
        default=20_000,
        description="device lines one process holds in carrier requests at once (bounds its "
        "memory however large the bulk change); 0 = no limit",
    )
    first_poll_after_s: float = 60.0

    def registered_callback_url(self) -> str:
        if self.callback_url:
            return self.callback_url
        if self.callback_receiver_port:
            return f"http://{self.host}:{self.callback_receiver_port}{CALLBACK_PATH}"
        return f"{self.public_url.rstrip('/')}{CALLBACK_PATH}"

    reconcile_delay_s: float = 5.0
    retry_base_delay_s: float = 0.5
    max_send_attempts: int = 8
