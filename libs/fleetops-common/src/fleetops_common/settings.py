"""Settings every Fleetops process shares; each service subclasses with its own env prefix."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """Read from the environment (and an optional `.env`); never at import time."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_nested_delimiter="__")

    environment: str = Field(default="local", description="local, ci, staging, production")
    log_level: str = "INFO"
    log_json: bool = True
    # Tracing: "none", "console", "otlp" (OTEL_EXPORTER_OTLP_ENDPOINT tells where).
    tracing_exporter: str = "none"
    # Bearer tokens: HS256 by default; the same secret signs and verifies in every service.
    jwt_secret: str = "fleetops-local-development-secret-change-me"
    jwt_issuer: str = "fleetops"
    jwt_audience: str = "fleetops-api"
