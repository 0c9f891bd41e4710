from datetime import UTC, datetime, timedelta

import pytest

from iot_sync.domain.asset import Asset, AssetMove, AssetState, allowed_moves
from iot_sync.domain.rejection import Rejection

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
A = AssetState


def asset(state: AssetState, **more) -> Asset:
    return Asset("BAT-1", "STANDARD", state, **more)


def move(a: Asset, m: AssetMove) -> Asset | Rejection:
    return {
        AssetMove.DOCK: lambda: a.dock(station_id="ST-2", slot=3, region="region-2", at=AT),
        AssetMove.CHARGE_COMPLETE: lambda: a.complete_charge(at=AT),
        AssetMove.ISSUE: lambda: a.issue(holder="C-1", at=AT),
        AssetMove.REPORT_DAMAGE: lambda: a.report_damage(at=AT),
        AssetMove.DECLARE_LOST: lambda: a.declare_lost(at=AT),
        AssetMove.SIGHT: lambda: a.sight(at=AT),
        AssetMove.RECOVER: lambda: a.recover(by="P-1", at=AT),
        AssetMove.RETIRE: lambda: a.retire(at=AT),
    }[m]()


EXPECTED_TARGET = {
    AssetMove.DOCK: A.CHARGING,
    AssetMove.CHARGE_COMPLETE: A.AVAILABLE,
    AssetMove.ISSUE: A.ISSUED,
    AssetMove.REPORT_DAMAGE: A.DAMAGED,
    AssetMove.DECLARE_LOST: A.LOST,
    AssetMove.SIGHT: A.ISSUED,
    AssetMove.RECOVER: A.IN_INSPECTION,
    AssetMove.RETIRE: A.RETIRED,
}

ALLOWED = [(s, m) for s in AssetState for m in sorted(allowed_moves(s))]
REFUSED = [(s, m) for s in AssetState for m in AssetMove if m not in allowed_moves(s)]


@pytest.mark.parametrize(("state", "m"), ALLOWED)
def test_every_allowed_move_lands_in_its_target_state(state, m):
    after = move(asset(state), m)
    assert isinstance(after, Asset)
    expected = A.IN_INSPECTION if (m, state) == (AssetMove.DOCK, A.DAMAGED) else EXPECTED_TARGET[m]
    assert after.state is expected
    assert after.state_since == AT


@pytest.mark.parametrize(("state", "m"), REFUSED)
def test_a_move_that_does_not_apply_is_rejected_with_the_current_state(state, m):
    result = move(asset(state), m)
    assert isinstance(result, Rejection)
    assert result.code == "asset_transition_not_allowed"
    assert state.value in result.reason


def test_a_retired_battery_never_moves_again():
    assert allowed_moves(A.RETIRED) == frozenset()


def test_issuing_takes_the_battery_out_of_its_slot_and_starts_the_silence_clock():
    issued = asset(A.AVAILABLE, station_id="ST-1", slot=2).issue(holder="C-1", at=AT)
    assert isinstance(issued, Asset)
    assert (issued.station_id, issued.slot, issued.holder, issued.last_seen_at) == (
        None,
        None,
        "C-1",
        AT,
    )


def test_docking_puts_the_battery_in_the_station_slot_without_a_holder():
    docked = asset(A.ISSUED, holder="C-1").dock(station_id="ST-2", slot=3, region="region-2", at=AT)
    assert isinstance(docked, Asset)
    assert (docked.station_id, docked.slot, docked.holder, docked.region) == (
        "ST-2",
        3,
        None,
        "region-2",
    )


def test_a_damaged_battery_docked_goes_to_inspection_not_charging():
    docked = asset(A.DAMAGED, holder="C-1").dock(station_id="ST-2", slot=1, region=None, at=AT)
    assert isinstance(docked, Asset) and docked.state is A.IN_INSPECTION


def test_a_reservation_keeps_a_battery_from_other_customers_until_it_expires():
    reserved = asset(A.AVAILABLE).reserve("C-1", AT + timedelta(minutes=2))
    assert reserved.free_for("C-1", AT)
    assert not reserved.free_for("C-2", AT)
    assert reserved.free_for("C-2", AT + timedelta(minutes=2))


def test_leaving_available_drops_the_reservation():
    issued = asset(A.AVAILABLE).reserve("C-1", AT + timedelta(minutes=2)).issue(holder="C-1", at=AT)
    assert isinstance(issued, Asset) and issued.reserved_for is None


def test_only_an_available_battery_is_free():
    assert not asset(A.CHARGING).free_for("C-1", AT)
