"""Carry a bulk change's carrier requests through to a settled outcome for every device line.

A carrier request (batch) goes PLANNED -> SENDING -> SUBMITTED -> DONE. SENDING is committed
before the call, so a redelivered message that finds a batch in SENDING knows the carrier may
already have it: it reconciles from the carrier's view of the devices and re-sends only what
the carrier has not got. Lines are settled by callbacks, by polling the request status when a
callback never comes, or from the device state during reconciliation.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from device_change.app.ports import (
    AuditEntry,
    CarrierAccount,
    CarrierDeviceOutcome,
    CarrierDeviceState,
    CarrierDirectory,
    CarrierOutcomeUnknown,
    CarrierRejected,
    CarrierThrottled,
    CarrierUnavailable,
    Clock,
    OutgoingMessage,
    TraceContext,
    UnitOfWork,
    UnitOfWorkFactory,
)
from device_change.app.submit import SEND_BATCH
from device_change.domain.bulk_change import (
    BatchStatus,
    BulkChange,
    CarrierBatch,
    DeviceLine,
    LineStatus,
    bulk_status_from_counts,
    line_may_move,
)
from device_change.domain.changes import CarrierAction
from device_change.domain.device import DeviceStatus

POLL_BATCH = "poll_carrier_batch"
# A device the carrier still works on refuses further changes with this fault (suffix match).
PENDING_FAULT_SUFFIXES = ("DeviceChangePending", "PendingRequest", "RequestPending")


class DevicesInFlight:
    """How many device lines this process may hold in carrier requests at once.

    A sender (or a poller) loads every line of its request, renders them into the carrier
    call and records the answer; with many worker threads and large requests that is most of the
    process's memory. Senders wait their turn here instead, so memory follows this limit,
    not the size of the bulk change. A request larger than the whole limit goes alone.
    `limit=0` means no limit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held = 0
        self._turn = threading.Condition()

    @contextmanager
    def hold(self, devices: int) -> Iterator[None]:
        if self.limit <= 0:
            yield
            return
        need = min(max(devices, 1), self.limit)
        with self._turn:
            self._turn.wait_for(lambda: self._held + need <= self.limit)
            self._held += need
        try:
            yield
        finally:
            with self._turn:
                self._held -= need
                self._turn.notify_all()

    @property
    def held(self) -> int:
        return self._held


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_send_attempts: int = 8
    base_delay_s: float = 0.5
    max_delay_s: float = 60.0
    reconcile_delay_s: float = 5.0  # wait before looking at a request whose answer was lost
    first_poll_after_s: float = 60.0  # when to ask for the status of unanswered devices
    max_poll_delay_s: float = 600.0
    give_up_after_s: float = 26 * 3600.0  # activations may take up to 24 h at the carrier

    def backoff_s(self, attempt: int, hint_s: float | None = None) -> float:
        """Exponential backoff with full jitter; a Retry-After hint is a floor."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** max(attempt - 1, 0))
        delay = random.uniform(ceiling / 2, ceiling)
        return max(delay, hint_s or 0.0)


@dataclass(frozen=True, slots=True)
class SettleReport:
    settled: int = 0
    ignored: int = 0
    still_pending: int = 0


def _is_pending_fault(code: str | None) -> bool:
    return bool(code) and any(str(code).endswith(s) for s in PENDING_FAULT_SUFFIXES)


def _now(clock: Clock) -> datetime:
    return clock.now().astimezone(UTC)


class DeviceLineSettler:
    """Settles lines from what the carrier says; shared by callbacks, polls and reconciliation."""

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock

    def settle(
        self, uow: UnitOfWork, outcomes: Sequence[CarrierDeviceOutcome], *, source: str
    ) -> SettleReport:
        repo = uow.bulk_changes
        by_key = repo.open_lines_for_outcomes([(o.request_id, o.iccid) for o in outcomes])
        unmatched = [o.iccid for o in outcomes if (o.request_id, o.iccid) not in by_key]
        by_iccid = repo.open_lines_by_iccid(unmatched) if unmatched else {}
        settled = ignored = pending = 0
        touched: list[DeviceLine] = []
        succeeded: list[tuple[DeviceLine, Mapping[str, Any]]] = []
        for outcome in outcomes:
            line = by_key.get((outcome.request_id, outcome.iccid)) or by_iccid.get(outcome.iccid)
            if line is None:
                ignored += 1  # duplicate or late: the line already has its outcome
                continue
            if outcome.succeeded is None:
                pending += 1
                continue
            if (
                not outcome.succeeded
                and _is_pending_fault(outcome.fault_code)
                and line.carrier_request_id != outcome.request_id
            ):
                ignored += 1  # a re-send bounced off the first request still at work
                continue
            if outcome.succeeded:
                new_status = LineStatus.SUCCEEDED
                reason = None
            else:
                new_status = LineStatus.FAILED
                reason = describe_fault(outcome.fault_code, outcome.fault_text)
            if not line_may_move(line.status, new_status):
                ignored += 1
                continue
            line.status = new_status
            line.reason = reason
            if line.carrier_request_id is None:
                line.carrier_request_id = outcome.request_id
            touched.append(line)
            settled += 1
            if outcome.succeeded:
                succeeded.append((line, outcome.reported))
        repo.save_lines(touched)
        audit = self._apply_to_devices(uow, succeeded, source)
        if audit:
            uow.audit.record(audit)
        self.close_finished(uow, {ln.batch_id for ln in touched if ln.batch_id})
        return SettleReport(settled=settled, ignored=ignored, still_pending=pending)

    def _apply_to_devices(
        self,
        uow: UnitOfWork,
        succeeded: Sequence[tuple[DeviceLine, Mapping[str, Any]]],
        source: str,
    ) -> list[AuditEntry]:
        """Write the lines' changes to the inventory, tenant by tenant, and audit each."""
        changes_of: dict[str, dict[str, dict[str, Any]]] = {}
        for line, reported in succeeded:
            changes: dict[str, Any] = dict(line.after)
            if "status" in changes:
                changes["status"] = DeviceStatus(changes["status"])
            if reported.get("msisdn") and line.action is CarrierAction.ACTIVATE:
                changes["msisdn"] = reported["msisdn"]
            changes_of.setdefault(line.tenant, {})[line.iccid] = changes
        befores = {
            tenant: uow.devices.update_many(tenant, changes)
            for tenant, changes in changes_of.items()
        }
        bulks: dict[str, BulkChange | None] = {}
        at = _now(self._clock)
        audit: list[AuditEntry] = []
        for line, _ in succeeded:
            before = befores[line.tenant].get(line.iccid)
            if before is None:
                continue
            if line.bulk_change_id not in bulks:
                bulks[line.bulk_change_id] = uow.bulk_changes.get(None, line.bulk_change_id)
            bulk = bulks[line.bulk_change_id]
            after = before.with_changes(**changes_of[line.tenant][line.iccid])
            audit.append(
                AuditEntry(
                    tenant=line.tenant,
                    iccid=after.iccid,
                    action=(line.action.value if line.action else "change"),
                    before=before.snapshot(),
                    after=after.snapshot(),
                    actor=bulk.submitted_by if bulk else "system",
                    at=at,
                    bulk_change_id=line.bulk_change_id,
                    line_id=line.id,
                    carrier_request_id=line.carrier_request_id or source,
                )
            )
        return audit

    def close_finished(self, uow: UnitOfWork, batch_ids: set[str]) -> None:
        """Mark batches with no open line DONE, and finish bulk changes with no open batch."""
        repo = uow.bulk_changes
        bulks: set[str] = set()
        for batch_id in batch_ids:
            if repo.open_line_count(batch_id):
                continue
            batch = repo.get_batch(batch_id, lock=True)
            if batch is None or batch.status in (BatchStatus.DONE, BatchStatus.CANCELLED):
                continue
            batch.status = BatchStatus.DONE
            repo.save_batch(batch)
            bulks.add(batch.bulk_change_id)
        for bulk_id in bulks:
            self.finish_if_done(uow, bulk_id)

    def finish_if_done(self, uow: UnitOfWork, bulk_id: str) -> None:
        repo = uow.bulk_changes
        # Lock first, count after: two transactions closing a bulk change's last two batches
        # would otherwise each still see the other's batch open, and neither would finish it.
        bulk = repo.get(None, bulk_id, lock=True)
        if bulk is None or bulk.status.finished:
            return
        if repo.open_batch_count(bulk_id):
            return
        counts = repo.line_counts(bulk_id)
        status = bulk_status_from_counts(
            counts, started=True, cancel_requested=bulk.cancel_requested
        )
        if status.finished:
            bulk.status = status
            bulk.finished_at = _now(self._clock)
            repo.save(bulk)


