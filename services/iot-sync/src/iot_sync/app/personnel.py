"""S2, field personnel with a device scanner: scan for context, report a condition.

A report is checked against the person's role and assigned region/station, applied to the
battery and to the service of the customer who holds it, kept in the audit log with the
person's id, and answered on the personnel echo topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from iot_sync.app.effects import Effects, new_event_id
from iot_sync.app.loss import declare_loss
from iot_sync.app.ports import AuditEntry
from iot_sync.app.signals import FieldMessage, FieldMessageKind, Signal
from iot_sync.domain.asset import Asset, AssetMove, AssetState
from iot_sync.domain.checks import PERSONNEL_CHECKS, PersonnelContext, missing_field
from iot_sync.domain.evidence import manual_report
from iot_sync.domain.personnel import PersonnelAction
from iot_sync.domain.rejection import Rejection, first_rejection
from iot_sync.domain.service import ServiceInput, ServiceState


class ScannerInput:
    """Handles `emit/abs/personnel/{person_id}/{action}` (the seed's device-scanner input)."""

    def prefetch(self, fx: Effects, signals: Sequence[Signal]) -> None:
        """Read at once what these reports will look up; the unit of work keeps it."""
        uow = fx.uow
        uow.personnel.get_many(list(dict.fromkeys(s.source_id for s in signals)))
        asset_ids = [str(v) for s in signals if (v := s.data.get("asset_id")) is not None]
        assets = uow.assets.get_many(asset_ids)
        uow.stations.get_many(
            list({a.station_id for a in assets.values() if a.station_id is not None})
        )
        uow.services.for_customers(list({a.holder for a in assets.values() if a.holder}))

    def handle(self, fx: Effects, signal: Signal) -> Rejection | None:
        try:
            action = PersonnelAction(signal.verb)
        except ValueError:
            return self._refuse(
                fx, signal, Rejection("unknown_action", f"no action {signal.verb!r}"), None
            )
        shape = missing_field(signal.data, ["asset_id"])
        if shape is not None:
            fx.error(
                "personnel",
                signal.source_id,
                {"reason": shape.code, "detail": shape.reason, "message_id": signal.message_id},
            )
            return self._refuse(fx, signal, shape, None)
        asset_id = str(signal.data["asset_id"])
        uow = fx.uow
        asset = uow.assets.get_many([asset_id]).get(asset_id)
        station = None
        if asset is not None and asset.station_id is not None:
            station = uow.stations.get_many([asset.station_id]).get(asset.station_id)
        context = PersonnelContext(
            person_id=signal.source_id,
            action=action,
            asset_id=asset_id,
            person=uow.personnel.get(signal.source_id),
            asset=asset,
            station=station,
        )
        rejection = first_rejection(PERSONNEL_CHECKS, context)
        if rejection is not None:
            return self._refuse(fx, signal, rejection, asset_id)
        assert asset is not None
        note = signal.data.get("note") if isinstance(signal.data.get("note"), str) else None
        if action is PersonnelAction.ASSET_SCAN:
            self._echo(
                fx,
                signal,
                {"result": "accepted", "asset_id": asset_id, "context": self._context(fx, asset)},
            )
            self._audit(fx, signal, asset_id, "accepted", None)
            return None
        outcome = self._apply(fx, signal, action, asset, note)
        if isinstance(outcome, Rejection):
            return self._refuse(fx, signal, outcome, asset_id)
        self._echo(
            fx, signal, {"result": "accepted", "asset_id": asset_id, "state": outcome.state.value}
        )
        self._audit(fx, signal, asset_id, "accepted", None, note=note)
        return None

    def _apply(
        self, fx: Effects, signal: Signal, action: PersonnelAction, asset: Asset, note: str | None
    ) -> Asset | Rejection:
        person_id, cause = signal.source_id, signal.message_id
        holder = asset.holder
        service = fx.uow.services.for_customers([holder]).get(holder) if holder else None
        if action is PersonnelAction.REPORT_LOST:
            return declare_loss(
                fx, asset, manual_report(person_id, note), cause=cause, actor=person_id
            )
        if action is PersonnelAction.REPORT_DAMAGE:
            moved = fx.move_asset(
                asset,
                asset.report_damage(at=fx.now),
                AssetMove.REPORT_DAMAGE,
                cause=cause,
                reason=note or "damage reported",
                actor=person_id,
            )
            if (
                not isinstance(moved, Rejection)
                and service is not None
                and asset.state is AssetState.ISSUED
            ):
                fx.notify(service.customer_id, "battery_damaged", battery_id=asset.asset_id)
            return moved
        # Recovered: staff hold the battery now; the customer's service learns it was found.
        moved = fx.move_asset(
            asset,
            asset.recover(by=person_id, at=fx.now),
            AssetMove.RECOVER,
            cause=cause,
            reason=note or "recovered",
            actor=person_id,
        )
        if (
            not isinstance(moved, Rejection)
            and service is not None
            and service.state is ServiceState.BATTERY_LOST
        ):
            found = fx.apply_to_service(
                service, ServiceInput.BATTERY_FOUND, cause=cause, battery_id=None, actor=person_id
            )
            if not isinstance(found, Rejection):
                fx.notify(
                    service.customer_id,
                    "battery_found",
                    battery_id=asset.asset_id,
                    options=["continue", "cancel"],
                )
        return moved

    def _context(self, fx: Effects, asset: Asset) -> dict[str, Any]:
        context: dict[str, Any] = {
            "asset_id": asset.asset_id,
            "state": asset.state.value,
            "battery_class": asset.battery_class,
            "station_id": asset.station_id,
            "slot": asset.slot,
            "holder": asset.holder,
            "charge_pct": asset.charge_pct,
            "region": asset.region,
            "last_seen_at": asset.last_seen_at.isoformat() if asset.last_seen_at else None,
            "last_position": None,
            "service": None,
        }
        if asset.position is not None:
            context["last_position"] = {
                "latitude": asset.position.latitude,
                "longitude": asset.position.longitude,
                "at": asset.position.at.isoformat(),
            }
        if asset.holder:
            service = fx.uow.services.for_customers([asset.holder]).get(asset.holder)
            if service is not None:
                context["service"] = {
                    "service_id": service.service_id,
                    "customer_id": service.customer_id,
                    "state": service.state.value,
                }
        return context

    def _refuse(
        self, fx: Effects, signal: Signal, rejection: Rejection, asset_id: str | None
    ) -> Rejection:
        self._echo(
            fx,
            signal,
            {
                "result": "rejected",
                "asset_id": asset_id,
                "reason": rejection.code,
                "detail": rejection.reason,
            },
        )
        self._audit(fx, signal, asset_id, "rejected", rejection)
        return rejection

    def _echo(self, fx: Effects, signal: Signal, data: dict[str, Any]) -> None:
        fx.field(
            FieldMessage(
                kind=FieldMessageKind.PERSONNEL_ECHO,
                subject=signal.source_id,
                name=signal.verb,
                data={"action": signal.verb, **data},
                message_id=new_event_id(),
                correlation_id=signal.correlation_id,
                reply_to=signal.reply_to,
                traceparent=signal.traceparent,
            )
        )

    def _audit(
        self,
        fx: Effects,
        signal: Signal,
        asset_id: str | None,
        result: str,
        rejection: Rejection | None,
        *,
        note: str | None = None,
    ) -> None:
        fx.audit(
            AuditEntry(
                person_id=signal.source_id,
                action=signal.verb,
                asset_id=asset_id,
                result=result,
                at=fx.now,
                message_id=signal.message_id,
                reason=rejection.code if rejection else None,
                detail={"note": note} if note else {},
            )
        )
