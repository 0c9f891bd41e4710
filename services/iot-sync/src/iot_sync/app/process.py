"""The main entry (the seed's "process an IoT signal"): one batch, one unit of work.

The MQTT transport (and `POST /v1/signals`) hands over a batch of decoded messages and
acknowledges them only after `handle` returns, that is after the commit. Per batch:

1. malformed messages are logged and answered on the error topic;
2. duplicates (a message id already taken in, or a `seq` already applied) change nothing;
3. each sender's messages are put in `seq` order; station and personnel messages after a
   gap are held back (durably) until the gap fills or `hold_for` passes (see ordering.py);
4. station calls and personnel actions apply one by one; telemetry is compressed into one
   batched upsert;
5. every message lands in the signal log with its result, and everything to send goes to
   the outbox, all in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from iot_sync.app.effects import Effects
from iot_sync.app.personnel import ScannerInput
from iot_sync.app.ports import (
    Clock,
    CustomerDirectory,
    HeldSignal,
    SignalRecord,
    SignalResult,
    UnitOfWork,
    UnitOfWorkFactory,
)
from iot_sync.app.signals import MalformedSignal, Signal, SourceKind
from iot_sync.app.station import StationCalls
from iot_sync.app.tracking import TrackingSignals
from iot_sync.domain.evidence import AllowedArea
from iot_sync.domain.ordering import Arrival, plan_sender
from iot_sync.domain.rejection import Rejection

TRACKING_KINDS = frozenset({SourceKind.BMS, SourceKind.GPS, SourceKind.SSC})
HOLDING_KINDS = frozenset({SourceKind.STATION, SourceKind.PERSONNEL})


@dataclass(frozen=True, slots=True)
class SignalOutcome:
    message_id: str | None
    result: SignalResult
    reason_code: str | None = None
    reason: str | None = None


@dataclass(slots=True)
class BatchReport:
    outcomes: list[SignalOutcome] = field(default_factory=list)
    transitions: int = 0

    def count(self, result: SignalResult) -> int:
        return sum(1 for o in self.outcomes if o.result is result)


def sender_key(kind: SourceKind | str, source_id: str) -> str:
    return f"{kind}/{source_id}"


@dataclass(frozen=True, slots=True)
class OrderingPolicy:
    hold_for: timedelta  # how long a station/personnel message after a gap waits


class ProcessSignalBatch:
    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        customers: CustomerDirectory,
        ordering: OrderingPolicy,
        reservation_ttl: timedelta,
        allowed_areas: Mapping[str, AllowedArea] | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._clock = clock
        self._ordering = ordering
        self._stations = StationCalls(customers=customers, reservation_ttl=reservation_ttl)
        self._scanner = ScannerInput()
        self._tracking = TrackingSignals(allowed_areas=allowed_areas or {})

    def handle(self, batch: Sequence[Signal | MalformedSignal]) -> BatchReport:
        """Apply a batch in one transaction; returns each message's outcome, in batch order."""
        now = self._clock.now()
        with self._uow_factory() as uow:
            fx = Effects(uow, now)
            report = self._process(uow, fx, now, batch, extra_senders=())
            fx.flush()
            uow.commit()
        report.transitions = fx.transitions
        return report

    def release_overdue(self, limit: int = 100) -> BatchReport:
        """The periodic job: apply held messages whose gap stayed open longer than `hold_for`."""
        now = self._clock.now()
        with self._uow_factory() as uow:
            senders = uow.senders.senders_holding_since(now - self._ordering.hold_for, limit)
            if not senders:
                return BatchReport()
            fx = Effects(uow, now)
            report = self._process(uow, fx, now, (), extra_senders=senders)
            fx.flush()
            uow.commit()
        report.transitions = fx.transitions
        return report

    # ---- the steps ----------------------------------------------------------------------

    def _process(
        self,
        uow: UnitOfWork,
        fx: Effects,
        now: datetime,
        batch: Sequence[Signal | MalformedSignal],
        *,
        extra_senders: Sequence[str],
    ) -> BatchReport:
        log: dict[int, SignalRecord] = {}  # batch position -> its log line
        signals: list[tuple[int, Signal]] = []
        for index, item in enumerate(batch):
            if isinstance(item, MalformedSignal):
                log[index] = self._malformed(fx, item, now)
            else:
                signals.append((index, item))
        fresh = self._drop_duplicate_ids(uow, signals, log, now)
        to_apply, released, settled = self._order(uow, fresh, extra_senders, log, now)
        position = {id(s): i for i, s in fresh}
        results = self._apply(fx, to_apply)
        for signal in to_apply:
            rejection = results.get(signal.message_id)
            record = _record(
                signal,
                SignalResult.REJECTED if rejection else SignalResult.ACCEPTED,
                now,
                rejection,
            )
            if signal.message_id in released:
                settled.append(record)
            if id(signal) in position:
                log[position[id(signal)]] = record
        uow.signal_log.add([log[i] for i in sorted(log)])
        if settled:
            uow.signal_log.settle_held(settled)
        return BatchReport(
            outcomes=[
                SignalOutcome(r.message_id, r.result, r.reason_code, r.reason)
                for _, r in sorted(log.items())
            ]
        )

    def _malformed(self, fx: Effects, item: MalformedSignal, now: datetime) -> SignalRecord:
        fx.error(
            _source_of_topic(item.topic),
            item.source_id or "unknown",
            {
                "reason": item.reason,
                "detail": item.detail,
                "topic": item.topic,
                "message_id": item.message_id,
                "payload_excerpt": item.payload_excerpt[:200],
            },
        )
        return SignalRecord(
            topic=item.topic,
            result=SignalResult.MALFORMED,
            received_at=item.received_at,
            processed_at=now,
            message_id=item.message_id,
            source_id=item.source_id,
            reason_code=item.reason,
            reason=item.detail,
        )

    def _drop_duplicate_ids(
        self,
        uow: UnitOfWork,
        signals: list[tuple[int, Signal]],
        log: dict[int, SignalRecord],
        now: datetime,
    ) -> list[tuple[int, Signal]]:
        # A message with a seq is serialized by its sender's cursor (a second copy is then
        # stale); one without (personnel actions) by a claim on its id.
        unordered = [s.message_id for _, s in signals if s.seq is None]
        if unordered:
            uow.signal_log.claim_message_ids(unordered)
        known = uow.signal_log.known_message_ids(list({s.message_id for _, s in signals}))
        seen: set[str] = set()
        fresh: list[tuple[int, Signal]] = []
        for index, signal in signals:
            if signal.message_id in known or signal.message_id in seen:
                log[index] = _record(
                    signal,
                    SignalResult.DUPLICATE,
                    now,
                    Rejection("duplicate_id", "message id already taken in"),
                )
                continue
            seen.add(signal.message_id)
            fresh.append((index, signal))
        return fresh

    def _order(
        self,
        uow: UnitOfWork,
        fresh: list[tuple[int, Signal]],
        extra_senders: Sequence[str],
        log: dict[int, SignalRecord],
        now: datetime,
    ) -> tuple[list[Signal], set[str], list[SignalRecord]]:
        """What applies now, in order; which of it was held before; their settled log lines."""
        to_apply: list[Signal] = []
        by_sender: dict[str, list[tuple[int, Signal]]] = {}
        for index, signal in fresh:
            if signal.seq is None:
                to_apply.append(signal)
            else:
                by_sender.setdefault(sender_key(signal.source_kind, signal.source_id), []).append(
                    (index, signal)
                )
        senders = list(dict.fromkeys([*by_sender, *extra_senders]))
        if not senders:
            return to_apply, set(), []
        last = uow.senders.last_seqs(senders)
        held = uow.senders.held([s for s in senders if _holds(s)])
        released: set[str] = set()
        settled: list[SignalRecord] = []
        new_last: dict[str, int] = {}
        for sender in senders:
            arriving = by_sender.get(sender, [])
            index_of = {id(s): i for i, s in arriving}
            before = {h.signal.message_id for h in held.get(sender, [])}
            arrivals = [Arrival(s.seq or 0, s.received_at, s) for _, s in arriving]
            arrivals += [
                Arrival(h.signal.seq or 0, h.held_since, h.signal) for h in held.get(sender, [])
            ]
            hold_for = self._ordering.hold_for if _holds(sender) else timedelta(0)
            plan = plan_sender(last.get(sender), arrivals, now=now, hold_for=hold_for)
            for signal in plan.stale:
                rejection = Rejection(
                    "stale_seq", f"seq {signal.seq} of {sender} is already applied"
                )
                record = _record(signal, SignalResult.DUPLICATE, now, rejection)
                if signal.message_id in before:
                    released.add(signal.message_id)
                    settled.append(record)
                else:
                    log[index_of[id(signal)]] = record
            newly_held = [s for s in plan.hold if s.message_id not in before]
            if newly_held:
                uow.senders.hold(sender, [HeldSignal(s, s.received_at) for s in newly_held])
                for signal in newly_held:
                    gap = Rejection("held_for_gap", f"waiting for earlier seq of {sender}")
                    log[index_of[id(signal)]] = _record(signal, SignalResult.HELD, now, gap)
            for signal in plan.apply:
                to_apply.append(signal)
                if signal.message_id in before:
                    released.add(signal.message_id)
            if plan.last_seq is not None and plan.last_seq != last.get(sender):
                new_last[sender] = plan.last_seq
        if released:
            uow.senders.release(sorted(released))
        if new_last:
            uow.senders.save_last_seqs(new_last)
        # Stale held lines are settled here; applied ones once their result is known.
        return to_apply, released, settled

    def _apply(self, fx: Effects, to_apply: Sequence[Signal]) -> dict[str, Rejection | None]:
        results: dict[str, Rejection | None] = {}
        tracking = [s for s in to_apply if s.source_kind in TRACKING_KINDS]
        # What the station calls and reports look up, read once for the batch.
        calls = [s for s in to_apply if s.source_kind is SourceKind.STATION]
        customers = self._stations.prefetch(fx, calls) if calls else {}
        reports = [s for s in to_apply if s.source_kind is SourceKind.PERSONNEL]
        if reports:
            self._scanner.prefetch(fx, reports)
        for signal in to_apply:
            if signal.source_kind in TRACKING_KINDS:
                continue
            fx.traceparent = signal.traceparent
            if signal.source_kind is SourceKind.STATION:
                results[signal.message_id] = self._stations.handle(fx, signal, customers)
            else:
                results[signal.message_id] = self._scanner.handle(fx, signal)
        fx.traceparent = None
        if tracking:
            results.update(self._tracking.apply(fx, tracking))
        return results


def _holds(sender: str) -> bool:
    return sender.split("/", 1)[0] in HOLDING_KINDS


def _record(
    signal: Signal, result: SignalResult, now: datetime, rejection: Rejection | None = None
) -> SignalRecord:
    return SignalRecord(
        topic=signal.topic,
        result=result,
        received_at=signal.received_at,
        processed_at=now,
        message_id=signal.message_id,
        source_kind=signal.source_kind.value,
        source_id=signal.source_id,
        verb=signal.verb,
        seq=signal.seq,
        reason_code=rejection.code if rejection else None,
        reason=rejection.reason if rejection else None,
        correlation_id=signal.correlation_id,
    )


def _source_of_topic(topic: str) -> str:
    parts = topic.split("/")
    for kind in SourceKind:
        if kind.value in parts[:4]:
            return kind.value
    return "unknown"
