import pytest

from device_change.app.errors import Conflict, InvalidRequest
from device_change.app.submit import SEND_BATCH, DeviceInput, SubmitBulkChange
from device_change.domain.bulk_change import BulkChangeStatus, LineStatus
from device_change.domain.changes import ChangeType

from ..fakes import make_iccid
from .conftest import TENANT


def cmd(devices, *, change_type=ChangeType.UPDATE_DEVICE_STATUS, params=None, key=None):
    return SubmitBulkChange(
        tenant=TENANT,
        submitted_by="ops@demo",
        change_type=change_type,
        devices=[DeviceInput(**d) for d in devices],
        params=params if params is not None else {"target_status": "SUSPENDED"},
        idempotency_key=key,
    )


def test_dry_run_gives_a_verdict_per_device_and_changes_nothing(world):
    bad_check = make_iccid(1)[:-1] + str((int(make_iccid(1)[-1]) + 1) % 10)
    devices = [
        {"iccid": make_iccid(1)},
        {"iccid": make_iccid(2)},
        {"iccid": make_iccid(1)},  # duplicate
        {"iccid": make_iccid(500)},  # unknown
        {"iccid": bad_check},
        {"iccid": make_iccid(11)},  # already suspended
        {"iccid": make_iccid(99)},  # another tenant's device
    ]
    result = world.submission.dry_run(cmd(devices))
    assert (result.valid, result.invalid) == (2, 5)
    reasons = [v.reason for v in result.lines]
    assert reasons[0] is None and reasons[1] is None
    assert "duplicate of line 1" in reasons[2]
    assert "unknown device" in reasons[3]
    assert "wrong check digit" in reasons[4]
    assert "already SUSPENDED" in reasons[5]
    assert "unknown device" in reasons[6]
    assert world.store.bulks == {} and world.store.outbox == []


def test_submission_stores_every_line_and_queues_one_message_per_carrier_request(world):
    devices = [{"iccid": make_iccid(n)} for n in range(1, 11)] + [{"iccid": make_iccid(11)}]
    result = world.submission.submit(cmd(devices))
    bulk = result.bulk_change
    assert result.created and bulk.status is BulkChangeStatus.QUEUED
    lines = sorted(world.store.lines.values(), key=lambda ln: ln.seq)
    assert len(lines) == 11
    assert [ln.status for ln in lines].count(LineStatus.PENDING) == 10
    assert lines[-1].status is LineStatus.FAILED
    assert lines[-1].reason == "pre-flight: device is already SUSPENDED"
    # 10 suspends at 4 per request -> 3 carrier requests, each queued through the outbox.
    assert len(world.store.batches) == 3
    assert [m.actor for m in world.store.outbox] == [SEND_BATCH] * 3


def test_same_idempotency_key_returns_the_same_bulk_change(world):
    first = world.submission.submit(cmd([{"iccid": make_iccid(1)}], key="k-1"))
    again = world.submission.submit(cmd([{"iccid": make_iccid(1)}], key="k-1"))
    assert not again.created and again.bulk_change.id == first.bulk_change.id
    assert len(world.store.bulks) == 1 and len(world.store.lines) == 1


def test_reusing_a_key_for_a_different_request_is_a_conflict(world):
    world.submission.submit(cmd([{"iccid": make_iccid(1)}], key="k-1"))
    with pytest.raises(Conflict, match="different request"):
        world.submission.submit(cmd([{"iccid": make_iccid(2)}], key="k-1"))


def test_bad_params_name_the_field(world):
    with pytest.raises(InvalidRequest) as err:
        world.submission.submit(cmd([{"iccid": make_iccid(1)}], params={"target_status": "ON"}))
    assert err.value.field == "params.target_status"
    with pytest.raises(InvalidRequest) as err:
        world.submission.submit(
            cmd(
                [{"iccid": make_iccid(1)}],
                change_type=ChangeType.CHANGE_CARRIER_RATE_PLAN,
                params={},
            )
        )
    assert err.value.field == "params.rate_plan"


def test_change_types_of_billing_adapter_are_refused_clearly(world):
    with pytest.raises(InvalidRequest, match="arrives with billing-adapter"):
        world.submission.submit(
            cmd([{"iccid": make_iccid(1)}], change_type=ChangeType.ARCHIVE_DEVICE, params={})
        )


def test_all_invalid_lines_end_the_bulk_change_at_once(world):
    result = world.submission.submit(cmd([{"iccid": make_iccid(11)}]))
    assert result.bulk_change.status is BulkChangeStatus.COMPLETED_WITH_ERRORS
    assert world.store.outbox == []


def test_identifier_swap_by_msisdn_checks_new_ids(world):
    in_use = make_iccid(2)
    result = world.submission.dry_run(
        cmd(
            [
                {"msisdn": "5550000001", "new_iccid": make_iccid(300)},
                {"iccid": make_iccid(3), "new_iccid": in_use},
                {"iccid": make_iccid(4), "new_iccid": make_iccid(300)},
            ],
            change_type=ChangeType.CHANGE_ICCID_IMEI,
            params={},
        )
    )
    assert [v.valid for v in result.lines] == [True, False, False]
    assert "already in use" in result.lines[1].reason
    assert "also requested on line 1" in result.lines[2].reason


def test_plan_change_limit_counts_this_months_changes(world):
    from device_change.app.ports import AuditEntry

    for _ in range(4):
        world.store.audit.append(
            AuditEntry(TENANT, make_iccid(1), "change_plan", {}, {}, "x", world.clock.now())
        )
    result = world.submission.dry_run(
        cmd(
            [{"iccid": make_iccid(1)}, {"iccid": make_iccid(2)}],
            change_type=ChangeType.CHANGE_CARRIER_RATE_PLAN,
            params={"rate_plan": "M2M_4G_5GB"},
        )
    )
    assert [v.valid for v in result.lines] == [False, True]
    assert "4 times this month" in result.lines[0].reason
