"""The repositories and the unit of work on a real database (PostgreSQL and SQLite)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from iot_sync.adapters.db.customers import SqlCustomerDirectory
from iot_sync.adapters.db.seed import SeedCustomer, seed
from iot_sync.adapters.db.settlements import SqlSettlements
from iot_sync.app.arm import ArmAsset, ArmStation
from iot_sync.app.ports import (
    HeldSignal,
    OutboxEvent,
    OutboxKind,
    SettlementRequest,
    SignalRecord,
    SignalResult,
    TelemetryUpdate,
)
from iot_sync.app.signals import Actor, Signal, SourceKind
from iot_sync.domain.asset import AssetState, Position
from iot_sync.domain.customer import Customer, Plan, Standing, SwapUsage
from iot_sync.domain.personnel import Person, PersonnelRole
from iot_sync.domain.service import Service, ServiceState

from .conftest import uid

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def given_inventory(uow_factory, station_id, *batteries):
    with uow_factory() as uow:
        uow.stations.upsert_from_arm(
            [ArmStation(station_id, "S", "region-1", "site-1", 0.5, 0.5, 4, True)]
        )
        uow.assets.upsert_from_arm(
            [
                ArmAsset(b, "STANDARD", "AVAILABLE", station_id, i + 1, None, 100.0, 1)
                for i, b in enumerate(batteries)
            ]
        )
        uow.commit()


def test_a_rolled_back_unit_of_work_leaves_nothing(uow_factory):
    sid = uid("SV")
    with uow_factory() as uow:
        uow.services.add(Service(sid, uid("C"), ServiceState.ACTIVE, updated_at=T0))
    with uow_factory() as uow:
        assert uow.services.get(sid) is None


def test_a_service_round_trips_with_its_usage_and_history(uow_factory):
    sid, cid = uid("SV"), uid("C")
    service = Service(sid, cid, ServiceState.BATTERY_ISSUED, "BAT-1", SwapUsage(2, T0), T0)
    with uow_factory() as uow:
        uow.services.add(service)
        uow.services.add(
            Service(uid("SV"), cid, ServiceState.CANCELLED, updated_at=T0 - timedelta(days=9))
        )
        uow.commit()
    with uow_factory() as uow:
        assert uow.services.get(sid) == service
        assert uow.services.for_customers([cid]) == {cid: service}
        assert [s.service_id for s in uow.services.find(customer_id=cid, limit=10)].count(sid) == 1


def test_the_signal_log_knows_taken_ids_settles_held_lines_and_pages_newest_first(uow_factory):
    ids = [uid("m") for _ in range(3)]

    def record(mid, result):
        return SignalRecord(
            topic="t", result=result, received_at=T0, processed_at=T0, message_id=mid
        )

    with uow_factory() as uow:
        uow.signal_log.add(
            [
                record(ids[0], SignalResult.ACCEPTED),
                record(ids[1], SignalResult.HELD),
                record(ids[2], SignalResult.DUPLICATE),
            ]
        )
        uow.signal_log.settle_held([record(ids[1], SignalResult.REJECTED)])
        uow.commit()
    with uow_factory() as uow:
        assert uow.signal_log.known_message_ids(ids) == {ids[0], ids[1]}
        first = uow.signal_log.page(results=None, limit=2, cursor=None)
        assert [r.message_id for r in first.items] == [ids[2], ids[1]]
        assert first.items[1].result is SignalResult.REJECTED
        rest = uow.signal_log.page(results=None, limit=2, cursor=first.next_cursor)
        assert rest.items[0].message_id == ids[0]


def test_held_signals_survive_the_transaction_and_come_back_whole(uow_factory):
    sender = f"station/{uid('ST')}"
    signal = Signal(
        message_id=uid("m"), topic="call/abs/station/ST/authorize", source_kind=SourceKind.STATION,
        source_id="ST", verb="authorize", sent_at=T0, seq=7, data={"customer_id": "C-1"},
        received_at=T0, actor=Actor("station", "ST"), correlation_id="c", reply_to="r",
        expires_at=T0,
    )  # fmt: skip
    with uow_factory() as uow:
        uow.senders.hold(sender, [HeldSignal(signal, T0)])
        uow.senders.save_last_seqs({sender: 5})
        uow.commit()
    with uow_factory() as uow:
        assert uow.senders.held([sender]) == {sender: [HeldSignal(signal, T0)]}
        assert uow.senders.last_seqs([sender]) == {sender: 5}
        assert sender in uow.senders.senders_holding_since(T0, 1000)
        uow.senders.release([signal.message_id])
        uow.senders.save_last_seqs({sender: 7})
        uow.commit()
    with uow_factory() as uow:
        assert uow.senders.held([sender]) == {}
        assert uow.senders.last_seqs([sender]) == {sender: 7}


def test_telemetry_updates_are_one_batched_upsert_that_keeps_absent_readings(uow_factory):
    station, b1, b2 = uid("ST"), uid("BAT"), uid("BAT")
    given_inventory(uow_factory, station, b1, b2)
    with uow_factory() as uow:
        uow.assets.record_telemetry(
            [
                TelemetryUpdate(b1, T0, 55.0, Position(0.1, 0.2, T0), T0, "region-1"),
                TelemetryUpdate(b2, T0, None, None, None, None),
            ]
        )
        uow.commit()
    with uow_factory() as uow:
        found = uow.assets.get_many([b1, b2])
    assert (found[b1].charge_pct, found[b1].position, found[b1].outside_since) == (
        55.0,
        Position(0.1, 0.2, T0),
        T0,
    )
    assert (found[b2].charge_pct, found[b2].last_seen_at, found[b2].position) == (100.0, T0, None)


def test_loss_candidates_are_issued_batteries_quiet_or_outside_too_long(uow_factory):
    station, quiet, outside, fine = uid("ST"), uid("BAT"), uid("BAT"), uid("BAT")
    given_inventory(uow_factory, station, quiet, outside, fine)
    with uow_factory() as uow:
        for bid, seen, out in [
            (quiet, T0 - timedelta(hours=3), None),
            (outside, T0, T0 - timedelta(hours=1)),
            (fine, T0, None),
        ]:
            asset = uow.assets.get_many([bid])[bid].issue(holder="C-1", at=T0 - timedelta(hours=4))
            uow.assets.save(asset)
            uow.assets.record_telemetry([TelemetryUpdate(bid, seen, None, None, out, None)])
        uow.commit()
    with uow_factory() as uow:
        found = uow.assets.loss_candidates(
            silent_before=T0 - timedelta(hours=2),
            outside_before=T0 - timedelta(minutes=30),
            limit=10_000,
        )
    ids = {a.asset_id for a in found}
    assert {quiet, outside} <= ids and fine not in ids


def test_arm_sync_inserts_new_batteries_and_keeps_our_state_of_known_ones(uow_factory):
    station, bid = uid("ST"), uid("BAT")
    given_inventory(uow_factory, station, bid)
    with uow_factory() as uow:
        assert uow.assets.get_many([bid])[bid].region == "region-1"  # the station's region
    with uow_factory() as uow:
        uow.assets.save(uow.assets.get_many([bid])[bid].issue(holder="C-1", at=T0))
        changed = uow.assets.upsert_from_arm(
            [ArmAsset(bid, "STANDARD", "AVAILABLE", station, 1, None, 100.0, 2)]
        )
        uow.commit()
    with uow_factory() as uow:
        assert changed == 0
        assert uow.assets.get_many([bid])[bid].state is AssetState.ISSUED
        assert uow.assets.states()[bid] == ("ISSUED", None, "C-1")


def test_the_outbox_leases_claimed_events_and_retries_failed_ones_when_due(uow_factory):
    e1, e2 = uid("e"), uid("e")
    with uow_factory() as uow:
        uow.outbox.add(
            [
                OutboxEvent(e1, OutboxKind.FIELD, {"x": 1}, T0),
                OutboxEvent(
                    e2, OutboxKind.WEBHOOK, {"y": 2}, T0, key="k", traceparent="00-ab-cd-01"
                ),
            ]
        )
        uow.commit()
    later = T0 + timedelta(days=3650)  # past every other test's events too
    with uow_factory() as uow:
        claimed = {
            e.event_id: e
            for e in uow.outbox.claim(
                now=later, lease_until=later + timedelta(seconds=30), limit=100_000
            )
        }
        uow.commit()
    assert {e1, e2} <= claimed.keys() and claimed[e2].payload == {"y": 2} and claimed[e2].key == "k"
    assert claimed[e2].traceparent == "00-ab-cd-01"
    with uow_factory() as uow:
        again = {e.event_id for e in uow.outbox.claim(now=later, lease_until=later, limit=100_000)}
        uow.outbox.mark_delivered([e1], at=later)
        uow.outbox.mark_failed(e2, error="boom", retry_at=later + timedelta(minutes=1), at=later)
        uow.commit()
    assert not {e1, e2} & again
    with uow_factory() as uow:
        due = {
            e.event_id: e
            for e in uow.outbox.claim(
                now=later + timedelta(minutes=2), lease_until=later, limit=100_000
            )
        }
        uow.commit()
    assert e1 not in due and due[e2].attempts == 1


def test_audit_entries_are_kept_with_the_persons_id(uow_factory):
    from iot_sync.app.ports import AuditEntry

    person = uid("P")
    with uow_factory() as uow:
        uow.audit.record(
            [
                AuditEntry(
                    person, "report_damage", "BAT-1", "accepted", T0, "m", detail={"note": "x"}
                )
            ]
        )
        uow.commit()
    with uow_factory() as uow:
        [entry] = uow.audit.entries(person_id=person, asset_id=None, limit=10)
    assert (entry.action, entry.detail) == ("report_damage", {"note": "x"})


def test_seeding_is_idempotent_and_the_directory_reads_standing_and_plan(engine_each_dialect):
    cid = uid("CUST")
    customers = [
        SeedCustomer(
            Customer(
                cid, "Zed", Standing.OVERDUE, Plan("p", battery_class="STANDARD", swap_quota=4)
            ),
            ServiceState.ACTIVE,
        )
    ]
    people = [
        Person(
            uid("P"), "Pat", PersonnelRole.TECHNICIAN, frozenset({"region-1"}), frozenset({"ST-1"})
        )
    ]
    seed(engine_each_dialect, customers=customers, personnel=people)
    seed(engine_each_dialect, customers=customers, personnel=people)
    directory = SqlCustomerDirectory(engine_each_dialect)
    assert directory.get_many([cid]) == {cid: customers[0].customer}
    assert sum(c.customer_id == cid for c in directory.all()) == 1
    from iot_sync.adapters.db.uow import SqlAlchemyUnitOfWorkFactory

    with SqlAlchemyUnitOfWorkFactory(engine_each_dialect)() as uow:
        assert uow.personnel.get(people[0].person_id) == people[0]
        assert uow.services.for_customers([cid])[cid].state is ServiceState.ACTIVE


def test_a_settlement_request_is_recorded_once_however_often_it_is_delivered(engine_each_dialect):
    settlements = SqlSettlements(engine_each_dialect)
    cid = uid("C")
    request = SettlementRequest(uid("s"), "SV", cid, "BAT", "STANDARD", "silence", "quiet", T0)
    settlements.start_loss_charge(request)
    settlements.start_loss_charge(request)
    [row] = settlements.recorded(customer_id=cid)
    assert (row["settlement_id"], row["status"]) == (request.settlement_id, "STARTED")


class StatementCounter:
    """Counts the statements a unit of work's connection sends."""

    def __init__(self, uow) -> None:
        from sqlalchemy import event

        self.count = 0
        event.listen(uow._conn, "before_cursor_execute", self._seen)

    def _seen(self, *args) -> None:
        self.count += 1


