"""Read ThingSpace's asynchronous callback envelope into per-device outcomes."""

from __future__ import annotations

from typing import Any

from device_change.app.ports import CarrierDeviceOutcome


class MalformedCallback(ValueError):
    """The body is not a ThingSpace callback; the message names what is wrong."""


def _ids(device_ids: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if not isinstance(device_ids, list):
        return out
    for item in device_ids:
        if isinstance(item, dict) and item.get("id") and item.get("kind"):
            out.setdefault(str(item["kind"]).lower(), str(item["id"]))
    return out


def callback_credentials(body: dict[str, Any]) -> tuple[str, str]:
    return str(body.get("username") or ""), str(body.get("password") or "")


def parse_carrier_callback(body: dict[str, Any]) -> list[CarrierDeviceOutcome]:
    request_id = body.get("requestId")
    if not isinstance(request_id, str) or not request_id:
        raise MalformedCallback("requestId is missing")
    status = body.get("status")
    if status not in ("Success", "Failed", "Failure"):
        raise MalformedCallback(f"status must be Success or Failed, not {status!r}")
    ids = _ids(body.get("deviceIds"))
    if "iccid" not in ids:
        raise MalformedCallback("deviceIds carries no ICCID")
    reported: dict[str, Any] = {}
    fault_code = fault_text = None
    if status == "Success":
        response = body.get("deviceResponse") or {}
        inner: dict[str, Any] = {}
        if isinstance(response, dict):
            for value in response.values():
                if isinstance(value, dict):
                    inner.update(value)
        new_ids = _ids(inner.get("deviceIds"))
        for kind in ("msisdn", "mdn"):
            if kind in new_ids or kind in ids:
                reported["msisdn"] = new_ids.get(kind) or ids.get(kind)
                break
        if new_ids.get("iccid") and new_ids["iccid"] != ids["iccid"]:
            reported["new_iccid"] = new_ids["iccid"]
        if new_ids.get("imei"):
            reported["new_imei"] = new_ids["imei"]
    else:
        fault = body.get("faultResponse") or {}
        if isinstance(fault, dict):
            fault_code = fault.get("faultcode")
            fault_text = fault.get("faultstring")
    return [
        CarrierDeviceOutcome(
            request_id=request_id,
            iccid=ids["iccid"],
            succeeded=status == "Success",
            fault_code=fault_code,
            fault_text=fault_text,
            reported=reported,
        )
    ]
