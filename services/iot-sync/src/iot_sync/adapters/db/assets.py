"""Batteries and stations: iot-sync's copy of the inventory, kept in step with ARM."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Float, String, and_, bindparam, func, or_, select, text, update
from sqlalchemy.engine import Connection, RowMapping

from fleetops_common.db import is_postgres
from iot_sync.adapters.db import tables as t
from iot_sync.adapters.db._shared import (
    among,
    aware,
    chunks,
    copy_rows,
    insert_for,
    read_through,
    write_pending,
)
from iot_sync.app.arm import ArmAsset, ArmStation
from iot_sync.app.ports import AssetHistoryEntry, StationHeartbeat, TelemetryUpdate
from iot_sync.domain.asset import Asset, AssetState, Position
from iot_sync.domain.station import Station

A = t.assets.c

_TELEMETRY_COLUMNS = ["asset_id", "seen", "charge", "lat", "lon", "pos_at", "outside", "region"]
_UPDATE_FROM_TELEMETRY = (
    "UPDATE assets SET last_seen_at = coalesce(r.seen, assets.last_seen_at), "
    "charge_pct = coalesce(r.charge, assets.charge_pct), "
    "latitude = coalesce(r.lat, assets.latitude), "
    "longitude = coalesce(r.lon, assets.longitude), "
    "position_at = coalesce(r.pos_at, assets.position_at), "
    "outside_since = r.outside, region = coalesce(r.region, assets.region) "
    "FROM tmp_telemetry r WHERE assets.asset_id = r.asset_id"
)


class SqlAlchemyAssetRepository:
    """Lives as long as one unit of work, and remembers what it read (an identity map).

    Every change of an asset in the transaction goes through `save`, which keeps the map in
    step; the bulk statements (`record_telemetry`, `upsert_from_arm`) forget what they
    touch. So a batch that read its batteries and stations' inventories once
    (`get_many`, `at_stations`) answers the per-signal reads without a round trip.

    Saves are written behind: `save` keeps the asset, and `write_pending` writes every kept
    one in one statement, in asset-id order (the lock order `at_stations` keeps), before
    the unit of work commits and before any statement whose result a kept save would change
    or whose write it would undo. The reads that come from the map need no such write.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._known: dict[str, Asset | None] = {}  # None: read, and not there
        self._stations_read: set[str] = set()  # every asset there is in `_known`
        self._pending: dict[str, Asset] = {}  # saved, not written yet

    def get_many(self, asset_ids: Sequence[str]) -> dict[str, Asset]:
        return read_through(self.conn, self._known, asset_ids, t.assets, "asset_id", asset_from_row)

    def at_station(self, station_id: str) -> list[Asset]:
        return self.at_stations([station_id])[station_id]

    def at_stations(self, station_ids: Sequence[str]) -> dict[str, list[Asset]]:
        wanted = sorted({s for s in station_ids if s not in self._stations_read})
        for part in chunks(wanted):
            q = select(t.assets).where(among(self.conn, A.station_id, part))
            if is_postgres(self.conn):
                # Two authorizations at one station see each other's reservation, never the
                # same battery: the second waits for the first's commit. One lock order.
                q = q.order_by(A.asset_id).with_for_update()
            for r in self.conn.execute(q).mappings():
                # a row this transaction saved is already known as it is now
                if self._known.get(r["asset_id"]) is None:
                    self._known[r["asset_id"]] = asset_from_row(r)
            self._stations_read.update(part)
        by_station: dict[str, list[Asset]] = {s: [] for s in station_ids}
        for asset in self._known.values():
            if asset is not None and asset.station_id in by_station:
                by_station[asset.station_id].append(asset)
        for assets in by_station.values():
            # ORDER BY slot, asset_id as PostgreSQL sorts it: an empty slot last
            assets.sort(key=lambda a: (a.slot is None, a.slot or 0, a.asset_id))
        return by_station

    def save(self, asset: Asset) -> None:
        self._known[asset.asset_id] = asset
        self._pending[asset.asset_id] = asset

    def write_pending(self) -> None:
        """Write the saves kept back so far: one UPDATE, executed for each asset."""
        write_pending(self.conn, t.assets, "asset_id", self._pending, asset_to_row)

    def _forget(self, asset_ids: Sequence[str] | None = None) -> None:
        if asset_ids is None:
            self._known.clear()
            self._stations_read.clear()
            return
        for asset_id in asset_ids:
            asset = self._known.pop(asset_id, None)
            if asset is not None and asset.station_id is not None:
                self._stations_read.discard(asset.station_id)

    def record_telemetry(self, updates: Sequence[TelemetryUpdate]) -> None:
        """One statement for the whole batch; a reading absent from the batch keeps its value.

        PostgreSQL: COPY into a temporary table, then one `UPDATE … FROM` it. SQLite: an
        executemany, which costs no round trips in-process.
        """
        self.write_pending()
        if not updates:
            return
        self._forget([u.asset_id for u in updates])
        rows = [
            {
                "b_id": u.asset_id,
                "b_seen": u.last_seen_at,
                "b_charge": u.charge_pct,
                "b_lat": u.position.latitude if u.position else None,
                "b_lon": u.position.longitude if u.position else None,
                "b_pos_at": u.position.at if u.position else None,
                "b_outside": u.outside_since,
                "b_region": u.region,
            }
            for u in sorted(updates, key=lambda u: u.asset_id)  # one lock order: no deadlock
        ]
        if is_postgres(self.conn):
            self._update_by_copy(rows)
            return
        stmt = (
            update(t.assets)
            .where(A.asset_id == bindparam("b_id"))
            .values(
                last_seen_at=func.coalesce(bindparam("b_seen", type_=t.TS), A.last_seen_at),
                charge_pct=func.coalesce(bindparam("b_charge", type_=Float()), A.charge_pct),
                latitude=func.coalesce(bindparam("b_lat", type_=Float()), A.latitude),
                longitude=func.coalesce(bindparam("b_lon", type_=Float()), A.longitude),
                position_at=func.coalesce(bindparam("b_pos_at", type_=t.TS), A.position_at),
                outside_since=bindparam("b_outside", type_=t.TS),
                region=func.coalesce(bindparam("b_region", type_=String()), A.region),
            )
        )
        self.conn.execute(stmt, rows)

    def _update_by_copy(self, rows: Sequence[dict[str, Any]]) -> None:
        copy_rows(self.conn, "tmp_telemetry", _TELEMETRY_COLUMNS, (tuple(r.values()) for r in rows))
        self.conn.execute(text(_UPDATE_FROM_TELEMETRY))

    def loss_candidates(
        self, *, silent_before: datetime, outside_before: datetime, limit: int
    ) -> list[Asset]:
        self.write_pending()
        quiet = func.coalesce(A.last_seen_at, A.state_since)
        q = (
            select(t.assets)
            .where(
                A.state == AssetState.ISSUED.value,
                or_(
                    quiet <= silent_before,
                    and_(A.outside_since.is_not(None), A.outside_since <= outside_before),
                ),
            )
            .order_by(A.asset_id)
            .limit(limit)
        )
        if is_postgres(self.conn):
            q = q.with_for_update(skip_locked=True)
        return [asset_from_row(r) for r in self.conn.execute(q).mappings()]

    def upsert_from_arm(self, assets: Sequence[ArmAsset]) -> int:
        self.write_pending()
        if not assets:
            return 0
        self._forget()
        known = {
            r.asset_id: r
            for part in chunks([a.asset_id for a in assets])
            for r in self.conn.execute(
                select(A.asset_id, A.battery_class).where(A.asset_id.in_(part))
            )
        }
        new = [a for a in assets if a.asset_id not in known]
        if new:
            # ARM places a battery by station; its region is the station's (synced first).
            wanted = sorted({a.station_id for a in new if a.station_id})
            regions = {
                r.station_id: r.region
                for part in chunks(wanted)
                for r in self.conn.execute(
                    select(t.stations.c.station_id, t.stations.c.region).where(
                        t.stations.c.station_id.in_(part)
                    )
                )
            }
            stmt = insert_for(self.conn, t.assets).on_conflict_do_nothing(
                index_elements=[A.asset_id]
            )
            self.conn.execute(stmt, [_arm_row(a, regions.get(a.station_id or "")) for a in new])
        changed = [
            a
            for a in assets
            if a.asset_id in known and known[a.asset_id].battery_class != a.battery_class
        ]
        if changed:
            self.conn.execute(
                update(t.assets)
                .where(A.asset_id == bindparam("b_id"))
                .values(battery_class=bindparam("b_class")),
                [{"b_id": a.asset_id, "b_class": a.battery_class} for a in changed],
            )
        return len(new) + len(changed)

    def states(self) -> dict[str, tuple[str, str | None, str | None]]:
        self.write_pending()
        q = select(A.asset_id, A.state, A.station_id, A.holder)
        return {r.asset_id: (r.state, r.station_id, r.holder) for r in self.conn.execute(q)}

    def add_history(self, entries: Sequence[AssetHistoryEntry]) -> None:
        if entries:
            self.conn.execute(
                t.asset_history.insert(),
                [
                    {
                        "asset_id": e.asset_id,
                        "at": e.at,
                        "move": e.move,
                        "from_state": e.from_state,
                        "to_state": e.to_state,
                        "station_id": e.station_id,
                        "holder": e.holder,
                        "cause": e.cause[:200],
                        "actor": e.actor,
                    }
                    for e in entries
                ],
            )

    def history(self, asset_id: str, *, limit: int) -> list[AssetHistoryEntry]:
        q = (
            select(t.asset_history)
            .where(t.asset_history.c.asset_id == asset_id)
            .order_by(t.asset_history.c.id)
            .limit(limit)
        )
        return [
            AssetHistoryEntry(
                asset_id=r["asset_id"],
                at=aware(r["at"]) or r["at"],
                move=r["move"],
                from_state=r["from_state"],
                to_state=r["to_state"],
                station_id=r["station_id"],
                holder=r["holder"],
                cause=r["cause"],
                actor=r["actor"],
            )
            for r in self.conn.execute(q).mappings()
        ]


