"""Telemetry and heartbeats: most of the traffic, compressed into one upsert per batch.

A batch's readings of one battery become one `TelemetryUpdate` (last seen, newest charge,
newest position, the run of positions outside the allowed area). Only two readings are
transitions: a CHARGING battery reaching full charge becomes AVAILABLE, and a LOST battery
whose tracker speaks after the loss is sighted (BATTERY_FOUND for its holder's service).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from iot_sync.app.effects import Effects
from iot_sync.app.ports import StationHeartbeat, TelemetryUpdate
from iot_sync.app.signals import Signal, SourceKind
from iot_sync.domain.asset import FULL_CHARGE_PCT, Asset, AssetMove, AssetState, Position
from iot_sync.domain.evidence import AllowedArea, outside_since_after
from iot_sync.domain.rejection import Rejection
from iot_sync.domain.service import ServiceInput, ServiceState

Outcomes = dict[str, Rejection | None]  # message id -> rejection, None when accepted


class TrackingSignals:
    def __init__(self, *, allowed_areas: Mapping[str, AllowedArea]) -> None:
        self._areas = allowed_areas

    def apply(self, fx: Effects, signals: Sequence[Signal]) -> Outcomes:
        """`signals` in the order they apply (per sender by `seq`)."""
        outcomes: Outcomes = {}
        by_battery: dict[str, list[Signal]] = {}
        beats: dict[str, StationHeartbeat] = {}
        for signal in signals:
            if signal.source_kind is SourceKind.SSC:
                beats[signal.source_id] = _heartbeat(signal, beats.get(signal.source_id))
                outcomes[signal.message_id] = None
            else:
                by_battery.setdefault(signal.source_id, []).append(signal)
        if beats:
            known = fx.uow.stations.get_many(list(beats))
            for station_id in [s for s in beats if s not in known]:
                del beats[station_id]
            for signal in signals:
                if signal.source_kind is SourceKind.SSC and signal.source_id not in known:
                    outcomes[signal.message_id] = Rejection(
                        "unknown_station", f"station {signal.source_id} is not in the inventory"
                    )
            fx.uow.stations.record_heartbeats(list(beats.values()))
        if by_battery:
            outcomes.update(self._batteries(fx, by_battery))
        return outcomes

    def _batteries(self, fx: Effects, by_battery: dict[str, list[Signal]]) -> Outcomes:
        outcomes: Outcomes = {}
        assets = fx.uow.assets.get_many(list(by_battery))
        updates: list[TelemetryUpdate] = []
        for battery_id, readings in by_battery.items():
            asset = assets.get(battery_id)
            if asset is None:
                for signal in readings:
                    outcomes[signal.message_id] = Rejection(
                        "unknown_battery", f"battery {battery_id} is not in the inventory"
                    )
                continue
            accepted: list[Signal] = []
            fold = _Fold(
                asset.last_seen_at or readings[0].sent_at, asset.outside_since, asset.region
            )
            for signal in readings:
                reading = _read(signal)
                if isinstance(reading, Rejection):
                    outcomes[signal.message_id] = reading
                    continue
                outcomes[signal.message_id] = None
                accepted.append(signal)
                fold.add(signal, reading, self._areas)
            if accepted:
                update = fold.update(battery_id)
                updates.append(update)
                self._transitions(fx, asset, update, accepted[-1])
        fx.uow.assets.record_telemetry(updates)
        return outcomes

    def _transitions(
        self, fx: Effects, asset: Asset, update: TelemetryUpdate, last: Signal
    ) -> None:
        cause = last.message_id
        if asset.state is AssetState.CHARGING and (update.charge_pct or 0.0) >= FULL_CHARGE_PCT:
            charged = replace(asset, charge_pct=update.charge_pct)
            fx.move_asset(
                asset,
                charged.complete_charge(at=fx.now),
                AssetMove.CHARGE_COMPLETE,
                cause=cause,
                reason="charged",
            )
            return
        if (
            asset.state is AssetState.LOST
            and asset.state_since is not None
            and update.last_seen_at > asset.state_since
        ):
            sighted = fx.move_asset(
                asset,
                asset.sight(at=update.last_seen_at),
                AssetMove.SIGHT,
                cause=cause,
                reason="tracker sighting",
            )
            if isinstance(sighted, Rejection) or asset.holder is None:
                return
            service = fx.uow.services.for_customers([asset.holder]).get(asset.holder)
            if service is not None and service.state is ServiceState.BATTERY_LOST:
                found = fx.apply_to_service(
                    service, ServiceInput.BATTERY_FOUND, cause=cause, battery_id=asset.asset_id
                )
                if not isinstance(found, Rejection):
                    fx.notify(
                        service.customer_id,
                        "battery_found",
                        battery_id=asset.asset_id,
                        options=["continue", "cancel"],
                    )


class _Fold:
    """One battery's readings of a batch, folded in the order they apply."""

    __slots__ = ("charge_pct", "last_seen_at", "outside_since", "position", "region")

    def __init__(
        self, last_seen_at: datetime, outside_since: datetime | None, region: str | None
    ) -> None:
        self.last_seen_at = last_seen_at
        self.outside_since = outside_since
        self.region = region
        self.charge_pct: float | None = None
        self.position: Position | None = None

    def add(
        self, signal: Signal, reading: dict[str, float], areas: Mapping[str, AllowedArea]
    ) -> None:
        if signal.sent_at > self.last_seen_at:
            self.last_seen_at = signal.sent_at
        if signal.region:
            self.region = signal.region
        if "charge_pct" in reading:
            self.charge_pct = reading["charge_pct"]
        if "latitude" in reading:
            position = Position(reading["latitude"], reading["longitude"], signal.sent_at)
            area = areas.get(self.region) if self.region else None
            if area is not None:
                inside = area.contains(position.latitude, position.longitude)
                self.outside_since = outside_since_after(
                    self.outside_since, inside=inside, at=signal.sent_at
                )
            self.position = position

    def update(self, asset_id: str) -> TelemetryUpdate:
        return TelemetryUpdate(
            asset_id=asset_id,
            last_seen_at=self.last_seen_at,
            charge_pct=self.charge_pct,
            position=self.position,
            outside_since=self.outside_since,
            region=self.region,
        )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _read(signal: Signal) -> dict[str, float] | Rejection:
    """The readings a tracking signal carries; a heartbeat carries none and is still a sighting."""
    data = signal.data
    reading: dict[str, float] = {}
    if "charge_pct" in data:
        charge = _number(data["charge_pct"])
        if charge is None or not 0.0 <= charge <= 100.0:
            return Rejection("wrong_type", "data.charge_pct must be a number from 0 to 100")
        reading["charge_pct"] = charge
    if signal.source_kind is SourceKind.GPS and signal.verb != "heartbeat":
        for name in ("latitude", "longitude"):
            if name not in data:
                return Rejection("missing_field", f"data.{name} is required")
        latitude, longitude = _number(data["latitude"]), _number(data["longitude"])
        if (
            latitude is None
            or longitude is None
            or not -90 <= latitude <= 90
            or not -180 <= longitude <= 180
        ):
            return Rejection("wrong_type", "data.latitude/longitude must be valid coordinates")
        reading["latitude"], reading["longitude"] = latitude, longitude
    return reading


def _heartbeat(signal: Signal, earlier: StationHeartbeat | None) -> StationHeartbeat:
    online = signal.data.get("online", True)
    beat = StationHeartbeat(
        signal.source_id, signal.sent_at, online if isinstance(online, bool) else True
    )
    if earlier is not None and earlier.last_seen_at > beat.last_seen_at:
        return earlier
    return beat
