"""The outbox relays committed messages at least once; the inbox stores a callback once."""

import threading
import uuid

import pytest
from sqlalchemy import func, select

from device_change.adapters.db import tables as t
from device_change.adapters.db.outbox import OutboxRelay
from device_change.adapters.db.uow import SqlAlchemyUnitOfWorkFactory
from device_change.app.ports import CarrierDeviceOutcome, OutgoingMessage
from device_change.domain.device import DeviceStatus

pytestmark = pytest.mark.integration


def test_leaving_without_commit_rolls_back_and_drops_the_messages(uow_factory, make):
    tenant, device = make.tenant(), make.state()
    marker = uuid.uuid4().hex
    with uow_factory() as u:
        u.devices.upsert_from_carrier(tenant, [device])
        u.outbox.add(OutgoingMessage("actor", {"marker": marker}))
    with uow_factory() as u:
        assert u.devices.get_many(tenant, [device.iccid]) == {}
    with uow_factory.engine.connect() as conn:
        unsent = conn.execute(select(t.outbox.c.payload).where(t.outbox.c.sent_at.is_(None)))
        assert all(p.get("marker") != marker for (p,) in unsent)


def test_on_commit_runs_after_commits_that_wrote_messages(engine, make):
    calls: list[str] = []
    uow = SqlAlchemyUnitOfWorkFactory(engine, on_commit=lambda: calls.append("flush"))
    with uow() as u:
        u.devices.upsert_from_carrier(make.tenant(), [make.state()])
        u.commit()
        assert calls == []
        u.outbox.add(OutgoingMessage("actor", {}))
        u.commit()
        u.commit()
    assert calls == ["flush"]


def test_a_failing_on_commit_hook_does_not_undo_the_commit(engine, make):
    def broken() -> None:
        raise ConnectionError("broker down")

    uow = SqlAlchemyUnitOfWorkFactory(engine, on_commit=broken)
    tenant, device = make.tenant(), make.state()
    with uow() as u:
        u.devices.upsert_from_carrier(tenant, [device])
        u.outbox.add(OutgoingMessage("actor", {}))
        u.commit()
    with uow() as u:
        assert device.iccid in u.devices.get_many(tenant, [device.iccid])


def test_two_relays_at_once_deliver_every_message_and_mark_it_sent(engine_each_dialect):
    engine = engine_each_dialect
    uow = SqlAlchemyUnitOfWorkFactory(engine)
    marker = uuid.uuid4().hex
    with uow() as u:
        for i in range(300):
            u.outbox.add(OutgoingMessage("settle", {"marker": marker, "n": i}, delay_ms=i % 3))
        u.commit()

    received: list[tuple[str, int, int]] = []
    lock = threading.Lock()

    def send(actor: str, payload: dict, delay_ms: int) -> None:
        if payload.get("marker") == marker:
            with lock:
                received.append((actor, payload["n"], delay_ms))

    relays = [OutboxRelay(engine, send), OutboxRelay(engine, send)]
    threads = [threading.Thread(target=r.flush, kwargs={"limit": 40}) for r in relays]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)

    assert {n for _, n, _ in received} == set(range(300))  # at least once each
    assert all(actor == "settle" and delay == n % 3 for actor, n, delay in received)
    with engine.connect() as conn:
        unsent = conn.execute(
            select(func.count()).select_from(t.outbox).where(t.outbox.c.sent_at.is_(None))
        ).scalar_one()
    assert unsent == 0


def outcome(request_id, iccid, succeeded=True, **reported):
    return CarrierDeviceOutcome(
        request_id, iccid, succeeded, fault_code=None if succeeded else "E1", reported=reported
    )


def test_the_inbox_stores_a_repeated_callback_once(engine_each_dialect, make):
    uow = SqlAlchemyUnitOfWorkFactory(engine_each_dialect)
    request_id = f"req-{uuid.uuid4().hex}"
    a, b = make.iccid(), make.iccid()
    with uow() as u:
        assert u.inbox.store([outcome(request_id, a, msisdn="5551234567")]) == 1
        # Repeated, plus a new one, plus the same device with a different outcome.
        assert (
            u.inbox.store(
                [outcome(request_id, a), outcome(request_id, b), outcome(request_id, a, None)]
            )
            == 2
        )
        u.commit()

    with uow() as u:
        claimed = [c for c in u.inbox.claim(10_000) if c[1].request_id == request_id]
        assert [(o.iccid, o.succeeded) for _, o in claimed] == [(a, True), (b, True), (a, None)]
        assert claimed[0][1].reported == {"msisdn": "5551234567"}
        u.inbox.mark_processed([row_id for row_id, _ in claimed])
        u.commit()
    with uow() as u:
        assert [c for c in u.inbox.claim(10_000) if c[1].request_id == request_id] == []


def test_a_group_of_callbacks_is_stored_in_one_go_and_counted_per_callback(
    engine_each_dialect, make
):
    uow = SqlAlchemyUnitOfWorkFactory(engine_each_dialect)
    request_id = f"req-{uuid.uuid4().hex}"
    a, b, c = make.iccid(), make.iccid(), make.iccid()
    with uow() as u:
        assert u.inbox.store([outcome(request_id, a)]) == 1
        u.commit()
    with uow() as u:
        counts = u.inbox.store_groups(
            [
                [outcome(request_id, a)],  # stored before
                [outcome(request_id, b)],
                [outcome(request_id, b)],  # repeated within the group
                [outcome(request_id, c), outcome(request_id, a, False)],
                [],
            ]
        )
        assert counts == [0, 1, 0, 2, 0]
        u.commit()
    with uow() as u:
        claimed = [o for _, o in u.inbox.claim(10_000) if o.request_id == request_id]
        assert sorted((o.iccid, o.succeeded) for o in claimed) == sorted(
            [(a, True), (b, True), (c, True), (a, False)]
        )


def test_claimed_callbacks_return_when_settling_rolls_back(uow_factory, make):
    request_id = f"req-{uuid.uuid4().hex}"
    with uow_factory() as u:
        u.inbox.store([outcome(request_id, make.iccid(), False)])
        u.commit()
    with uow_factory() as u:
        mine = [c for c in u.inbox.claim(10_000) if c[1].request_id == request_id]
        u.inbox.mark_processed([row_id for row_id, _ in mine])
        # no commit: the settler crashed
    with uow_factory() as u:
        again = [c for c in u.inbox.claim(10_000) if c[1].request_id == request_id]
    assert [o.fault_code for _, o in again] == ["E1"]


def test_many_threads_write_at_once_without_failing(engine_each_dialect, make):
    uow = SqlAlchemyUnitOfWorkFactory(engine_each_dialect)
    tenant = make.tenant()
    states = [make.state() for _ in range(8 * 15)]
    errors: list[BaseException] = []

    def work(part: list) -> None:
        try:
            for state in part:
                with uow() as u:
                    u.devices.upsert_from_carrier(tenant, [state])
                    u.devices.update(tenant, state.iccid, {"status": DeviceStatus.SUSPENDED})
                    u.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(states[i::8],)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert errors == []
    with uow() as u:
        stored = u.devices.get_many(tenant, [s.iccid for s in states])
    assert len(stored) == len(states)
    assert {d.status for d in stored.values()} == {DeviceStatus.SUSPENDED}
