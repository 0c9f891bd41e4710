import threading

from device_change.app.ports import (
    CarrierDeviceOutcome,
    CarrierDeviceState,
    CarrierOutcomeUnknown,
    CarrierRejected,
    CarrierThrottled,
    CarrierUnavailable,
)
from device_change.app.processing import POLL_BATCH
from device_change.app.submit import SEND_BATCH, DeviceInput, SubmitBulkChange
from device_change.domain.bulk_change import BatchStatus, BulkChangeStatus, LineStatus
from device_change.domain.changes import CarrierAction, ChangeType
from device_change.domain.device import DeviceStatus

from ..fakes import make_iccid
from .conftest import TENANT


def submit(world, ns, target="SUSPENDED"):
    result = world.submission.submit(
        SubmitBulkChange(
            tenant=TENANT,
            submitted_by="ops@demo",
            change_type=ChangeType.UPDATE_DEVICE_STATUS,
            devices=[DeviceInput(iccid=make_iccid(n)) for n in ns],
            params={"target_status": target},
        )
    )
    return result.bulk_change.id


def run_sends(world):
    for message in world.uow.take_outbox():
        if message.actor == SEND_BATCH:
            world.sender.handle(message.payload["batch_id"])


def callback(world, request_id, n, ok=True, code=None, text=None):
    return CarrierDeviceOutcome(request_id, make_iccid(n), ok, code, text)


def lines_by_iccid(world):
    return {ln.iccid: ln for ln in world.store.lines.values()}


def test_lines_go_out_grouped_and_callbacks_settle_them(world):
    bulk_id = submit(world, range(1, 6))
    run_sends(world)
    assert [(a, len(ids)) for a, ids, _ in world.carrier.sent] == [
        (CarrierAction.SUSPEND, 4),
        (CarrierAction.SUSPEND, 1),
    ]
    assert all(ln.status is LineStatus.SUBMITTED for ln in world.store.lines.values())
    assert {m.actor for m in world.store.outbox} == {POLL_BATCH}

    outcomes = [callback(world, "req-1", n) for n in range(1, 5)]
    outcomes.append(
        callback(
            world,
            "req-2",
            5,
            ok=False,
            code="UnifiedWebService.REQUEST_FAILED.DeviceNotFound",
            text="REQUEST_FAILED. Device not found",
        )
    )
    assert world.intake.accept(outcomes) == (5, 0)
    world.settlement.drain()

    lines = lines_by_iccid(world)
    assert lines[make_iccid(1)].status is LineStatus.SUCCEEDED
    assert lines[make_iccid(5)].status is LineStatus.FAILED
    assert lines[make_iccid(5)].reason == (
        "carrier: Device not found (UnifiedWebService.REQUEST_FAILED.DeviceNotFound)"
    )
    assert world.store.devices[make_iccid(1)].status is DeviceStatus.SUSPENDED
    assert world.store.devices[make_iccid(5)].status is DeviceStatus.ACTIVE
    bulk = world.store.bulks[bulk_id]
    assert bulk.status is BulkChangeStatus.COMPLETED_WITH_ERRORS and bulk.finished_at
    entry = next(e for e in world.store.audit if e.iccid == make_iccid(1))
    assert entry.before["status"] == "ACTIVE" and entry.after["status"] == "SUSPENDED"
    assert entry.actor == "ops@demo" and entry.bulk_change_id == bulk_id


def test_duplicated_and_late_callbacks_change_nothing(world):
    submit(world, [1])
    run_sends(world)
    ok = callback(world, "req-1", 1)
    world.intake.accept([ok])
    assert world.intake.accept([ok]) == (0, 1)  # stored once
    world.settlement.drain()
    # A late contradicting callback for a settled line is ignored.
    world.intake.accept([callback(world, "req-1", 1, ok=False, code="X.REQUEST_FAILED.Y")])
    report = world.settlement.drain()
    assert report.ignored == 1
    line = lines_by_iccid(world)[make_iccid(1)]
    assert line.status is LineStatus.SUCCEEDED
    assert len(world.store.audit) == 1


