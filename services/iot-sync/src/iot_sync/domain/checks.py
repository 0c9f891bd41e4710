"""The validators: for each scenario an ordered list of small pure checks.

A list's order is its priority: a station is told the first reason that applies, so a
customer who is unknown hears "unknown customer", not "no charged battery". The use cases
gather a context, run `first_rejection(LIST, context)`, and act only on a pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from iot_sync.domain.asset import Asset, AssetMove, AssetState, allowed_moves
from iot_sync.domain.customer import Customer
from iot_sync.domain.personnel import Person, PersonnelAction
from iot_sync.domain.rejection import Check, Rejection
from iot_sync.domain.service import Service, ServiceState
from iot_sync.domain.station import Station

# ---- data shape (the envelope was well formed; are the business fields there?) ----------


def missing_field(data: Mapping[str, Any], required: Sequence[str]) -> Rejection | None:
    for name in required:
        value = data.get(name)
        if value is None or value == "":
            return Rejection("missing_field", f"data.{name} is required")
        if not isinstance(value, str):
            return Rejection("wrong_type", f"data.{name} must be a string")
    return None


# ---- S1: authorize ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthorizationContext:
    station_id: str
    customer_id: str
    now: datetime
    station: Station | None
    customer: Customer | None
    service: Service | None
    returned_battery_id: str | None = None
    batteries_at_station: Sequence[Asset] = field(default_factory=tuple)

    def free_batteries(self) -> list[Asset]:
        return [a for a in self.batteries_at_station if a.free_for(self.customer_id, self.now)]

    def eligible_batteries(self) -> list[Asset]:
        if self.customer is None:
            return []
        wanted = self.customer.plan.battery_class
        return [a for a in self.free_batteries() if a.battery_class == wanted]


def station_known(c: AuthorizationContext) -> Rejection | None:
    if c.station is None:
        return Rejection("unknown_station", f"station {c.station_id} is not in the inventory")
    return None


def customer_known(c: AuthorizationContext) -> Rejection | None:
    if c.customer is None:
        return Rejection("unknown_customer", f"customer {c.customer_id} is not known")
    return None


def service_exists(c: AuthorizationContext) -> Rejection | None:
    if c.service is None:
        return Rejection("no_service", f"customer {c.customer_id} has no battery-swap service")
    return None


_NOT_SWAPPABLE: dict[ServiceState, tuple[str, str]] = {
    ServiceState.SUSPENDED: ("service_suspended", "the service is suspended"),
    ServiceState.CANCELLED: ("service_cancelled", "the service is cancelled"),
    ServiceState.AWAITING_DEPOSIT: ("deposit_not_confirmed", "the deposit is not confirmed yet"),
    ServiceState.BATTERY_LOST: (
        "battery_lost_unsettled",
        "a battery is reported lost; settle it or bring it back first",
    ),
    ServiceState.BATTERY_FOUND: (
        "continuation_pending",
        "the lost battery was found; ask to continue the service first",
    ),
    ServiceState.SETTLED: (
        "continuation_pending",
        "the loss is settled; ask to continue the service first",
    ),
}


def service_may_swap(c: AuthorizationContext) -> Rejection | None:
    if c.service is not None and c.service.state in _NOT_SWAPPABLE:
        code, words = _NOT_SWAPPABLE[c.service.state]
        return Rejection(code, words)
    return None


def standing_good(c: AuthorizationContext) -> Rejection | None:
    if c.customer is not None and not c.customer.in_good_standing:
        return Rejection(
            "bad_standing",
            f"payment standing is {c.customer.standing}; please settle the account",
        )
    return None


def battery_in_hand_returned(c: AuthorizationContext) -> Rejection | None:
    held = c.service.battery_id if c.service is not None else None
    if held is not None and c.returned_battery_id != held:
        return Rejection(
            "battery_not_returned",
            f"battery {held} must be returned to swap"
            + (f", not {c.returned_battery_id}" if c.returned_battery_id else ""),
        )
    return None


def swap_quota_left(c: AuthorizationContext) -> Rejection | None:
    if c.customer is None or c.service is None:
        return None
    plan = c.customer.plan
    if c.service.swaps_left(plan, c.now) <= 0:
        return Rejection(
            "swap_quota_exhausted",
            f"all {plan.swap_quota} swaps of plan {plan.plan_id} are used for this period",
        )
    return None


def battery_class_stocked(c: AuthorizationContext) -> Rejection | None:
    if c.customer is None:
        return None
    if c.free_batteries() and not c.eligible_batteries():
        stocked = sorted({a.battery_class for a in c.free_batteries()})
        return Rejection(
            "battery_class_mismatch",
            f"plan {c.customer.plan.plan_id} takes {c.customer.plan.battery_class} batteries; "
            f"this station has only {', '.join(stocked)} charged",
        )
    return None


def charged_battery_available(c: AuthorizationContext) -> Rejection | None:
    if not c.eligible_batteries():
        return Rejection(
            "no_charged_battery", f"station {c.station_id} has no charged battery free right now"
        )
    return None


AUTHORIZE_CHECKS: tuple[Check[AuthorizationContext], ...] = (
    station_known,
    customer_known,
    service_exists,
    service_may_swap,
    standing_good,
    battery_in_hand_returned,
    swap_quota_left,
    battery_class_stocked,
    charged_battery_available,
)


def choose_battery(c: AuthorizationContext) -> Asset | None:
    """The fullest eligible battery; the one already promised to this customer first."""
    eligible = c.eligible_batteries()
    if not eligible:
        return None
    return min(
        eligible,
        key=lambda a: (
            a.reserved_for != c.customer_id,
            -(a.charge_pct or 0.0),
            a.slot or 0,
            a.asset_id,
        ),
    )


# ---- S1: dispense and return confirmations ----------------------------------------------


@dataclass(frozen=True, slots=True)
class HandOverContext:
    """A station says a battery left (dispense) or came back (return)."""

    station_id: str
    customer_id: str
    battery_id: str
    now: datetime
    customer: Customer | None
    service: Service | None
    battery: Asset | None


def handover_customer_known(c: HandOverContext) -> Rejection | None:
    if c.customer is None:
        return Rejection("unknown_customer", f"customer {c.customer_id} is not known")
    if c.service is None:
        return Rejection("no_service", f"customer {c.customer_id} has no battery-swap service")
    return None


def handover_battery_known(c: HandOverContext) -> Rejection | None:
    if c.battery is None:
        return Rejection("unknown_battery", f"battery {c.battery_id} is not in the inventory")
    return None


def dispensed_from_this_station(c: HandOverContext) -> Rejection | None:
    if c.battery is not None and c.battery.station_id != c.station_id:
        return Rejection(
            "battery_not_at_station",
            f"battery {c.battery_id} is not in station {c.station_id}",
        )
    return None


def dispensed_battery_free(c: HandOverContext) -> Rejection | None:
    if c.battery is not None and not c.battery.free_for(c.customer_id, c.now):
        if c.battery.state is AssetState.AVAILABLE:
            return Rejection(
                "battery_reserved", f"battery {c.battery_id} is reserved for another customer"
            )
        return Rejection(
            "battery_not_available", f"battery {c.battery_id} is {c.battery.state}, not charged"
        )
    return None


def dispensed_class_in_plan(c: HandOverContext) -> Rejection | None:
    if (
        c.battery is not None
        and c.customer is not None
        and c.battery.battery_class != c.customer.plan.battery_class
    ):
        return Rejection(
            "battery_class_mismatch",
            f"plan {c.customer.plan.plan_id} takes {c.customer.plan.battery_class}, "
            f"battery {c.battery_id} is {c.battery.battery_class}",
        )
    return None


def returned_battery_held_by_customer(c: HandOverContext) -> Rejection | None:
    if c.battery is None:
        return None
    held = c.service.battery_id if c.service is not None else None
    if c.battery.holder != c.customer_id and held != c.battery_id:
        return Rejection(
            "battery_not_held",
            f"battery {c.battery_id} is not issued to customer {c.customer_id}",
        )
    return None


DISPENSE_CHECKS: tuple[Check[HandOverContext], ...] = (
    handover_customer_known,
    handover_battery_known,
    dispensed_from_this_station,
    dispensed_battery_free,
    dispensed_class_in_plan,
)

RETURN_CHECKS: tuple[Check[HandOverContext], ...] = (
    handover_customer_known,
    handover_battery_known,
    returned_battery_held_by_customer,
)


# ---- S2: personnel (device scanner) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonnelContext:
    person_id: str
    action: PersonnelAction
    asset_id: str
    person: Person | None
    asset: Asset | None
    station: Station | None  # the station the asset sits in, if any


def person_known(c: PersonnelContext) -> Rejection | None:
    if c.person is None:
        return Rejection("unknown_person", f"{c.person_id} is not registered field personnel")
    if not c.person.active:
        return Rejection("person_inactive", f"{c.person_id} is not active")
    return None


def role_allows_action(c: PersonnelContext) -> Rejection | None:
    if c.person is not None and not c.person.may(c.action):
        return Rejection(
            "role_not_allowed", f"a {c.person.role} may not {c.action.replace('_', ' ')}"
        )
    return None


def asset_known(c: PersonnelContext) -> Rejection | None:
    if c.asset is None:
        return Rejection("unknown_battery", f"battery {c.asset_id} is not in the inventory")
    return None


def within_assignment(c: PersonnelContext) -> Rejection | None:
    if c.person is None or c.asset is None:
        return None
    region = c.station.region if c.station is not None else c.asset.region
    if not c.person.covers(region=region, station_id=c.asset.station_id):
        where = c.asset.station_id or region or "an unknown place"
        return Rejection(
            "outside_assignment",
            f"{c.person_id} is not assigned to {where} where battery {c.asset_id} is",
        )
    return None


_MOVE_FOR: dict[PersonnelAction, AssetMove] = {
    PersonnelAction.REPORT_DAMAGE: AssetMove.REPORT_DAMAGE,
    PersonnelAction.REPORT_LOST: AssetMove.DECLARE_LOST,
    PersonnelAction.REPORT_RECOVERED: AssetMove.RECOVER,
}


def condition_applies(c: PersonnelContext) -> Rejection | None:
    move = _MOVE_FOR.get(c.action)
    if move is None or c.asset is None:
        return None
    if move not in allowed_moves(c.asset.state):
        return Rejection(
            "condition_not_applicable",
            f"battery {c.asset_id} is {c.asset.state}; {c.action.replace('_', ' ')} does not apply",
        )
    return None


PERSONNEL_CHECKS: tuple[Check[PersonnelContext], ...] = (
    person_known,
    role_allows_action,
    asset_known,
    within_assignment,
    condition_applies,
)
