"""`ArmGateway` over ARM's REST API (the contract: tools/arm-sim/README.md).

Every call is retried here, movements included: ARM applies a `movement_id` at most once,
so sending a movement again after a timeout (when its fate is unknown) is safe and ends
the doubt. What is left after the retries is `ArmUnavailable` (try again later, with the
same movement) or `ArmRejected` (ARM will never take this movement as it stands).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from iot_sync.adapters.arm.settings import ArmSettings
from iot_sync.app.arm import (
    ArmAsset,
    ArmRejected,
    ArmStation,
    ArmUnavailable,
    AssetMovement,
)

log = logging.getLogger(__name__)

_TRANSIENT_STATUS = frozenset({500, 502, 503, 504})
_REFRESH_ON = frozenset({"TOKEN_EXPIRED", "UNAUTHORIZED"})


class _Transient(Exception):
    """A failure worth another attempt; `retry_after_s` when ARM said how long to wait."""

    def __init__(self, reason: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """ARM's error code and message, or stand-ins when the body is not ARM's shape."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or f"HTTP_{response.status_code}"), str(
            error.get("message") or ""
        )
    return f"HTTP_{response.status_code}", response.text[:200]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _station(item: Mapping[str, Any]) -> ArmStation:
    return ArmStation(
        station_id=str(item["station_id"]),
        name=str(item["name"]),
        region=str(item["region"]),
        site=str(item["site"]),
        latitude=float(item["latitude"]),
        longitude=float(item["longitude"]),
        slot_count=int(item["slot_count"]),
        online=bool(item["online"]),
    )


def _asset(item: Mapping[str, Any]) -> ArmAsset:
    charge = item.get("charge_pct")
    slot = item.get("slot")
    return ArmAsset(
        asset_id=str(item["asset_id"]),
        battery_class=str(item["battery_class"]),
        state=str(item["state"]),
        station_id=item.get("station_id"),
        slot=None if slot is None else int(slot),
        holder=item.get("holder"),
        charge_pct=None if charge is None else float(charge),
        version=int(item["version"]),
    )