def test_a_unit_of_work_reads_a_stations_batteries_once_and_sees_its_own_changes(uow_factory):
    st, b1, b2 = uid("ST"), uid("B"), uid("B")
    given_inventory(uow_factory, st, b1, b2)
    with uow_factory() as uow:
        # Given the station's inventory read (and locked) once
        first = uow.assets.at_stations([st])[st]
        assert [a.asset_id for a in first] == [b1, b2]
        statements = StatementCounter(uow)

        # When a battery is reserved, then looked up again by id and by station
        reserved = first[0].reserve("C-1", T0 + timedelta(minutes=2))
        uow.assets.save(reserved)
        again = uow.assets.at_station(st)
        by_id = uow.assets.get_many([b1, b2])

        # Then nothing went to the database yet (saves are written behind), and both reads
        # show the reservation
        assert statements.count == 0
        assert again[0] == reserved and by_id[b1] == reserved
        issued = reserved.issue(holder="C-1", at=T0)
        uow.assets.save(issued)
        assert [a.asset_id for a in uow.assets.at_station(st)] == [b2]
        uow.commit()
        assert statements.count == 1  # both saves of b1: one UPDATE, its last state
    with uow_factory() as uow:
        assert uow.assets.get_many([b1])[b1] == issued


def test_batched_telemetry_makes_the_unit_of_work_read_those_batteries_again(uow_factory):
    st, b1 = uid("ST"), uid("B")
    given_inventory(uow_factory, st, b1)
    with uow_factory() as uow:
        assert uow.assets.get_many([b1])[b1].charge_pct == 100.0
        uow.assets.record_telemetry([TelemetryUpdate(b1, T0, 42.0, None, None, "region-1")])
        assert uow.assets.get_many([b1])[b1].charge_pct == 42.0
        assert uow.assets.at_station(st)[0].charge_pct == 42.0


