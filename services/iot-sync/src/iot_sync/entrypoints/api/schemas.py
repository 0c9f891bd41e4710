"""The API's request and response bodies (pydantic lives only here, at the edge)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from iot_sync.app.ports import AssetHistoryEntry, ServiceHistoryEntry, SignalRecord
from iot_sync.domain.asset import Asset
from iot_sync.domain.customer import Customer
from iot_sync.domain.personnel import Person
from iot_sync.domain.service import Service
from iot_sync.domain.station import Station


class ServiceOut(BaseModel):
    service_id: str
    customer_id: str
    state: str
    battery_id: str | None
    swaps_used: int
    period_started_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, s: Service) -> ServiceOut:
        return cls(
            service_id=s.service_id,
            customer_id=s.customer_id,
            state=s.state.value,
            battery_id=s.battery_id,
            swaps_used=s.usage.swaps,
            period_started_at=s.usage.period_started_at,
            updated_at=s.updated_at,
        )


class ServicePage(BaseModel):
    items: list[ServiceOut]


class ServiceHistoryOut(BaseModel):
    at: datetime
    input: str
    from_state: str
    to_state: str
    battery_id: str | None
    cause: str
    actor: str | None

    @classmethod
    def of(cls, e: ServiceHistoryEntry) -> ServiceHistoryOut:
        return cls(
            at=e.at,
            input=e.input,
            from_state=e.from_state,
            to_state=e.to_state,
            battery_id=e.battery_id,
            cause=e.cause,
            actor=e.actor,
        )


class ServiceHistoryPage(BaseModel):
    service_id: str
    items: list[ServiceHistoryOut]


class ServiceInputIn(BaseModel):
    input: str = Field(
        description="DEPOSIT_CONFIRMED, ASSET_SETTLEMENT_COMPLETE, "
        "CONTINUE_SERVICE_REQUESTED or SERVICE_CANCELLED"
    )


class PositionOut(BaseModel):
    latitude: float
    longitude: float
    at: datetime


class AssetOut(BaseModel):
    asset_id: str
    state: str
    station_id: str | None
    holder: str | None
    slot: int | None
    battery_class: str
    charge_pct: float | None
    region: str | None
    last_position: PositionOut | None
    last_seen_at: datetime | None
    reserved_for: str | None

    @classmethod
    def of(cls, a: Asset) -> AssetOut:
        position = None
        if a.position is not None:
            position = PositionOut(
                latitude=a.position.latitude, longitude=a.position.longitude, at=a.position.at
            )
        return cls(
            asset_id=a.asset_id,
            state=a.state.value,
            station_id=a.station_id,
            holder=a.holder,
            slot=a.slot,
            battery_class=a.battery_class,
            charge_pct=a.charge_pct,
            region=a.region,
            last_position=position,
            last_seen_at=a.last_seen_at,
            reserved_for=a.reserved_for,
        )


class AssetHistoryOut(BaseModel):
    at: datetime
    move: str
    from_state: str
    to_state: str
    station_id: str | None
    holder: str | None
    cause: str
    actor: str | None

    @classmethod
    def of(cls, e: AssetHistoryEntry) -> AssetHistoryOut:
        return cls(
            at=e.at,
            move=e.move,
            from_state=e.from_state,
            to_state=e.to_state,
            station_id=e.station_id,
            holder=e.holder,
            cause=e.cause,
            actor=e.actor,
        )


class AssetHistoryPage(BaseModel):
    asset_id: str
    items: list[AssetHistoryOut]


class StationOut(BaseModel):
    station_id: str
    name: str
    region: str
    site: str
    latitude: float
    longitude: float
    slot_count: int
    online: bool
    last_seen_at: datetime | None

    @classmethod
    def of(cls, s: Station) -> StationOut:
        return cls(
            station_id=s.station_id,
            name=s.name,
            region=s.region,
            site=s.site,
            latitude=s.latitude,
            longitude=s.longitude,
            slot_count=s.slot_count,
            online=s.online,
            last_seen_at=s.last_seen_at,
        )


class StationPage(BaseModel):
    items: list[StationOut]


class StationInventoryOut(BaseModel):
    station_id: str
    slot_count: int
    free_slots: list[int]
    counts: dict[str, int] = Field(description="batteries in the station by state")
    items: list[AssetOut]


class SignalRecordOut(BaseModel):
    message_id: str | None
    topic: str
    source_kind: str | None
    source_id: str | None
    verb: str | None
    seq: int | None
    result: str
    reason_code: str | None
    reason: str | None
    correlation_id: str | None
    received_at: datetime
    processed_at: datetime

    @classmethod
    def of(cls, r: SignalRecord) -> SignalRecordOut:
        return cls(
            message_id=r.message_id,
            topic=r.topic,
            source_kind=r.source_kind,
            source_id=r.source_id,
            verb=r.verb,
            seq=r.seq,
            result=r.result.value,
            reason_code=r.reason_code,
            reason=r.reason,
            correlation_id=r.correlation_id,
            received_at=r.received_at,
            processed_at=r.processed_at,
        )


class SignalPage(BaseModel):
    items: list[SignalRecordOut]
    next_cursor: str | None


class SignalIn(BaseModel):
    topic: str = Field(examples=["call/abs/station/ST-0001/authorize"])
    envelope: dict[str, Any] = Field(
        description="The same JSON envelope as over MQTT: id, ts, seq, actor, correlation_id, "
        "traceparent, data"
    )


class SignalBatchIn(BaseModel):
    items: list[SignalIn] = Field(min_length=1, max_length=1000)


class SignalOutcomeOut(BaseModel):
    message_id: str | None
    result: str
    reason_code: str | None
    reason: str | None


class SignalBatchOut(BaseModel):
    items: list[SignalOutcomeOut]
    transitions: int


class PlanOut(BaseModel):
    plan_id: str
    battery_class: str
    swap_quota: int
    period_days: int


class CustomerOut(BaseModel):
    customer_id: str
    name: str
    standing: str
    plan: PlanOut
    service_id: str | None
    service_state: str | None

    @classmethod
    def of(cls, c: Customer, service: Service | None) -> CustomerOut:
        return cls(
            customer_id=c.customer_id,
            name=c.name,
            standing=c.standing.value,
            plan=PlanOut(
                plan_id=c.plan.plan_id,
                battery_class=c.plan.battery_class,
                swap_quota=c.plan.swap_quota,
                period_days=c.plan.period_days,
            ),
            service_id=service.service_id if service else None,
            service_state=service.state.value if service else None,
        )


class CustomerPage(BaseModel):
    items: list[CustomerOut]


class PersonOut(BaseModel):
    person_id: str
    name: str
    role: str
    regions: list[str]
    stations: list[str]
    active: bool

    @classmethod
    def of(cls, p: Person) -> PersonOut:
        return cls(
            person_id=p.person_id,
            name=p.name,
            role=p.role.value,
            regions=sorted(p.regions),
            stations=sorted(p.stations),
            active=p.active,
        )


class PersonnelPage(BaseModel):
    items: list[PersonOut]


class AuditOut(BaseModel):
    person_id: str
    action: str
    asset_id: str | None
    result: str
    reason: str | None
    at: datetime
    message_id: str | None
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditOut]


class DriftOut(BaseModel):
    asset_id: str
    kind: str
    ours: str | None
    arm: str | None


class ReconciliationOut(BaseModel):
    checked: int
    in_step: bool
    drifts: list[DriftOut]


class SyncOut(BaseModel):
    stations: int
    assets_seen: int
    assets_changed: int


class SettlementOut(BaseModel):
    settlement_id: str
    service_id: str
    customer_id: str
    battery_id: str
    battery_class: str
    evidence: str
    detail: str
    status: str
    requested_at: datetime
    recorded_at: datetime


class SettlementPage(BaseModel):
    items: list[SettlementOut]