def _movement_body(movement: AssetMovement) -> dict[str, Any]:
    occurred_at = movement.occurred_at
    if occurred_at.tzinfo is None:  # ARM wants an offset; our naive times are UTC
        occurred_at = occurred_at.replace(tzinfo=UTC)
    body: dict[str, Any] = {
        "movement_id": movement.movement_id,
        "state": movement.state,
        "occurred_at": occurred_at.isoformat(),
    }
    optional = {
        "station_id": movement.station_id,
        "slot": movement.slot,
        "holder": movement.holder,
        "reason": movement.reason,
        "expected_version": movement.expected_version,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


class _TokenCache:
    """One OAuth2 client-credentials token, shared by all threads, renewed before it ends."""

    def __init__(self, settings: ArmSettings, http: httpx.Client) -> None:
        self._s = settings
        self._http = http
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def get(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                self._token, lifetime = self._fetch()
                margin = min(self._s.token_refresh_margin_s, lifetime / 2)
                self._renew_at = time.monotonic() + lifetime - margin
            return self._token

    def forget(self, token: str) -> None:
        """Drop `token` unless another thread has already replaced it."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._s.client_id,
            "client_secret": self._s.client_secret,
        }
        try:
            r = self._http.post(f"{self._s.base_url}{self._s.token_path}", data=form)
        except httpx.TransportError as exc:
            raise _Transient(f"token endpoint unreachable: {exc!r}") from exc
        if r.status_code == 429:
            raise _Transient("token endpoint throttled us", retry_after_s=_retry_after(r))
        if r.status_code in _TRANSIENT_STATUS:
            raise _Transient(f"token endpoint answered HTTP {r.status_code}")
        if r.status_code != 200:
            code, message = _error_of(r)
            raise ArmUnavailable(f"ARM refused our client credentials: {message} ({code})")
        try:
            body = r.json()
            return str(body["access_token"]), float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise ArmUnavailable(f"unreadable token answer: {r.text[:200]}") from exc


class HttpArmGateway:
    """`ArmGateway` over HTTP: OAuth2 client credentials, cursor paging, retries."""

    def __init__(
        self,
        settings: ArmSettings,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._s = settings
        self._owns_http = http is None
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
            ),
        )
        self._tokens = _TokenCache(settings, self._http)
        self._sleep = sleep
        self._backoff = wait_random_exponential(
            multiplier=settings.backoff_initial_s, max=settings.backoff_max_s
        )

    # ---- the port --------------------------------------------------------------------

    def list_stations(self) -> Iterator[ArmStation]:
        for item in self._pages("/arm/v1/stations", {}):
            yield _station(item)

    def list_assets(self, *, station_id: str | None = None) -> Iterator[ArmAsset]:
        params = {"station_id": station_id} if station_id is not None else {}
        for item in self._pages("/arm/v1/assets", params):
            yield _asset(item)

    def get_asset(self, asset_id: str) -> ArmAsset | None:
        item = self._call("GET", f"/arm/v1/assets/{quote(asset_id, safe='')}", absent_ok=True)
        return None if item is None else _asset(item)

    def apply_movement(self, movement: AssetMovement) -> ArmAsset:
        path = f"/arm/v1/assets/{quote(movement.asset_id, safe='')}/movements"
        item = self._call("POST", path, body=_movement_body(movement))
        assert item is not None  # only absent_ok calls answer None
        return _asset(item)

    # ---- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> HttpArmGateway:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- transport -------------------------------------------------------------------

    def _pages(self, path: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            query: dict[str, Any] = {**params, "limit": self._s.page_size}
            if cursor:
                query["cursor"] = cursor
            page = self._call("GET", path, params=query)
            assert page is not None
            try:
                items, cursor = list(page["items"]), page.get("next_cursor")
            except (KeyError, TypeError) as exc:
                raise ArmUnavailable(f"unreadable page from {path}") from exc
            yield from items
            if not cursor:
                return

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        absent_ok: bool = False,
    ) -> dict[str, Any] | None:
        """One ARM call with its retries; the JSON answer, or None for a 404 if absent_ok."""
        retrying = Retrying(
            stop=stop_after_attempt(self._s.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            sleep=self._sleep,
            before_sleep=lambda state: log.info(
                "ARM %s %s: attempt %d failed (%s), retrying",
                method,
                path,
                state.attempt_number,
                state.outcome.exception() if state.outcome else None,
            ),
            reraise=True,
        )
        try:
            r = retrying(self._attempt, method, path, params, body)
        except _Transient as exc:
            raise ArmUnavailable(
                f"ARM {method} {path}: no useful answer after {self._s.max_attempts} "
                f"attempts ({exc})"
            ) from exc
        if r.status_code == 200:
            try:
                answer = r.json()
            except ValueError as exc:
                raise ArmUnavailable(f"ARM {method} {path}: answer is not JSON") from exc
            if not isinstance(answer, dict):
                raise ArmUnavailable(f"ARM {method} {path}: answer is not an object")
            return answer
        code, message = _error_of(r)
        if r.status_code == 404 and absent_ok:
            return None
        if r.status_code == 401:
            raise ArmUnavailable(f"ARM {method} {path}: not authorised: {message} ({code})")
        if r.status_code in (400, 404, 409, 422):
            raise ArmRejected(code, message)
        raise ArmUnavailable(f"ARM {method} {path}: HTTP {r.status_code}: {message} ({code})")

    def _attempt(
        self, method: str, path: str, params: Mapping[str, Any] | None, body: Any
    ) -> httpx.Response:
        r = self._send(method, path, params, body)
        if r.status_code == 401 and _error_of(r)[0] in _REFRESH_ON:
            # The cached token ran out (or ARM forgot it): one fresh token, one more try.
            r = self._send(method, path, params, body, stale=r.request.headers["Authorization"])
        if r.status_code == 429:
            wait = _retry_after(r)
            if wait is not None and wait > self._s.max_retry_after_s:
                raise ArmUnavailable(f"ARM asks us to wait {wait:.0f}s before {method} {path}")
            raise _Transient("throttled (HTTP 429)", retry_after_s=wait)
        if r.status_code in _TRANSIENT_STATUS:
            raise _Transient(f"HTTP {r.status_code} {_error_of(r)[0]}")
        return r

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Any,
        *,
        stale: str | None = None,
    ) -> httpx.Response:
        if stale is not None:
            self._tokens.forget(stale.removeprefix("Bearer "))
        headers = {"Authorization": f"Bearer {self._tokens.get()}", "Accept": "application/json"}
        try:
            return self._http.request(
                method, f"{self._s.base_url}{path}", params=params, json=body, headers=headers
            )
        except httpx.TransportError as exc:
            # Connect errors left nothing behind; a read timeout may have left an applied
            # movement, and resending its movement_id is how we find out.
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after_s is not None:
            # ARM said when; a little jitter keeps many workers from returning at once.
            return exc.retry_after_s + random.uniform(0, self._s.backoff_initial_s)
        return float(self._backoff(state))