def describe_fault(code: str | None, text: str | None) -> str:
    """The carrier's reason in words, with its code for support."""
    words = (text or "").strip()
    if words.upper().startswith(("REQUEST_FAILED.", "INPUT_INVALID.")):
        words = words.split(".", 1)[1].strip()
    if not words:
        words = "the carrier refused the change"
    return f"carrier: {words} ({code})" if code else f"carrier: {words}"


def _confirmed(line: DeviceLine, state: CarrierDeviceState | None) -> bool:
    """Does the carrier's view of the device already show this line's change?"""
    if state is None or state.pending:
        return False
    after = line.after
    if "status" in after and (state.status is None or state.status.value != after["status"]):
        return False
    if "rate_plan" in after and state.rate_plan != after["rate_plan"]:
        return False
    if "imei" in after and state.imei != after["imei"]:
        return False
    return not ("iccid" in after and state.iccid != after["iccid"])


@dataclass(frozen=True, slots=True)
class DeviceLookup:
    states: dict[str, CarrierDeviceState]
    unanswered: frozenset[str]  # the carrier could not be asked: neither present nor absent


def look_up_devices(
    account: CarrierAccount, iccids: Sequence[str], *, tries: int = 3
) -> DeviceLookup:
    """Ask the carrier about each device, one call per device, inside its rate limit.

    A device whose every try failed transiently is reported unanswered, never as absent:
    absence would read as "not applied" and lead to a re-send.
    """
    states: dict[str, CarrierDeviceState] = {}
    unanswered: set[str] = set()
    for iccid in dict.fromkeys(iccids):
        for _ in range(tries):
            account.rate_limiter.acquire()
            try:
                state = account.gateway.device_state(iccid)
            except (CarrierThrottled, CarrierUnavailable, CarrierOutcomeUnknown):
                continue
            if state is not None:
                states[iccid] = state
            break
        else:
            unanswered.add(iccid)
    return DeviceLookup(states=states, unanswered=frozenset(unanswered))