def test_throttling_sends_the_batch_again_later(world):
    submit(world, [1])
    world.carrier.script = [CarrierThrottled("429", retry_after_s=2.0)]
    run_sends(world)
    batch = next(iter(world.store.batches.values()))
    assert batch.status is BatchStatus.PLANNED
    retry = [m for m in world.store.outbox if m.actor == SEND_BATCH]
    assert len(retry) == 1 and retry[0].delay_ms >= 2000
    run_sends(world)
    assert batch.id and world.store.batches[batch.id].status is BatchStatus.SUBMITTED
    assert len(world.carrier.sent) == 2


def test_permanent_refusal_fails_lines_with_the_carriers_reason(world):
    bulk_id = submit(world, [1, 2])
    world.carrier.script = [CarrierRejected("INPUT_INVALID.NumberofDevices", "too many devices")]
    run_sends(world)
    assert {ln.status for ln in world.store.lines.values()} == {LineStatus.FAILED}
    assert "too many devices" in next(iter(world.store.lines.values())).reason
    assert world.store.bulks[bulk_id].status is BulkChangeStatus.COMPLETED_WITH_ERRORS


def test_unknown_outcome_is_reconciled_never_blindly_resent(world):
    submit(world, [1, 2, 3])
    world.carrier.script = [CarrierOutcomeUnknown("read timeout")]
    run_sends(world)
    assert len(world.carrier.sent) == 1
    batch = next(iter(world.store.batches.values()))
    assert batch.status is BatchStatus.SENDING
    # The carrier got it: device 1 already suspended, device 2 still pending, 3 never arrived.
    world.carrier.states = {
        make_iccid(1): CarrierDeviceState(
            make_iccid(1), None, None, DeviceStatus.SUSPENDED, "suspend", "M2M_4G_1GB", None
        ),
        make_iccid(2): CarrierDeviceState(
            make_iccid(2), None, None, None, "pending suspend", "M2M_4G_1GB", None
        ),
        make_iccid(3): CarrierDeviceState(
            make_iccid(3), None, None, DeviceStatus.ACTIVE, "active", "M2M_4G_1GB", None
        ),
    }
    run_sends(world)  # the reconcile message
    lines = lines_by_iccid(world)
    assert lines[make_iccid(1)].status is LineStatus.SUCCEEDED
    assert lines[make_iccid(2)].status is LineStatus.SUBMITTED
    # Only device 3 is sent again.
    assert world.carrier.sent[-1][1] == [make_iccid(3)]
    # The first request's callback for device 2 arrives with a request id we never learned.
    world.intake.accept([CarrierDeviceOutcome("req-lost", make_iccid(2), True)])
    world.settlement.drain()
    assert lines_by_iccid(world)[make_iccid(2)].status is LineStatus.SUCCEEDED


def test_a_device_the_carrier_cannot_be_asked_about_keeps_the_batch_from_being_resent(world):
    submit(world, [1, 2])
    world.carrier.script = [CarrierOutcomeUnknown("read timeout")]
    run_sends(world)
    world.carrier.states = {
        make_iccid(n): CarrierDeviceState(
            make_iccid(n), None, None, DeviceStatus.ACTIVE, "active", "M2M_4G_1GB", None
        )
        for n in (1, 2)
    }
    # Given every lookup of device 2 fails (three tries), while device 1 answers
    world.carrier.lookup_script = [None, CarrierUnavailable("503")] + [
        CarrierUnavailable("503")
    ] * 2
    run_sends(world)  # the reconcile message
    # Then nothing is re-sent while device 2 is in doubt, and a later look is scheduled
    assert len(world.carrier.sent) == 1
    batch = next(iter(world.store.batches.values()))
    assert batch.status is BatchStatus.SENDING
    assert world.carrier.looked_up.count(make_iccid(2)) == 3
    assert any(m.actor == SEND_BATCH for m in world.store.outbox)
    # When the carrier answers again, the devices it never got are sent once more
    run_sends(world)
    assert world.carrier.sent[-1][1] == [make_iccid(1), make_iccid(2)]
    assert world.store.batches[batch.id].status is BatchStatus.SUBMITTED


