"""Small in-memory stand-ins for iot-sync's ports, for use-case tests."""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from iot_sync.app.arm import ArmAsset, ArmRejected, ArmStation, ArmUnavailable, AssetMovement
from iot_sync.app.ports import (
    AssetHistoryEntry,
    AuditEntry,
    HeldSignal,
    Notification,
    OutboxEvent,
    OutboxKind,
    Page,
    PendingEvent,
    ServiceHistoryEntry,
    SettlementRequest,
    SignalRecord,
    SignalResult,
    StationHeartbeat,
    TelemetryUpdate,
)
from iot_sync.app.signals import Actor, FieldMessage, FieldMessageKind, Signal, SourceKind
from iot_sync.domain.asset import Asset, AssetState
from iot_sync.domain.customer import Customer, Plan, Standing
from iot_sync.domain.personnel import Person
from iot_sync.domain.service import Service
from iot_sync.domain.station import Station

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class FixedClock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class Store:
    signal_log: list[SignalRecord] = field(default_factory=list)
    claimed_ids: list[list[str]] = field(default_factory=list)  # per claim_message_ids call
    last_seqs: dict[str, int] = field(default_factory=dict)
    held: dict[str, list[HeldSignal]] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    service_history: list[ServiceHistoryEntry] = field(default_factory=list)
    assets: dict[str, Asset] = field(default_factory=dict)
    asset_history: list[AssetHistoryEntry] = field(default_factory=list)
    stations: dict[str, Station] = field(default_factory=dict)
    personnel: dict[str, Person] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    audit_writes: int = 0  # calls of `record`: statements, on a database
    outbox: list[dict[str, Any]] = field(default_factory=list)


class FakeSignalLog:
    def __init__(self, s: Store) -> None:
        self.s = s

    def claim_message_ids(self, message_ids: Sequence[str]) -> None:
        self.s.claimed_ids.append(list(message_ids))

    def known_message_ids(self, message_ids: Sequence[str]) -> set[str]:
        taken = {r.message_id for r in self.s.signal_log if r.result is not SignalResult.DUPLICATE}
        return taken & set(message_ids)

    def add(self, records: Sequence[SignalRecord]) -> None:
        self.s.signal_log.extend(records)

    def settle_held(self, records: Sequence[SignalRecord]) -> None:
        final = {r.message_id: r for r in records}
        self.s.signal_log = [
            final.get(r.message_id, r) if r.result is SignalResult.HELD else r
            for r in self.s.signal_log
        ]

    def page(
        self, *, results: Collection[SignalResult] | None, limit: int, cursor: str | None
    ) -> Page[SignalRecord]:
        rows = [r for r in self.s.signal_log if results is None or r.result in results]
        return Page(rows[:limit])


class FakeSenders:
    def __init__(self, s: Store) -> None:
        self.s = s

    def last_seqs(self, senders: Sequence[str]) -> dict[str, int]:
        return {k: self.s.last_seqs[k] for k in senders if k in self.s.last_seqs}

    def save_last_seqs(self, last: Mapping[str, int]) -> None:
        self.s.last_seqs.update(last)

    def hold(self, sender: str, held: Sequence[HeldSignal]) -> None:
        self.s.held.setdefault(sender, []).extend(held)

    def held(self, senders: Sequence[str]) -> dict[str, list[HeldSignal]]:
        return {k: list(self.s.held[k]) for k in senders if self.s.held.get(k)}

    def release(self, message_ids: Sequence[str]) -> None:
        ids = set(message_ids)
        for sender, held in self.s.held.items():
            self.s.held[sender] = [h for h in held if h.signal.message_id not in ids]

    def senders_holding_since(self, before: datetime, limit: int) -> list[str]:
        return [k for k, held in self.s.held.items() if any(h.held_since <= before for h in held)]


class FakeServices:
    def __init__(self, s: Store) -> None:
        self.s = s

    def get(self, service_id: str) -> Service | None:
        return self.s.services.get(service_id)

    def for_customers(self, customer_ids: Sequence[str]) -> dict[str, Service]:
        return {
            sv.customer_id: sv for sv in self.s.services.values() if sv.customer_id in customer_ids
        }

    def find(self, *, customer_id: str | None, limit: int) -> list[Service]:
        return [sv for sv in self.s.services.values() if customer_id in (None, sv.customer_id)][
            :limit
        ]

    def add(self, service: Service) -> None:
        self.s.services[service.service_id] = service

    def save(self, service: Service) -> None:
        self.s.services[service.service_id] = service

    def add_history(self, entries: Sequence[ServiceHistoryEntry]) -> None:
        self.s.service_history.extend(entries)

    def history(self, service_id: str, *, limit: int) -> list[ServiceHistoryEntry]:
        return [e for e in self.s.service_history if e.service_id == service_id][:limit]


