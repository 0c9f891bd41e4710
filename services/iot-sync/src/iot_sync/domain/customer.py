"""Customers as iot-sync needs them: who they are, their standing and their plan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Standing(StrEnum):
    GOOD = "GOOD"
    OVERDUE = "OVERDUE"  # payment late: no new battery until billing clears it
    BLOCKED = "BLOCKED"  # written off or fraud hold


@dataclass(frozen=True, slots=True)
class Plan:
    plan_id: str
    battery_class: str  # STANDARD, HIGH_CAPACITY: the only class the customer may take
    swap_quota: int  # swaps allowed per period
    period_days: int = 30

    def __post_init__(self) -> None:
        if self.swap_quota < 0:
            raise ValueError("a swap quota cannot be negative")
        if self.period_days <= 0:
            raise ValueError("a plan period must last at least one day")

    @property
    def period(self) -> timedelta:
        return timedelta(days=self.period_days)


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    name: str
    standing: Standing
    plan: Plan

    @property
    def in_good_standing(self) -> bool:
        return self.standing is Standing.GOOD


@dataclass(frozen=True, slots=True)
class SwapUsage:
    """Swaps counted in the current plan period (a rolling period from its first swap)."""

    swaps: int = 0
    period_started_at: datetime | None = None

    def current(self, plan: Plan, now: datetime) -> SwapUsage:
        if self.period_started_at is None or now >= self.period_started_at + plan.period:
            return SwapUsage(0, None)
        return self

    def left(self, plan: Plan, now: datetime) -> int:
        return max(plan.swap_quota - self.current(plan, now).swaps, 0)

    def counted(self, plan: Plan, at: datetime) -> SwapUsage:
        now_usage = self.current(plan, at)
        return SwapUsage(now_usage.swaps + 1, now_usage.period_started_at or at)
