"""The change types and the rules that turn a requested change into a carrier action.

Each `plan_*` function looks at one device as it is now and either returns the
`PlannedChange` (which carrier action, and what the device looks like once it succeeded)
or raises `ChangeRefused` with the reason in words.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from device_change.domain.device import Device, DeviceStatus, RatePlan
from device_change.domain.identifiers import Iccid, Imei, InvalidIdentifier

MAX_PLAN_CHANGES_PER_MONTH = 4
DEACTIVATION_REASON_CODES = frozenset({"FF"})


class ChangeType(enum.StrEnum):
    UPDATE_DEVICE_STATUS = "update_device_status"
    CHANGE_CARRIER_RATE_PLAN = "change_carrier_rate_plan"
    CHANGE_ICCID_IMEI = "change_iccid_imei"
    ASSIGN_CUSTOMER = "assign_customer"
    CHANGE_CUSTOMER_RATE_PLAN = "change_customer_rate_plan"
    ARCHIVE_DEVICE = "archive_device"

    @property
    def supported(self) -> bool:
        return self in _SUPPORTED


_SUPPORTED = frozenset(
    {
        ChangeType.UPDATE_DEVICE_STATUS,
        ChangeType.CHANGE_CARRIER_RATE_PLAN,
        ChangeType.CHANGE_ICCID_IMEI,
    }
)


class CarrierAction(enum.StrEnum):
    """What is asked of the carrier for one device; LOCAL means no carrier call at all."""

    ADD = "add"
    ACTIVATE = "activate"
    SUSPEND = "suspend"
    RESTORE = "restore"
    DEACTIVATE = "deactivate"
    CHANGE_PLAN = "change_plan"
    CHANGE_IDENTIFIER = "change_identifier"
    LOCAL = "local"


class ChangeRefused(Exception):
    """The change cannot be applied to this device; `reason` says why in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PlannedChange:
    action: CarrierAction
    # Device fields as they will be once the carrier confirms, e.g. {"status": "SUSPENDED"}.
    after: Mapping[str, Any]
    # What the carrier request needs beyond the device itself (new identifiers, ...).
    carrier_args: Mapping[str, Any] = field(default_factory=dict)

    def group_key(self) -> tuple[str, ...]:
        """Devices with equal keys can travel in one carrier request."""
        return (self.action.value,)


# ---- update_device_status ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusChangeParams:
    target_status: DeviceStatus
    rate_plan: str | None = None
    zip_code: str | None = None
    place_of_use: Mapping[str, Any] | None = None
    reason_code: str = "FF"
    etf_waiver: bool = False


def plan_status_change(
    device: Device, params: StatusChangeParams, plans: Mapping[str, RatePlan]
) -> PlannedChange:
    current, target = device.status, params.target_status
    if current == target:
        raise ChangeRefused(f"device is already {target.value}")
    after: dict[str, Any] = {"status": target}

    if target is DeviceStatus.ACTIVE:
        if current is DeviceStatus.SUSPENDED:
            return PlannedChange(CarrierAction.RESTORE, after)
        if current in (DeviceStatus.PENDING_ACTIVATION, DeviceStatus.DEACTIVATED):
            if not params.rate_plan:
                raise ChangeRefused("activation needs params.rate_plan (a carrier plan code)")
            if params.rate_plan not in plans:
                raise ChangeRefused(f"rate plan '{params.rate_plan}' is not in the carrier's list")
            if not params.zip_code or not (params.zip_code.isdigit() and len(params.zip_code) == 5):
                raise ChangeRefused("activation needs params.zip_code, a 5-digit ZIP")
            after["rate_plan"] = params.rate_plan
            return PlannedChange(CarrierAction.ACTIVATE, after)
        raise ChangeRefused(
            "an INVENTORY device is not on the carrier account yet: "
            "move it to PENDING_ACTIVATION first"
        )
    if target is DeviceStatus.SUSPENDED:
        if current is DeviceStatus.ACTIVE:
            return PlannedChange(CarrierAction.SUSPEND, after)
        raise ChangeRefused(f"only an ACTIVE device can be suspended; it is {current.value}")
    if target is DeviceStatus.DEACTIVATED:
        if current in (DeviceStatus.ACTIVE, DeviceStatus.SUSPENDED):
            if params.reason_code not in DEACTIVATION_REASON_CODES:
                raise ChangeRefused(
                    f"deactivation reason code '{params.reason_code}' is not accepted "
                    "by the carrier (only FF)"
                )
            return PlannedChange(CarrierAction.DEACTIVATE, after)
        raise ChangeRefused(
            f"only an ACTIVE or SUSPENDED device can be deactivated; it is {current.value}"
        )
    if target is DeviceStatus.PENDING_ACTIVATION:
        if current is DeviceStatus.INVENTORY:
            if not device.imei:
                raise ChangeRefused("adding a device to the carrier account needs its IMEI")
            return PlannedChange(CarrierAction.ADD, after)
        raise ChangeRefused(
            f"only an INVENTORY device can be added to the carrier account; it is {current.value}"
        )
    # target INVENTORY: a bookkeeping status of ours, no carrier call.
    if current in (DeviceStatus.DEACTIVATED, DeviceStatus.PENDING_ACTIVATION):
        return PlannedChange(CarrierAction.LOCAL, after)
    raise ChangeRefused(
        f"a {current.value} device is live on the carrier; deactivate it before INVENTORY"
    )


