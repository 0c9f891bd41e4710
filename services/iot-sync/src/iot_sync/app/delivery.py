"""The outbox relay: delivers, after commit, what the transactions wrote.

Each event is claimed under a lease, handed to its collaborator, and marked delivered.
Receivers deduplicate on the event id (MQTT `message_id`, ARM `movement_id`, the webhook's
idempotency key, the settlement id), so a crash between handing over and marking gives a
repeat they drop: each event takes effect once. ARM movements of one battery go in order:
when one fails, the later ones of the same battery wait for the next round.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from iot_sync.app.arm import ArmGateway, ArmRejected, ArmUnavailable, AssetMovement
from iot_sync.app.effects import field_message_from_payload
from iot_sync.app.ports import (
    Clock,
    DeliveryError,
    FieldPublisher,
    Notification,
    Notifier,
    OutboxKind,
    PendingEvent,
    SettlementRequest,
    Settlements,
    TraceContext,
    UnitOfWorkFactory,
)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    given_up: int = 0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    lease: timedelta = timedelta(seconds=30)
    base_delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(minutes=5)
    max_attempts: int = 20

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        if attempts + 1 >= self.max_attempts:
            return None
        delay = self.base_delay * float(2.0**attempts)
        return now + min(delay, self.max_delay)


class OutboxDelivery:
    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        publisher: FieldPublisher,
        arm: ArmGateway,
        notifier: Notifier,
        settlements: Settlements,
        retry: RetryPolicy | None = None,
        trace: TraceContext | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._clock = clock
        self._publisher = publisher
        self._arm = arm
        self._notifier = notifier
        self._settlements = settlements
        self._retry = retry or RetryPolicy()
        self._trace = trace

    def deliver_pending(self, limit: int = 500) -> DeliveryReport:
        now = self._clock.now()
        with self._uow_factory() as uow:
            events = uow.outbox.claim(now=now, lease_until=now + self._retry.lease, limit=limit)
            uow.commit()
        if not events:
            return DeliveryReport()
        delivered: list[str] = []
        failed: list[tuple[PendingEvent, str, bool]] = []  # event, error, permanent
        self._field(events, delivered, failed)
        blocked: set[str] = set()
        for event in events:
            if event.kind is OutboxKind.FIELD:
                continue
            if event.key is not None and event.key in blocked:
                failed.append((event, "waiting for an earlier movement of the same battery", False))
                continue
            with self._trace.resume(event.traceparent) if self._trace else nullcontext():
                outcome = self._one(event)
            if outcome is None:
                delivered.append(event.event_id)
                continue
            failed.append((event, *outcome))
            if event.key is not None:
                blocked.add(event.key)
        now = self._clock.now()
        retried = given_up = 0
        with self._uow_factory() as uow:
            if delivered:
                uow.outbox.mark_delivered(delivered, at=now)
            for event, error, permanent in failed:
                retry_at = None if permanent else self._retry.next_attempt(event.attempts, now)
                uow.outbox.mark_failed(event.event_id, error=error, retry_at=retry_at, at=now)
                given_up += retry_at is None
                retried += retry_at is not None
            uow.commit()
        return DeliveryReport(delivered=len(delivered), retried=retried, given_up=given_up)

    def _field(
        self,
        events: Sequence[PendingEvent],
        delivered: list[str],
        failed: list[tuple[PendingEvent, str, bool]],
    ) -> None:
        batch = [e for e in events if e.kind is OutboxKind.FIELD]
        if not batch:
            return
        try:
            self._publisher.publish([field_message_from_payload(e.payload) for e in batch])
        except Exception as exc:  # the transport's failure is a retry, whatever its type
            failed.extend((e, f"publish failed: {exc}", False) for e in batch)
            return
        delivered.extend(e.event_id for e in batch)

    def _one(self, event: PendingEvent) -> tuple[str, bool] | None:
        """None when delivered, else (error, permanent)."""
        p = event.payload
        try:
            if event.kind is OutboxKind.ARM_MOVEMENT:
                self._arm.apply_movement(
                    AssetMovement(
                        movement_id=event.event_id,
                        asset_id=p["asset_id"],
                        state=p["state"],
                        occurred_at=datetime.fromisoformat(p["occurred_at"]),
                        station_id=p.get("station_id"),
                        slot=p.get("slot"),
                        holder=p.get("holder"),
                        reason=p.get("reason"),
                    )
                )
            elif event.kind is OutboxKind.WEBHOOK:
                self._notifier.notify(
                    Notification(
                        idempotency_key=event.event_id,
                        customer_id=p["customer_id"],
                        event=p["event"],
                        data=p["data"],
                        occurred_at=datetime.fromisoformat(p["at"]),
                    )
                )
            elif event.kind is OutboxKind.SETTLEMENT:
                self._settlements.start_loss_charge(
                    SettlementRequest(
                        settlement_id=event.event_id,
                        service_id=p["service_id"],
                        customer_id=p["customer_id"],
                        battery_id=p["battery_id"],
                        battery_class=p["battery_class"],
                        evidence=p["evidence"],
                        detail=p["detail"],
                        requested_at=datetime.fromisoformat(p["requested_at"]),
                    )
                )
            else:
                return f"no collaborator for {event.kind}", True
        except ArmRejected as exc:
            return f"ARM refused: {exc}", True
        except ArmUnavailable as exc:
            return f"ARM unavailable: {exc}", False
        except DeliveryError as exc:
            return str(exc), exc.permanent
        return None
