"""Callbacks are stored many per transaction, and each caller hears about its own."""

import contextlib
import threading
import time

import pytest

from device_change.app.callbacks import CarrierCallbackIntake
from device_change.app.ports import CarrierDeviceOutcome

from ..fakes import FakeUnitOfWorkFactory, make_iccid


class GatedUnitOfWorks(FakeUnitOfWorkFactory):
    """Holds the first transaction open until told to go, and counts transactions."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = 0
        self.gate = threading.Event()

    def __call__(self):
        self.opened += 1
        if self.opened == 1:
            assert self.gate.wait(5)
        return super().__call__()


def outcome(n: int) -> CarrierDeviceOutcome:
    return CarrierDeviceOutcome("req-1", make_iccid(n), True)


def test_callbacks_arriving_during_a_commit_share_the_next_transaction():
    uows = GatedUnitOfWorks()
    wakes = []
    intake = CarrierCallbackIntake(uow_factory=uows, wake_settler=lambda: wakes.append(1))
    results: dict[int, tuple[int, int]] = {}

    def post(n: int, device: int) -> None:
        results[n] = intake.accept([outcome(device)])

    # Given a first callback whose transaction is slow
    first = threading.Thread(target=post, args=(0, 100))
    first.start()
    deadline = time.monotonic() + 5
    while uows.opened == 0:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    # When 20 more arrive meanwhile, two of them the same device's duplicate
    others = [threading.Thread(target=post, args=(n, n if n < 20 else 19)) for n in range(1, 21)]
    for t in others:
        t.start()
    while intake._arrivals.qsize() < 20:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    uows.gate.set()
    for t in [first, *others]:
        t.join(5)
    # Then they were stored in one more transaction, not twenty
    assert uows.opened == 2
    assert len(uows.store.inbox) == 20  # 19 devices and the first one
    # and every caller learned whether its callback was new or a duplicate
    assert sorted(results.values()).count((1, 0)) == 20
    assert sorted(results.values()).count((0, 1)) == 1
    assert wakes


def test_a_failed_store_is_reported_to_every_caller_of_the_group():
    class Broken(FakeUnitOfWorkFactory):
        def __call__(self):
            raise RuntimeError("database is gone")

    intake = CarrierCallbackIntake(uow_factory=Broken(), wake_settler=lambda: None)
    with pytest.raises(RuntimeError, match="database is gone"):
        intake.accept([outcome(1)])


class RecordingTracing:
    """Records each group it traces, and whether the store ran inside it."""

    def __init__(self, uows: FakeUnitOfWorkFactory) -> None:
        self.uows = uows
        self.groups: list[tuple[list[str], int, int]] = []

    @contextlib.contextmanager
    def storing(self, request_ids, callbacks):
        stored_before = len(self.uows.store.inbox)
        yield
        self.groups.append(
            (list(request_ids), callbacks, len(self.uows.store.inbox) - stored_before)
        )


def test_a_group_is_traced_once_with_the_carrier_requests_it_answers():
    uows = GatedUnitOfWorks()
    tracing = RecordingTracing(uows)
    intake = CarrierCallbackIntake(uow_factory=uows, wake_settler=lambda: None, tracing=tracing)
    first = threading.Thread(target=intake.accept, args=([outcome(1)],))
    first.start()
    deadline = time.monotonic() + 5
    while uows.opened == 0:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    arrivals = [
        [CarrierDeviceOutcome(request, make_iccid(n), True)]
        for n, request in enumerate(["req-2", "req-3", "req-2", "req-3", "req-4"], start=10)
    ]
    others = [threading.Thread(target=intake.accept, args=(a,)) for a in arrivals]
    for t in others:
        t.start()
    while intake._arrivals.qsize() < len(arrivals):
        assert time.monotonic() < deadline
        time.sleep(0.001)
    uows.gate.set()
    for t in [first, *others]:
        t.join(5)
    # each request once, in order of arrival; the store ran inside the traced block
    assert tracing.groups == [(["req-1"], 1, 1), (["req-2", "req-3", "req-4"], 5, 5)]