class CarrierBatchSender:
    """Handles one `send_carrier_batch` message; safe to run any number of times."""

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        carriers: CarrierDirectory,
        clock: Clock,
        trace: TraceContext,
        retry: RetryPolicy,
        in_flight: DevicesInFlight | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._carriers = carriers
        self._clock = clock
        self._trace = trace
        self._retry = retry
        self._in_flight = in_flight or DevicesInFlight(0)
        self._settler = DeviceLineSettler(clock=clock)

    def handle(self, batch_id: str) -> None:
        with self._uow_factory() as uow:
            batch = uow.bulk_changes.get_batch(batch_id, lock=True)
            if batch is None or batch.status in (
                BatchStatus.SUBMITTED,
                BatchStatus.DONE,
                BatchStatus.CANCELLED,
            ):
                return
            was_sending = batch.status is BatchStatus.SENDING
            tenant, devices = batch.tenant, batch.line_count
            uow.commit()
        account = self._carriers.for_tenant(tenant)
        # Taken outside any unit of work: a sender waiting here holds no database lock.
        with self._in_flight.hold(devices):
            if was_sending:
                try:
                    self._reconcile(batch_id, account)
                except _Deferred:
                    return
            self._send(batch_id, account)

    # ---- sending ---------------------------------------------------------------------

    def _send(self, batch_id: str, account: CarrierAccount) -> None:
        with self._uow_factory() as uow:
            repo = uow.bulk_changes
            batch = repo.get_batch(batch_id, lock=True)
            if batch is None or batch.status is not BatchStatus.PLANNED:
                return
            # Only what the carrier call needs, not whole lines: this is the sender's memory.
            to_send = repo.lines_to_send(batch_id)
            if not to_send.devices:
                self._settler.close_finished(uow, {batch_id})
                uow.commit()
                return
            if batch.action is CarrierAction.LOCAL:
                lines = repo.lines_of_batch(batch_id)
                pending = [ln for ln in lines if ln.status is LineStatus.PENDING]
                self._apply_locally(uow, batch, pending)
                uow.commit()
                return
            batch.status = BatchStatus.SENDING
            batch.attempts += 1
            repo.save_batch(batch)
            repo.count_attempt(batch_id)  # every PENDING line of the batch, in one statement
            repo.mark_started(batch.bulk_change_id, _now(self._clock))
            uow.commit()
            action, attempt = batch.action, batch.attempts
            bulk = repo.get(None, batch.bulk_change_id)
            # Bulk-wide parameters (plan, ZIP, reason code...) then the line's own (new ICCID...).
            args = {**(bulk.params if bulk else {}), **to_send.carrier_args}
            refs = to_send.devices

        account.rate_limiter.acquire()
        try:
            request_id = account.gateway.submit(action, refs, args)
        except CarrierThrottled as exc:
            # Flow control, not failure: it never uses up the batch's attempts.
            self._send_later(batch_id, None, str(exc), exc.retry_after_s)
            return
        except CarrierUnavailable as exc:
            self._send_later(batch_id, attempt, str(exc), None)
            return
        except CarrierRejected as exc:
            self._fail_batch(batch_id, describe_fault(exc.code, exc.message))
            return
        except CarrierOutcomeUnknown:
            self._reconcile_later(batch_id)
            return
        self._record_submitted(batch_id, request_id, self._trace.current_traceparent())

    def _record_submitted(self, batch_id: str, request_id: str, traceparent: str | None) -> None:
        with self._uow_factory() as uow:
            repo = uow.bulk_changes
            batch = repo.get_batch(batch_id, lock=True)
            if batch is None:
                return
            # Callbacks may have settled every line (matched by ICCID) before the carrier's
            # answer to the send was recorded: a closed batch stays closed.
            if batch.status not in (BatchStatus.DONE, BatchStatus.CANCELLED):
                batch.status = BatchStatus.SUBMITTED
            batch.carrier_request_id = request_id
            batch.submitted_at = _now(self._clock)
            batch.traceparent = traceparent
            repo.save_batch(batch)
            # Only lines still PENDING: one a callback settled meanwhile stays settled.
            repo.mark_submitted(batch_id, request_id)
            if not repo.open_line_count(batch_id):
                self._settler.close_finished(uow, {batch_id})
                uow.commit()
                return
            uow.outbox.add(
                OutgoingMessage(
                    actor=POLL_BATCH,
                    payload={"batch_id": batch_id, "round": 1},
                    delay_ms=int(self._retry.first_poll_after_s * 1000),
                )
            )
            uow.commit()

    def _send_later(
        self, batch_id: str, attempt: int | None, error: str, hint: float | None
    ) -> None:
        """Back to PLANNED and send again later; `attempt` None means it does not count."""
        with self._uow_factory() as uow:
            repo = uow.bulk_changes
            batch = repo.get_batch(batch_id, lock=True)
            if batch is None or batch.status is not BatchStatus.SENDING:
                return
            if attempt is not None and attempt >= self._retry.max_send_attempts:
                uow.commit()
                self._fail_batch(batch_id, f"carrier unavailable after {attempt} attempts: {error}")
                return
            delay = self._retry.backoff_s(attempt or batch.attempts, hint)
            if attempt is None:  # throttled: the carrier refused it unseen, give it back
                batch.attempts = max(batch.attempts - 1, 0)
                lines = [
                    ln for ln in repo.lines_of_batch(batch_id) if ln.status is LineStatus.PENDING
                ]
                for line in lines:
                    line.attempts = max(line.attempts - 1, 0)
                repo.save_lines(lines)
            batch.status = BatchStatus.PLANNED
            batch.next_attempt_at = _now(self._clock) + timedelta(seconds=delay)
            repo.save_batch(batch)
            uow.outbox.add(
                OutgoingMessage(SEND_BATCH, {"batch_id": batch_id}, delay_ms=int(delay * 1000))
            )
            uow.commit()

    def _reconcile_later(self, batch_id: str) -> None:
        with self._uow_factory() as uow:
            uow.outbox.add(
                OutgoingMessage(
                    SEND_BATCH,
                    {"batch_id": batch_id},
                    delay_ms=int(self._retry.reconcile_delay_s * 1000),
                )
            )
            uow.commit()

    def _fail_batch(self, batch_id: str, reason: str) -> None:
        with self._uow_factory() as uow:
            repo = uow.bulk_changes
            lines = [
                ln for ln in repo.lines_of_batch(batch_id, lock=True) if not ln.status.terminal
            ]
            for line in lines:
                line.status = LineStatus.FAILED
                line.reason = reason
            repo.save_lines(lines)
            self._settler.close_finished(uow, {batch_id})
            uow.commit()

    def _apply_locally(self, uow: UnitOfWork, batch: CarrierBatch, lines: list[DeviceLine]) -> None:
        outcomes = [
            CarrierDeviceOutcome(request_id=f"local:{batch.id}", iccid=ln.iccid, succeeded=True)
            for ln in lines
        ]
        for line in lines:
            line.carrier_request_id = f"local:{batch.id}"
            line.attempts += 1
        batch.status = BatchStatus.SUBMITTED
        uow.bulk_changes.save_batch(batch)
        uow.bulk_changes.save_lines(lines)
        uow.bulk_changes.mark_started(batch.bulk_change_id, _now(self._clock))
        self._settler.settle(uow, outcomes, source="local")

    # ---- reconciliation ----------------------------------------------------------------

    def _reconcile(self, batch_id: str, account: CarrierAccount) -> None:
        """The batch may already be at the carrier: never send blindly, look first."""
        with self._uow_factory() as uow:
            lines = [
                ln
                for ln in uow.bulk_changes.lines_of_batch(batch_id)
                if ln.status is LineStatus.PENDING
            ]
            uow.commit()
        wanted = [ln.iccid for ln in lines] + [
            ln.after["iccid"] for ln in lines if "iccid" in ln.after
        ]
        lookup = look_up_devices(account, wanted)
        if wanted and lookup.unanswered >= set(wanted):
            self._reconcile_later(batch_id)
            raise _Deferred()
        undecided = 0
        with self._uow_factory() as uow:
            repo = uow.bulk_changes
            batch = repo.get_batch(batch_id, lock=True)
            if batch is None or batch.status is not BatchStatus.SENDING:
                uow.commit()
                return
            fresh = {ln.id: ln for ln in repo.lines_of_batch(batch_id, lock=True)}
            confirmed: list[CarrierDeviceOutcome] = []
            in_flight: list[DeviceLine] = []
            for line in lines:
                current = fresh.get(line.id)
                if current is None or current.status is not LineStatus.PENDING:
                    continue
                keys = [current.after.get("iccid", current.iccid), current.iccid]
                if any(k in lookup.unanswered for k in keys):
                    undecided += 1  # the carrier could not be asked: look again later
                    continue
                state = lookup.states.get(keys[0]) or lookup.states.get(keys[1])
                if _confirmed(current, state):
                    confirmed.append(
                        CarrierDeviceOutcome(
                            request_id=current.carrier_request_id or f"reconciled:{batch_id}",
                            iccid=current.iccid,
                            succeeded=True,
                            reported={"msisdn": state.msisdn} if state and state.msisdn else {},
                        )
                    )
                elif state is not None and state.pending:
                    current.status = LineStatus.SUBMITTED  # its callback will settle it
                    in_flight.append(current)
            repo.save_lines(in_flight)
            if confirmed:
                self._settler.settle(uow, confirmed, source="reconciled from device state")
            if not repo.open_line_count(batch_id):
                self._settler.close_finished(uow, {batch_id})
                uow.commit()
                return
            if undecided:
                uow.commit()  # stays SENDING: nothing is re-sent while a device is in doubt
                self._reconcile_later(batch_id)
                raise _Deferred()
            batch = repo.get_batch(batch_id, lock=True)
            assert batch is not None
            if any(ln.status is LineStatus.PENDING for ln in repo.lines_of_batch(batch_id)):
                batch.status = BatchStatus.PLANNED  # the rest never reached the carrier
            else:
                batch.status = BatchStatus.SUBMITTED
                uow.outbox.add(
                    OutgoingMessage(
                        POLL_BATCH,
                        {"batch_id": batch_id, "round": 1},
                        delay_ms=int(self._retry.first_poll_after_s * 1000),
                    )
                )
            repo.save_batch(batch)
            uow.commit()


