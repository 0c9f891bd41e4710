from datetime import UTC, datetime

import pytest

from fleetops_devstack.servers import free_port
from iot_sync.adapters.arm.gateway import HttpArmGateway
from iot_sync.app.arm import ArmRejected, ArmUnavailable, AssetMovement

from .conftest import RecordingSleep, settings_for

WHEN = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)


def available(gateway):
    return next(a for a in gateway.list_assets() if a.state == "AVAILABLE")


def issue(asset, movement_id="mv-1", **extra):
    return AssetMovement(
        movement_id=movement_id,
        asset_id=asset.asset_id,
        state="ISSUED",
        holder="CUST-1",
        occurred_at=WHEN,
        **extra,
    )


def test_lists_every_station_and_asset_across_pages(gateway, sim):
    stations = list(gateway.list_stations())
    assert [s.station_id for s in stations] == [f"ST-{n:04d}" for n in range(1, 7)]
    assert all(s.slot_count == 4 and s.region == "region-1" for s in stations)
    assets = list(gateway.list_assets())
    assert [a.asset_id for a in assets] == [f"BAT-{n:06d}" for n in range(1, 17)]
    here = list(gateway.list_assets(station_id="ST-0002"))
    assert here and all(a.station_id == "ST-0002" for a in here)
    assert {a.asset_id for a in here} == {a.asset_id for a in assets if a.station_id == "ST-0002"}
    # 6 stations and 16 assets by 5 a page: 2 + 4 pages, plus the filtered list's pages.
    assert sim.stats()["requests"] >= 6 + 1


def test_gets_one_asset_or_none(gateway):
    asset = available(gateway)
    assert gateway.get_asset(asset.asset_id) == asset
    assert gateway.get_asset("BAT-999999") is None


def test_a_token_is_fetched_once_and_reused(gateway, sim):
    for _ in range(3):
        gateway.get_asset("BAT-000001")
    assert sim.stats()["tokens_issued"] == 1


def test_applies_a_movement_and_returns_the_asset_after_it(gateway, sim):
    asset = available(gateway)
    after = gateway.apply_movement(issue(asset, expected_version=asset.version))
    assert (after.state, after.holder, after.station_id, after.slot) == (
        "ISSUED",
        "CUST-1",
        None,
        None,
    )
    assert after.version == asset.version + 1
    assert sim.stats()["movements_applied"] == 1


def test_a_movement_held_past_the_timeout_is_retried_and_applied_once(gateway, sim, sleeps):
    asset = available(gateway)
    # Given ARM applies the movement but holds its answer past our 0.5 s read timeout
    sim.configure(timeout_next=1, timeout_hold_ms=1500)
    # When the gateway applies it
    after = gateway.apply_movement(issue(asset))
    # Then the retry with the same movement_id got the asset, and ARM applied it once
    assert after.state == "ISSUED" and after.version == asset.version + 1
    stats = sim.stats()
    assert stats["timeouts_injected"] == 1
    assert (stats["movements_applied"], stats["movements_replayed"]) == (1, 1)
    assert stats["assets_moved_more_than_once_by_same_movement"] == 0
    assert len(sleeps.waits) == 1


def test_throttling_is_waited_out_as_retry_after_says(gateway, sim, sleeps):
    gateway.get_asset("BAT-000001")  # the token is fetched outside the throttled path
    sim.configure(rate_limit_per_s=1)
    for n in (1, 2, 3):
        assert gateway.get_asset(f"BAT-00000{n}") is not None
    stats = sim.stats()
    assert stats["throttled"] >= 2
    honoured = [w for w in sleeps.waits if w >= 1.0]
    assert len(honoured) == stats["throttled"]  # every 429 waited its Retry-After: 1


def test_unavailable_answers_are_retried_to_success(gateway, sim, sleeps):
    asset = available(gateway)
    sim.configure(error_next=2)
    after = gateway.apply_movement(issue(asset))
    assert after.state == "ISSUED"
    stats = sim.stats()
    assert (stats["errors_injected"], stats["movements_applied"]) == (2, 1)
    assert len(sleeps.waits) == 2 and all(0 <= w <= 0.05 for w in sleeps.waits)


def test_gives_up_with_arm_unavailable_after_the_attempts(gateway, sim, sleeps):
    asset = available(gateway)
    sim.configure(error_rate=1.0)
    sim.reset_stats()
    with pytest.raises(ArmUnavailable, match="4 attempts"):
        gateway.apply_movement(issue(asset))
    assert sim.stats()["errors_injected"] == 4
    assert len(sleeps.waits) == 3


def test_an_expired_token_is_renewed_once_and_the_call_goes_through(gateway, sim):
    gateway.get_asset("BAT-000001")
    sim.expire_tokens()
    assert gateway.get_asset("BAT-000002") is not None
    stats = sim.stats()
    assert (stats["tokens_issued"], stats["unauthorized"]) == (2, 1)


@pytest.mark.parametrize("code", ["INVALID_TRANSITION", "SLOT_OCCUPIED", "VERSION_CONFLICT"])
def test_a_refused_movement_is_arm_rejected_with_its_code(gateway, sim, code):
    charging = next(a for a in gateway.list_assets() if a.state == "CHARGING")
    other = next(a for a in gateway.list_assets() if a.asset_id != charging.asset_id)
    movement = {
        "INVALID_TRANSITION": issue(charging),  # only an AVAILABLE battery is issued
        "SLOT_OCCUPIED": AssetMovement(
            movement_id="mv-1",
            asset_id=charging.asset_id,
            state="CHARGING",
            station_id=other.station_id,
            slot=other.slot,
            occurred_at=WHEN,
        ),
        "VERSION_CONFLICT": AssetMovement(
            movement_id="mv-1",
            asset_id=charging.asset_id,
            state="DAMAGED",
            occurred_at=WHEN,
            expected_version=charging.version + 1,
        ),
    }[code]
    with pytest.raises(ArmRejected) as refused:
        gateway.apply_movement(movement)
    assert refused.value.code == code and refused.value.message
    assert sim.stats()["movements_applied"] == 0
    assert gateway.get_asset(charging.asset_id) == charging


def test_wrong_credentials_are_arm_unavailable_without_retrying(sim, sleeps):
    settings = settings_for(sim.url, client_secret="wrong")
    with (
        HttpArmGateway(settings, sleep=sleeps) as gw,
        pytest.raises(ArmUnavailable, match="credentials"),
    ):
        gw.get_asset("BAT-000001")
    assert sleeps.waits == [] and sim.stats()["tokens_issued"] == 0


def test_an_unreachable_arm_is_retried_then_arm_unavailable():
    sleeps = RecordingSleep()
    settings = settings_for(f"http://127.0.0.1:{free_port()}")
    with HttpArmGateway(settings, sleep=sleeps) as gw, pytest.raises(ArmUnavailable):
        list(gw.list_stations())
    assert len(sleeps.waits) == settings.max_attempts - 1
