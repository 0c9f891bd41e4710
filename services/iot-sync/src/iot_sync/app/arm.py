"""The port to ARM, the asset inventory iot-sync keeps in step (see tools/arm-sim/README.md)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ArmStation:
    station_id: str
    name: str
    region: str
    site: str
    latitude: float
    longitude: float
    slot_count: int
    online: bool


@dataclass(frozen=True, slots=True)
class ArmAsset:
    asset_id: str
    battery_class: str
    state: str  # AVAILABLE, CHARGING, ISSUED, DAMAGED, LOST, IN_INSPECTION, RETIRED
    station_id: str | None
    slot: int | None
    holder: str | None
    charge_pct: float | None
    version: int


@dataclass(frozen=True, slots=True)
class AssetMovement:
    """One change of an asset in ARM; ARM applies a `movement_id` at most once."""

    movement_id: str
    asset_id: str
    state: str
    occurred_at: datetime
    station_id: str | None = None
    slot: int | None = None
    holder: str | None = None
    reason: str | None = None
    expected_version: int | None = None


class ArmError(Exception):
    """Base of what an ARM call can end in, besides an answer."""


class ArmUnavailable(ArmError):
    """ARM did not answer usefully (429 after retries, 5xx, timeout): try again later."""


class ArmRejected(ArmError):
    """ARM refused the movement as such (409 INVALID_TRANSITION, SLOT_OCCUPIED, …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


class ArmGateway(Protocol):
    def list_stations(self) -> Iterator[ArmStation]: ...

    def list_assets(self, *, station_id: str | None = None) -> Iterator[ArmAsset]: ...

    def get_asset(self, asset_id: str) -> ArmAsset | None: ...

    def apply_movement(self, movement: AssetMovement) -> ArmAsset: ...
