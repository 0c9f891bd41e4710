"""Bulk changes, device lines and carrier batches: the submission and settlement queries."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from device_change.adapters.db.uow import SqlAlchemyUnitOfWorkFactory
from device_change.app.ports import CarrierDeviceRef
from device_change.domain.bulk_change import BatchStatus, BulkChangeStatus, LineStatus

pytestmark = pytest.mark.integration


def test_ten_thousand_lines_are_added_counted_and_paged(uow_factory, make):
    bulk = make.bulk(make.tenant())
    bulk.total_lines = 10_000
    batch = make.batch(bulk, line_count=10_000)
    lines = make.lines(bulk, 10_000, batch=batch)
    with uow_factory() as u:
        u.bulk_changes.add(bulk, "fp")
        u.bulk_changes.add_batches([batch])
        started = time.perf_counter()
        u.bulk_changes.add_lines(lines)
        assert time.perf_counter() - started < 5
        u.commit()

    done = lines[:3]
    for line in done:
        line.status, line.reason, line.attempts = LineStatus.FAILED, "no", 1
    with uow_factory() as u:
        u.bulk_changes.save_lines(done)
        u.commit()

    with uow_factory() as u:
        counts = u.bulk_changes.line_counts(bulk.id)
        assert counts == {
            LineStatus.PENDING: 9_997,
            LineStatus.SUBMITTED: 0,
            LineStatus.SUCCEEDED: 0,
            LineStatus.FAILED: 3,
            LineStatus.CANCELLED: 0,
        }
        assert u.bulk_changes.open_line_count(batch.id) == 9_997
        failed = u.bulk_changes.list_lines(bulk.id, status=LineStatus.FAILED, limit=2, cursor=None)
        rest = u.bulk_changes.list_lines(
            bulk.id, status=LineStatus.FAILED, limit=2, cursor=failed.next_cursor
        )
        assert [ln.seq for ln in failed.items + rest.items] == [0, 1, 2]
        assert rest.next_cursor is None
        assert failed.items[0].reason == "no" and failed.items[0].attempts == 1
        assert len(u.bulk_changes.lines_of_batch(batch.id, lock=True)) == 10_000


def test_outcomes_find_open_lines_by_exact_request_and_iccid(engine_each_dialect, make):
    uow = SqlAlchemyUnitOfWorkFactory(engine_each_dialect)
    bulk = make.bulk(make.tenant())
    first = make.batch(bulk, status=BatchStatus.SUBMITTED, request_id="req-1")
    second = make.batch(bulk, status=BatchStatus.SUBMITTED, request_id="req-2")
    lines_1 = make.lines(bulk, 600, batch=first, status=LineStatus.SUBMITTED)
    # The same devices again in a second request: the pair decides, not the ICCID alone.
    lines_2 = make.lines(
        bulk,
        600,
        batch=second,
        status=LineStatus.SUBMITTED,
        start=600,
        iccids=[ln.iccid for ln in lines_1],
    )
    lines_2[0].status = LineStatus.SUCCEEDED  # already settled: not open
    with uow() as u:
        u.bulk_changes.add(bulk, None)
        u.bulk_changes.add_batches([first, second])
        u.bulk_changes.add_lines(lines_1 + lines_2)
        u.commit()

    keys = [("req-1", ln.iccid) for ln in lines_1[:500]]
    keys += [("req-2", ln.iccid) for ln in lines_2[:500]] + [("req-3", lines_1[0].iccid)]
    with uow() as u:
        found = u.bulk_changes.open_lines_for_outcomes(keys)
    assert len(found) == 999
    assert found[("req-1", lines_1[0].iccid)].id == lines_1[0].id
    assert found[("req-2", lines_2[1].iccid)].id == lines_2[1].id
    assert ("req-2", lines_2[0].iccid) not in found


def test_lines_sent_without_a_known_request_id_are_found_by_iccid(uow_factory, make):
    bulk = make.bulk(make.tenant())
    in_doubt = make.batch(bulk, status=BatchStatus.SENDING)
    answered = make.batch(bulk, status=BatchStatus.SUBMITTED, request_id="req-known")
    doubtful = make.lines(bulk, 1, batch=in_doubt, status=LineStatus.PENDING)
    known = make.lines(bulk, 1, batch=answered, status=LineStatus.SUBMITTED, start=1)
    orphan = make.lines(bulk, 1, status=LineStatus.PENDING, start=2)  # no batch, no id
    with uow_factory() as u:
        u.bulk_changes.add(bulk, None)
        u.bulk_changes.add_batches([in_doubt, answered])
        u.bulk_changes.add_lines(doubtful + known + orphan)
        found = u.bulk_changes.open_lines_by_iccid(
            [doubtful[0].iccid, known[0].iccid, orphan[0].iccid]
        )
    assert {iccid: ln.id for iccid, ln in found.items()} == {
        doubtful[0].iccid: doubtful[0].id,
        orphan[0].iccid: orphan[0].id,
    }


def test_cancel_unsent_cancels_only_lines_of_batches_not_yet_sent(uow_factory, make):
    bulk = make.bulk(make.tenant())
    planned = make.batch(bulk, status=BatchStatus.PLANNED)
    sending = make.batch(bulk, status=BatchStatus.SENDING)
    planned_lines = make.lines(bulk, 3, batch=planned)
    sending_lines = make.lines(bulk, 2, batch=sending, start=3)
    with uow_factory() as u:
        u.bulk_changes.add(bulk, None)
        u.bulk_changes.add_batches([planned, sending])
        u.bulk_changes.add_lines(planned_lines + sending_lines)
        assert u.bulk_changes.open_batch_count(bulk.id) == 2

        assert u.bulk_changes.cancel_unsent(bulk.id) == 3

        cancelled = u.bulk_changes.list_lines(
            bulk.id, status=LineStatus.CANCELLED, limit=10, cursor=None
        ).items
        assert {ln.id for ln in cancelled} == {ln.id for ln in planned_lines}
        assert cancelled[0].reason == "cancelled before it was sent to the carrier"
        batch = u.bulk_changes.get_batch(planned.id, lock=True)
        assert batch is not None and batch.status is BatchStatus.CANCELLED
        assert u.bulk_changes.open_batch_count(bulk.id) == 1
        assert u.bulk_changes.line_counts(bulk.id)[LineStatus.PENDING] == 2


def test_sending_reads_and_touches_only_the_batchs_pending_lines(engine_each_dialect, make):
    uow_factory = SqlAlchemyUnitOfWorkFactory(engine_each_dialect)
    bulk = make.bulk(make.tenant())
    batch, other = make.batch(bulk), make.batch(bulk)
    pending = make.lines(bulk, 3, batch=batch)
    settled = make.lines(bulk, 1, batch=batch, status=LineStatus.SUCCEEDED, start=3)
    elsewhere = make.lines(bulk, 2, batch=other, start=4)
    with uow_factory() as u:
        u.bulk_changes.add(bulk, None)
        u.bulk_changes.add_batches([batch, other])
        pending[0].request = {"iccid": pending[0].iccid, "imei": "356938035643809"}
        pending[0].carrier_args = {"new_iccid": "89148000000000000027"}
        pending[1].request = {"msisdn": "5550000001"}
        u.bulk_changes.add_lines(pending + settled + elsewhere)
        to_send = u.bulk_changes.lines_to_send(batch.id)
        assert to_send.devices == [
            CarrierDeviceRef(pending[0].iccid, imei="356938035643809"),
            CarrierDeviceRef(pending[1].iccid, msisdn="5550000001"),
            CarrierDeviceRef(pending[2].iccid),
        ]
        assert to_send.carrier_args == {"new_iccid": "89148000000000000027"}
        assert u.bulk_changes.count_attempt(batch.id) == 3
        assert u.bulk_changes.count_attempt(batch.id) == 3
        assert u.bulk_changes.mark_submitted(batch.id, "req-7") == 3
        assert u.bulk_changes.mark_submitted(batch.id, "req-8") == 0  # none PENDING now
        assert u.bulk_changes.lines_to_send(batch.id).devices == []
        u.commit()
    with uow_factory() as u:
        lines = {ln.id: ln for ln in u.bulk_changes.lines_of_batch(batch.id)}
        others = u.bulk_changes.lines_of_batch(other.id)
        submitted = u.bulk_changes.lines_of_batch(batch.id, status=LineStatus.SUBMITTED)
        succeeded = u.bulk_changes.lines_of_batch(batch.id, status=LineStatus.SUCCEEDED)
    assert [ln.id for ln in submitted] == [ln.id for ln in pending]
    assert [ln.id for ln in succeeded] == [settled[0].id]
    for line in pending:
        got = lines[line.id]
        assert (got.status, got.carrier_request_id, got.attempts) == (
            LineStatus.SUBMITTED,
            "req-7",
            2,
        )
    assert lines[settled[0].id].status is LineStatus.SUCCEEDED
    assert lines[settled[0].id].attempts == 0 and lines[settled[0].id].carrier_request_id is None
    assert {(ln.status, ln.attempts) for ln in others} == {(LineStatus.PENDING, 0)}


def test_an_idempotency_key_is_unique_per_tenant(uow_factory, make):
    tenant = make.tenant()
    first = make.bulk(tenant, key="k-1")
    with uow_factory() as u:
        u.bulk_changes.add(first, "fingerprint-1")
        u.bulk_changes.add(make.bulk(make.tenant(), key="k-1"), None)  # other tenant: fine
        u.commit()
    with uow_factory() as u, pytest.raises(IntegrityError):
        u.bulk_changes.add(make.bulk(tenant, key="k-1"), "fingerprint-2")
    with uow_factory() as u:
        found = u.bulk_changes.find_by_idempotency_key(tenant, "k-1")
        assert u.bulk_changes.find_by_idempotency_key(tenant, "k-2") is None
    assert found is not None
    assert (found[0].id, found[1]) == (first.id, "fingerprint-1")


def test_started_is_recorded_once_and_save_keeps_the_status(uow_factory, make):
    bulk = make.bulk(make.tenant())
    t1 = datetime(2026, 1, 1, tzinfo=UTC)
    with uow_factory() as u:
        u.bulk_changes.add(bulk, None)
        u.bulk_changes.mark_started(bulk.id, t1)
        u.bulk_changes.mark_started(bulk.id, t1 + timedelta(hours=1))
        stored = u.bulk_changes.get(bulk.tenant, bulk.id)
        assert stored is not None
        assert (stored.status, stored.started_at) == (BulkChangeStatus.PROCESSING, t1)
        stored.status, stored.cancel_requested = BulkChangeStatus.CANCELLED, True
        u.bulk_changes.save(stored)
        again = u.bulk_changes.get(None, bulk.id)
        assert again is not None and again.status is BulkChangeStatus.CANCELLED
        assert again.cancel_requested
        assert u.bulk_changes.get(make.tenant(), bulk.id) is None


def test_bulk_changes_are_listed_newest_first(uow_factory, make):
    tenant = make.tenant()
    at = datetime(2026, 3, 1, tzinfo=UTC)
    bulks = [make.bulk(tenant, created_at=at + timedelta(minutes=i // 2)) for i in range(5)]
    with uow_factory() as u:
        for bulk in bulks:
            u.bulk_changes.add(bulk, None)
        listed, cursor = [], None
        while True:
            page = u.bulk_changes.list_bulk_changes(tenant, limit=2, cursor=cursor)
            listed += page.items
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert sorted(b.id for b in listed) == sorted(b.id for b in bulks)  # none skipped on ties
    assert [b.created_at for b in listed] == sorted((b.created_at for b in bulks), reverse=True)


def test_the_traceparent_of_a_request_is_found_by_its_id(uow_factory, make):
    bulk = make.bulk(make.tenant())
    batch = make.batch(bulk, status=BatchStatus.SUBMITTED, request_id="req-trace")
    batch.traceparent = "00-abc-def-01"
    with uow_factory() as u:
        u.bulk_changes.add(bulk, None)
        u.bulk_changes.add_batches([batch])
        assert u.bulk_changes.traceparent_for_request("req-trace") == "00-abc-def-01"
        assert u.bulk_changes.traceparent_for_request("req-none") is None


def test_lines_keep_awkward_text_and_json_exactly(engine_each_dialect, make):
    uow = SqlAlchemyUnitOfWorkFactory(engine_each_dialect)
    bulk = make.bulk(make.tenant())
    with uow() as u:
        u.bulk_changes.add(bulk, None)
        u.commit()
    line = make.lines(bulk, 1)[0]
    line.request = {"note": 'tab\there, newline\nthere, back\\slash, "quotes", \\N, é ✓'}
    line.carrier_args = {"new_iccid": None, "nested": {"list": [1, 2.5, True]}}
    line.reason = "\\N"
    with uow() as u:  # add_lines as the first statement of its transaction
        u.bulk_changes.add_lines([line])
        u.commit()
    with uow() as u:
        stored = u.bulk_changes.list_lines(bulk.id, status=None, limit=5, cursor=None).items
    assert len(stored) == 1
    assert stored[0].request == line.request
    assert stored[0].carrier_args == line.carrier_args
    assert stored[0].reason == "\\N"
    assert stored[0].after == line.after


def test_two_settlements_closing_the_last_two_batches_at_once_finish_the_bulk_change(engine, make):
    """PostgreSQL READ COMMITTED: each transaction must not decide on a stale count."""
    import threading
    import time
    from datetime import UTC, datetime

    from device_change.adapters.db.uow import SqlAlchemyUnitOfWorkFactory
    from device_change.app.ports import CarrierDeviceOutcome
    from device_change.app.processing import DeviceLineSettler
    from device_change.domain.bulk_change import BulkChangeStatus

    class Clock:
        def now(self):
            return datetime.now(UTC)

    uow_factory = SqlAlchemyUnitOfWorkFactory(engine)
    settler = DeviceLineSettler(clock=Clock())
    bulk = make.bulk(make.tenant())
    first = make.batch(bulk, status=BatchStatus.SUBMITTED, request_id=f"r1-{bulk.id}")
    second = make.batch(bulk, status=BatchStatus.SUBMITTED, request_id=f"r2-{bulk.id}")
    line_a = make.lines(bulk, 1, batch=first, status=LineStatus.SUBMITTED)
    line_b = make.lines(bulk, 1, batch=second, status=LineStatus.SUBMITTED, start=1)
    with uow_factory() as u:
        u.bulk_changes.add(bulk, None)
        u.bulk_changes.add_batches([first, second])
        u.bulk_changes.add_lines(line_a + line_b)
        u.bulk_changes.mark_started(bulk.id, datetime.now(UTC))
        u.commit()
    a_settled, b_starting = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def settle_first() -> None:
        try:
            with uow_factory() as u:
                settler.settle(
                    u,
                    [CarrierDeviceOutcome(first.carrier_request_id, line_a[0].iccid, True)],
                    source="test",
                )
                a_settled.set()
                assert b_starting.wait(10)
                time.sleep(0.3)  # let the other transaction reach its decision
                u.commit()
        except BaseException as exc:
            errors.append(exc)

    def settle_second() -> None:
        try:
            assert a_settled.wait(10)
            with uow_factory() as u:
                b_starting.set()
                settler.settle(
                    u,
                    [CarrierDeviceOutcome(second.carrier_request_id, line_b[0].iccid, True)],
                    source="test",
                )
                u.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=settle_first), threading.Thread(target=settle_second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    with uow_factory() as u:
        finished = u.bulk_changes.get(None, bulk.id)
    assert finished is not None
    assert finished.status is BulkChangeStatus.COMPLETED
