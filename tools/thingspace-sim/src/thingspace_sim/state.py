"""The simulator's memory: devices, requests, sessions, counters, and the provisioning rules."""

from __future__ import annotations

import bisect
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from thingspace_sim.config import SimConfig
from thingspace_sim.fleet import PLANS, SimDevice, seed_fleet

PREFIX = "UnifiedWebService"
TRANSITIONS = {  # action -> (allowed from states, state after)
    "activate": ({"pre-active", "deactive"}, "active"),
    "suspend": ({"active"}, "suspend"),
    "restore": ({"suspend"}, "active"),
    "deactivate": ({"active", "suspend"}, "deactive"),
}
PENDING_FORM = {
    "activate": "pending activation",
    "suspend": "pending suspend",
    "restore": "pending restore",
    "deactivate": "pending deactivation",
    "plan": "pending plan change",
    "deviceId": "pending identifier change",
}
RESPONSE_KEY = {
    "activate": "activateResponse",
    "suspend": "suspendResponse",
    "restore": "restoreResponse",
    "deactivate": "deactivateResponse",
    "plan": "servicePlanResponse",
    "deviceId": "changeIdentifierResponse",
}


class Refused(Exception):
    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = f"{PREFIX}.{code}"
        self.text = text


@dataclass
class DeviceOutcome:
    device: SimDevice
    ok: bool
    fault: Refused | None = None
    apply: dict[str, Any] = field(default_factory=dict)
    status: str = "Pending"  # Pending -> Success | Failed
    iccid: str = ""  # the ICCID the request named (a swap changes the device's)

    def __post_init__(self) -> None:
        self.iccid = self.iccid or self.device.iccid


@dataclass
class SimRequest:
    id: str
    action: str
    outcomes: list[DeviceOutcome]


@dataclass
class Stats:
    requests: int = 0
    throttled: int = 0
    changes_applied: int = 0
    errors_injected: int = 0
    timeouts_injected: int = 0
    callbacks_sent: int = 0
    callbacks_failed: int = 0
    callbacks_lost: int = 0
    callbacks_duplicated: int = 0
    changed: dict[str, int] = field(default_factory=dict)
    callback_latencies_ms: list[float] = field(default_factory=list)
    first_callback_at: float | None = None
    last_callback_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.callback_latencies_ms)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

        span = (
            (self.last_callback_at - self.first_callback_at)
            if self.first_callback_at and self.last_callback_at
            else 0.0
        )
        return {
            "requests": self.requests,
            "throttled": self.throttled,
            "changes_applied": self.changes_applied,
            "devices_changed_more_than_once": sum(1 for n in self.changed.values() if n > 1),
            "errors_injected": self.errors_injected,
            "timeouts_injected": self.timeouts_injected,
            "callbacks_sent": self.callbacks_sent,
            "callbacks_failed": self.callbacks_failed,
            "callbacks_lost": self.callbacks_lost,
            "callbacks_duplicated": self.callbacks_duplicated,
            "callback_latency_p50_ms": pct(0.50),
            "callback_latency_p99_ms": pct(0.99),
            "callback_rate_per_s": round(self.callbacks_sent / span, 1) if span > 0 else None,
        }


