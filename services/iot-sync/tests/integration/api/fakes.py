"""Stand-ins for what the API process talks to outside its database."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

from iot_sync.app.arm import ArmAsset, ArmRejected, ArmStation, AssetMovement
from iot_sync.app.ports import Notification
from iot_sync.app.signals import FieldMessage


class FakeArm:
    """ARM as the simulator behaves for these tests: movements idempotent by id."""

    def __init__(self, stations: Sequence[ArmStation], assets: Sequence[ArmAsset]) -> None:
        self.stations = list(stations)
        self.assets = {a.asset_id: a for a in assets}
        self.applied: set[str] = set()

    def list_stations(self) -> Iterator[ArmStation]:
        return iter(self.stations)

    def list_assets(self, *, station_id: str | None = None) -> Iterator[ArmAsset]:
        return iter([a for a in self.assets.values() if station_id in (None, a.station_id)])

    def get_asset(self, asset_id: str) -> ArmAsset | None:
        return self.assets.get(asset_id)

    def apply_movement(self, movement: AssetMovement) -> ArmAsset:
        old = self.assets.get(movement.asset_id)
        if old is None:
            raise ArmRejected("NOT_FOUND", movement.asset_id)
        if movement.movement_id not in self.applied:
            self.applied.add(movement.movement_id)
            self.assets[movement.asset_id] = replace(
                old,
                state=movement.state,
                station_id=movement.station_id,
                slot=movement.slot,
                holder=movement.holder,
                version=old.version + 1,
            )
        return self.assets[movement.asset_id]


class FakeFieldPublisher:
    def __init__(self) -> None:
        self.sent: list[FieldMessage] = []

    def publish(self, messages: Sequence[FieldMessage]) -> None:
        self.sent.extend(messages)


class FakeNotifier:
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def notify(self, notification: Notification) -> None:
        self.sent.append(notification)
