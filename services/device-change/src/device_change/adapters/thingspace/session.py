"""The two ThingSpace credentials: an OAuth2 token and an M2M session token, both reused."""

from __future__ import annotations

import threading
import time

import httpx

from device_change.adapters.thingspace.settings import ThingSpaceSettings
from device_change.app.ports import (
    CarrierError,
    CarrierRejected,
    CarrierThrottled,
    CarrierUnavailable,
)


class ThingSpaceSession:
    def __init__(self, settings: ThingSpaceSettings, http: httpx.Client) -> None:
        self._s = settings
        self._http = http
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._access_expires = 0.0
        self._session_token: str | None = None

    def headers(self) -> dict[str, str]:
        with self._lock:
            if self._access_token is None or time.monotonic() > self._access_expires:
                self._fetch_access_token()
                self._session_token = None
            if self._session_token is None:
                self._login()
            return {
                "Authorization": f"Bearer {self._access_token}",
                "VZ-M2M-Token": str(self._session_token),
            }

    def forget_access_token(self) -> None:
        with self._lock:
            self._access_token = None

    def forget_session(self) -> None:
        with self._lock:
            self._session_token = None

    def _fetch_access_token(self) -> None:
        try:
            r = self._http.post(
                self._s.oauth_url,
                data={"grant_type": "client_credentials"},
                auth=(self._s.client_id, self._s.client_secret),
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise CarrierUnavailable(f"token server unreachable: {exc}") from exc
        if r.status_code != 200:
            raise _refusal(r, "oauth", "token refused")
        body = r.json()
        self._access_token = body["access_token"]
        self._access_expires = time.monotonic() + max(float(body.get("expires_in", 3600)) - 60, 30)

    def _login(self) -> None:
        try:
            r = self._http.post(
                f"{self._s.base_url}/v1/session/login",
                json={"username": self._s.username, "password": self._s.password},
                headers={"Authorization": f"Bearer {self._access_token}"},
            )
        except httpx.HTTPError as exc:
            raise CarrierUnavailable(f"session login failed: {exc}") from exc
        if r.status_code != 200:
            raise _refusal(r, "login", "session login refused")
        self._session_token = r.json()["sessionToken"]


def _refusal(r: httpx.Response, step: str, words: str) -> CarrierError:
    """A credential call that failed: transient (429, 5xx) unless the carrier said no."""
    if r.status_code == 429:
        retry_after = r.headers.get("Retry-After")
        return CarrierThrottled(
            f"{step} throttled (HTTP 429)",
            retry_after_s=float(retry_after) if retry_after else None,
        )
    if r.status_code >= 500:
        return CarrierUnavailable(f"{step} failed with HTTP {r.status_code}: {r.text[:200]}")
    return CarrierRejected(f"{step}.{r.status_code}", f"{words}: {r.text[:200]}")