class _Deferred(Exception):
    pass


class CarrierBatchPoller:
    """Settles lines whose callback never came, from the carrier's request status."""

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        carriers: CarrierDirectory,
        clock: Clock,
        retry: RetryPolicy,
        in_flight: DevicesInFlight | None = None,
        settle_chunk: int = 500,
    ) -> None:
        self._uow_factory = uow_factory
        self._carriers = carriers
        self._clock = clock
        self._retry = retry
        self._in_flight = in_flight or DevicesInFlight(0)
        self._settle_chunk = settle_chunk
        self._settler = DeviceLineSettler(clock=clock)

    def handle(self, batch_id: str, round_: int) -> None:
        with self._uow_factory() as uow:
            batch = uow.bulk_changes.get_batch(batch_id)
        if batch is None or batch.status in (BatchStatus.DONE, BatchStatus.CANCELLED):
            return
        # Its lines are loaded and asked about together: as heavy as sending them.
        with self._in_flight.hold(batch.line_count):
            self._poll(batch_id, round_)

    def _poll(self, batch_id: str, round_: int) -> None:
        with self._uow_factory() as uow:
            batch = uow.bulk_changes.get_batch(batch_id)
            if batch is None or batch.status in (BatchStatus.DONE, BatchStatus.CANCELLED):
                return
            # Only the lines still waiting: most have usually been settled by their callback.
            open_lines = uow.bulk_changes.lines_of_batch(batch_id, status=LineStatus.SUBMITTED)
            if not open_lines:
                if not uow.bulk_changes.open_line_count(batch_id):
                    self._settler.close_finished(uow, {batch_id})  # nothing left to wait for
                    uow.commit()
                return
        account = self._carriers.for_tenant(batch.tenant)
        outcomes: list[CarrierDeviceOutcome] = []
        asked = True  # False: the carrier could not be asked; try this round again soon
        hint: float | None = None
        try:
            with_id = [ln for ln in open_lines if ln.carrier_request_id]
            if with_id and batch.carrier_request_id:
                account.rate_limiter.acquire()
                outcomes += account.gateway.request_outcomes(
                    batch.carrier_request_id, [ln.iccid for ln in with_id]
                )
            without_id = [ln for ln in open_lines if not ln.carrier_request_id]
            if without_id:
                lookup = look_up_devices(account, [ln.iccid for ln in without_id])
                asked = not lookup.unanswered
                for line in without_id:
                    if _confirmed(line, lookup.states.get(line.iccid)):
                        outcomes.append(
                            CarrierDeviceOutcome(
                                request_id=f"reconciled:{batch_id}",
                                iccid=line.iccid,
                                succeeded=True,
                            )
                        )
        except CarrierThrottled as exc:
            asked, hint = False, exc.retry_after_s
        except (CarrierUnavailable, CarrierOutcomeUnknown):
            asked = False
        outcomes = [
            CarrierDeviceOutcome(
                request_id=o.request_id,
                iccid=o.iccid,
                succeeded=o.succeeded,
                fault_code=o.fault_code,
                fault_text=o.fault_text
                or (
                    "the carrier reports the change failed; its callback with the reason "
                    "never arrived"
                    if o.succeeded is False
                    else None
                ),
                reported=o.reported,
            )
            for o in outcomes
        ]
        # Settled a chunk per transaction, as callbacks are: a poll may answer for 10,000
        # lines. A crash between chunks redelivers the poll, which finds the rest still open.
        chunks = [
            outcomes[start : start + self._settle_chunk]
            for start in range(0, len(outcomes), self._settle_chunk)
        ] or [[]]
        for chunk in chunks[:-1]:
            with self._uow_factory() as uow:
                self._settler.settle(uow, chunk, source="request status poll")
                uow.commit()
        with self._uow_factory() as uow:
            self._settler.settle(uow, chunks[-1], source="request status poll")
            still_open = uow.bulk_changes.open_line_count(batch_id)
            if still_open:
                age = (
                    (_now(self._clock) - batch.submitted_at).total_seconds()
                    if batch.submitted_at
                    else 0.0
                )
                if age > self._retry.give_up_after_s:
                    self._give_up(uow, batch_id, age)
                elif not asked:
                    # Not an answer, so the round does not count: flow control and carrier
                    # faults must not push the next look minutes away.
                    delay = self._retry.backoff_s(1, hint)
                    uow.outbox.add(
                        OutgoingMessage(
                            POLL_BATCH,
                            {"batch_id": batch_id, "round": round_},
                            delay_ms=int(delay * 1000),
                        )
                    )
                else:
                    delay = min(
                        self._retry.first_poll_after_s * 2**round_, self._retry.max_poll_delay_s
                    )
                    uow.outbox.add(
                        OutgoingMessage(
                            POLL_BATCH,
                            {"batch_id": batch_id, "round": round_ + 1},
                            delay_ms=int(delay * 1000),
                        )
                    )
            uow.commit()

    def _give_up(self, uow: UnitOfWork, batch_id: str, age_s: float) -> None:
        lines = [
            ln
            for ln in uow.bulk_changes.lines_of_batch(batch_id, lock=True)
            if not ln.status.terminal
        ]
        for line in lines:
            line.status = LineStatus.FAILED
            line.reason = (
                f"no outcome from the carrier after {age_s / 3600:.1f} h "
                "(no callback, request status still pending)"
            )
        uow.bulk_changes.save_lines(lines)
        self._settler.close_finished(uow, {batch_id})
