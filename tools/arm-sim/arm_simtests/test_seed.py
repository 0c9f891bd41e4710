import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from arm_sim import SimConfig
from arm_sim.cli import app as cli
from arm_sim.inventory import CHARGED_PCT, seed_inventory


def test_the_same_seed_gives_the_same_inventory_and_another_seed_another():
    config = SimConfig(stations=12, slots_per_station=6, batteries=50, seed=3)
    a_stations, a_assets = seed_inventory(config)
    b_stations, b_assets = seed_inventory(config)
    _, c_assets = seed_inventory(config.model_copy(update={"seed": 4}))
    assert [s.detail() for s in a_stations.values()] == [s.detail() for s in b_stations.values()]
    assert [a.as_json() for a in a_assets.values()] == [a.as_json() for a in b_assets.values()]
    assert [a.as_json() for a in a_assets.values()] != [a.as_json() for a in c_assets.values()]


def test_seeded_ids_places_and_states_follow_the_contract():
    config = SimConfig(stations=12, slots_per_station=6, batteries=50, seed=3)
    stations, assets = seed_inventory(config)
    assert list(stations) == [f"ST-{n:04d}" for n in range(1, 13)]
    assert list(assets) == [f"BAT-{n:06d}" for n in range(1, 51)]
    assert {s.region for s in stations.values()} == {"region-1", "region-2"}
    assert all(s.site.startswith("site-") for s in stations.values())
    for asset in assets.values():
        assert asset.state in ("AVAILABLE", "CHARGING")
        assert asset.battery_class in ("STANDARD", "HIGH_CAPACITY")
        assert (asset.charge_pct >= CHARGED_PCT) == (asset.state == "AVAILABLE")
        assert asset.station_id is not None and asset.slot is not None
        assert stations[asset.station_id].slots[asset.slot - 1] == asset.asset_id
    occupied = [a for s in stations.values() for a in s.slots if a is not None]
    assert sorted(occupied) == sorted(assets)  # each battery in exactly one slot
    assert 12 * 6 - len(occupied) == 22  # the rest are empty, room for returns
    assert {a.state for a in assets.values()} == {"AVAILABLE", "CHARGING"}
    assert {a.battery_class for a in assets.values()} == {"STANDARD", "HIGH_CAPACITY"}


def test_config_refuses_more_batteries_than_leave_a_slot_free():
    with pytest.raises(ValidationError, match="fewer than"):
        SimConfig(stations=2, slots_per_station=3, batteries=6)


def test_cli_serve_takes_host_port_sizes_and_seed():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in ("--host", "--port", "--stations", "--slots-per-station", "--batteries", "--seed"):
        assert flag in result.output


def test_cli_refuses_a_seed_without_free_slots():
    result = CliRunner().invoke(
        cli, ["serve", "--stations", "1", "--slots-per-station", "2", "--batteries", "2"]
    )
    assert result.exit_code == 2 and "fewer than" in result.output
