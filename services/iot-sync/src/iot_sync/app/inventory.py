"""ARM, the asset inventory: pull it in (the seed's "sync ARM inventory") and find drift.

The sync inserts stations and batteries iot-sync does not know yet and refreshes what ARM
alone owns (name, position, slots, battery class). A known battery's state, slot and holder
stay iot-sync's: the hub moves batteries and ARM follows through outbox movements, so ARM
may lag by the movements not yet delivered. Differences beyond that are drift, which the
reconciliation reports instead of silently overwriting either side.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice

from iot_sync.app.arm import ArmAsset, ArmGateway
from iot_sync.app.ports import UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class SyncReport:
    stations: int
    assets_seen: int
    assets_changed: int


class SyncArmInventory:
    def __init__(
        self, *, uow_factory: UnitOfWorkFactory, arm: ArmGateway, chunk: int = 500
    ) -> None:
        self._uow_factory = uow_factory
        self._arm = arm
        self._chunk = chunk

    def run(self) -> SyncReport:
        stations = list(self._arm.list_stations())
        with self._uow_factory() as uow:
            uow.stations.upsert_from_arm(stations)
            uow.commit()
        seen = changed = 0
        for chunk in _chunks(self._arm.list_assets(), self._chunk):
            with self._uow_factory() as uow:
                changed += uow.assets.upsert_from_arm(chunk)
                uow.commit()
            seen += len(chunk)
        return SyncReport(stations=len(stations), assets_seen=seen, assets_changed=changed)


@dataclass(frozen=True, slots=True)
class Drift:
    asset_id: str
    kind: str  # missing_in_arm, missing_here, state, station, holder
    ours: str | None
    arm: str | None


@dataclass(frozen=True, slots=True)
class DriftReport:
    checked: int
    drifts: list[Drift] = field(default_factory=list)

    @property
    def in_step(self) -> bool:
        return not self.drifts


class ReconcileWithArm:
    def __init__(self, *, uow_factory: UnitOfWorkFactory, arm: ArmGateway) -> None:
        self._uow_factory = uow_factory
        self._arm = arm

    def run(self) -> DriftReport:
        with self._uow_factory() as uow:
            ours = uow.assets.states()
        drifts: list[Drift] = []
        theirs: dict[str, ArmAsset] = {a.asset_id: a for a in self._arm.list_assets()}
        for asset_id in sorted(ours.keys() | theirs.keys()):
            mine, arm = ours.get(asset_id), theirs.get(asset_id)
            if arm is None:
                drifts.append(Drift(asset_id, "missing_in_arm", mine[0] if mine else None, None))
                continue
            if mine is None:
                drifts.append(Drift(asset_id, "missing_here", None, arm.state))
                continue
            state, station_id, holder = mine
            if state != arm.state:
                drifts.append(Drift(asset_id, "state", state, arm.state))
            if station_id != arm.station_id:
                drifts.append(Drift(asset_id, "station", station_id, arm.station_id))
            if holder != arm.holder:
                drifts.append(Drift(asset_id, "holder", holder, arm.holder))
        return DriftReport(checked=len(ours.keys() | theirs.keys()), drifts=drifts)


def _chunks(items: Iterator[ArmAsset], size: int) -> Iterator[Sequence[ArmAsset]]:
    while chunk := list(islice(items, size)):
        yield chunk
