"""Submit a bulk change: pre-flight every device, then store the job and queue its requests."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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
from device_change.domain.device import Device
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


@dataclass(frozen=True, slots=True)
class SubmitBulkChange:
    tenant: str
    submitted_by: str
    change_type: ChangeType
    devices: Sequence[DeviceInput]
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
    carrier_timezone_month_start: Callable[[datetime], datetime] = field(
        default=lambda now: now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )


def fingerprint(cmd: SubmitBulkChange) -> str:
    body = {
        "change_type": cmd.change_type.value,
        "params": cmd.params,
        "devices": [_as_dict(d) for d in cmd.devices],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _as_dict(d: DeviceInput) -> dict[str, str | None]:
    return {
        "iccid": d.iccid,
        "msisdn": d.msisdn,
        "imei": d.imei,
        "new_iccid": d.new_iccid,
        "new_imei": d.new_imei,
    }


class BulkChangeSubmission:
    def __init__(
        self, *, uow_factory: UnitOfWorkFactory, clock: Clock, policy: SubmissionPolicy
    ) -> None:
        self._uow_factory = uow_factory
        self._clock = clock
        self._policy = policy

    def dry_run(self, cmd: SubmitBulkChange) -> DryRunResult:
        params = self._check_envelope(cmd)
        with self._uow_factory() as uow:
            verdicts = self._preflight(uow, cmd, params)
        valid = sum(1 for v in verdicts if v.valid)
        return DryRunResult(valid=valid, invalid=len(verdicts) - valid, lines=verdicts)

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
            verdicts = self._preflight(uow, cmd, params)
            bulk = self._store(uow, cmd, verdicts, print_)
            uow.commit()
        return SubmitResult(bulk, created=True)

    # ---- steps ---------------------------------------------------------------------

    def _check_envelope(self, cmd: SubmitBulkChange) -> ChangeParams:
        if not cmd.change_type.supported:
            raise InvalidRequest(
                "change_type",
                f"'{cmd.change_type.value}' arrives with billing-adapter; not supported yet",
            )
        if not cmd.devices:
            raise InvalidRequest("devices", "name at least one device")
        if len(cmd.devices) > MAX_DEVICES_PER_BULK_CHANGE:
            raise InvalidRequest(
                "devices", f"at most {MAX_DEVICES_PER_BULK_CHANGE} devices per bulk change"
            )
        return parse_params(cmd.change_type, cmd.params)

    def _preflight(
        self, uow: UnitOfWork, cmd: SubmitBulkChange, params: ChangeParams
    ) -> list[LineVerdict]:
        tenant = cmd.tenant
        iccids = [d.iccid for d in cmd.devices if d.iccid]
        msisdns = [d.msisdn for d in cmd.devices if d.msisdn and not d.iccid]
        by_iccid = uow.devices.get_many(tenant, iccids)
        by_msisdn = uow.devices.get_many_by_msisdn(tenant, msisdns) if msisdns else {}
        plans = uow.plans.all(tenant)
        in_use: frozenset[str] = frozenset()
        plan_changes: dict[str, int] = {}
        if cmd.change_type is ChangeType.CHANGE_ICCID_IMEI:
            new_ids = [x for d in cmd.devices for x in (d.new_iccid, d.new_imei) if x]
            in_use = uow.devices.identifiers_in_use(new_ids)
        if cmd.change_type is ChangeType.CHANGE_CARRIER_RATE_PLAN:
            since = self._policy.carrier_timezone_month_start(self._clock.now())
            plan_changes = uow.audit.plan_changes_since(tenant, iccids, since)

        seen: dict[str, int] = {}
        seen_new: dict[str, int] = {}
        verdicts: list[LineVerdict] = []
        for n, given in enumerate(cmd.devices, start=1):
            key = given.key
            try:
                device = self._resolve(given, by_iccid, by_msisdn, cmd.change_type)
                if key in seen:
                    raise ChangeRefused(f"duplicate of line {seen[key]} in this request")
                seen[key] = n
                planned = self._plan(
                    cmd.change_type, device, given, params, plans, in_use, plan_changes
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
        verdicts: Sequence[LineVerdict],
        print_: str | None,
    ) -> BulkChange:
        now = self._clock.now().astimezone(UTC)
        bulk = BulkChange(
            id=str(uuid.uuid4()),
            tenant=cmd.tenant,
            change_type=cmd.change_type,
            params=dict(cmd.params),
            submitted_by=cmd.submitted_by,
            created_at=now,
            idempotency_key=cmd.idempotency_key,
            total_lines=len(verdicts),
        )
        lines: list[DeviceLine] = []
        for seq, verdict in enumerate(verdicts, start=1):
            given = verdict.device_input or DeviceInput(iccid=verdict.iccid)
            line = DeviceLine(
                id=str(uuid.uuid4()),
                bulk_change_id=bulk.id,
                tenant=cmd.tenant,
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
            lines.append(line)

        batches = self._batches(bulk, [ln for ln in lines if ln.status is LineStatus.PENDING])
        if not batches:
            bulk.status = BulkChangeStatus.COMPLETED_WITH_ERRORS
            bulk.finished_at = now
        uow.bulk_changes.add(bulk, print_)
        uow.bulk_changes.add_batches(batches)
        uow.bulk_changes.add_lines(lines)
        for batch in batches:
            uow.outbox.add(OutgoingMessage(actor=SEND_BATCH, payload={"batch_id": batch.id}))
        return bulk

    def _batches(self, bulk: BulkChange, lines: Sequence[DeviceLine]) -> list[CarrierBatch]:
        """Group lines into carrier requests: same action, as many devices as allowed."""
        groups: dict[CarrierAction, list[DeviceLine]] = {}
        for line in lines:
            assert line.action is not None
            groups.setdefault(line.action, []).append(line)
        batches: list[CarrierBatch] = []
        for action, members in groups.items():
            size = self._policy.max_devices_per_request
            if action is CarrierAction.CHANGE_IDENTIFIER:
                size = 1  # the carrier swaps one device's identifiers per request
            elif action is CarrierAction.LOCAL:
                size = 1000
            for start in range(0, len(members), size):
                chunk = members[start : start + size]
                batch = CarrierBatch(
                    id=str(uuid.uuid4()),
                    bulk_change_id=bulk.id,
                    tenant=bulk.tenant,
                    action=action,
                    status=BatchStatus.PLANNED,
                    line_count=len(chunk),
                )
                for line in chunk:
                    line.batch_id = batch.id
                batches.append(batch)
        return batches
