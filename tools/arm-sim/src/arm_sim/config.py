"""Simulator settings (env prefix ARM_SIM_) and the fault knobs `PUT /_sim/config` changes."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Faults(BaseModel):
    """Faults on every `/arm/v1/…` call; `/oauth2/token` and `/_sim/…` are never faulted."""

    latency_ms: int = Field(default=0, ge=0)
    rate_limit_per_s: float | None = Field(default=None, ge=0)  # None or 0: unlimited
    error_rate: float = Field(default=0.0, ge=0, le=1)  # 503 before anything is applied
    timeout_rate: float = Field(default=0.0, ge=0, le=1)  # applied, then the answer is held
    timeout_hold_ms: int = Field(default=30_000, ge=0)
    # Deterministic forms of the two rates, for tests: the next N calls get the fault for
    # sure, whatever the rate; each faulted call counts one down.
    error_next: int = Field(default=0, ge=0)
    timeout_next: int = Field(default=0, ge=0)


class SimConfig(BaseSettings):
    """How the simulator starts: where it listens, what it seeds, whom it lets in."""

    model_config = SettingsConfigDict(env_prefix="ARM_SIM_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8103
    seed: int = 7
    stations: int = Field(default=20, ge=1)
    slots_per_station: int = Field(default=8, ge=1)
    batteries: int = Field(default=120, ge=0)
    available_share: float = Field(default=0.7, ge=0, le=1)  # the rest start CHARGING
    client_id: str = "iot-sync"
    client_secret: str = "iot-sync-arm-secret"
    token_lifetime_s: int = Field(default=3600, ge=1)
    default_page_size: int = Field(default=100, ge=1)
    max_page_size: int = Field(default=500, ge=1)
    faults: Faults = Field(default_factory=Faults)

    @model_validator(mode="after")
    def _room_for_returns(self) -> SimConfig:
        if self.batteries >= self.stations * self.slots_per_station:
            raise ValueError(
                "batteries must be fewer than stations x slots_per_station "
                "(some slots stay empty so returns have room)"
            )
        return self
