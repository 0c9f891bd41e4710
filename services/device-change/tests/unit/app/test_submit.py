import hashlib
import json
from dataclasses import replace

import pytest

from device_change.app.errors import Conflict, InvalidRequest
from device_change.app.submit import (
    SEND_BATCH,
    BulkChangeSubmission,
    DeviceInput,
    SubmissionPolicy,
    SubmitBulkChange,
    fingerprint,
)
from device_change.domain.bulk_change import BulkChangeStatus, LineStatus
from device_change.domain.changes import ChangeType

from ..fakes import FakeBulkChanges, make_iccid
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


class ReadOnDemand:
    """Devices handed out one at a time as the use case reads them."""

    def __init__(self, devices):
        self.devices = [DeviceInput(**d) for d in devices]
        self.read = 0
        self.passes = 0

    def __len__(self):
        return len(self.devices)

    def __iter__(self):
        self.passes += 1
        for d in self.devices:
            self.read += 1
            yield d


def streamed(world, devices, *, chunk_size, key=None, **kw):
    world.submission = BulkChangeSubmission(
        uow_factory=world.uow,
        clock=world.clock,
        policy=SubmissionPolicy(max_devices_per_request=4, chunk_size=chunk_size),
    )
    source = ReadOnDemand(devices)
    return source, replace(cmd([], key=key, **kw), devices=source)


def test_a_large_request_is_stored_chunk_by_chunk_not_read_whole_first(world, monkeypatch):
    reads_when_stored = []
    add_lines = FakeBulkChanges.add_lines

    def recording_add_lines(self, lines):
        reads_when_stored.append((source.read, len(lines)))
        add_lines(self, lines)

    monkeypatch.setattr(FakeBulkChanges, "add_lines", recording_add_lines)
    devices = [{"iccid": make_iccid(n)} for n in range(1, 11)]
    source, command = streamed(world, devices, chunk_size=3)
    world.submission.submit(command)
    # Each chunk of 3 is stored before the next device is read; the last holds one.
    assert reads_when_stored == [(3, 3), (6, 3), (9, 3), (10, 1)]
    assert source.passes == 1  # no Idempotency-Key: nothing to fingerprint


def test_chunks_keep_duplicate_checks_line_numbers_and_carrier_requests_whole(world):
    devices = [{"iccid": make_iccid(n)} for n in range(1, 11)]
    devices.insert(7, {"iccid": make_iccid(2)})  # line 8 repeats line 2, two chunks later
    _, command = streamed(world, devices, chunk_size=3)
    result = world.submission.submit(command)
    lines = sorted(world.store.lines.values(), key=lambda ln: ln.seq)
    assert [ln.seq for ln in lines] == list(range(1, 12))
    assert lines[7].status is LineStatus.FAILED
    assert lines[7].reason == "pre-flight: duplicate of line 2 in this request"
    # 10 suspends at 4 per request, across chunk borders: 4 + 4 + 2.
    batches = world.store.batches
    assert sorted(b.line_count for b in batches.values()) == [2, 4, 4]
    for batch in batches.values():
        members = [ln for ln in lines if ln.batch_id == batch.id]
        assert len(members) == batch.line_count
    assert [m.payload["batch_id"] for m in world.store.outbox] == list(batches)
    assert result.bulk_change.total_lines == 11


def test_a_dry_run_in_chunks_gives_the_same_verdicts_as_one_pass(world):
    devices = [{"iccid": make_iccid(n)} for n in (1, 2, 1, 500, 11, 3, 3)]
    whole = world.submission.dry_run(cmd(devices))
    _, command = streamed(world, devices, chunk_size=2)
    chunked = world.submission.dry_run(command)
    assert chunked == whole
    assert (chunked.valid, chunked.invalid) == (3, 4)
    assert "duplicate of line 6" in chunked.lines[6].reason


def test_fingerprint_is_the_canonical_json_of_the_whole_request_read_as_a_stream(world):
    devices = [
        {"iccid": make_iccid(1)},
        {"msisdn": "5550000001", "new_iccid": make_iccid(300), "new_imei": "3"},
    ]
    params = {"target_status": "SUSPENDED", "place_of_use": {"zip": "07920", "a": 1}}
    command = cmd(devices, params=params)
    canonical = json.dumps(
        {
            "change_type": command.change_type.value,
            "params": params,
            "devices": [
                {k: d.get(k) for k in ("iccid", "msisdn", "imei", "new_iccid", "new_imei")}
                for d in devices
            ],
        },
        sort_keys=True,
        default=str,
    )
    assert fingerprint(command) == hashlib.sha256(canonical.encode()).hexdigest()
    source, streamed_command = streamed(world, devices, chunk_size=1, params=params)
    assert fingerprint(streamed_command) == fingerprint(command) and source.passes == 1


def test_an_idempotent_retry_of_a_streamed_request_reads_it_only_to_compare(world):
    devices = [{"iccid": make_iccid(n)} for n in range(1, 6)]
    _, first = streamed(world, devices, chunk_size=2, key="k-9")
    created = world.submission.submit(first)
    source, again = streamed(world, devices, chunk_size=2, key="k-9")
    repeat = world.submission.submit(again)
    assert not repeat.created and repeat.bulk_change.id == created.bulk_change.id
    assert source.passes == 1  # the fingerprint pass; no pre-flight, nothing stored
    assert len(world.store.lines) == 5