def test_a_unit_of_work_keeps_the_service_it_found_in_step_with_its_saves(uow_factory):
    cid, nobody = uid("C"), uid("C")
    older = Service(uid("SV"), cid, ServiceState.ACTIVE, updated_at=T0 - timedelta(days=1))
    live = Service(uid("SV"), cid, ServiceState.ACTIVE, updated_at=T0)
    with uow_factory() as uow:
        uow.services.add(older)
        uow.services.add(live)
        uow.commit()
    with uow_factory() as uow:
        assert uow.services.for_customers([cid, nobody]) == {cid: live}
        statements = StatementCounter(uow)
        issued = replace(live, state=ServiceState.BATTERY_ISSUED, battery_id="BAT-9")
        uow.services.save(issued)
        assert uow.services.for_customers([cid, nobody]) == {cid: issued}
        assert statements.count == 0  # the save is written behind; nobody was not asked again

        # A cancelled service is no longer the one found: the save is written, then the other
        # live one read again
        uow.services.save(replace(issued, state=ServiceState.CANCELLED))
        assert uow.services.for_customers([cid]) == {cid: older}
        assert statements.count == 2
        uow.commit()
    with uow_factory() as uow:
        assert uow.services.get(live.service_id).state is ServiceState.CANCELLED


def test_saves_kept_back_are_written_at_commit_one_statement_per_table(uow_factory):
    st, b1, b2 = uid("ST"), uid("B"), uid("B")
    given_inventory(uow_factory, st, b1, b2)
    service = Service(uid("SV"), uid("C"), ServiceState.ACTIVE, updated_at=T0)
    with uow_factory() as uow:
        uow.services.add(service)
        uow.commit()
    with uow_factory() as uow:
        batteries = uow.assets.get_many([b1, b2])
        statements = StatementCounter(uow)
        uow.assets.save(batteries[b2].reserve("C-1", T0 + timedelta(minutes=2)))
        uow.assets.save(batteries[b1].issue(holder="C-1", at=T0))
        uow.services.save(replace(service, state=ServiceState.BATTERY_ISSUED, battery_id=b1))
        assert statements.count == 0
        uow.commit()
        assert statements.count == 2
    with uow_factory() as uow:
        after = uow.assets.get_many([b1, b2])
        assert (after[b1].state, after[b1].holder) == (AssetState.ISSUED, "C-1")
        assert after[b2].reserved_for == "C-1"
        assert uow.services.get(service.service_id).battery_id == b1


