"""ARM's memory: stations, slots and batteries, seeded deterministically, and ARM's rules
for moving a battery from one state (and place) to another."""

from __future__ import annotations

import bisect
import copy
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arm_sim.config import SimConfig
from arm_sim.stats import SimStats

STATES = ("AVAILABLE", "CHARGING", "ISSUED", "DAMAGED", "LOST", "IN_INSPECTION", "RETIRED")
BATTERY_CLASSES = ("STANDARD", "HIGH_CAPACITY")
IN_SLOT = frozenset({"AVAILABLE", "CHARGING"})  # the states that need a station and a slot
CHARGED_PCT = 90.0

# From state -> the states ARM lets an asset move to. AVAILABLE -> AVAILABLE and
# CHARGING -> CHARGING are moves to another slot; RETIRED is final.
TRANSITIONS: dict[str, frozenset[str]] = {
    "AVAILABLE": frozenset(
        {"AVAILABLE", "CHARGING", "ISSUED", "DAMAGED", "LOST", "IN_INSPECTION", "RETIRED"}
    ),
    "CHARGING": frozenset({"AVAILABLE", "CHARGING", "DAMAGED", "LOST", "IN_INSPECTION", "RETIRED"}),
    "ISSUED": frozenset({"AVAILABLE", "CHARGING", "DAMAGED", "LOST", "IN_INSPECTION"}),
    "LOST": frozenset({"ISSUED", "AVAILABLE", "CHARGING", "IN_INSPECTION", "RETIRED"}),
    "DAMAGED": frozenset({"IN_INSPECTION", "RETIRED"}),
    "IN_INSPECTION": frozenset({"AVAILABLE", "CHARGING", "DAMAGED", "RETIRED"}),
    "RETIRED": frozenset(),
}

# Seeded assets carry this time, so two runs with one seed answer byte for byte alike.
SEEDED_AT = datetime(2025, 1, 1, tzinfo=UTC)
_BASE_LAT, _BASE_LON = 52.52, 13.405  # regions spread around one metropolitan area