class TokenBucket:
    def __init__(self) -> None:
        self.tokens = 0.0
        self.updated = time.monotonic()
        self.rate = 0.0

    def take(self, rate: float | None) -> bool:
        if not rate:
            return True
        now = time.monotonic()
        if rate != self.rate:
            self.rate, self.tokens = rate, rate
        self.tokens = min(rate, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class SimState:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.faults = config.faults.model_copy()
        self.rng = random.Random(config.seed)
        self.bucket = TokenBucket()
        self.reset()

    def reset(self) -> None:
        c = self.config
        self.devices: dict[str, SimDevice] = seed_fleet(
            c.fleet_size, seed=c.seed, account=c.account_name
        )
        # IMEI and MSISDN lookups by index, not by scanning a fleet of 100,000
        self.by_imei = {d.imei: d for d in self.devices.values() if d.imei}
        self.by_msisdn = {d.msisdn: d for d in self.devices.values() if d.msisdn}
        self._order: list[str] | None = None  # ICCIDs sorted, rebuilt when they change
        self.plans = {p["code"]: p for p in PLANS}
        self.requests: dict[str, SimRequest] = {}
        self.callbacks: dict[tuple[str, str], dict[str, str]] = {}
        self.access_token: str | None = None
        self.access_expires = 0.0
        self.sessions: dict[str, float] = {}
        self.failed_logins = 0
        self.stats = Stats()

    def add_device(self, device: SimDevice) -> None:
        self.devices[device.iccid] = device
        if device.imei:
            self.by_imei[device.imei] = device
        if device.msisdn:
            self.by_msisdn[device.msisdn] = device
        self._order = None

    def device_by_id(self, value: str) -> SimDevice | None:
        """The device whose ICCID, IMEI or MSISDN is `value`."""
        return self.devices.get(value) or self.by_imei.get(value) or self.by_msisdn.get(value)

    def devices_after(self, iccid: str) -> Iterator[SimDevice]:
        """Devices in ICCID order after `iccid` (paging by largestDeviceIdSeen)."""
        if self._order is None:
            self._order = sorted(self.devices)
        for key in self._order[bisect.bisect_right(self._order, iccid) :]:
            device = self.devices.get(key)
            if device is not None:
                yield device

    # ---- rules ---------------------------------------------------------------------

    def _find(self, device_ids: list[dict[str, Any]], account: str | None) -> SimDevice:
        for item in device_ids:
            kind = str(item.get("kind", "")).lower()
            value = str(item.get("id", ""))
            if kind not in {"iccid", "imei", "msisdn", "mdn", "esn", "meid", "eid", "min"}:
                raise Refused("INPUT_INVALID.Device.Kind.Invalid", f"unknown kind {kind}")
            if kind == "iccid" and value in self.devices:
                device = self.devices[value]
                break
            if kind in ("msisdn", "mdn") and value in self.by_msisdn:
                device = self.by_msisdn[value]
                break
            if kind == "imei" and value in self.by_imei:
                device = self.by_imei[value]
                break
        else:
            raise Refused("REQUEST_FAILED.DeviceNotFound", "REQUEST_FAILED. Device not found")
        if account and device.account != account:
            raise Refused(
                "INPUT_INVALID.Device.Account.Invalid", "The device is not in the named account"
            )
        return device

    def check(self, action: str, device: SimDevice, body: dict[str, Any]) -> dict[str, Any]:
        """Refuse the change or say what it will apply; mark the device pending."""
        if device.pending_request:
            raise Refused(
                "REQUEST_FAILED.DeviceChangePending",
                "A state change is already pending for this device",
            )
        now = datetime.now(UTC)
        day, month = now.strftime("%Y-%m-%d"), now.strftime("%Y-%m")
        if action in TRANSITIONS:
            allowed, after = TRANSITIONS[action]
            if action == "activate" and device.state == "active":
                raise Refused(
                    "REQUEST_FAILED.DeviceAlreadyActive", "REQUEST_FAILED. Device is already active"
                )
            if device.state not in allowed:
                raise Refused(
                    "INPUT_INVALID.DeviceState.Invalid",
                    f"{action} is not allowed while the device is {device.state}",
                )
            if device.actions_by_day.get(day, 0) >= 5:
                raise Refused(
                    "REQUEST_FAILED.ProvisioningLimitExceeded",
                    "At most 5 provisioning actions per line per day",
                )
            device.actions_by_day[day] = device.actions_by_day.get(day, 0) + 1
            apply: dict[str, Any] = {"state": after}
            if action == "activate":
                apply["plan"] = body.get("servicePlan")
                apply["msisdn"] = device.msisdn or f"7{self.rng.randrange(10**9):09d}"
            return apply
        if action == "plan":
            plan = body.get("servicePlan")
            if plan not in self.plans:
                raise Refused("REQUEST_FAILED._servicePlan_.NotFound", f"plan {plan} not found")
            if device.state == "suspend":
                raise Refused(
                    "INPUT_INVALID.DeviceState.Invalid",
                    "A plan change is not allowed while the device is suspended",
                )
            if device.plan_changes_by_month.get(month, 0) >= 4:
                raise Refused(
                    "REQUEST_FAILED.ServicePlanChangeLimitExceeded",
                    "At most 4 plan changes per device per month",
                )
            device.plan_changes_by_month[month] = device.plan_changes_by_month.get(month, 0) + 1
            return {"plan": plan}
        if action == "deviceId":
            if device.state != "active" or not device.msisdn:
                raise Refused(
                    "INPUT_INVALID.DeviceState.Invalid", "The device must be active with an MDN"
                )
            apply = {}
            for item in body.get("deviceIdsTo") or []:
                kind, value = str(item.get("kind", "")).lower(), str(item.get("id", ""))
                if kind == "iccid":
                    if value in self.devices:
                        raise Refused(
                            "REQUEST_FAILED.DeviceAlreadyExists", f"ICCID {value} is already in use"
                        )
                    apply["iccid"] = value
                elif kind == "imei":
                    if value in self.by_imei:
                        raise Refused(
                            "REQUEST_FAILED.DeviceAlreadyExists", f"IMEI {value} is already in use"
                        )
                    apply["imei"] = value
            if not apply:
                raise Refused("INPUT_INVALID.RequestUndefined", "deviceIdsTo is empty")
            return apply
        raise Refused("INPUT_INVALID.RequestUndefined", f"unknown action {action}")

    def open_request(self, action: str, body: dict[str, Any], entries: list[Any]) -> SimRequest:
        request = SimRequest(id=str(uuid.uuid4()), action=action, outcomes=[])
        account = body.get("accountName")
        for entry in entries:
            ids = entry.get("deviceIds") if isinstance(entry, dict) else entry
            try:
                device = self._find(ids or [], account)
            except Refused as refused:
                ghost = SimDevice(
                    iccid=next(
                        (
                            str(i.get("id"))
                            for i in ids or []
                            if str(i.get("kind", "")).lower() == "iccid"
                        ),
                        "unknown",
                    ),
                    imei="",
                    msisdn=None,
                    state="unknown",
                    plan="",
                    account="",
                    created_at="",
                )
                request.outcomes.append(DeviceOutcome(ghost, False, refused))
                continue
            try:
                apply = self.check(action, device, body)
            except Refused as refused:
                request.outcomes.append(DeviceOutcome(device, False, refused))
                continue
            device.pending_request = request.id
            device.pending_state = PENDING_FORM[action]
            request.outcomes.append(DeviceOutcome(device, True, apply=apply))
        self.requests[request.id] = request
        return request

    def settle(self, request: SimRequest, outcome: DeviceOutcome) -> None:
        """The network confirms: apply the change (once) and close the pending state."""
        device = outcome.device
        if outcome.ok:
            apply = outcome.apply
            old_iccid = device.iccid
            if "state" in apply:
                device.state = apply["state"]
            if apply.get("plan"):
                device.plan = apply["plan"]
            if apply.get("msisdn"):
                if device.msisdn and self.by_msisdn.get(device.msisdn) is device:
                    del self.by_msisdn[device.msisdn]
                device.msisdn = apply["msisdn"]
                self.by_msisdn[device.msisdn] = device
            if "imei" in apply:
                if self.by_imei.get(device.imei) is device:
                    del self.by_imei[device.imei]
                device.imei = apply["imei"]
                self.by_imei[device.imei] = device
            if "iccid" in apply:
                del self.devices[old_iccid]
                device.iccid = apply["iccid"]
                self.devices[device.iccid] = device
                self._order = None
            device.applied_changes += 1
            self.stats.changes_applied += 1
            self.stats.changed[old_iccid] = self.stats.changed.get(old_iccid, 0) + 1
            outcome.status = "Success"
        else:
            outcome.status = "Failed"
        if device.pending_request == request.id:
            device.pending_request = None
            device.pending_state = None

    def device_json(self, device: SimDevice) -> dict[str, Any]:
        ids = [{"id": device.iccid, "kind": "iccid"}, {"id": device.imei, "kind": "imei"}]
        if device.msisdn:
            ids += [{"id": device.msisdn, "kind": "msisdn"}, {"id": device.msisdn, "kind": "mdn"}]
        return {
            "accountName": device.account,
            "billingCycleEndDate": None,
            "carrierInformations": [
                {
                    "carrierName": "Verizon Wireless",
                    "servicePlan": device.plan,
                    "state": device.pending_state or device.state,
                }
            ],
            "connected": device.state == "active",
            "createdAt": device.created_at,
            "customFields": [],
            "deviceIds": ids,
            "extendedAttributes": [],
            "groupNames": ["Default: " + device.account],
            "ipAddress": None,
            "lastActivationBy": None,
            "lastActivationDate": None,
            "lastConnectionDate": None,
        }
