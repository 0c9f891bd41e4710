"""`CarrierGateway` over ThingSpace's REST API.

Changes are never retried here: the use cases own retries and reconciliation, so this class
only says what happened — throttled or unavailable (nothing applied), refused (permanent),
or unknown (a timeout after the request left: it may have been applied).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from device_change.adapters.thingspace.session import ThingSpaceSession
from device_change.adapters.thingspace.settings import ThingSpaceSettings
from device_change.app.ports import (
    CarrierDeviceOutcome,
    CarrierDeviceRef,
    CarrierDeviceState,
    CarrierOutcomeUnknown,
    CarrierRejected,
    CarrierThrottled,
    CarrierUnavailable,
)
from device_change.domain.changes import CarrierAction
from device_change.domain.device import DeviceStatus, RatePlan

_POST_ACTIONS = {
    CarrierAction.ACTIVATE: "activate",
    CarrierAction.SUSPEND: "suspend",
    CarrierAction.RESTORE: "restore",
    CarrierAction.DEACTIVATE: "deactivate",
}


def _device_ids(ref: CarrierDeviceRef) -> list[dict[str, str]]:
    ids = [{"id": ref.iccid, "kind": "iccid"}]
    if ref.imei:
        ids.append({"id": ref.imei, "kind": "imei"})
    return ids


def parse_device(device: Mapping[str, Any]) -> CarrierDeviceState:
    ids: dict[str, str] = {}
    for item in device.get("deviceIds") or []:
        ids.setdefault(str(item.get("kind", "")).lower(), str(item.get("id")))
    info = (device.get("carrierInformations") or [{}])[0]
    raw = str(info.get("state") or "")
    try:
        status: DeviceStatus | None = DeviceStatus.from_carrier_state(raw)
        if raw.lower().startswith("pending") and status is not DeviceStatus.PENDING_ACTIVATION:
            status = None
    except ValueError:
        status = None
    if raw.lower().startswith("pending") and "activation" not in raw.lower():
        status = None
    return CarrierDeviceState(
        iccid=ids.get("iccid", ""),
        imei=ids.get("imei"),
        msisdn=ids.get("msisdn") or ids.get("mdn"),
        status=status,
        raw_state=raw,
        rate_plan=info.get("servicePlan"),
        account_name=device.get("accountName"),
    )


class ThingSpaceCarrierGateway:
    def __init__(self, settings: ThingSpaceSettings, *, http: httpx.Client | None = None) -> None:
        self._s = settings
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
            ),
        )
        self._session = ThingSpaceSession(settings, self._http)

    # ---- transport -------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, *, reauth: bool = True) -> Any:
        url = path if path.startswith("http") else f"{self._s.base_url}{path}"
        headers = self._session.headers()
        try:
            r = self._http.request(method, url, json=body, headers=headers)
        except httpx.ConnectError as exc:
            raise CarrierUnavailable(f"carrier unreachable: {exc}") from exc
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                raise CarrierUnavailable(f"carrier unreachable: {exc}") from exc
            raise CarrierOutcomeUnknown(f"no answer from the carrier: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise CarrierOutcomeUnknown(f"connection lost mid-call: {exc!r}") from exc
        if r.status_code in (200, 202):
            return r.json() if r.content else None
        if r.status_code == 429:
            retry_after = r.headers.get("Retry-After")
            raise CarrierThrottled(
                "carrier throttled the call (HTTP 429)",
                retry_after_s=float(retry_after) if retry_after else None,
            )
        if r.status_code >= 500:
            # The carrier documents its 5xx as refusals before processing (see README).
            raise CarrierUnavailable(f"carrier error HTTP {r.status_code}: {r.text[:200]}")
        payload: dict[str, Any] = {}
        try:
            parsed = r.json()
            payload = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            pass
        code = str(payload.get("errorCode") or (payload.get("fault") or {}).get("code") or "")
        if reauth and r.status_code == 401:
            self._session.forget_access_token()
            return self._call(method, path, body, reauth=False)
        if reauth and ".SessionToken." in code:
            self._session.forget_session()
            return self._call(method, path, body, reauth=False)
        message = str(
            payload.get("errorMessage") or (payload.get("fault") or {}).get("message") or r.text
        )
        raise CarrierRejected(code or f"HTTP{r.status_code}", message[:300])

    # ---- the port --------------------------------------------------------------------

    def submit(
        self, action: CarrierAction, devices: Sequence[CarrierDeviceRef], args: Mapping[str, Any]
    ) -> str:
        account = self._s.account_name
        entries = [{"deviceIds": _device_ids(d)} for d in devices]
        if action in _POST_ACTIONS:
            body: dict[str, Any] = {"devices": entries, "accountName": account}
            if action is CarrierAction.ACTIVATE:
                body["servicePlan"] = args.get("rate_plan")
                body["mdnZipCode"] = args.get("zip_code")
                if args.get("place_of_use"):
                    body["primaryPlaceOfUse"] = args["place_of_use"]
            if action is CarrierAction.DEACTIVATE:
                body["reasonCode"] = args.get("reason_code") or "FF"
                body["etfWaiver"] = bool(args.get("etf_waiver", False))
            answer = self._call("POST", f"/v1/devices/actions/{_POST_ACTIONS[action]}", body)
        elif action is CarrierAction.ADD:
            answer = self._call(
                "POST",
                "/v1/devices/actions/add",
                {"devicesToAdd": entries, "accountName": account, "state": "preactive"},
            )
        elif action is CarrierAction.CHANGE_PLAN:
            body = {"devices": entries, "accountName": account, "servicePlan": args["rate_plan"]}
            if args.get("effective_at"):
                body["takeEffect"] = args["effective_at"]
            answer = self._call("PUT", "/v1/devices/actions/plan", body)
        elif action is CarrierAction.CHANGE_IDENTIFIER:
            (device,) = devices
            old = [{"id": device.iccid, "kind": "iccid"}]
            if device.msisdn:
                old.append({"id": device.msisdn, "kind": "msisdn"})
            new = [
                {"id": value, "kind": kind}
                for kind, value in (
                    ("iccid", args.get("new_iccid")),
                    ("imei", args.get("new_imei")),
                )
                if value
            ]
            path = self._s.change_identifier_path.format(
                service_type=self._s.change_identifier_service_type
            )
            answer = self._call(
                "PUT",
                path,
                {"deviceIds": old, "deviceIdsTo": new, "change4gOption": args["option"]},
            )
        else:
            raise ValueError(f"no carrier call for {action}")
        if isinstance(answer, dict) and answer.get("requestId"):
            return str(answer["requestId"])
        if isinstance(answer, list):  # the add call answers synchronously per device
            return f"sync:{len(answer)}"
        raise CarrierOutcomeUnknown(f"carrier answer without requestId: {answer!r}")

    def device_state(self, iccid: str) -> CarrierDeviceState | None:
        try:
            answer = self._call(
                "POST",
                "/v1/devices/actions/list",
                {"accountName": self._s.account_name, "deviceId": {"id": iccid, "kind": "iccid"}},
            )
        except CarrierRejected:
            return None  # not known to the carrier
        for device in (answer or {}).get("devices") or []:
            state = parse_device(device)
            if state.iccid == iccid:
                return state
        return None

    def request_outcomes(
        self, request_id: str, iccids: Sequence[str]
    ) -> list[CarrierDeviceOutcome]:
        account = self._s.account_name
        wanted = set(iccids)
        if self._s.status_api == "v1":
            answer = self._call("GET", f"/v1/accounts/{account}/requests/{request_id}/status")
            verdict = _verdict(str((answer or {}).get("status", "")))
            return [CarrierDeviceOutcome(request_id, i, verdict) for i in iccids]
        answer = self._call("GET", f"/v2/accounts/{account}/requests/{request_id}/status")
        outcomes: list[CarrierDeviceOutcome] = []
        for sub in (answer or {}).get("subRequests") or []:
            ids = {str(i.get("kind", "")).lower(): str(i.get("id")) for i in sub.get("ids") or []}
            iccid = ids.get("iccid")
            if iccid in wanted:
                outcomes.append(
                    CarrierDeviceOutcome(request_id, iccid, _verdict(str(sub.get("status", ""))))
                )
        return outcomes

    def iter_devices(self) -> Iterator[list[CarrierDeviceState]]:
        last_seen: str | None = None
        while True:
            body: dict[str, Any] = {
                "accountName": self._s.account_name,
                "maxNumberOfDevices": self._s.list_page_size,
            }
            if last_seen:
                body["largestDeviceIdSeen"] = last_seen
            answer = self._call("POST", "/v1/devices/actions/list", body) or {}
            devices = [parse_device(d) for d in answer.get("devices") or []]
            yield [d for d in devices if d.iccid]
            last_seen = answer.get(self._s.last_seen_field) or (
                devices[-1].iccid if devices else None
            )
            if not answer.get("hasMoreData") or not devices:
                return

    def rate_plans(self) -> list[RatePlan]:
        answer = self._call("GET", f"/v1/plans/{self._s.account_name}") or []
        return [
            RatePlan(
                code=str(p["code"]), name=str(p.get("name") or p["code"]), size_kb=p.get("sizeKb")
            )
            for p in answer
        ]

    def register_callback(self, url: str, *, username: str, password: str) -> None:
        self._call(
            "POST",
            f"/v1/callbacks/{self._s.account_name}",
            {
                "name": self._s.callback_service_name,
                "url": url,
                "username": username,
                "password": password,
            },
        )


def _verdict(status: str) -> bool | None:
    s = status.lower()
    if s == "success":
        return True
    if s in ("failed", "failure"):
        return False
    return None