# ---- change_carrier_rate_plan --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RatePlanChangeParams:
    rate_plan: str
    effective_at: datetime | None = None


def plan_rate_plan_change(
    device: Device,
    params: RatePlanChangeParams,
    plans: Mapping[str, RatePlan],
    *,
    plan_changes_this_month: int,
) -> PlannedChange:
    if params.rate_plan not in plans:
        raise ChangeRefused(f"rate plan '{params.rate_plan}' is not in the carrier's list")
    if device.status is DeviceStatus.SUSPENDED:
        raise ChangeRefused("the carrier does not allow a plan change while SUSPENDED")
    if device.status is not DeviceStatus.ACTIVE:
        raise ChangeRefused(f"only an ACTIVE device can change plan; it is {device.status.value}")
    if device.rate_plan == params.rate_plan:
        raise ChangeRefused(f"device is already on rate plan '{params.rate_plan}'")
    if plan_changes_this_month >= MAX_PLAN_CHANGES_PER_MONTH:
        raise ChangeRefused(
            f"device already changed plan {plan_changes_this_month} times this month "
            f"(carrier limit {MAX_PLAN_CHANGES_PER_MONTH})"
        )
    return PlannedChange(CarrierAction.CHANGE_PLAN, {"rate_plan": params.rate_plan})


# ---- change_iccid_imei ---------------------------------------------------------------


class IdentifierChangeOption(enum.StrEnum):
    """ThingSpace `change4gOption` values for hardware swaps."""

    CHANGE_ICCID = "ChangeICCID"
    CHANGE_IMEI = "ChangeIMEI"
    CHANGE_IMEI_AND_ICCID = "ChangeIMEIandICCID"


def plan_identifier_change(
    device: Device,
    *,
    new_iccid: str | None,
    new_imei: str | None,
    in_use: frozenset[str],
) -> PlannedChange:
    """`in_use`: identifiers (ICCIDs and IMEIs) already held by any known device."""
    if not new_iccid and not new_imei:
        raise ChangeRefused("name new_iccid, new_imei or both")
    after: dict[str, Any] = {}
    try:
        if new_iccid:
            Iccid(new_iccid)
            after["iccid"] = new_iccid
        if new_imei:
            Imei(new_imei)
            after["imei"] = new_imei
    except InvalidIdentifier as exc:
        raise ChangeRefused(str(exc)) from exc
    for kind, value in (("ICCID", new_iccid), ("IMEI", new_imei)):
        if value and value in in_use:
            raise ChangeRefused(f"new {kind} {value} is already in use by another device")
    if new_iccid == device.iccid or (new_imei and new_imei == device.imei):
        raise ChangeRefused("the new identifier equals the current one")
    if device.status is not DeviceStatus.ACTIVE:
        raise ChangeRefused(
            f"only an ACTIVE device can change identifiers; it is {device.status.value}"
        )
    if not device.msisdn:
        raise ChangeRefused("the device has no MSISDN; the carrier needs one for a swap")
    if new_iccid and new_imei:
        option = IdentifierChangeOption.CHANGE_IMEI_AND_ICCID
    elif new_iccid:
        option = IdentifierChangeOption.CHANGE_ICCID
    else:
        option = IdentifierChangeOption.CHANGE_IMEI
    return PlannedChange(
        CarrierAction.CHANGE_IDENTIFIER,
        after,
        {"option": option.value, "new_iccid": new_iccid, "new_imei": new_imei},
    )
