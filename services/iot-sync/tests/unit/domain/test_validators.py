from datetime import UTC, datetime, timedelta

import pytest

from iot_sync.domain.asset import Asset, AssetState
from iot_sync.domain.checks import (
    AUTHORIZE_CHECKS,
    DISPENSE_CHECKS,
    PERSONNEL_CHECKS,
    RETURN_CHECKS,
    AuthorizationContext,
    HandOverContext,
    PersonnelContext,
    choose_battery,
    missing_field,
)
from iot_sync.domain.customer import Customer, Plan, Standing, SwapUsage
from iot_sync.domain.personnel import Person, PersonnelAction, PersonnelRole
from iot_sync.domain.rejection import Rejection, first_rejection
from iot_sync.domain.service import Service, ServiceState
from iot_sync.domain.station import Station

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PLAN = Plan("std", battery_class="STANDARD", swap_quota=2)
CUSTOMER = Customer("C-1", "Ada", Standing.GOOD, PLAN)
STATION = Station("ST-1", "One", "region-1", "site-1", 0, 0, 4)


def bat(bid: str, **more) -> Asset:
    base = {"state": AssetState.AVAILABLE, "station_id": "ST-1", "slot": 1, "charge_pct": 100.0}
    base.update(more)
    cls = base.pop("battery_class", "STANDARD")
    return Asset(bid, cls, **base)


def authorize(**changes) -> AuthorizationContext:
    base = {
        "station_id": "ST-1",
        "customer_id": "C-1",
        "now": T0,
        "station": STATION,
        "customer": CUSTOMER,
        "service": Service("SV-1", "C-1", ServiceState.ACTIVE),
        "batteries_at_station": (bat("B-1"),),
    }
    base.update(changes)
    return AuthorizationContext(**base)


def code(checks, context) -> str | None:
    rejection = first_rejection(checks, context)
    return rejection.code if rejection else None


def test_a_customer_in_order_at_a_stocked_station_passes_every_authorize_check():
    assert code(AUTHORIZE_CHECKS, authorize()) is None


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"station": None}, "unknown_station"),
        ({"customer": None}, "unknown_customer"),
        ({"service": None}, "no_service"),
        ({"service": Service("SV-1", "C-1", ServiceState.SUSPENDED)}, "service_suspended"),
        ({"service": Service("SV-1", "C-1", ServiceState.CANCELLED)}, "service_cancelled"),
        (
            {"service": Service("SV-1", "C-1", ServiceState.BATTERY_LOST, "B-9")},
            "battery_lost_unsettled",
        ),
        ({"customer": Customer("C-1", "Ada", Standing.OVERDUE, PLAN)}, "bad_standing"),
        (
            {"service": Service("SV-1", "C-1", ServiceState.BATTERY_ISSUED, "B-9")},
            "battery_not_returned",
        ),
        (
            {"service": Service("SV-1", "C-1", ServiceState.ACTIVE, usage=SwapUsage(2, T0))},
            "swap_quota_exhausted",
        ),
        (
            {"batteries_at_station": (bat("B-1", battery_class="HIGH_CAPACITY"),)},
            "battery_class_mismatch",
        ),
        ({"batteries_at_station": (bat("B-1", state=AssetState.CHARGING),)}, "no_charged_battery"),
        ({"batteries_at_station": ()}, "no_charged_battery"),
        (
            {
                "batteries_at_station": (
                    bat("B-1", reserved_for="C-2", reserved_until=T0 + timedelta(seconds=9)),
                )
            },
            "no_charged_battery",
        ),
    ],
)
def test_each_authorize_check_refuses_with_its_own_reason(changes, expected):
    assert code(AUTHORIZE_CHECKS, authorize(**changes)) == expected


def test_the_first_failing_check_wins_so_an_unknown_customer_hears_that_first():
    context = authorize(customer=None, service=None, batteries_at_station=())
    assert code(AUTHORIZE_CHECKS, context) == "unknown_customer"


def test_a_customer_returning_the_battery_they_hold_may_swap():
    held = Service("SV-1", "C-1", ServiceState.BATTERY_ISSUED, "B-9")
    assert code(AUTHORIZE_CHECKS, authorize(service=held, returned_battery_id="B-9")) is None


