import pytest

from device_change.domain.changes import (
    CarrierAction,
    ChangeRefused,
    StatusChangeParams,
    plan_status_change,
)
from device_change.domain.device import Device, DeviceStatus, RatePlan

PLANS = {"M2M_4G_1GB": RatePlan("M2M_4G_1GB", "1 GB")}


def device(status: DeviceStatus, imei: str | None = "490154203237518") -> Device:
    return Device("demo", "89148000000000000019", imei, "5551234567", status, "M2M_4G_1GB")


@pytest.mark.parametrize(
    ("current", "target", "action"),
    [
        (DeviceStatus.SUSPENDED, DeviceStatus.ACTIVE, CarrierAction.RESTORE),
        (DeviceStatus.ACTIVE, DeviceStatus.SUSPENDED, CarrierAction.SUSPEND),
        (DeviceStatus.ACTIVE, DeviceStatus.DEACTIVATED, CarrierAction.DEACTIVATE),
        (DeviceStatus.SUSPENDED, DeviceStatus.DEACTIVATED, CarrierAction.DEACTIVATE),
        (DeviceStatus.INVENTORY, DeviceStatus.PENDING_ACTIVATION, CarrierAction.ADD),
        (DeviceStatus.DEACTIVATED, DeviceStatus.INVENTORY, CarrierAction.LOCAL),
    ],
)
def test_the_current_state_picks_the_carrier_action(current, target, action):
    planned = plan_status_change(device(current), StatusChangeParams(target), PLANS)
    assert planned.action is action
    assert planned.after["status"] is target


@pytest.mark.parametrize("current", [DeviceStatus.PENDING_ACTIVATION, DeviceStatus.DEACTIVATED])
def test_activation_needs_a_known_plan_and_a_zip(current):
    with pytest.raises(ChangeRefused, match="rate_plan"):
        plan_status_change(device(current), StatusChangeParams(DeviceStatus.ACTIVE), PLANS)
    with pytest.raises(ChangeRefused, match="not in the carrier's list"):
        plan_status_change(
            device(current),
            StatusChangeParams(DeviceStatus.ACTIVE, rate_plan="NOPE", zip_code="10001"),
            PLANS,
        )
    with pytest.raises(ChangeRefused, match="5-digit ZIP"):
        plan_status_change(
            device(current),
            StatusChangeParams(DeviceStatus.ACTIVE, rate_plan="M2M_4G_1GB", zip_code="1"),
            PLANS,
        )
    planned = plan_status_change(
        device(current),
        StatusChangeParams(DeviceStatus.ACTIVE, rate_plan="M2M_4G_1GB", zip_code="10001"),
        PLANS,
    )
    assert planned.action is CarrierAction.ACTIVATE
    assert planned.after["rate_plan"] == "M2M_4G_1GB"


@pytest.mark.parametrize(
    ("current", "target", "words"),
    [
        (DeviceStatus.ACTIVE, DeviceStatus.ACTIVE, "already ACTIVE"),
        (DeviceStatus.SUSPENDED, DeviceStatus.SUSPENDED, "already SUSPENDED"),
        (DeviceStatus.DEACTIVATED, DeviceStatus.SUSPENDED, "only an ACTIVE device"),
        (DeviceStatus.INVENTORY, DeviceStatus.ACTIVE, "PENDING_ACTIVATION first"),
        (DeviceStatus.PENDING_ACTIVATION, DeviceStatus.DEACTIVATED, "only an ACTIVE or SUSPENDED"),
        (DeviceStatus.ACTIVE, DeviceStatus.INVENTORY, "deactivate it before INVENTORY"),
        (DeviceStatus.ACTIVE, DeviceStatus.PENDING_ACTIVATION, "only an INVENTORY device"),
    ],
)
def test_a_target_no_action_reaches_is_refused(current, target, words):
    with pytest.raises(ChangeRefused, match=words):
        plan_status_change(device(current), StatusChangeParams(target), PLANS)


def test_deactivation_accepts_only_reason_code_ff():
    params = StatusChangeParams(DeviceStatus.DEACTIVATED, reason_code="XX")
    with pytest.raises(ChangeRefused, match="only FF"):
        plan_status_change(device(DeviceStatus.ACTIVE), params, PLANS)


def test_carrier_states_map_case_insensitively():
    assert DeviceStatus.from_carrier_state("Active") is DeviceStatus.ACTIVE
    assert DeviceStatus.from_carrier_state("suspend") is DeviceStatus.SUSPENDED
    assert DeviceStatus.from_carrier_state("deactive") is DeviceStatus.DEACTIVATED
    assert DeviceStatus.from_carrier_state("pre-active") is DeviceStatus.PENDING_ACTIVATION
    with pytest.raises(ValueError, match="unknown carrier device state"):
        DeviceStatus.from_carrier_state("teleported")
