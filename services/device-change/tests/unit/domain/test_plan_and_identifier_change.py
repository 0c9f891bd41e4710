import pytest

from device_change.domain.changes import (
    CarrierAction,
    ChangeRefused,
    RatePlanChangeParams,
    plan_identifier_change,
    plan_rate_plan_change,
)
from device_change.domain.device import Device, DeviceStatus, RatePlan
from device_change.domain.identifiers import luhn_check_digit

PLANS = {c: RatePlan(c, c) for c in ("M2M_4G_1GB", "M2M_4G_5GB")}


def device(status=DeviceStatus.ACTIVE, plan="M2M_4G_1GB", msisdn="5551234567") -> Device:
    return Device("demo", "89148000000000000019", "490154203237518", msisdn, status, plan)


def iccid(n: int) -> str:
    body = f"891480000000{n:07d}"
    return body + luhn_check_digit(body)


def test_plan_change_on_active_device_is_planned():
    planned = plan_rate_plan_change(
        device(), RatePlanChangeParams("M2M_4G_5GB"), PLANS, plan_changes_this_month=0
    )
    assert planned.action is CarrierAction.CHANGE_PLAN
    assert planned.after == {"rate_plan": "M2M_4G_5GB"}


def test_plan_change_is_refused_while_suspended():
    with pytest.raises(ChangeRefused, match="while SUSPENDED"):
        plan_rate_plan_change(
            device(DeviceStatus.SUSPENDED),
            RatePlanChangeParams("M2M_4G_5GB"),
            PLANS,
            plan_changes_this_month=0,
        )


def test_fifth_plan_change_in_a_month_is_refused():
    with pytest.raises(ChangeRefused, match="4 times this month"):
        plan_rate_plan_change(
            device(), RatePlanChangeParams("M2M_4G_5GB"), PLANS, plan_changes_this_month=4
        )


def test_unknown_or_same_plan_is_refused():
    with pytest.raises(ChangeRefused, match="not in the carrier's list"):
        plan_rate_plan_change(device(), RatePlanChangeParams("X"), PLANS, plan_changes_this_month=0)
    with pytest.raises(ChangeRefused, match="already on rate plan"):
        plan_rate_plan_change(
            device(), RatePlanChangeParams("M2M_4G_1GB"), PLANS, plan_changes_this_month=0
        )


def test_iccid_swap_checks_the_new_identifier_before_anything_is_sent():
    new = iccid(42)
    planned = plan_identifier_change(device(), new_iccid=new, new_imei=None, in_use=frozenset())
    assert planned.carrier_args["option"] == "ChangeICCID"
    assert planned.after == {"iccid": new}
    bad = new[:-1] + str((int(new[-1]) + 1) % 10)
    with pytest.raises(ChangeRefused, match="wrong check digit"):
        plan_identifier_change(device(), new_iccid=bad, new_imei=None, in_use=frozenset())
    with pytest.raises(ChangeRefused, match="already in use"):
        plan_identifier_change(device(), new_iccid=new, new_imei=None, in_use=frozenset({new}))


def test_both_identifiers_make_a_combined_swap():
    planned = plan_identifier_change(
        device(), new_iccid=iccid(7), new_imei="356938035643809", in_use=frozenset()
    )
    assert planned.carrier_args["option"] == "ChangeIMEIandICCID"


def test_swap_needs_an_active_device_with_an_msisdn():
    with pytest.raises(ChangeRefused, match="ACTIVE"):
        plan_identifier_change(
            device(DeviceStatus.SUSPENDED), new_iccid=iccid(2), new_imei=None, in_use=frozenset()
        )
    with pytest.raises(ChangeRefused, match="no MSISDN"):
        plan_identifier_change(
            device(msisdn=None), new_iccid=iccid(2), new_imei=None, in_use=frozenset()
        )
