"""Submit a bulk change: pre-flight every device, then store the job and queue its requests.

A submission may name 200,000 devices, so nothing here holds all of them at once: the
devices are read from a `RequestedDevices` (a list in tests, a spooled request body in the
API) chunk by chunk, and each chunk is pre-flighted and stored before the next is read.
Only what spans chunks stays in memory: the line number of every device seen (duplicates)
and the carrier request each action is filling.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Protocol

from device_change.app.errors import Conflict, InvalidRequest
from device_change.app.params import ChangeParams, parse_params
from device_change.app.ports import Clock, OutgoingMessage, UnitOfWork, UnitOfWorkFactory
from device_change.domain.bulk_change import (
    BatchStatus,
    BulkChange,
    BulkChangeStatus,
    CarrierBatch,
    DeviceLine,
    LineStatus,
)
from device_change.domain.changes import (
    CarrierAction,
    ChangeRefused,
    ChangeType,
    PlannedChange,
    RatePlanChangeParams,
    StatusChangeParams,
    plan_identifier_change,
    plan_rate_plan_change,
    plan_status_change,
)
from device_change.domain.device import Device, RatePlan
from device_change.domain.identifiers import Iccid, InvalidIdentifier, Msisdn

SEND_BATCH = "send_carrier_batch"
MAX_DEVICES_PER_BULK_CHANGE = 200_000


@dataclass(frozen=True, slots=True)
class DeviceInput:
    iccid: str | None = None
    msisdn: str | None = None
    imei: str | None = None
    new_iccid: str | None = None
    new_imei: str | None = None

    @property
    def key(self) -> str:
        return self.iccid or self.msisdn or ""


class RequestedDevices(Protocol):
    """The devices a request names, in request order, readable more than once.

    A list is one; the API hands over a request body kept on disk, parsed afresh on every
    pass, so a large submission is streamed rather than held in memory.
    """

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[DeviceInput]: ...


@dataclass(frozen=True, slots=True)
class SubmitBulkChange:
    tenant: str
    submitted_by: str
    change_type: ChangeType
    devices: RequestedDevices
    params: Mapping[str, Any]
    dry_run: bool = False
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class LineVerdict:
    iccid: str
    valid: bool
    reason: str | None = None
    action: CarrierAction | None = None
    planned: PlannedChange | None = field(default=None, compare=False)
    device_input: DeviceInput | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class DryRunResult:
    valid: int
    invalid: int
    lines: list[LineVerdict]


@dataclass(frozen=True, slots=True)
class SubmitResult:
    bulk_change: BulkChange
    created: bool  # False when an Idempotency-Key returned an earlier bulk change


@dataclass(frozen=True, slots=True)
class SubmissionPolicy:
    max_devices_per_request: int = 50
    # Devices pre-flighted and stored together; bounds a submission's memory, not its size.
    chunk_size: int = 2000
    carrier_timezone_month_start: Callable[[datetime], datetime] = field(
        default=lambda now: now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )


def fingerprint(cmd: SubmitBulkChange) -> str:
    """SHA-256 of the request's canonical JSON, hashed device by device as they are read.

    The bytes hashed are exactly `json.dumps({"change_type", "devices", "params"},
    sort_keys=True, default=str)`, so fingerprints stored before streaming still match.
    """
    digest = hashlib.sha256()
    digest.update(b'{"change_type": ' + _canonical(cmd.change_type.value) + b', "devices": [')
    for n, device in enumerate(cmd.devices):
        digest.update((b", " if n else b"") + _canonical(_as_dict(device)))
    digest.update(b'], "params": ' + _canonical(cmd.params) + b"}")
    return digest.hexdigest()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, default=str).encode()


def _as_dict(d: DeviceInput) -> dict[str, str | None]:
    return {
        "iccid": d.iccid,
        "msisdn": d.msisdn,
        "imei": d.imei,
        "new_iccid": d.new_iccid,
        "new_imei": d.new_imei,
    }


def _chunked(devices: Iterable[DeviceInput], size: int) -> Iterator[list[DeviceInput]]:
    it = iter(devices)
    while chunk := list(islice(it, size)):
        yield chunk


@dataclass(slots=True)
class _Preflight:
    """What pre-flight remembers across chunks: where each device and new identifier
    first appeared, for the duplicate checks; the rest is looked up chunk by chunk."""

    change_type: ChangeType
    params: ChangeParams
    plans: Mapping[str, RatePlan]
    month_start: datetime
    seen: dict[str, int] = field(default_factory=dict)
    seen_new: dict[str, int] = field(default_factory=dict)
    next_line: int = 1


@dataclass(slots=True)
class _OpenBatch:
    """A carrier request being filled while lines are stored; sealed once full."""

    batch: CarrierBatch
    capacity: int


class BulkChangeSubmission:
    def __init__(
        self, *, uow_factory: UnitOfWorkFactory, clock: Clock, policy: SubmissionPolicy
    ) -> None:
        self._uow_factory = uow_factory
        self._clock = clock
        self._policy = policy

    def dry_run(self, cmd: SubmitBulkChange) -> DryRunResult:
        params = self._check_envelope(cmd)
        lines: list[LineVerdict] = []
        valid = 0
        with self._uow_factory() as uow:
            for verdicts in self._preflight(uow, cmd, params):
                for v in verdicts:
                    valid += v.valid
                    # Only what the answer shows is kept: not the plan, not the input.
                    lines.append(LineVerdict(v.iccid, v.valid, v.reason, v.action))
        return DryRunResult(valid=valid, invalid=len(lines) - valid, lines=lines)

    def submit(self, cmd: SubmitBulkChange) -> SubmitResult:
        params = self._check_envelope(cmd)
        print_ = fingerprint(cmd) if cmd.idempotency_key else None
        with self._uow_factory() as uow:
            if cmd.idempotency_key:
                found = uow.bulk_changes.find_by_idempotency_key(cmd.tenant, cmd.idempotency_key)
                if found is not None:
                    earlier, earlier_print = found
                    if earlier_print and earlier_print != print_:
                        raise Conflict(
                            "Idempotency-Key was already used for a different request; "
                            "use a new key for a new bulk change"
                        )
                    return SubmitResult(earlier, created=False)
            bulk = self._store(uow, cmd, self._preflight(uow, cmd, params), print_)
            uow.commit()
        return SubmitResult(bulk, created=True)

    # ---- steps ---------------------------------------------------------------------

    def _check_envelope(self, cmd: SubmitBulkChange) -> ChangeParams:
        if not cmd.change_type.supported:
            raise InvalidRequest(
                "change_type",
                f"'{cmd.change_type.value}' arrives with billing-adapter; not supported yet",
            )
        if not len(cmd.devices):
            raise InvalidRequest("devices", "name at least one device")
        if len(cmd.devices) > MAX_DEVICES_PER_BULK_CHANGE:
            raise InvalidRequest(
                "devices", f"at most {MAX_DEVICES_PER_BULK_CHANGE} devices per bulk change"
            )
        return parse_params(cmd.change_type, cmd.params)

    def _preflight(
        self, uow: UnitOfWork, cmd: SubmitBulkChange, params: ChangeParams
    ) -> Iterator[list[LineVerdict]]:
        """A verdict per device, in request order, one chunk of devices at a time."""
        state = _Preflight(
            change_type=cmd.change_type,
            params=params,
            plans=uow.plans.all(cmd.tenant),
            month_start=self._policy.carrier_timezone_month_start(self._clock.now()),
        )
        for chunk in _chunked(cmd.devices, self._policy.chunk_size):
            yield self._preflight_chunk(uow, cmd.tenant, chunk, state)

    def _preflight_chunk(
        self, uow: UnitOfWork, tenant: str, chunk: Sequence[DeviceInput], state: _Preflight
    ) -> list[LineVerdict]:
        iccids = [d.iccid for d in chunk if d.iccid]
        msisdns = [d.msisdn for d in chunk if d.msisdn and not d.iccid]
        by_iccid = uow.devices.get_many(tenant, iccids)
        by_msisdn = uow.devices.get_many_by_msisdn(tenant, msisdns) if msisdns else {}
        in_use: frozenset[str] = frozenset()
        plan_changes: Mapping[str, int] = {}
        if state.change_type is ChangeType.CHANGE_ICCID_IMEI:
            new_ids = [x for d in chunk for x in (d.new_iccid, d.new_imei) if x]
            in_use = uow.devices.identifiers_in_use(new_ids)
        if state.change_type is ChangeType.CHANGE_CARRIER_RATE_PLAN:
            plan_changes = uow.audit.plan_changes_since(tenant, iccids, state.month_start)

        seen, seen_new = state.seen, state.seen_new
        verdicts: list[LineVerdict] = []
        for n, given in enumerate(chunk, start=state.next_line):
            key = given.key
            try:
                device = self._resolve(given, by_iccid, by_msisdn, state.change_type)
                if key in seen:
                    raise ChangeRefused(f"duplicate of line {seen[key]} in this request")
                seen[key] = n
                planned = self._plan(
                    state.change_type,
                    device,
                    given,
                    state.params,
                    state.plans,
                    in_use,
                    plan_changes,
                )
                for new in (given.new_iccid, given.new_imei):
                    if new and new in seen_new:
                        raise ChangeRefused(
                            f"new identifier {new} is also requested on line {seen_new[new]}"
                        )
                    if new:
                        seen_new[new] = n
                verdicts.append(
                    LineVerdict(
                        iccid=device.iccid,
                        valid=True,
                        action=planned.action,
                        planned=planned,
                        device_input=given,
                    )
                )
            except ChangeRefused as refused:
                seen.setdefault(key, n)
                verdicts.append(
                    LineVerdict(iccid=key, valid=False, reason=refused.reason, device_input=given)
                )
        state.next_line += len(chunk)
        return verdicts

    @staticmethod
    def _resolve(
        given: DeviceInput,
        by_iccid: Mapping[str, Device],
        by_msisdn: Mapping[str, Device],
        change_type: ChangeType,
    ) -> Device:
        try:
            if given.iccid:
                Iccid(given.iccid)
                found = by_iccid.get(given.iccid)
                if found is None:
                    raise ChangeRefused(f"unknown device: no ICCID {given.iccid} in the inventory")
                return found
            if given.msisdn and change_type is ChangeType.CHANGE_ICCID_IMEI:
                Msisdn(given.msisdn)
                found = by_msisdn.get(given.msisdn)
                if found is None:
                    raise ChangeRefused(
                        f"unknown device: no MSISDN {given.msisdn} in the inventory"
                    )
                return found
        except InvalidIdentifier as exc:
            raise ChangeRefused(str(exc)) from exc
        if change_type is ChangeType.CHANGE_ICCID_IMEI:
            raise ChangeRefused("name the device by iccid or msisdn")
        raise ChangeRefused("name the device by iccid")

    @staticmethod
    def _plan(
        change_type: ChangeType,
        device: Device,
        given: DeviceInput,
        params: ChangeParams,
        plans: Mapping[str, Any],
        in_use: frozenset[str],
        plan_changes: Mapping[str, int],
    ) -> PlannedChange:
        if change_type is ChangeType.UPDATE_DEVICE_STATUS:
            assert isinstance(params, StatusChangeParams)
            if given.imei and given.imei != device.imei and device.imei:
                raise ChangeRefused(
                    f"IMEI {given.imei} does not match the device's IMEI {device.imei}"
                )
            return plan_status_change(device, params, plans)
        if change_type is ChangeType.CHANGE_CARRIER_RATE_PLAN:
            assert isinstance(params, RatePlanChangeParams)
            return plan_rate_plan_change(
                device, params, plans, plan_changes_this_month=plan_changes.get(device.iccid, 0)
            )
        return plan_identifier_change(
            device, new_iccid=given.new_iccid, new_imei=given.new_imei, in_use=in_use
        )

    def _store(
        self,
        uow: UnitOfWork,
        cmd: SubmitBulkChange,
        verdict_chunks: Iterable[Sequence[LineVerdict]],
        print_: str | None,
    ) -> BulkChange:
        """Store the bulk change, then its lines chunk by chunk, filling carrier requests
        as lines arrive; each request is queued (outbox) once it is full or at the end."""
        now = self._clock.now().astimezone(UTC)
        bulk = BulkChange(
            id=str(uuid.uuid4()),
            tenant=cmd.tenant,
            change_type=cmd.change_type,
            params=dict(cmd.params),
            submitted_by=cmd.submitted_by,
            created_at=now,
            idempotency_key=cmd.idempotency_key,
            total_lines=len(cmd.devices),
        )
        uow.bulk_changes.add(bulk, print_)
        filling: dict[CarrierAction, _OpenBatch] = {}
        queued = 0
        seq = 0
        for verdicts in verdict_chunks:
            lines: list[DeviceLine] = []
            full: list[CarrierBatch] = []
            for verdict in verdicts:
                seq += 1
                line = self._line(bulk, seq, verdict)
                lines.append(line)
                if line.action is None:
                    continue
                open_ = filling.get(line.action)
                if open_ is None:
                    open_ = filling[line.action] = self._open_batch(bulk, line.action)
                line.batch_id = open_.batch.id
                open_.batch.line_count += 1
                if open_.batch.line_count == open_.capacity:
                    full.append(filling.pop(line.action).batch)
            uow.bulk_changes.add_lines(lines)
            queued += self._queue(uow, full)
        queued += self._queue(uow, [open_.batch for open_ in filling.values()])
        if not queued:
            bulk.status = BulkChangeStatus.COMPLETED_WITH_ERRORS
            bulk.finished_at = now
            uow.bulk_changes.save(bulk)
        return bulk

    @staticmethod
    def _line(bulk: BulkChange, seq: int, verdict: LineVerdict) -> DeviceLine:
        given = verdict.device_input or DeviceInput(iccid=verdict.iccid)
        line = DeviceLine(
            id=str(uuid.uuid4()),
            bulk_change_id=bulk.id,
            tenant=bulk.tenant,
            seq=seq,
            iccid=verdict.iccid,
            request={k: v for k, v in _as_dict(given).items() if v},
        )
        if verdict.valid and verdict.planned is not None:
            line.action = verdict.planned.action
            line.after = {k: str(v) for k, v in verdict.planned.after.items()}
            line.carrier_args = dict(verdict.planned.carrier_args)
        else:
            line.status = LineStatus.FAILED
            line.reason = f"pre-flight: {verdict.reason}"
        return line

    def _open_batch(self, bulk: BulkChange, action: CarrierAction) -> _OpenBatch:
        """A new carrier request for `action`: as many devices as the carrier allows."""
        capacity = self._policy.max_devices_per_request
        if action is CarrierAction.CHANGE_IDENTIFIER:
            capacity = 1  # the carrier swaps one device's identifiers per request
        elif action is CarrierAction.LOCAL:
            capacity = 1000
        batch = CarrierBatch(
            id=str(uuid.uuid4()),
            bulk_change_id=bulk.id,
            tenant=bulk.tenant,
            action=action,
            status=BatchStatus.PLANNED,
            line_count=0,
        )
        return _OpenBatch(batch, capacity)

    @staticmethod
    def _queue(uow: UnitOfWork, batches: Sequence[CarrierBatch]) -> int:
        """Store sealed carrier requests and queue each through the outbox."""
        uow.bulk_changes.add_batches(batches)
        for batch in batches:
            uow.outbox.add(OutgoingMessage(actor=SEND_BATCH, payload={"batch_id": batch.id}))
        return len(batches)
