from datetime import UTC, datetime

import pytest

from iot_sync.domain.rejection import Rejection
from iot_sync.domain.service import TRANSITIONS, Service, ServiceInput, ServiceState

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
S, I = ServiceState, ServiceInput  # noqa: E741


def service(state: ServiceState, battery_id: str | None = None) -> Service:
    return Service("SV-1", "C-1", state, battery_id=battery_id)


@pytest.mark.parametrize(("state", "event"), sorted(TRANSITIONS))
def test_every_listed_transition_applies_and_lands_in_its_target_state(state, event):
    held = "BAT-1" if state in (S.BATTERY_ISSUED, S.BATTERY_LOST) else None
    after = service(state, held).apply(
        event, at=AT, battery_id="BAT-2" if event is I.BATTERY_ISSUED else None
    )
    assert isinstance(after, Service)
    assert after.state is TRANSITIONS[(state, event)]
    assert after.updated_at == AT


UNLISTED = [(s, e) for s in ServiceState for e in ServiceInput if (s, e) not in TRANSITIONS]


@pytest.mark.parametrize(("state", "event"), UNLISTED)
def test_an_input_that_does_not_apply_is_rejected_with_a_reason_and_changes_nothing(state, event):
    before = service(state, "BAT-1")
    result = before.apply(event, at=AT, battery_id="BAT-1")
    assert isinstance(result, Rejection)
    assert result.code == "transition_not_allowed"
    assert str(event) in result.reason
    assert before.state is state


def test_issuing_names_the_battery_the_customer_now_holds():
    after = service(S.ACTIVE).apply(I.BATTERY_ISSUED, at=AT, battery_id="BAT-7")
    assert after == Service("SV-1", "C-1", S.BATTERY_ISSUED, battery_id="BAT-7", updated_at=AT)


def test_issuing_without_a_battery_is_rejected():
    result = service(S.ACTIVE).apply(I.BATTERY_ISSUED, at=AT)
    assert result == Rejection("battery_required", "BATTERY_ISSUED must name the battery")


def test_a_second_issue_while_holding_a_battery_says_to_return_it_first():
    result = service(S.BATTERY_ISSUED, "BAT-1").apply(I.BATTERY_ISSUED, at=AT, battery_id="BAT-2")
    assert isinstance(result, Rejection)
    assert "return it first" in result.reason


def test_returning_another_battery_than_the_one_held_is_rejected():
    result = service(S.BATTERY_ISSUED, "BAT-1").apply(I.BATTERY_RETURNED, at=AT, battery_id="BAT-9")
    assert isinstance(result, Rejection)
    assert result.code == "battery_mismatch"


def test_a_return_clears_the_battery_and_a_loss_keeps_it_for_settlement():
    returned = service(S.BATTERY_ISSUED, "BAT-1").apply(I.BATTERY_RETURNED, at=AT)
    lost = service(S.BATTERY_ISSUED, "BAT-1").apply(I.BATTERY_LOST, at=AT)
    assert isinstance(returned, Service) and returned.battery_id is None
    assert isinstance(lost, Service) and lost.battery_id == "BAT-1"


def test_continuing_after_a_sighting_gives_the_battery_back_to_the_customer():
    found = service(S.BATTERY_LOST, "BAT-1").apply(I.BATTERY_FOUND, at=AT, battery_id="BAT-1")
    assert isinstance(found, Service)
    continued = found.apply(I.CONTINUE_SERVICE_REQUESTED, at=AT)
    assert isinstance(continued, Service)
    assert (continued.state, continued.battery_id) == (S.BATTERY_ISSUED, "BAT-1")


def test_continuing_after_staff_recovered_the_battery_leaves_the_service_active_without_it():
    found = service(S.BATTERY_LOST, "BAT-1").apply(I.BATTERY_FOUND, at=AT, battery_id=None)
    assert isinstance(found, Service)
    continued = found.apply(I.CONTINUE_SERVICE_REQUESTED, at=AT)
    assert isinstance(continued, Service)
    assert (continued.state, continued.battery_id) == (S.ACTIVE, None)


def test_a_settled_loss_continues_as_an_active_service():
    settled = service(S.BATTERY_LOST, "BAT-1").apply(I.ASSET_SETTLEMENT_COMPLETE, at=AT)
    assert (
        isinstance(settled, Service) and settled.state is S.SETTLED and settled.battery_id is None
    )
    continued = settled.apply(I.CONTINUE_SERVICE_REQUESTED, at=AT)
    assert isinstance(continued, Service) and continued.state is S.ACTIVE


def test_a_cancelled_service_accepts_nothing():
    for event in ServiceInput:
        assert isinstance(service(S.CANCELLED).apply(event, at=AT, battery_id="B"), Rejection)