class Refused(Exception):
    """A call ARM answers with an error: HTTP status, error code, message and details."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


def _conflict(code: str, message: str, **details: Any) -> Refused:
    return Refused(409, code, message, details)


@dataclass
class Station:
    station_id: str
    name: str
    region: str
    site: str
    latitude: float
    longitude: float
    online: bool
    slots: list[str | None]  # slots[n - 1] holds the asset in slot n, or None

    def summary(self) -> dict[str, Any]:
        return {
            "station_id": self.station_id,
            "name": self.name,
            "region": self.region,
            "site": self.site,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "slot_count": len(self.slots),
            "online": self.online,
        }

    def detail(self) -> dict[str, Any]:
        slots = [{"slot": n, "asset_id": a} for n, a in enumerate(self.slots, start=1)]
        return {**self.summary(), "slots": slots}


@dataclass
class Asset:
    asset_id: str
    battery_class: str
    state: str
    station_id: str | None
    slot: int | None
    holder: str | None
    charge_pct: float
    last_position: dict[str, Any] | None
    version: int = 1
    updated_at: datetime = SEEDED_AT

    def as_json(self) -> dict[str, Any]:
        return {
            "asset_id": self.asset_id,
            "kind": "BATTERY",
            "battery_class": self.battery_class,
            "state": self.state,
            "station_id": self.station_id,
            "slot": self.slot,
            "holder": self.holder,
            "charge_pct": self.charge_pct,
            "last_position": copy.deepcopy(self.last_position),
            "version": self.version,
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True)
class Movement:
    """One requested change of an asset (the body of `POST /arm/v1/assets/{id}/movements`)."""

    movement_id: str
    state: str
    occurred_at: datetime
    station_id: str | None = None
    slot: int | None = None
    holder: str | None = None
    reason: str | None = None
    expected_version: int | None = None
    charge_pct: float | None = None


@dataclass
class Page:
    items: list[dict[str, Any]]
    last_id: str | None  # id of the last item when more follow, else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def seed_inventory(config: SimConfig) -> tuple[dict[str, Station], dict[str, Asset]]:
    """The same stations and batteries for the same seed and sizes, every time."""
    rng = random.Random(config.seed)
    stations: dict[str, Station] = {}
    regions = max(1, math.ceil(config.stations / 10))
    region_centres = [
        (_BASE_LAT + rng.uniform(-0.3, 0.3), _BASE_LON + rng.uniform(-0.5, 0.5))
        for _ in range(regions)
    ]
    for j in range(config.stations):
        lat, lon = region_centres[j // 10]
        station_id = f"ST-{j + 1:04d}"
        stations[station_id] = Station(
            station_id=station_id,
            name=f"Swap station {j + 1:04d}",
            region=f"region-{j // 10 + 1}",
            site=f"site-{j // 2 + 1}",
            latitude=round(lat + rng.uniform(-0.05, 0.05), 6),
            longitude=round(lon + rng.uniform(-0.05, 0.05), 6),
            online=True,
            slots=[None] * config.slots_per_station,
        )
    places = [(s, n) for s in stations for n in range(1, config.slots_per_station + 1)]
    rng.shuffle(places)
    assets: dict[str, Asset] = {}
    for k, (station_id, slot) in enumerate(places[: config.batteries]):
        asset_id = f"BAT-{k + 1:06d}"
        station = stations[station_id]
        available = rng.random() < config.available_share
        charge = rng.uniform(CHARGED_PCT, 100.0) if available else rng.uniform(5.0, 89.9)
        assets[asset_id] = Asset(
            asset_id=asset_id,
            battery_class="HIGH_CAPACITY" if rng.random() < 0.25 else "STANDARD",
            state="AVAILABLE" if available else "CHARGING",
            station_id=station_id,
            slot=slot,
            holder=None,
            charge_pct=round(charge, 1),
            last_position={
                "latitude": station.latitude,
                "longitude": station.longitude,
                "at": _iso(SEEDED_AT),
            },
        )
        station.slots[slot - 1] = asset_id
    return stations, assets


def _page(
    ids: list[str],
    after: str | None,
    limit: int,
    render: Callable[[str], dict[str, Any] | None],
) -> Page:
    """Up to `limit` rendered items after id `after`; `render` returns None to skip an id."""
    start = bisect.bisect_right(ids, after) if after else 0
    items: list[dict[str, Any]] = []
    last = None
    for key in ids[start:]:
        item = render(key)
        if item is None:
            continue
        if len(items) == limit:
            return Page(items=items, last_id=last)
        items.append(item)
        last = key
    return Page(items=items, last_id=None)


class Inventory:
    """Stations and assets behind one lock; every answer is a copy, never a live object."""

    def __init__(
        self, config: SimConfig, stats: SimStats, *, clock: Callable[[], datetime]
    ) -> None:
        self._config = config
        self._stats = stats
        self._clock = clock
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._stations, self._assets = seed_inventory(self._config)
            self._station_ids = sorted(self._stations)
            self._asset_ids = sorted(self._assets)
            self._movements: dict[str, str] = {}  # movement_id -> asset_id it was applied to

    # ---- reading ---------------------------------------------------------------------

    def list_stations(self, *, after: str | None, limit: int) -> Page:
        with self._lock:
            return _page(
                self._station_ids,
                after,
                limit,
                lambda k: self._stations[k].summary(),
            )

    def get_station(self, station_id: str) -> dict[str, Any]:
        with self._lock:
            return self._station(station_id).detail()

    def list_assets(
        self, *, station_id: str | None, state: str | None, after: str | None, limit: int
    ) -> Page:
        def render(key: str) -> dict[str, Any] | None:
            asset = self._assets[key]
            if station_id is not None and asset.station_id != station_id:
                return None
            if state is not None and asset.state != state:
                return None
            return asset.as_json()

        with self._lock:
            return _page(self._asset_ids, after, limit, render)

    def get_asset(self, asset_id: str) -> dict[str, Any]:
        with self._lock:
            return self._asset(asset_id).as_json()

    def set_online(self, station_id: str, *, online: bool) -> dict[str, Any]:
        with self._lock:
            station = self._station(station_id)
            station.online = online
            return station.summary()

    # ---- movements -------------------------------------------------------------------

    def apply_movement(self, asset_id: str, movement: Movement) -> tuple[dict[str, Any], bool]:
        """Apply `movement` once; returns the asset after it and whether this was a replay.

        The replay check comes first: a retried movement whose first attempt was applied
        must answer 200, not trip over the version it itself moved on.
        """
        with self._lock:
            asset = self._asset(asset_id)
            earlier = self._movements.get(movement.movement_id)
            if earlier is not None:
                if earlier != asset_id:
                    raise _conflict(
                        "MOVEMENT_ID_REUSED",
                        f"movement {movement.movement_id} was applied to {earlier}",
                        asset_id=earlier,
                    )
                self._stats.bump("movements_replayed")
                return asset.as_json(), True
            try:
                self._check(asset, movement)
            except Refused:
                self._stats.bump("movements_rejected")
                raise
            self._move(asset, movement)
            self._movements[movement.movement_id] = asset_id
            self._stats.applied(asset_id=asset_id, movement_id=movement.movement_id)
            return asset.as_json(), False

    def _check(self, asset: Asset, m: Movement) -> None:
        if m.expected_version is not None and m.expected_version != asset.version:
            raise _conflict(
                "VERSION_CONFLICT",
                f"{asset.asset_id} is at version {asset.version}, not {m.expected_version}",
                current_version=asset.version,
                expected_version=m.expected_version,
            )
        if m.state not in TRANSITIONS[asset.state]:
            raise _conflict(
                "INVALID_TRANSITION",
                f"{asset.asset_id} cannot go from {asset.state} to {m.state}",
                from_state=asset.state,
                to_state=m.state,
            )
        if m.state == "ISSUED" and not m.holder:
            raise _conflict("INVALID_TRANSITION", "ISSUED needs a holder", from_state=asset.state)
        if m.state in IN_SLOT and m.holder is not None:
            raise _conflict(
                "INVALID_TRANSITION", f"a {m.state} battery sits in a slot and has no holder"
            )
        if m.state not in IN_SLOT and m.slot is not None:
            raise _conflict("INVALID_TRANSITION", f"a {m.state} battery is not in a slot")
        if m.state in IN_SLOT:
            if m.station_id is None or m.slot is None:
                raise _conflict(
                    "INVALID_TRANSITION",
                    f"{m.state} needs a station and a free slot",
                    from_state=asset.state,
                    to_state=m.state,
                )
            station = self._stations.get(m.station_id)
            if station is None or not 1 <= m.slot <= len(station.slots):
                raise _conflict(
                    "INVALID_TRANSITION",
                    f"there is no slot {m.slot} at {m.station_id}",
                    station_id=m.station_id,
                    slot=m.slot,
                )
            occupant = station.slots[m.slot - 1]
            if occupant is not None and occupant != asset.asset_id:
                raise _conflict(
                    "SLOT_OCCUPIED",
                    f"slot {m.slot} at {m.station_id} holds {occupant}",
                    station_id=m.station_id,
                    slot=m.slot,
                    asset_id=occupant,
                )
        elif m.station_id is not None and m.station_id not in self._stations:
            raise _conflict(
                "INVALID_TRANSITION", f"there is no station {m.station_id}", station_id=m.station_id
            )

    def _move(self, asset: Asset, m: Movement) -> None:
        if asset.station_id is not None and asset.slot is not None:
            self._stations[asset.station_id].slots[asset.slot - 1] = None
        previous_holder = asset.holder
        asset.state = m.state
        if m.state in IN_SLOT:
            assert m.station_id is not None and m.slot is not None  # checked in _check
            station = self._stations[m.station_id]
            station.slots[m.slot - 1] = asset.asset_id
            asset.station_id, asset.slot, asset.holder = m.station_id, m.slot, None
            asset.last_position = {
                "latitude": station.latitude,
                "longitude": station.longitude,
                "at": _iso(m.occurred_at),
            }
        else:
            # Off the rack: a station may still say where it is kept (inspection bench),
            # and a LOST battery keeps the holder who had it, for the settlement.
            asset.station_id, asset.slot = m.station_id, None
            asset.holder = m.holder or (previous_holder if m.state == "LOST" else None)
        if m.charge_pct is not None:
            asset.charge_pct = m.charge_pct
        asset.version += 1
        asset.updated_at = self._clock()

    # ---- helpers ---------------------------------------------------------------------

    def _station(self, station_id: str) -> Station:
        station = self._stations.get(station_id)
        if station is None:
            raise Refused(404, "STATION_NOT_FOUND", f"no station {station_id}")
        return station

    def _asset(self, asset_id: str) -> Asset:
        asset = self._assets.get(asset_id)
        if asset is None:
            raise Refused(404, "ASSET_NOT_FOUND", f"no asset {asset_id}")
        return asset
