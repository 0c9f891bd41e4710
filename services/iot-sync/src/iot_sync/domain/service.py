"""A customer's battery-swap service and the state machine its inputs drive.

The inputs are the "compressed" signals: many raw field events map to each. Every input is
checked against the current state; one that does not apply is a `Rejection`, never applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from iot_sync.domain.customer import Plan, SwapUsage
from iot_sync.domain.rejection import Rejection


class ServiceState(StrEnum):
    AWAITING_DEPOSIT = "AWAITING_DEPOSIT"  # signed up, deposit not yet confirmed
    ACTIVE = "ACTIVE"  # may swap; no battery in hand
    BATTERY_ISSUED = "BATTERY_ISSUED"  # holds `battery_id`
    BATTERY_LOST = "BATTERY_LOST"  # loss declared on evidence; settlement under way
    BATTERY_FOUND = "BATTERY_FOUND"  # the lost battery turned up; continue or close
    SETTLED = "SETTLED"  # the loss was charged; may continue with a new battery
    SUSPENDED = "SUSPENDED"  # set by billing; a confirmed deposit or payment lifts it
    CANCELLED = "CANCELLED"  # closed for good


class ServiceInput(StrEnum):
    DEPOSIT_CONFIRMED = "DEPOSIT_CONFIRMED"
    BATTERY_ISSUED = "BATTERY_ISSUED"
    BATTERY_RETURNED = "BATTERY_RETURNED"
    BATTERY_LOST = "BATTERY_LOST"
    BATTERY_FOUND = "BATTERY_FOUND"
    SERVICE_CANCELLED = "SERVICE_CANCELLED"
    ASSET_SETTLEMENT_COMPLETE = "ASSET_SETTLEMENT_COMPLETE"
    CONTINUE_SERVICE_REQUESTED = "CONTINUE_SERVICE_REQUESTED"


S = ServiceState
I = ServiceInput  # noqa: E741

TRANSITIONS: dict[tuple[ServiceState, ServiceInput], ServiceState] = {
    (S.AWAITING_DEPOSIT, I.DEPOSIT_CONFIRMED): S.ACTIVE,
    (S.SUSPENDED, I.DEPOSIT_CONFIRMED): S.ACTIVE,
    (S.ACTIVE, I.BATTERY_ISSUED): S.BATTERY_ISSUED,
    (S.BATTERY_ISSUED, I.BATTERY_RETURNED): S.ACTIVE,
    (S.BATTERY_ISSUED, I.BATTERY_LOST): S.BATTERY_LOST,
    (S.BATTERY_LOST, I.BATTERY_FOUND): S.BATTERY_FOUND,
    (S.BATTERY_LOST, I.ASSET_SETTLEMENT_COMPLETE): S.SETTLED,
    (S.BATTERY_FOUND, I.BATTERY_RETURNED): S.ACTIVE,
    # Continuing after a find: back to BATTERY_ISSUED if the customer still has the battery
    # (a tracker sighting), else ACTIVE (staff recovered it); decided in `Service.apply`.
    (S.BATTERY_FOUND, I.CONTINUE_SERVICE_REQUESTED): S.ACTIVE,
    (S.SETTLED, I.CONTINUE_SERVICE_REQUESTED): S.ACTIVE,
    (S.AWAITING_DEPOSIT, I.SERVICE_CANCELLED): S.CANCELLED,
    (S.ACTIVE, I.SERVICE_CANCELLED): S.CANCELLED,
    (S.SUSPENDED, I.SERVICE_CANCELLED): S.CANCELLED,
    (S.BATTERY_FOUND, I.SERVICE_CANCELLED): S.CANCELLED,
    (S.SETTLED, I.SERVICE_CANCELLED): S.CANCELLED,
}

# Why an input is refused in a state where a customer might expect it to work.
_WHY_NOT: dict[tuple[ServiceState, ServiceInput], str] = {
    (S.BATTERY_ISSUED, I.BATTERY_ISSUED): "the customer already holds a battery; return it first",
    (S.BATTERY_ISSUED, I.SERVICE_CANCELLED): "a battery is still issued; return it first",
    (S.BATTERY_LOST, I.SERVICE_CANCELLED): "a lost battery is being settled; settle it first",
    (S.SUSPENDED, I.BATTERY_ISSUED): "the service is suspended",
    (S.AWAITING_DEPOSIT, I.BATTERY_ISSUED): "the deposit is not confirmed yet",
    (S.SETTLED, I.BATTERY_FOUND): "the loss is already settled; the battery goes back to ARM",
    (S.BATTERY_FOUND, I.ASSET_SETTLEMENT_COMPLETE): "the battery was found before settlement",
}


@dataclass(frozen=True, slots=True)
class Service:
    service_id: str
    customer_id: str
    state: ServiceState
    battery_id: str | None = None
    usage: SwapUsage = field(default_factory=SwapUsage)
    updated_at: datetime | None = None

    def apply(
        self, event: ServiceInput, *, at: datetime, battery_id: str | None = None
    ) -> Service | Rejection:
        """The service after `event`, or why it does not apply.

        `battery_id`: for BATTERY_ISSUED the battery handed over; for BATTERY_RETURNED and
        BATTERY_LOST the battery concerned (must be the one held, when given); for
        BATTERY_FOUND the battery if it is still with the customer, None if staff have it.
        """
        target = TRANSITIONS.get((self.state, event))
        if target is None:
            why = _WHY_NOT.get((self.state, event), f"it does not apply to a {self.state} service")
            return Rejection("transition_not_allowed", f"{event} refused: {why}")
        held = self.battery_id
        if event is I.BATTERY_ISSUED:
            if not battery_id:
                return Rejection("battery_required", "BATTERY_ISSUED must name the battery")
            held = battery_id
        elif event in (I.BATTERY_RETURNED, I.BATTERY_LOST):
            if battery_id is not None and self.battery_id not in (None, battery_id):
                return Rejection(
                    "battery_mismatch",
                    f"{event} refused: the service holds {self.battery_id}, not {battery_id}",
                )
            held = None if event is I.BATTERY_RETURNED else self.battery_id
        elif event is I.BATTERY_FOUND:
            held = battery_id
        elif event is I.CONTINUE_SERVICE_REQUESTED and self.state is S.BATTERY_FOUND and held:
            target = S.BATTERY_ISSUED
        elif event in (I.ASSET_SETTLEMENT_COMPLETE, I.SERVICE_CANCELLED):
            held = None
        return replace(self, state=target, battery_id=held, updated_at=at)

    def count_swap(self, plan: Plan, at: datetime) -> Service:
        return replace(self, usage=self.usage.counted(plan, at))

    def swaps_left(self, plan: Plan, now: datetime) -> int:
        return self.usage.left(plan, now)
