"""Turn the `params` of a bulk-change request into the domain's typed parameters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from device_change.app.errors import InvalidRequest
from device_change.domain.changes import ChangeType, RatePlanChangeParams, StatusChangeParams
from device_change.domain.device import DeviceStatus

ChangeParams = StatusChangeParams | RatePlanChangeParams | None

_STATUS_KEYS = {
    "target_status",
    "rate_plan",
    "zip_code",
    "place_of_use",
    "reason_code",
    "etf_waiver",
}
_PLAN_KEYS = {"rate_plan", "effective_at"}


def _reject_unknown(raw: Mapping[str, Any], allowed: set[str]) -> None:
    for key in raw:
        if key not in allowed:
            raise InvalidRequest(f"params.{key}", f"unknown parameter; allowed: {sorted(allowed)}")


def _text(raw: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise InvalidRequest(f"params.{key}", "is required")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"params.{key}", "must be a string")
    return value


def parse_params(change_type: ChangeType, raw: Mapping[str, Any]) -> ChangeParams:
    if change_type is ChangeType.UPDATE_DEVICE_STATUS:
        _reject_unknown(raw, _STATUS_KEYS)
        target = _text(raw, "target_status", required=True)
        try:
            status = DeviceStatus(str(target).upper())
        except ValueError:
            allowed = ", ".join(s.value for s in DeviceStatus)
            raise InvalidRequest("params.target_status", f"must be one of {allowed}") from None
        place = raw.get("place_of_use")
        if place is not None and not isinstance(place, Mapping):
            raise InvalidRequest("params.place_of_use", "must be an object")
        waiver = raw.get("etf_waiver", False)
        if not isinstance(waiver, bool):
            raise InvalidRequest("params.etf_waiver", "must be true or false")
        return StatusChangeParams(
            target_status=status,
            rate_plan=_text(raw, "rate_plan"),
            zip_code=_text(raw, "zip_code"),
            place_of_use=dict(place) if place else None,
            reason_code=_text(raw, "reason_code") or "FF",
            etf_waiver=waiver,
        )
    if change_type is ChangeType.CHANGE_CARRIER_RATE_PLAN:
        _reject_unknown(raw, _PLAN_KEYS)
        plan = _text(raw, "rate_plan", required=True)
        assert plan is not None
        effective_raw = _text(raw, "effective_at")
        effective = None
        if effective_raw:
            try:
                effective = datetime.fromisoformat(effective_raw)
            except ValueError:
                raise InvalidRequest(
                    "params.effective_at", "must be an ISO 8601 date-time"
                ) from None
            if effective.tzinfo is None:
                raise InvalidRequest("params.effective_at", "must carry a time zone offset")
        return RatePlanChangeParams(rate_plan=plan, effective_at=effective)
    if change_type is ChangeType.CHANGE_ICCID_IMEI:
        _reject_unknown(raw, set())
        return None
    raise InvalidRequest(
        "change_type", f"'{change_type.value}' arrives with billing-adapter; not supported yet"
    )
