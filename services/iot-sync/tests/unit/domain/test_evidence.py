from datetime import UTC, datetime, timedelta

import pytest

from iot_sync.domain.asset import Asset, AssetState
from iot_sync.domain.evidence import (
    AllowedArea,
    EvidenceKind,
    LossPolicy,
    loss_evidence,
    manual_report,
    outside_since_after,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = LossPolicy(silence_timeout=timedelta(hours=2), dwell=timedelta(minutes=30))
AREA = AllowedArea(0.0, 0.0, 1.0, 1.0)


def issued(**more) -> Asset:
    return Asset("BAT-1", "STANDARD", AssetState.ISSUED, holder="C-1", state_since=T0, **more)


def test_a_battery_silent_longer_than_the_timeout_while_issued_is_lost():
    evidence = loss_evidence(issued(last_seen_at=T0), POLICY, T0 + timedelta(hours=2))
    assert evidence is not None and evidence.kind is EvidenceKind.SILENCE


def test_a_battery_heard_within_the_timeout_is_not_lost():
    assert (
        loss_evidence(issued(last_seen_at=T0), POLICY, T0 + timedelta(hours=1, minutes=59)) is None
    )


def test_silence_counts_from_the_hand_over_when_nothing_was_heard_since():
    evidence = loss_evidence(issued(), POLICY, T0 + timedelta(hours=3))
    assert evidence is not None and evidence.kind is EvidenceKind.SILENCE


@pytest.mark.parametrize("state", [s for s in AssetState if s is not AssetState.ISSUED])
def test_only_an_issued_battery_can_be_found_lost_by_tracking(state):
    asset = Asset("BAT-1", "STANDARD", state, last_seen_at=T0 - timedelta(days=9))
    assert loss_evidence(asset, POLICY, T0) is None


def test_outside_the_area_for_the_dwell_time_is_evidence():
    asset = issued(last_seen_at=T0 + timedelta(minutes=30), outside_since=T0)
    evidence = loss_evidence(asset, POLICY, T0 + timedelta(minutes=30))
    assert evidence is not None and evidence.kind is EvidenceKind.OUTSIDE_AREA


def test_outside_for_less_than_the_dwell_time_is_not_evidence():
    asset = issued(last_seen_at=T0 + timedelta(minutes=29), outside_since=T0)
    assert loss_evidence(asset, POLICY, T0 + timedelta(minutes=29)) is None


def test_the_outside_run_starts_at_the_first_position_outside_and_continues():
    first = outside_since_after(None, inside=False, at=T0)
    later = outside_since_after(first, inside=False, at=T0 + timedelta(minutes=10))
    assert first == later == T0


def test_a_single_position_back_inside_resets_the_run():
    run = outside_since_after(T0, inside=False, at=T0 + timedelta(minutes=20))
    jumped_back = outside_since_after(run, inside=True, at=T0 + timedelta(minutes=21))
    restarted = outside_since_after(jumped_back, inside=False, at=T0 + timedelta(minutes=22))
    assert jumped_back is None
    assert restarted == T0 + timedelta(minutes=22)


def test_the_allowed_area_contains_its_edges_and_nothing_beyond():
    assert AREA.contains(0.0, 1.0) and AREA.contains(0.5, 0.5)
    assert not AREA.contains(1.01, 0.5)


def test_an_area_with_its_corners_swapped_is_refused():
    with pytest.raises(ValueError, match="minimum corner"):
        AllowedArea(1.0, 1.0, 0.0, 0.0)


def test_a_manual_report_names_the_person():
    evidence = manual_report("P-1", None)
    assert evidence.kind is EvidenceKind.MANUAL_REPORT and evidence.reported_by == "P-1"
