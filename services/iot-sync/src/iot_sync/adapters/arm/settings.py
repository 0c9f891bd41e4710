"""Where and how iot-sync reaches ARM; the defaults point at the local simulator (arm-sim)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ArmSettings(BaseModel):
    base_url: str = "http://127.0.0.1:8103"
    token_path: str = "/oauth2/token"
    client_id: str = "iot-sync"
    client_secret: str = "iot-sync-arm-secret"
    connect_timeout_s: float = Field(default=3.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)
    page_size: int = Field(default=200, ge=1, le=500)
    # Retries of one call (429, 5xx, connection errors, timeouts): attempts in all, and
    # the bounds of the exponential backoff with full jitter between them.
    max_attempts: int = Field(default=5, ge=1)
    backoff_initial_s: float = Field(default=0.2, ge=0)
    backoff_max_s: float = Field(default=5.0, ge=0)
    max_retry_after_s: float = Field(default=30.0, ge=0)  # a longer Retry-After gives up
    # A token is renewed this long before ARM says it expires (at most half its lifetime).
    token_refresh_margin_s: float = Field(default=60.0, ge=0)
    max_connections: int = Field(default=20, ge=1)
