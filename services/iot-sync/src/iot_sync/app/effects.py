"""What a unit of work's changes cause: history, audit lines, outbox events, customer notices.

One `Effects` per transaction. Use cases change services and assets through it, so every
change leaves its history line and every message leaves through the outbox, written in the
same transaction as the state that explains it (`flush` before commit).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from iot_sync.app.ports import (
    AssetHistoryEntry,
    AuditEntry,
    OutboxEvent,
    OutboxKind,
    ServiceHistoryEntry,
    UnitOfWork,
)
from iot_sync.app.signals import FieldMessage, FieldMessageKind
from iot_sync.domain.asset import Asset, AssetMove
from iot_sync.domain.evidence import LossEvidence
from iot_sync.domain.rejection import Rejection
from iot_sync.domain.service import Service, ServiceInput

# What a customer is told, with guidance they can act on.
NOTICES: dict[str, str] = {
    "battery_issued": "Battery {battery_id} is yours. Ride safe.",
    "battery_returned": "Battery {battery_id} is back at the station. Thank you.",
    "swap_refused": "No battery this time: {reason}. {guidance}",
    "battery_damaged": "Battery {battery_id} was reported damaged. Swap it at any station.",
    "battery_lost": "Battery {battery_id} is recorded as lost ({detail}). A settlement has "
    "started; if you still have it, bring it to any station.",
    "battery_found": "Battery {battery_id} was found. You may continue your service.",
    "service_state": "Your service is now {state}.",
}

GUIDANCE: dict[str, str] = {
    "unknown_customer": "Please register in the app first.",
    "no_service": "Please subscribe to a swap plan in the app.",
    "service_suspended": "Please contact support to reactivate your service.",
    "service_cancelled": "Please subscribe again in the app.",
    "deposit_not_confirmed": "Please pay the deposit in the app.",
    "bad_standing": "Please settle your account in the app.",
    "swap_quota_exhausted": "Upgrade your plan or wait for the next period.",
    "battery_class_mismatch": "Please use a station that stocks your battery class.",
    "no_charged_battery": "Please try a nearby station; this one is recharging.",
    "battery_not_returned": "Please return the battery you hold.",
}


def new_event_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Effects:
    uow: UnitOfWork
    now: datetime
    traceparent: str | None = None
    events: list[OutboxEvent] = field(default_factory=list)
    service_history: list[ServiceHistoryEntry] = field(default_factory=list)
    asset_history: list[AssetHistoryEntry] = field(default_factory=list)
    audit_entries: list[AuditEntry] = field(default_factory=list)
    transitions: int = 0

    # ---- services -----------------------------------------------------------------------

    def apply_to_service(
        self,
        service: Service,
        event: ServiceInput,
        *,
        cause: str,
        battery_id: str | None = None,
        actor: str | None = None,
    ) -> Service | Rejection:
        after = service.apply(event, at=self.now, battery_id=battery_id)
        if isinstance(after, Rejection):
            return after
        self.uow.services.save(after)
        self.transitions += 1
        self.service_history.append(
            ServiceHistoryEntry(
                service_id=service.service_id,
                at=self.now,
                input=event.value,
                from_state=service.state.value,
                to_state=after.state.value,
                battery_id=after.battery_id or battery_id,
                cause=cause,
                actor=actor,
            )
        )
        self.field(
            FieldMessage(
                kind=FieldMessageKind.SERVICE_STATE,
                subject=after.service_id,
                name="",
                data={
                    "service_id": after.service_id,
                    "customer_id": after.customer_id,
                    "state": after.state.value,
                    "battery_id": after.battery_id,
                    "input": event.value,
                    "at": self.now.isoformat(),
                },
                message_id=new_event_id(),
                traceparent=self.traceparent,
            )
        )
        return after

    # ---- assets -------------------------------------------------------------------------

    def move_asset(
        self,
        before: Asset,
        after: Asset | Rejection,
        move: AssetMove,
        *,
        cause: str,
        reason: str | None = None,
        actor: str | None = None,
    ) -> Asset | Rejection:
        """Store the moved asset, its history line, and the matching ARM movement."""
        if isinstance(after, Rejection):
            return after
        self.uow.assets.save(after)
        self.transitions += 1
        self.asset_history.append(
            AssetHistoryEntry(
                asset_id=after.asset_id,
                at=self.now,
                move=move.value,
                from_state=before.state.value,
                to_state=after.state.value,
                station_id=after.station_id,
                holder=after.holder,
                cause=cause,
                actor=actor,
            )
        )
        event_id = new_event_id()
        payload: dict[str, Any] = {
            "asset_id": after.asset_id,
            "state": after.state.value,
            "occurred_at": self.now.isoformat(),
            "station_id": after.station_id,
            "slot": after.slot,
            "holder": after.holder,
            "reason": reason or move.value.lower(),
        }
        self._add(OutboxKind.ARM_MOVEMENT, payload, key=after.asset_id, event_id=event_id)
        return after

    # ---- messages -----------------------------------------------------------------------

    def field(self, message: FieldMessage) -> None:
        self._add(OutboxKind.FIELD, field_message_to_payload(message), event_id=message.message_id)

    def notify(self, customer_id: str, event: str, **values: Any) -> None:
        """Tell the customer on the MQTT notify topic and through the webhook notifier."""
        template = NOTICES.get(event, "{event}")
        text = template.format_map(_Blank(values, event=event))
        data = {"event": event, "message": text, "at": self.now.isoformat(), **values}
        self.field(
            FieldMessage(
                kind=FieldMessageKind.CUSTOMER_NOTICE,
                subject=customer_id,
                name=event,
                data=data,
                message_id=new_event_id(),
                traceparent=self.traceparent,
            )
        )
        self._add(
            OutboxKind.WEBHOOK,
            {"customer_id": customer_id, "event": event, "data": data, "at": self.now.isoformat()},
        )

    def error(self, source: str, sender_id: str, data: Mapping[str, Any]) -> None:
        self.field(
            FieldMessage(
                kind=FieldMessageKind.ERROR,
                subject=source,
                name=sender_id,
                data=dict(data),
                message_id=new_event_id(),
                traceparent=self.traceparent,
            )
        )

    def start_settlement(self, service: Service, asset: Asset, evidence: LossEvidence) -> None:
        self._add(
            OutboxKind.SETTLEMENT,
            {
                "service_id": service.service_id,
                "customer_id": service.customer_id,
                "battery_id": asset.asset_id,
                "battery_class": asset.battery_class,
                "evidence": evidence.kind.value,
                "detail": evidence.detail,
                "requested_at": self.now.isoformat(),
            },
        )

    def flush(self) -> None:
        """Write what was collected; call once, just before commit."""
        if self.service_history:
            self.uow.services.add_history(self.service_history)
        if self.asset_history:
            self.uow.assets.add_history(self.asset_history)
        if self.events:
            self.uow.outbox.add(self.events)
        if self.audit_entries:
            self.uow.audit.record(self.audit_entries)
        self.service_history, self.asset_history, self.events = [], [], []
        self.audit_entries = []

    def audit(self, entry: AuditEntry) -> None:
        """Keep a personnel action for the audit log, written with the rest at `flush`."""
        self.audit_entries.append(entry)

    def _add(
        self,
        kind: OutboxKind,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
        event_id: str | None = None,
    ) -> None:
        self.events.append(
            OutboxEvent(
                event_id=event_id or new_event_id(),
                kind=kind,
                payload=payload,
                created_at=self.now,
                key=key,
                traceparent=self.traceparent,
            )
        )


class _Blank(dict[str, Any]):
    """Template values; a placeholder nobody filled reads as empty, never as a crash."""

    def __init__(self, values: Mapping[str, Any], **more: Any) -> None:
        super().__init__(values, **more)

    def __missing__(self, key: str) -> str:
        return ""


def field_message_to_payload(message: FieldMessage) -> dict[str, Any]:
    return {
        "kind": message.kind.value,
        "subject": message.subject,
        "name": message.name,
        "data": dict(message.data),
        "message_id": message.message_id,
        "correlation_id": message.correlation_id,
        "reply_to": message.reply_to,
        "traceparent": message.traceparent,
        "extra": dict(message.extra),
    }


def field_message_from_payload(payload: Mapping[str, Any]) -> FieldMessage:
    return FieldMessage(
        kind=FieldMessageKind(payload["kind"]),
        subject=payload["subject"],
        name=payload["name"],
        data=payload["data"],
        message_id=payload["message_id"],
        correlation_id=payload.get("correlation_id"),
        reply_to=payload.get("reply_to"),
        traceparent=payload.get("traceparent"),
        extra=payload.get("extra") or {},
    )
