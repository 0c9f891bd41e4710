"""Where and how to reach ThingSpace; the defaults point at the local simulator."""

from __future__ import annotations

from pydantic import BaseModel


class ThingSpaceSettings(BaseModel):
    base_url: str = "http://127.0.0.1:8101/api/m2m"  # real: https://thingspace.verizon.com/api/m2m
    oauth_url: str = "http://127.0.0.1:8101/api/ts/v1/oauth2/token"
    client_id: str = "fleetops-sim-client"
    client_secret: str = "fleetops-sim-secret"
    username: str = "fleetops"
    password: str = "fleetops-sim-password"
    account_name: str = "0000123456-00001"
    change_identifier_path: str = "/v1/devices/{service_type}/actions/deviceId"
    change_identifier_service_type: str = "M2M"
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    list_page_size: int = 2000
    last_seen_field: str = "lastSeenDeviceId"
    status_api: str = "v2"  # per-device request status; "v1" for single-device requests
    callback_service_name: str = "CarrierService"
    max_connections: int = 50
