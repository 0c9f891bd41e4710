"""The persistence adapter against real databases, schema built by the migrations."""

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect

from device_change.adapters.db.delivery_log import SqlDeliveryLog
from device_change.adapters.db.migrate import downgrade, upgrade
from device_change.adapters.db.outbox import OutboxRelay
from device_change.adapters.db.rate_limit import SqlRateLimiter
from device_change.adapters.db.uow import SqlAlchemyUnitOfWorkFactory
from device_change.app.ports import (
    AuditEntry,
    CarrierDeviceOutcome,
    CarrierDeviceState,
    OutgoingMessage,
)
from device_change.domain.device import DeviceStatus

pytestmark = pytest.mark.integration

ICCID_A, ICCID_B = "89148000000000000019", "89148000000000000027"


def state(iccid, status=DeviceStatus.ACTIVE, imei="490154203237518"):
    return CarrierDeviceState(
        iccid, imei, "5550000001", status, status.value.lower(), "M2M_4G_1GB", "acct"
    )


def test_migrations_go_up_down_and_up_again(database_url):
    from device_change.adapters.db.engine import make_engine

    upgrade(database_url)
    downgrade(database_url, "base")
    upgrade(database_url)
    engine = make_engine(database_url)
    tables = set(inspect(engine).get_table_names())
    assert {"devices", "bulk_changes", "device_lines", "outbox", "carrier_callbacks"} <= tables
    engine.dispose()


def test_sync_is_idempotent_and_listing_pages(engine):
    uow = SqlAlchemyUnitOfWorkFactory(engine)
    for _ in range(2):
        with uow() as u:
            u.devices.upsert_from_carrier("demo", [state(ICCID_A), state(ICCID_B)])
            u.commit()
    with uow() as u:
        first = u.devices.list(
            "demo", status=DeviceStatus.ACTIVE, rate_plan=None, limit=1, cursor=None
        )
        second = u.devices.list(
            "demo", status=None, rate_plan="M2M_4G_1GB", limit=5, cursor=first.next_cursor
        )
        assert [d.iccid for d in first.items] == [ICCID_A]
        assert [d.iccid for d in second.items] == [ICCID_B] and second.next_cursor is None
        assert (
            u.devices.list("other", status=None, rate_plan=None, limit=5, cursor=None).items == []
        )
        assert u.devices.identifiers_in_use([ICCID_A, "490154203237518", "x"]) == frozenset(
            {ICCID_A, "490154203237518"}
        )


def test_history_follows_a_device_across_an_iccid_swap(engine):
    uow = SqlAlchemyUnitOfWorkFactory(engine)
    new = "89148000000000000035"
    with uow() as u:
        u.devices.upsert_from_carrier("demo", [state(ICCID_A)])
        before = u.devices.update("demo", ICCID_A, {"iccid": new})
        assert before is not None and before.iccid == ICCID_A
        u.audit.record(
            [
                AuditEntry(
                    "demo",
                    new,
                    "change_identifier",
                    {"iccid": ICCID_A},
                    {"iccid": new},
                    "ops",
                    datetime.now(UTC),
                )
            ]
        )
        u.commit()
    with uow() as u:
        entries = u.audit.history("demo", new, limit=10, cursor=None).items
        assert entries[0].before == {"iccid": ICCID_A}


def test_leaving_without_commit_rolls_back(engine):
    uow = SqlAlchemyUnitOfWorkFactory(engine)
    with uow() as u:
        u.devices.upsert_from_carrier("demo", [state(ICCID_A)])
    with uow() as u:
        assert u.devices.get_many("demo", [ICCID_A]) == {}


def test_inbox_stores_a_duplicated_callback_once(engine):
    uow = SqlAlchemyUnitOfWorkFactory(engine)
    outcome = CarrierDeviceOutcome("req-1", ICCID_A, True, reported={"msisdn": "1"})
    with uow() as u:
        assert u.inbox.store([outcome]) == 1
        assert u.inbox.store([outcome]) == 0
        u.commit()
    with uow() as u:
        claimed = u.inbox.claim(10)
        assert [o for _, o in claimed] == [outcome]
        u.inbox.mark_processed([i for i, _ in claimed])
        u.commit()
    with uow() as u:
        assert u.inbox.claim(10) == []


def test_outbox_relay_sends_every_message_once_marked(engine):
    sent: list[tuple[str, dict, int]] = []
    lock = threading.Lock()

    def send(actor, payload, delay):
        with lock:
            sent.append((actor, payload, delay))

    uow = SqlAlchemyUnitOfWorkFactory(engine)
    with uow() as u:
        for n in range(50):
            u.outbox.add(OutgoingMessage("send_carrier_batch", {"batch_id": str(n)}, n))
        u.commit()
    relay = OutboxRelay(engine, send)
    threads = [threading.Thread(target=relay.flush) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(int(p["batch_id"]) for _, p, _ in sent) == list(range(50))
    assert relay.flush() == 0


def test_rate_limiter_spaces_calls_across_threads(engine):
    limiter = SqlRateLimiter(engine, key="test", rate_per_s=20)
    stamps: list[float] = []

    def take():
        for _ in range(5):
            limiter.acquire()
            stamps.append(time.monotonic())

    threads = [threading.Thread(target=take) for _ in range(2)]
    started = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # 10 calls at 20/s cannot finish in less than 9 intervals.
    assert time.monotonic() - started >= 9 / 20 * 0.95
    assert len(stamps) == 10


def test_delivery_log_counts_and_dead_letters(engine):
    log = SqlDeliveryLog(engine)
    assert [log.record_delivery("m1", queue="q", actor="a") for _ in range(3)] == [1, 2, 3]
    log.forget("m1")
    assert log.record_delivery("m1", queue="q", actor="a") == 1
    log.dead_letter(
        message_id="m2", queue="q", actor="a", payload={"kwargs": {}}, reason="boom", deliveries=6
    )
    (row,) = log.list_dead_letters(10)
    assert row["reason"] == "boom" and row["replayed_at"] is None
    log.mark_replayed(row["id"])
    assert log.get_dead_letter(row["id"])["replayed_at"] is not None
