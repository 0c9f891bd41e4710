from datetime import UTC, datetime, timedelta

from iot_sync.domain.ordering import Arrival, plan_sender

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HOLD = timedelta(seconds=30)


def arrivals(*seqs: int, at: datetime = T0) -> list[Arrival[str]]:
    return [Arrival(s, at, f"m{s}") for s in seqs]


def test_out_of_order_messages_apply_in_seq_order():
    plan = plan_sender(4, arrivals(7, 5, 6), now=T0, hold_for=HOLD)
    assert plan.apply == ["m5", "m6", "m7"]
    assert plan.last_seq == 7


def test_a_seq_already_applied_is_stale_and_changes_nothing():
    plan = plan_sender(5, arrivals(4, 5), now=T0, hold_for=HOLD)
    assert plan.apply == [] and plan.stale == ["m4", "m5"]
    assert plan.last_seq == 5


def test_the_same_seq_twice_in_one_batch_applies_once():
    plan = plan_sender(None, arrivals(1, 1), now=T0, hold_for=HOLD)
    assert plan.apply == ["m1"] and plan.stale == ["m1"]


def test_a_new_sender_starts_at_its_lowest_seq_without_waiting():
    plan = plan_sender(None, arrivals(12, 11), now=T0, hold_for=HOLD)
    assert plan.apply == ["m11", "m12"]


def test_a_message_after_a_gap_is_held_while_the_gap_is_young():
    plan = plan_sender(4, arrivals(6, 7), now=T0 + timedelta(seconds=5), hold_for=HOLD)
    assert plan.apply == [] and plan.hold == ["m6", "m7"]
    assert plan.last_seq == 4


def test_messages_before_the_gap_apply_and_those_after_it_wait():
    plan = plan_sender(4, arrivals(5, 7), now=T0, hold_for=HOLD)
    assert plan.apply == ["m5"] and plan.hold == ["m7"]
    assert plan.last_seq == 5


def test_the_missing_message_releases_the_held_ones_in_order():
    plan = plan_sender(
        4, arrivals(6, 7) + arrivals(5), now=T0 + timedelta(seconds=5), hold_for=HOLD
    )
    assert plan.apply == ["m5", "m6", "m7"]


def test_a_gap_open_longer_than_the_hold_is_given_up_and_the_held_apply():
    plan = plan_sender(4, arrivals(6, 7), now=T0 + HOLD, hold_for=HOLD)
    assert plan.apply == ["m6", "m7"]
    assert plan.gaps_skipped == [(5, 5)]
    assert plan.last_seq == 7


def test_no_hold_applies_past_a_gap_at_once():
    plan = plan_sender(1, arrivals(9), now=T0, hold_for=timedelta(0))
    assert plan.apply == ["m9"]