def _arm_row(a: ArmAsset, region: str | None) -> dict[str, Any]:
    return {
        "asset_id": a.asset_id,
        "battery_class": a.battery_class,
        "state": a.state,
        "station_id": a.station_id,
        "slot": a.slot,
        "holder": a.holder,
        "charge_pct": a.charge_pct,
        "region": region,
        "latitude": None,
        "longitude": None,
        "position_at": None,
        "last_seen_at": None,
        "outside_since": None,
        "state_since": None,
        "reserved_for": None,
        "reserved_until": None,
    }


def asset_to_row(a: Asset) -> dict[str, Any]:
    return {
        "asset_id": a.asset_id,
        "battery_class": a.battery_class,
        "state": a.state.value,
        "station_id": a.station_id,
        "slot": a.slot,
        "holder": a.holder,
        "charge_pct": a.charge_pct,
        "region": a.region,
        "latitude": a.position.latitude if a.position else None,
        "longitude": a.position.longitude if a.position else None,
        "position_at": a.position.at if a.position else None,
        "last_seen_at": a.last_seen_at,
        "outside_since": a.outside_since,
        "state_since": a.state_since,
        "reserved_for": a.reserved_for,
        "reserved_until": a.reserved_until,
    }


def asset_from_row(r: RowMapping) -> Asset:
    position = None
    if r["latitude"] is not None and r["longitude"] is not None and r["position_at"] is not None:
        position = Position(
            r["latitude"], r["longitude"], aware(r["position_at"]) or r["position_at"]
        )
    return Asset(
        asset_id=r["asset_id"],
        battery_class=r["battery_class"],
        state=AssetState(r["state"]),
        station_id=r["station_id"],
        slot=r["slot"],
        holder=r["holder"],
        charge_pct=r["charge_pct"],
        region=r["region"],
        position=position,
        last_seen_at=aware(r["last_seen_at"]),
        outside_since=aware(r["outside_since"]),
        state_since=aware(r["state_since"]),
        reserved_for=r["reserved_for"],
        reserved_until=aware(r["reserved_until"]),
    )