class FakeAssets:
    def __init__(self, s: Store) -> None:
        self.s = s

    def get_many(self, asset_ids: Sequence[str]) -> dict[str, Asset]:
        return {i: self.s.assets[i] for i in asset_ids if i in self.s.assets}

    def at_station(self, station_id: str) -> list[Asset]:
        return [a for a in self.s.assets.values() if a.station_id == station_id]

    def at_stations(self, station_ids: Sequence[str]) -> dict[str, list[Asset]]:
        return {i: self.at_station(i) for i in dict.fromkeys(station_ids)}

    def save(self, asset: Asset) -> None:
        self.s.assets[asset.asset_id] = asset

    def record_telemetry(self, updates: Sequence[TelemetryUpdate]) -> None:
        for u in updates:
            a = self.s.assets[u.asset_id]
            self.s.assets[u.asset_id] = replace(
                a,
                last_seen_at=u.last_seen_at,
                charge_pct=u.charge_pct if u.charge_pct is not None else a.charge_pct,
                position=u.position or a.position,
                outside_since=u.outside_since,
                region=u.region,
            )

    def loss_candidates(
        self, *, silent_before: datetime, outside_before: datetime, limit: int
    ) -> list[Asset]:
        return [
            a
            for a in self.s.assets.values()
            if a.state is AssetState.ISSUED
            and (
                (a.last_seen_at or a.state_since or silent_before) <= silent_before
                or (a.outside_since is not None and a.outside_since <= outside_before)
            )
        ][:limit]

    def upsert_from_arm(self, assets: Sequence[ArmAsset]) -> int:
        changed = 0
        for arm in assets:
            known = self.s.assets.get(arm.asset_id)
            if known is None:
                self.s.assets[arm.asset_id] = Asset(
                    asset_id=arm.asset_id,
                    battery_class=arm.battery_class,
                    state=AssetState(arm.state),
                    station_id=arm.station_id,
                    slot=arm.slot,
                    holder=arm.holder,
                    charge_pct=arm.charge_pct,
                    region=st.region if (st := self.s.stations.get(arm.station_id or "")) else None,
                )
                changed += 1
            elif known.battery_class != arm.battery_class:
                self.s.assets[arm.asset_id] = replace(known, battery_class=arm.battery_class)
                changed += 1
        return changed

    def states(self) -> dict[str, tuple[str, str | None, str | None]]:
        return {i: (a.state.value, a.station_id, a.holder) for i, a in self.s.assets.items()}

    def add_history(self, entries: Sequence[AssetHistoryEntry]) -> None:
        self.s.asset_history.extend(entries)

    def history(self, asset_id: str, *, limit: int) -> list[AssetHistoryEntry]:
        return [e for e in self.s.asset_history if e.asset_id == asset_id][:limit]


class FakeStations:
    def __init__(self, s: Store) -> None:
        self.s = s

    def get_many(self, station_ids: Sequence[str]) -> dict[str, Station]:
        return {i: self.s.stations[i] for i in station_ids if i in self.s.stations}

    def all(self) -> list[Station]:
        return list(self.s.stations.values())

    def upsert_from_arm(self, stations: Sequence[ArmStation]) -> int:
        for st in stations:
            self.s.stations[st.station_id] = Station(
                st.station_id, st.name, st.region, st.site, st.latitude, st.longitude,
                st.slot_count, st.online,
            )  # fmt: skip
        return len(stations)

    def record_heartbeats(self, beats: Sequence[StationHeartbeat]) -> None:
        for b in beats:
            st = self.s.stations[b.station_id]
            self.s.stations[b.station_id] = replace(
                st, last_seen_at=b.last_seen_at, online=b.online
            )


class FakePersonnel:
    def __init__(self, s: Store) -> None:
        self.s = s

    def get(self, person_id: str) -> Person | None:
        return self.s.personnel.get(person_id)

    def get_many(self, person_ids: Sequence[str]) -> dict[str, Person]:
        return {i: self.s.personnel[i] for i in person_ids if i in self.s.personnel}

    def all(self) -> list[Person]:
        return list(self.s.personnel.values())


