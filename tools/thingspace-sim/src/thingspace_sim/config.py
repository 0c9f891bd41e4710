"""Simulator settings (env prefix THINGSPACE_SIM_) and the run-time fault knobs."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Faults(BaseModel):
    """What `PUT /_sim/config` changes while the simulator runs."""

    latency_ms: int = 0
    rate_limit_per_s: float | None = None  # None or 0: unlimited
    max_devices_per_request: int = 10_000
    error_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_hold_ms: int = 30_000
    callback_delay_ms: int = 200
    callback_jitter_ms: int = 0
    callback_loss_rate: float = Field(default=0.0, ge=0, le=1)
    callback_duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    callback_reorder: bool = False
    callback_retry_delay_ms: int = 2000


class SimConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="THINGSPACE_SIM_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8101
    fleet_size: int = 1000
    seed: int = 7
    account_name: str = "0000123456-00001"
    client_id: str = "fleetops-sim-client"
    client_secret: str = "fleetops-sim-secret"
    username: str = "fleetops"
    password: str = "fleetops-sim-password"
    accept_any_credentials: bool = False
    token_lifetime_s: int = 3600
    session_idle_timeout_s: int = 1200
    max_list_page_size: int = 2000
    last_seen_field: str = "lastSeenDeviceId"
    status_202_on_more_data: bool = True
    callback_concurrency: int = 32
    faults: Faults = Field(default_factory=Faults)