def test_a_save_kept_back_is_written_before_telemetry_so_the_reading_is_not_undone(uow_factory):
    st, b1 = uid("ST"), uid("B")
    given_inventory(uow_factory, st, b1)
    with uow_factory() as uow:
        battery = uow.assets.get_many([b1])[b1]  # charge 100
        uow.assets.save(battery.reserve("C-1", T0 + timedelta(minutes=2)))
        uow.assets.record_telemetry([TelemetryUpdate(b1, T0, 42.0, None, None, "region-1")])
        uow.commit()
    with uow_factory() as uow:
        after = uow.assets.get_many([b1])[b1]
        assert (after.reserved_for, after.charge_pct) == ("C-1", 42.0)


def test_saves_kept_back_are_dropped_with_a_rolled_back_unit_of_work(uow_factory):
    st, b1 = uid("ST"), uid("B")
    given_inventory(uow_factory, st, b1)
    with uow_factory() as uow:
        battery = uow.assets.get_many([b1])[b1]
        uow.assets.save(battery.issue(holder="C-1", at=T0))
    with uow_factory() as uow:
        assert uow.assets.get_many([b1])[b1].state is AssetState.AVAILABLE


def test_taken_ids_are_known_however_many_duplicate_lines_come_first(uow_factory):
    mid = uid("m")
    lines = [
        SignalRecord(topic="t", result=result, received_at=T0, processed_at=T0, message_id=mid)
        for result in [*[SignalResult.DUPLICATE] * 150, SignalResult.ACCEPTED]
    ]
    with uow_factory() as uow:
        uow.signal_log.add(lines)
        uow.commit()
    with uow_factory() as uow:
        assert uow.signal_log.known_message_ids([mid, uid("m")]) == {mid}