class FakeAudit:
    def __init__(self, s: Store) -> None:
        self.s = s

    def record(self, entries: Sequence[AuditEntry]) -> None:
        self.s.audit_writes += 1
        self.s.audit.extend(entries)

    def entries(
        self, *, person_id: str | None, asset_id: str | None, limit: int
    ) -> list[AuditEntry]:
        return [
            e
            for e in self.s.audit
            if person_id in (None, e.person_id) and asset_id in (None, e.asset_id)
        ][:limit]


class FakeOutbox:
    def __init__(self, s: Store) -> None:
        self.s = s

    def add(self, events: Sequence[OutboxEvent]) -> None:
        for e in events:
            self.s.outbox.append(
                {"event": e, "delivered": False, "dead": False, "attempts": 0,
                 "due": e.created_at, "lease": None, "error": None}
            )  # fmt: skip

    def claim(self, *, now: datetime, lease_until: datetime, limit: int) -> list[PendingEvent]:
        out = []
        for row in self.s.outbox:
            if row["delivered"] or row["dead"] or row["due"] > now:
                continue
            if row["lease"] is not None and row["lease"] > now:
                continue
            row["lease"] = lease_until
            e: OutboxEvent = row["event"]
            out.append(
                PendingEvent(e.event_id, e.kind, e.payload, row["attempts"], e.key, e.traceparent)
            )
            if len(out) == limit:
                break
        return out

    def mark_delivered(self, event_ids: Sequence[str], *, at: datetime) -> None:
        for row in self.s.outbox:
            if row["event"].event_id in event_ids:
                row["delivered"], row["lease"] = True, None

    def mark_failed(
        self, event_id: str, *, error: str, retry_at: datetime | None, at: datetime
    ) -> None:
        for row in self.s.outbox:
            if row["event"].event_id == event_id:
                row["attempts"] += 1
                row["error"], row["lease"] = error, None
                if retry_at is None:
                    row["dead"] = True
                else:
                    row["due"] = retry_at


class FakeUnitOfWork:
    """Works on a copy of the store; commit swaps the copy in, leaving without it drops it."""

    def __init__(self, store_ref: list[Store]) -> None:
        self._ref = store_ref
        self.commits = 0

    def __enter__(self) -> FakeUnitOfWork:
        self._work = copy.deepcopy(self._ref[0])
        self._bind(self._work)
        return self

    def _bind(self, s: Store) -> None:
        self.signal_log = FakeSignalLog(s)
        self.senders = FakeSenders(s)
        self.services = FakeServices(s)
        self.assets = FakeAssets(s)
        self.stations = FakeStations(s)
        self.personnel = FakePersonnel(s)
        self.audit = FakeAudit(s)
        self.outbox = FakeOutbox(s)

    def __exit__(self, *exc: object) -> None:
        self._work = None  # type: ignore[assignment]

    def commit(self) -> None:
        self._ref[0] = self._work
        self._work = copy.deepcopy(self._work)
        self._bind(self._work)
        self.commits += 1

    def rollback(self) -> None:
        self._work = copy.deepcopy(self._ref[0])
        self._bind(self._work)


class FakeUnitOfWorkFactory:
    def __init__(self, store: Store | None = None) -> None:
        self.ref = [store or Store()]
        self.opened = 0

    @property
    def store(self) -> Store:
        return self.ref[0]

    def __call__(self) -> FakeUnitOfWork:
        self.opened += 1
        return FakeUnitOfWork(self.ref)


class FakeCustomerDirectory:
    def __init__(self, customers: Sequence[Customer] = ()) -> None:
        self.customers = {c.customer_id: c for c in customers}
        self.lookups: list[list[str]] = []  # the ids of each get_many, in order

    def get_many(self, customer_ids: Sequence[str]) -> dict[str, Customer]:
        self.lookups.append(list(customer_ids))
        return {i: self.customers[i] for i in customer_ids if i in self.customers}

    def all(self) -> list[Customer]:
        return list(self.customers.values())


class FakeFieldPublisher:
    def __init__(self) -> None:
        self.sent: list[FieldMessage] = []
        self.fail = False

    def publish(self, messages: Sequence[FieldMessage]) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.sent.extend(messages)

    def of_kind(self, kind: FieldMessageKind) -> list[FieldMessage]:
        return [m for m in self.sent if m.kind is kind]


