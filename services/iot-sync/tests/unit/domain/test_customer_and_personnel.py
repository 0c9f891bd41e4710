from datetime import UTC, datetime, timedelta

import pytest

from iot_sync.domain.customer import Plan, SwapUsage
from iot_sync.domain.personnel import Person, PersonnelAction, PersonnelRole
from iot_sync.domain.station import Station

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PLAN = Plan("p", battery_class="STANDARD", swap_quota=2, period_days=30)


def test_swaps_count_against_the_quota_within_the_period():
    usage = SwapUsage().counted(PLAN, T0).counted(PLAN, T0 + timedelta(days=1))
    assert usage.left(PLAN, T0 + timedelta(days=2)) == 0


def test_a_new_period_starts_with_the_full_quota():
    usage = SwapUsage().counted(PLAN, T0).counted(PLAN, T0)
    assert usage.left(PLAN, T0 + timedelta(days=30)) == 2
    assert usage.counted(PLAN, T0 + timedelta(days=31)) == SwapUsage(1, T0 + timedelta(days=31))


def test_a_plan_cannot_have_a_negative_quota():
    with pytest.raises(ValueError, match="negative"):
        Plan("p", battery_class="STANDARD", swap_quota=-1)


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        (PersonnelRole.TECHNICIAN, PersonnelAction.REPORT_DAMAGE, True),
        (PersonnelRole.TECHNICIAN, PersonnelAction.REPORT_LOST, False),
        (PersonnelRole.FIELD_AGENT, PersonnelAction.REPORT_LOST, True),
        (PersonnelRole.FIELD_AGENT, PersonnelAction.REPORT_DAMAGE, False),
        (PersonnelRole.SUPERVISOR, PersonnelAction.REPORT_LOST, True),
        (PersonnelRole.FIELD_AGENT, PersonnelAction.ASSET_SCAN, True),
    ],
)
def test_a_role_allows_its_actions_only(role, action, allowed):
    assert Person("P-1", "x", role, frozenset({"r"})).may(action) is allowed


def test_a_person_covers_their_regions_and_their_stations():
    person = Person("P-1", "x", PersonnelRole.TECHNICIAN, frozenset({"r1"}), frozenset({"ST-9"}))
    assert person.covers(region="r1", station_id=None)
    assert person.covers(region="r2", station_id="ST-9")
    assert not person.covers(region="r2", station_id="ST-1")


def test_the_free_slot_is_the_lowest_empty_one():
    st = Station("ST-1", "n", "r", "s", 0, 0, slot_count=3)
    assert st.free_slot({1, 3}) == 2
    assert st.free_slot({1, 2, 3}) is None
