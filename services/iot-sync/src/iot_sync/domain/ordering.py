"""Per-sender ordering: duplicates change nothing, and messages apply in `seq` order.

A sender's messages are applied in ascending `seq`. A message whose `seq` is at or below
the last applied one is stale (a replay or a duplicate). A message after a gap is held back,
durably, until the missing ones arrive or until the gap has been open for `hold_for`; then
the gap is given up on and the held messages apply in order. `hold_for` of zero never holds
(used for telemetry, which is a snapshot: the newest reading is worth more than waiting).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Arrival(Generic[T]):
    seq: int
    waiting_since: datetime  # when it arrived (first arrival, for held messages)
    item: T


@dataclass(slots=True)
class SenderPlan(Generic[T]):
    apply: list[T] = field(default_factory=list)  # in seq order
    stale: list[T] = field(default_factory=list)
    hold: list[T] = field(default_factory=list)
    last_seq: int | None = None
    gaps_skipped: list[tuple[int, int]] = field(default_factory=list)  # (first, last) missing


def plan_sender(
    last_applied: int | None,
    arrivals: Sequence[Arrival[T]],
    *,
    now: datetime,
    hold_for: timedelta,
) -> SenderPlan[T]:
    """Decide, for one sender, what applies now, what is stale and what keeps waiting.

    A sender never seen before starts at its lowest `seq`: there is nothing to wait for.
    """
    plan: SenderPlan[T] = SenderPlan(last_seq=last_applied)
    ordered = sorted(arrivals, key=lambda a: (a.seq, a.waiting_since))
    seen: set[int] = set()
    pending: list[Arrival[T]] = []
    for arrival in ordered:
        if arrival.seq in seen or (last_applied is not None and arrival.seq <= last_applied):
            plan.stale.append(arrival.item)
            continue
        seen.add(arrival.seq)
        pending.append(arrival)
    last = last_applied
    for index, arrival in enumerate(pending):
        if last is not None and arrival.seq > last + 1:
            gap_open_since = min(a.waiting_since for a in pending[index:])
            if now - gap_open_since < hold_for:
                plan.hold.extend(a.item for a in pending[index:])
                break
            plan.gaps_skipped.append((last + 1, arrival.seq - 1))
        plan.apply.append(arrival.item)
        last = arrival.seq
    plan.last_seq = last
    return plan