def test_callbacks_that_overtake_the_carriers_answer_still_finish_the_bulk_change(world):
    bulk_id = submit(world, [1, 2])

    def callbacks_first(request_id):
        world.intake.accept([callback(world, request_id, n) for n in (1, 2)])
        world.settlement.drain()

    world.carrier.before_answer = callbacks_first
    run_sends(world)
    assert all(ln.status is LineStatus.SUCCEEDED for ln in world.store.lines.values())
    assert all(b.status is BatchStatus.DONE for b in world.store.batches.values())
    assert world.store.bulks[bulk_id].status is BulkChangeStatus.COMPLETED


def test_a_redelivered_send_message_after_success_sends_nothing(world):
    submit(world, [1])
    batch_id = next(iter(world.store.batches))
    world.sender.handle(batch_id)
    world.sender.handle(batch_id)
    assert len(world.carrier.sent) == 1


def test_cancel_stops_lines_not_yet_sent(world):
    bulk_id = submit(world, range(1, 9))  # two carrier requests of 4
    first = next(m for m in world.uow.take_outbox())
    world.sender.handle(first.payload["batch_id"])
    _, cancelled = world.cancellation.cancel(tenant=TENANT, bulk_change_id=bulk_id)
    assert cancelled == 4
    counts = {s: 0 for s in LineStatus}
    for ln in world.store.lines.values():
        counts[ln.status] += 1
    assert counts[LineStatus.CANCELLED] == 4 and counts[LineStatus.SUBMITTED] == 4
    world.intake.accept([callback(world, "req-1", n) for n in range(1, 5)])
    world.settlement.drain()
    assert world.store.bulks[bulk_id].status is BulkChangeStatus.CANCELLED


def test_lost_callbacks_are_settled_by_polling_the_request_status(world):
    bulk_id = submit(world, [1, 2])
    run_sends(world)
    world.carrier.outcomes["req-1"] = [
        CarrierDeviceOutcome("req-1", make_iccid(1), True),
        CarrierDeviceOutcome("req-1", make_iccid(2), False),
    ]
    poll = next(m for m in world.uow.take_outbox() if m.actor == POLL_BATCH)
    world.poller.handle(poll.payload["batch_id"], poll.payload["round"])
    lines = lines_by_iccid(world)
    assert lines[make_iccid(1)].status is LineStatus.SUCCEEDED
    assert lines[make_iccid(2)].status is LineStatus.FAILED
    assert "callback with the reason never arrived" in lines[make_iccid(2)].reason
    assert world.store.bulks[bulk_id].status is BulkChangeStatus.COMPLETED_WITH_ERRORS


def test_a_device_still_pending_is_polled_again_later(world):
    submit(world, [1])
    run_sends(world)
    world.carrier.outcomes["req-1"] = [CarrierDeviceOutcome("req-1", make_iccid(1), None)]
    poll = next(m for m in world.uow.take_outbox() if m.actor == POLL_BATCH)
    world.poller.handle(poll.payload["batch_id"], 1)
    again = [m for m in world.store.outbox if m.actor == POLL_BATCH]
    assert len(again) == 1 and again[0].payload["round"] == 2
    assert again[0].delay_ms > poll.delay_ms


def test_a_throttled_poll_asks_again_soon_without_spending_a_round(world):
    submit(world, [1])
    run_sends(world)
    world.carrier.status_script = [CarrierThrottled("429", retry_after_s=1.0)]
    poll = next(m for m in world.uow.take_outbox() if m.actor == POLL_BATCH)
    world.poller.handle(poll.payload["batch_id"], 3)
    again = [m for m in world.store.outbox if m.actor == POLL_BATCH]
    assert len(again) == 1 and again[0].payload["round"] == 3
    assert 1000 <= again[0].delay_ms < 3000


def test_local_only_change_needs_no_carrier(world):
    n = 20
    world.add_device(n, DeviceStatus.DEACTIVATED)
    bulk_id = submit(world, [n], target="INVENTORY")
    run_sends(world)
    assert world.carrier.sent == []
    assert world.store.devices[make_iccid(n)].status is DeviceStatus.INVENTORY
    assert world.store.bulks[bulk_id].status is BulkChangeStatus.COMPLETED