def test_the_fullest_battery_is_chosen_and_one_promised_to_the_customer_comes_first():
    low, full = bat("B-low", charge_pct=96.0, slot=1), bat("B-full", charge_pct=100.0, slot=2)
    promised = bat(
        "B-mine",
        charge_pct=96.0,
        slot=3,
        reserved_for="C-1",
        reserved_until=T0 + timedelta(seconds=60),
    )
    assert choose_battery(authorize(batteries_at_station=(low, full))) == full
    assert choose_battery(authorize(batteries_at_station=(low, full, promised))) == promised


def handover(**changes) -> HandOverContext:
    base = {
        "station_id": "ST-1",
        "customer_id": "C-1",
        "battery_id": "B-1",
        "now": T0,
        "customer": CUSTOMER,
        "service": Service("SV-1", "C-1", ServiceState.ACTIVE),
        "battery": bat("B-1"),
    }
    base.update(changes)
    return HandOverContext(**base)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        ({"customer": None}, "unknown_customer"),
        ({"service": None}, "no_service"),
        ({"battery": None}, "unknown_battery"),
        ({"battery": bat("B-1", station_id="ST-2")}, "battery_not_at_station"),
        (
            {"battery": bat("B-1", reserved_for="C-2", reserved_until=T0 + timedelta(seconds=5))},
            "battery_reserved",
        ),
        ({"battery": bat("B-1", state=AssetState.CHARGING)}, "battery_not_available"),
        ({"battery": bat("B-1", battery_class="HIGH_CAPACITY")}, "battery_class_mismatch"),
    ],
)
def test_dispense_checks(changes, expected):
    assert code(DISPENSE_CHECKS, handover(**changes)) == expected


def test_a_return_must_be_of_a_battery_the_customer_holds():
    mine = bat("B-1", state=AssetState.ISSUED, station_id=None, holder="C-1")
    theirs = bat("B-1", state=AssetState.ISSUED, station_id=None, holder="C-2")
    assert code(RETURN_CHECKS, handover(battery=mine)) is None
    assert code(RETURN_CHECKS, handover(battery=theirs)) == "battery_not_held"


def personnel(**changes) -> PersonnelContext:
    base = {
        "person_id": "P-1",
        "action": PersonnelAction.REPORT_DAMAGE,
        "asset_id": "B-1",
        "person": Person("P-1", "Tom", PersonnelRole.TECHNICIAN, frozenset({"region-1"})),
        "asset": bat("B-1"),
        "station": STATION,
    }
    base.update(changes)
    return PersonnelContext(**base)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        ({"person": None}, "unknown_person"),
        (
            {
                "person": Person(
                    "P-1", "Tom", PersonnelRole.TECHNICIAN, frozenset({"region-1"}), active=False
                )
            },
            "person_inactive",
        ),
        ({"action": PersonnelAction.REPORT_LOST}, "role_not_allowed"),
        ({"asset": None}, "unknown_battery"),
        (
            {"person": Person("P-1", "Tom", PersonnelRole.TECHNICIAN, frozenset({"region-2"}))},
            "outside_assignment",
        ),
        ({"asset": bat("B-1", state=AssetState.RETIRED)}, "condition_not_applicable"),
    ],
)
def test_personnel_checks(changes, expected):
    assert code(PERSONNEL_CHECKS, personnel(**changes)) == expected


def test_an_issued_battery_is_placed_by_its_last_known_region():
    issued = bat("B-1", state=AssetState.ISSUED, station_id=None, region="region-2")
    context = personnel(asset=issued, station=None)
    assert code(PERSONNEL_CHECKS, context) == "outside_assignment"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"customer_id": "C-1"}, None),
        ({}, Rejection("missing_field", "data.customer_id is required")),
        ({"customer_id": 7}, Rejection("wrong_type", "data.customer_id must be a string")),
    ],
)
def test_required_fields_are_named_when_missing_or_of_the_wrong_type(data, expected):
    assert missing_field(data, ["customer_id"]) == expected