class FakeArm:
    def __init__(
        self, stations: Sequence[ArmStation] = (), assets: Sequence[ArmAsset] = ()
    ) -> None:
        self.stations = list(stations)
        self.assets = {a.asset_id: a for a in assets}
        self.movements: list[AssetMovement] = []
        self.applied_ids: set[str] = set()
        self.unavailable = False
        self.reject_code: str | None = None

    def list_stations(self) -> Iterator[ArmStation]:
        return iter(self.stations)

    def list_assets(self, *, station_id: str | None = None) -> Iterator[ArmAsset]:
        return iter([a for a in self.assets.values() if station_id in (None, a.station_id)])

    def get_asset(self, asset_id: str) -> ArmAsset | None:
        return self.assets.get(asset_id)

    def apply_movement(self, movement: AssetMovement) -> ArmAsset:
        if self.unavailable:
            raise ArmUnavailable("503")
        if self.reject_code:
            raise ArmRejected(self.reject_code, "refused")
        if movement.asset_id not in self.assets:
            raise ArmRejected("NOT_FOUND", f"no asset {movement.asset_id}")
        if movement.movement_id not in self.applied_ids:
            self.applied_ids.add(movement.movement_id)
            self.movements.append(movement)
            old = self.assets.get(movement.asset_id)
            if old is not None:
                self.assets[movement.asset_id] = replace(
                    old,
                    state=movement.state,
                    station_id=movement.station_id,
                    slot=movement.slot,
                    holder=movement.holder,
                    version=old.version + 1,
                )
        return self.assets[movement.asset_id]


class FakeNotifier:
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def notify(self, notification: Notification) -> None:
        self.sent.append(notification)


class FakeSettlements:
    def __init__(self) -> None:
        self.started: list[SettlementRequest] = []

    def start_loss_charge(self, request: SettlementRequest) -> None:
        self.started.append(request)


# ---- builders ---------------------------------------------------------------------------

STANDARD = Plan("std-30", battery_class="STANDARD", swap_quota=3, period_days=30)


def customer(
    cid: str = "C-1", *, standing: Standing = Standing.GOOD, plan: Plan = STANDARD
) -> Customer:
    return Customer(cid, f"Customer {cid}", standing, plan)


def station(sid: str = "ST-1", *, region: str = "region-1", slots: int = 4) -> Station:
    return Station(sid, f"Station {sid}", region, "site-1", 0.0, 0.0, slots)


def battery(
    bid: str,
    *,
    state: AssetState = AssetState.AVAILABLE,
    station_id: str | None = "ST-1",
    slot: int | None = 1,
    battery_class: str = "STANDARD",
    charge: float = 100.0,
    holder: str | None = None,
    region: str | None = "region-1",
    **more: Any,
) -> Asset:
    return Asset(
        bid, battery_class, state, station_id=station_id, slot=slot, holder=holder,
        charge_pct=charge, region=region, state_since=T0 - timedelta(hours=1), **more,
    )  # fmt: skip


_counter = iter(range(10**9))


def signal(
    kind: SourceKind,
    source_id: str,
    verb: str,
    data: Mapping[str, Any] | None = None,
    *,
    seq: int | None = None,
    message_id: str | None = None,
    at: datetime = T0,
    region: str | None = None,
    correlation_id: str | None = None,
    reply_to: str | None = None,
) -> Signal:
    n = next(_counter)
    topics = {
        SourceKind.STATION: f"call/abs/station/{source_id}/{verb}",
        SourceKind.PERSONNEL: f"emit/abs/personnel/{source_id}/{verb}",
    }
    topic = topics.get(kind, f"dt/arm/{kind}/{region or 'region-1'}/site-1/{source_id}")
    return Signal(
        message_id=message_id or f"m-{n}",
        topic=topic,
        source_kind=kind,
        source_id=source_id,
        verb=verb,
        sent_at=at,
        seq=seq,
        data=dict(data or {}),
        received_at=at,
        actor=Actor(kind.value, source_id),
        correlation_id=correlation_id or f"corr-{n}",
        reply_to=reply_to,
        region=region,
    )


def outbox_events(store: Store, kind: OutboxKind) -> list[OutboxEvent]:
    return [row["event"] for row in store.outbox if row["event"].kind is kind]


def field_messages(store: Store, kind: FieldMessageKind) -> list[dict[str, Any]]:
    return [e.payload for e in outbox_events(store, OutboxKind.FIELD) if e.payload["kind"] == kind]