class SqlAlchemyStationRepository:
    """Remembers the stations it read for the unit of work; its own writes forget them."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._known: dict[str, Station | None] = {}

    def get_many(self, station_ids: Sequence[str]) -> dict[str, Station]:
        return read_through(self.conn, self._known, station_ids, t.stations, "station_id", _station)

    def all(self) -> list[Station]:
        q = select(t.stations).order_by(t.stations.c.station_id)
        return [_station(r) for r in self.conn.execute(q).mappings()]

    def upsert_from_arm(self, stations: Sequence[ArmStation]) -> int:
        if not stations:
            return 0
        self._known.clear()
        stmt = insert_for(self.conn, t.stations)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.stations.c.station_id],
            set_={
                c: stmt.excluded[c]
                for c in ("name", "region", "site", "latitude", "longitude", "slot_count", "online")
            },
        )
        self.conn.execute(
            stmt,
            [
                {
                    "station_id": s.station_id,
                    "name": s.name,
                    "region": s.region,
                    "site": s.site,
                    "latitude": s.latitude,
                    "longitude": s.longitude,
                    "slot_count": s.slot_count,
                    "online": s.online,
                }
                for s in stations
            ],
        )
        return len(stations)

    def record_heartbeats(self, beats: Sequence[StationHeartbeat]) -> None:
        if not beats:
            return
        for b in beats:
            self._known.pop(b.station_id, None)
        stmt = (
            update(t.stations)
            .where(t.stations.c.station_id == bindparam("b_id"))
            .values(last_seen_at=bindparam("b_seen"), online=bindparam("b_online"))
        )
        self.conn.execute(
            stmt,
            [
                {"b_id": b.station_id, "b_seen": b.last_seen_at, "b_online": b.online}
                for b in sorted(beats, key=lambda b: b.station_id)
            ],
        )


def _station(r: RowMapping) -> Station:
    return Station(
        station_id=r["station_id"],
        name=r["name"],
        region=r["region"],
        site=r["site"],
        latitude=r["latitude"],
        longitude=r["longitude"],
        slot_count=r["slot_count"],
        online=r["online"],
        last_seen_at=aware(r["last_seen_at"]),
    )
