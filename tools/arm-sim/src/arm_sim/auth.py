"""OAuth2 client-credentials tokens: issued, checked, expired on demand."""

from __future__ import annotations

import secrets
import threading
import time
from enum import Enum


class TokenCheck(Enum):
    VALID = "VALID"
    UNKNOWN = "UNKNOWN"
    EXPIRED = "EXPIRED"


class TokenStore:
    """Every issued token stays valid until it expires; a new one does not revoke the old."""

    def __init__(self, *, lifetime_s: int) -> None:
        self.lifetime_s = lifetime_s
        self._lock = threading.Lock()
        self._expires: dict[str, float] = {}

    def issue(self) -> tuple[str, int]:
        token = secrets.token_urlsafe(24)
        with self._lock:
            now = time.monotonic()
            # Forget long-expired tokens now and then so the map stays small.
            if len(self._expires) > 10_000:
                self._expires = {t: e for t, e in self._expires.items() if e > now - 3600}
            self._expires[token] = now + self.lifetime_s
        return token, self.lifetime_s

    def check(self, token: str) -> TokenCheck:
        with self._lock:
            expires = self._expires.get(token)
        if expires is None:
            return TokenCheck.UNKNOWN
        return TokenCheck.VALID if time.monotonic() < expires else TokenCheck.EXPIRED

    def expire_all(self) -> int:
        """Make every issued token expired now (a test's way to skip an hour)."""
        with self._lock:
            now = time.monotonic()
            for token in self._expires:
                self._expires[token] = min(self._expires[token], now)
            return len(self._expires)