def test_throttled_sends_do_not_use_up_attempts(world):
    from device_change.app.ports import CarrierUnavailable

    submit(world, [1])
    # Ten refusals for rate, then one 5xx: still far from the attempt limit.
    world.carrier.script = [CarrierThrottled("429")] * 10 + [CarrierUnavailable("503")]
    for _ in range(12):
        run_sends(world)
    line = lines_by_iccid(world)[make_iccid(1)]
    assert line.status is LineStatus.SUBMITTED
    assert line.attempts == 2  # the 503 and the send that got through


def test_senders_wait_for_room_in_the_devices_in_flight_limit(world):
    from device_change.app.processing import DevicesInFlight

    in_flight = DevicesInFlight(4)
    sender = world.make_sender(in_flight=in_flight)
    submit(world, range(1, 6))  # two carrier requests: 4 devices, then 1
    first, second = [m.payload["batch_id"] for m in world.uow.take_outbox()]
    at_carrier, release = threading.Event(), threading.Event()
    held_at_carrier = []

    def hold_the_answer(request_id):
        held_at_carrier.append(in_flight.held)
        at_carrier.set()
        assert release.wait(5)

    world.carrier.before_answer = hold_the_answer
    one = threading.Thread(target=sender.handle, args=(first,))
    one.start()
    assert at_carrier.wait(5)
    two = threading.Thread(target=sender.handle, args=(second,))
    two.start()
    two.join(0.3)
    assert two.is_alive() and len(world.carrier.sent) == 1  # no room for one more device
    release.set()
    one.join(5)
    two.join(5)
    assert len(world.carrier.sent) == 2 and held_at_carrier == [4, 1]
    assert in_flight.held == 0


def test_a_request_larger_than_the_limit_goes_alone_and_no_limit_means_no_wait():
    from device_change.app.processing import DevicesInFlight

    limited = DevicesInFlight(10)
    with limited.hold(50):
        assert limited.held == 10
    assert limited.held == 0
    unlimited = DevicesInFlight(0)
    with unlimited.hold(10**6), unlimited.hold(10**6):
        assert unlimited.held == 0


def test_a_poller_waits_for_room_in_the_devices_in_flight_limit(world):
    from device_change.app.processing import DevicesInFlight

    in_flight = DevicesInFlight(2)
    poller = world.make_poller(in_flight=in_flight)
    submit(world, [1, 2])
    run_sends(world)
    world.carrier.outcomes["req-1"] = [
        CarrierDeviceOutcome("req-1", make_iccid(n), True) for n in (1, 2)
    ]
    poll = next(m for m in world.uow.take_outbox() if m.actor == POLL_BATCH)
    with in_flight.hold(1):  # a sender holds half the room; the poll needs all of it
        polling = threading.Thread(target=poller.handle, args=(poll.payload["batch_id"], 1))
        polling.start()
        polling.join(0.3)
        assert polling.is_alive()
        assert {ln.status for ln in world.store.lines.values()} == {LineStatus.SUBMITTED}
    polling.join(5)
    assert {ln.status for ln in world.store.lines.values()} == {LineStatus.SUCCEEDED}


def test_a_poll_settles_its_answer_a_chunk_per_transaction(world, monkeypatch):
    from ..fakes import FakeUnitOfWork

    poller = world.make_poller(settle_chunk=1)
    bulk_id = submit(world, [1, 2, 3])
    run_sends(world)
    world.carrier.outcomes["req-1"] = [
        CarrierDeviceOutcome("req-1", make_iccid(n), True) for n in (1, 2, 3)
    ]
    poll = next(m for m in world.uow.take_outbox() if m.actor == POLL_BATCH)
    settled_per_commit = []
    commit = FakeUnitOfWork.commit

    def counting_commit(self):
        commit(self)
        settled_per_commit.append(
            sum(ln.status is LineStatus.SUCCEEDED for ln in world.store.lines.values())
        )

    monkeypatch.setattr(FakeUnitOfWork, "commit", counting_commit)
    poller.handle(poll.payload["batch_id"], poll.payload["round"])
    assert settled_per_commit == [1, 2, 3]
    assert world.store.bulks[bulk_id].status is BulkChangeStatus.COMPLETED