def test_telemetry_updates_stay_off_the_indexes(uow_factory, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("heap-only updates are PostgreSQL's")
    from sqlalchemy import text

    def updates(uow):  # this backend's counts not yet flushed to pg_stat_user_tables
        q = "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = :t"
        return uow._conn.execute(text(q), {"t": "assets"}).one()

    st, b1 = uid("ST"), uid("B")
    given_inventory(uow_factory, st, b1)
    with uow_factory() as uow:
        if uow._conn.dialect.name != "postgresql":
            return  # the SQLite variant of a PostgreSQL session
        before = updates(uow)
        for n in range(5):
            uow.assets.record_telemetry(
                [TelemetryUpdate(b1, T0 + timedelta(seconds=n), 50.0 + n, None, None, "r")]
            )
        after = updates(uow)
        # every update heap-only: no index entry added, the page pruned as it goes
        assert (after[0] - before[0], after[1] - before[1]) == (5, 5)


def test_postgresql_sessions_never_jit_compile(engine, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("JIT compilation is PostgreSQL's")
    from sqlalchemy import text

    # with stale statistics a batch's id lookup was costed high enough to be compiled each
    # time, 90-180 ms for 14 ms of execution; the engine turns JIT off for its sessions
    with engine.connect() as conn:
        assert conn.execute(text("SHOW jit")).scalar_one() == "off"


def test_every_postgresql_connection_has_the_batch_scratch_tables_and_keeps_them(
    engine, database_url
):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite batches bind parameters; the COPY scratch tables are PostgreSQL's")
    from sqlalchemy import text

    from iot_sync.adapters.db.tables import SCRATCH_TABLES

    def scratch_tables(conn):
        return set(
            conn.execute(
                text(
                    "SELECT relname FROM pg_class WHERE relpersistence = 't' "
                    "AND relnamespace = pg_my_temp_schema()"
                )
            ).scalars()
        )

    # batches no longer create them: a new connection comes with them ready, and neither
    # a rolled-back batch nor the pool's reset on check-in takes them away
    with engine.connect() as conn:
        assert scratch_tables(conn) >= set(SCRATCH_TABLES)
        conn.execute(text("INSERT INTO tmp_telemetry (asset_id) VALUES ('B')"))
        conn.rollback()
        assert scratch_tables(conn) >= set(SCRATCH_TABLES)
    with engine.connect() as conn:
        assert scratch_tables(conn) >= set(SCRATCH_TABLES)
        # and a commit empties them, so no batch sees the one before
        conn.execute(text("INSERT INTO tmp_telemetry (asset_id) VALUES ('B')"))
        conn.commit()
        assert conn.execute(text("SELECT count(*) FROM tmp_telemetry")).scalar_one() == 0


def test_a_claimed_message_id_holds_a_second_claim_until_the_first_commits(
    uow_factory, database_url
):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite writers take turns for the whole transaction already")
    import threading

    mid = uid("m")
    seen: dict[str, object] = {}
    claimed = threading.Event()

    def second_consumer():
        with uow_factory() as uow:
            uow.signal_log.claim_message_ids([mid, uid("other")])
            claimed.set()
            seen["known"] = uow.signal_log.known_message_ids([mid])

    with uow_factory() as first:
        if first._conn.dialect.name != "postgresql":
            return  # the SQLite variant of a PostgreSQL session
        first.signal_log.claim_message_ids([mid])
        other = threading.Thread(target=second_consumer)
        other.start()
        assert not claimed.wait(0.5)  # waits for the first transaction
        first.signal_log.add(
            [SignalRecord(topic="t", result=SignalResult.ACCEPTED, received_at=T0,
                          processed_at=T0, message_id=mid)]
        )  # fmt: skip
        first.commit()
    other.join(10)
    assert claimed.is_set()
    assert seen["known"] == {mid}  # so the second copy is a duplicate, not applied again


def test_a_batch_holds_its_senders_cursors_until_it_commits(uow_factory, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite writers take turns for the whole transaction already")
    import threading

    a, b, c = (f"tracker/{uid('BAT')}" for _ in range(3))
    with uow_factory() as uow:
        uow.senders.save_last_seqs({a: 1, b: 1, c: 1})
        uow.commit()
    seen: dict[str, object] = {}
    locked = threading.Event()

    def second_consumer():
        with uow_factory() as uow:
            seen["last"] = uow.senders.last_seqs([c, b])  # b is the first batch's too
            locked.set()

    with uow_factory() as first:
        # duplicates and any order: each sender read (and locked) once
        assert first.senders.last_seqs([b, a, b, uid("new")]) == {a: 1, b: 1}
        other = threading.Thread(target=second_consumer)
        other.start()
        assert not locked.wait(0.5)  # waits for the first batch
        first.senders.save_last_seqs({a: 2, b: 3})
        first.commit()
    other.join(10)
    assert locked.is_set()
    assert seen["last"] == {b: 3, c: 1}  # it sees what the first batch applied


def test_committed_outbox_rows_wake_a_listener_in_another_process_rolled_back_ones_do_not(
    engine, database_url
):
    if not database_url.startswith("postgresql"):
        pytest.skip("NOTIFY is PostgreSQL's; on SQLite the writer relays and wakes itself")
    import threading

    from fleetops_common.db import libpq
    from iot_sync.adapters.db.outbox_wake import OutboxListener
    from iot_sync.adapters.db.uow import SqlAlchemyUnitOfWorkFactory

    never_due = T0 + timedelta(days=365 * 200)  # no other test's relay ever claims them
    wake = threading.Event()
    listener = OutboxListener(libpq(engine.url), wake, poll_s=0.1)
    writer = SqlAlchemyUnitOfWorkFactory(engine)  # no in-process wake-up: only the NOTIFY
    listener.start()
    try:
        assert listener.listening.wait(10)
        assert wake.wait(5)  # the wake-up for whatever came before it listened
        wake.clear()
        with writer() as uow:  # rolled back
            uow.outbox.add([OutboxEvent(uid("e"), OutboxKind.FIELD, {"x": 1}, never_due)])
        with writer() as uow:  # committed, without outbox rows
            uow.signal_log.add(
                [SignalRecord(topic="t", result=SignalResult.ACCEPTED, received_at=T0,
                              processed_at=T0, message_id=uid("m"))]
            )  # fmt: skip
            uow.commit()
        assert not wake.wait(0.5)
        assert listener.notifications == 0
        with writer() as uow:  # two inserts, one commit: one notification
            uow.outbox.add([OutboxEvent(uid("e"), OutboxKind.FIELD, {"x": 1}, never_due)])
            uow.outbox.add([OutboxEvent(uid("e"), OutboxKind.FIELD, {"x": 2}, never_due)])
            uow.commit()
        assert wake.wait(5)
    finally:
        listener.stop()
    assert listener.notifications == 1
