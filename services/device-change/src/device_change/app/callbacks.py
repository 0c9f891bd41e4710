"""Carrier callbacks: acknowledged as soon as they are stored, settled in batches after."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from device_change.app.ports import (
    CallbackTracing,
    CarrierDeviceOutcome,
    Clock,
    UnitOfWorkFactory,
)
from device_change.app.processing import DeviceLineSettler, SettleReport

SETTLE_CALLBACKS = "settle_carrier_callbacks"


StoredCallback = Callable[[int, BaseException | None], None]
"""on_stored(new, error): how many of the outcomes were new, or why none was stored."""


@dataclass(eq=False)
class _Arrival:
    outcomes: Sequence[CarrierDeviceOutcome]
    on_stored: StoredCallback


class CarrierCallbackIntake:
    """Stores callbacks durably before they are acknowledged, many per transaction.

    Callbacks arrive hundreds or thousands a second, one device each. One transaction per
    callback would make them queue for the database's write lock (SQLite has one lock for
    the whole file), so a single writer thread stores whatever arrived while its previous
    commit ran, in one transaction (group commit). Each caller still returns only after
    the commit that holds its callback, so an acknowledgement never precedes durability.
    Tracing follows the work: one span per group, tied to every carrier call it answers,
    rather than one per callback (100,000 of them for a large bulk change).
    """

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        wake_settler: Callable[[], None],
        tracing: CallbackTracing | None = None,
        max_group: int = 1000,
        timeout_s: float = 30.0,
    ) -> None:
        self._uow_factory = uow_factory
        self._wake = wake_settler
        self._tracing = tracing
        self._max_group = max_group
        self._timeout_s = timeout_s
        self._arrivals: queue.SimpleQueue[_Arrival] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def accept(self, outcomes: Sequence[CarrierDeviceOutcome]) -> tuple[int, int]:
        """Store the outcomes durably; returns (new, duplicates)."""
        done = threading.Event()
        result: list[tuple[int, BaseException | None]] = []

        def stored(new: int, error: BaseException | None) -> None:
            result.append((new, error))
            done.set()

        self.submit(outcomes, stored)
        if not done.wait(self._timeout_s):
            raise TimeoutError("callback not stored in time")
        new, error = result[0]
        if error is not None:
            raise error
        return new, len(outcomes) - new

    def submit(self, outcomes: Sequence[CarrierDeviceOutcome], on_stored: StoredCallback) -> None:
        """Queue the outcomes for the next group; `on_stored` runs after its commit.

        For callers that must not block a thread while waiting (an event loop)."""
        self._ensure_writer()
        self._arrivals.put(_Arrival(outcomes, on_stored))

    def _ensure_writer(self) -> None:
        if self._writer is not None:
            return
        with self._start_lock:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_forever, name="callback-intake", daemon=True
                )
                self._writer.start()

    def _write_forever(self) -> None:
        while True:
            group = [self._arrivals.get()]
            while len(group) < self._max_group:
                try:
                    group.append(self._arrivals.get_nowait())
                except queue.Empty:
                    break
            self._store(group)

    def _store(self, group: list[_Arrival]) -> None:
        counts: list[int] = []
        error: BaseException | None = None
        outcomes = [arrival.outcomes for arrival in group]
        traced = (
            self._tracing.storing(
                dict.fromkeys(o.request_id for each in outcomes for o in each),
                callbacks=sum(map(len, outcomes)),
            )
            if self._tracing is not None
            else contextlib.nullcontext()
        )
        try:
            with traced, self._uow_factory() as uow:
                counts = uow.inbox.store_groups(outcomes)
                uow.commit()
        except BaseException as exc:  # every caller of this group learns it was not stored
            counts, error = [0] * len(group), exc
        for arrival, new in zip(group, counts, strict=True):
            with contextlib.suppress(Exception):  # one caller's failure is not the writer's
                arrival.on_stored(new, error)
        if any(counts):
            # A failed wake-up is harmless: the housekeeper wakes the settler on its rounds.
            with contextlib.suppress(Exception):
                self._wake()


class CallbackSettlement:
    """Settles stored callbacks in batches, one transaction each.

    Batches are kept small on purpose (`CALLBACK_SETTLE_BATCH`, 64): on SQLite a settling
    transaction holds the only write lock, and every callback arriving meanwhile waits for
    it before it can be stored and acknowledged. With 1,000 per batch that wait was most of
    the callbacks' p99 and halved their rate (platform benchmark, one process: 1,500/s, p99
    70 ms; with 250: 3,300/s, p99 45 ms). With callbacks stored by a receiver process of
    their own: 250 per batch, p99 93-96 ms; 125, 64-68 ms; 64, 49-56 ms, at 2-5 % less
    throughput, the settling process having the CPU to spare."""

    def __init__(self, *, uow_factory: UnitOfWorkFactory, clock: Clock, batch_size: int = 64):
        self._uow_factory = uow_factory
        self._settler = DeviceLineSettler(clock=clock)
        self._batch_size = batch_size

    def drain_once(self) -> tuple[int, SettleReport]:
        """Settle up to one batch of stored callbacks; returns (how many taken, report)."""
        with self._uow_factory() as uow:
            claimed = uow.inbox.claim(self._batch_size)
            if not claimed:
                return 0, SettleReport()
            report = self._settler.settle(
                uow, [outcome for _, outcome in claimed], source="callback"
            )
            uow.inbox.mark_processed([row_id for row_id, _ in claimed])
            uow.commit()
        return len(claimed), report

    def drain(self) -> SettleReport:
        settled = ignored = pending = 0
        while True:
            taken, report = self.drain_once()
            settled += report.settled
            ignored += report.ignored
            pending += report.still_pending
            if taken < self._batch_size:
                return SettleReport(settled=settled, ignored=ignored, still_pending=pending)
