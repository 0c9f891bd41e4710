"""Bearer tokens: who is calling, for which tenant, with which role.

Tokens are JWTs (HS256) carrying `sub`, `tenant` and `role`. Every `/v1` route asks for a
`Principal` through `require_principal`, and routes that change things through `require_role`.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fleetops_common.problems import Problem


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}[self]


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    tenant: str
    role: Role

    def can(self, needed: Role) -> bool:
        return self.role.rank >= needed.rank


@dataclass(frozen=True, slots=True)
class TokenService:
    secret: str
    issuer: str = "fleetops"
    audience: str = "fleetops-api"

    def mint(
        self, *, tenant: str, role: Role | str, subject: str | None = None, ttl_s: int = 86_400
    ) -> str:
        role = Role(role)
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": subject or f"{tenant}-{role.value}",
            "tenant": tenant,
            "role": role.value,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + ttl_s,
        }
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "sub", "tenant", "role"]},
            )
            return Principal(
                subject=str(claims["sub"]), tenant=str(claims["tenant"]), role=Role(claims["role"])
            )
        except (jwt.PyJWTError, ValueError) as exc:
            raise Problem(
                status=401,
                title="Invalid bearer token",
                detail=f"The bearer token was rejected: {exc}.",
                type_="invalid-token",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from exc


_bearer = HTTPBearer(auto_error=False, description="JWT carrying tenant and role")


def require_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(
            status=401,
            title="Missing bearer token",
            detail="Send 'Authorization: Bearer <token>'; `make token` prints one.",
            type_="missing-token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    tokens: TokenService = request.app.state.token_service
    return tokens.verify(credentials.credentials)


def require_role(needed: Role) -> Callable[..., Principal]:
    def dependency(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
        if not principal.can(needed):
            raise Problem(
                status=403,
                title="Role not allowed",
                detail=f"This action needs the role '{needed.value}' or higher; "
                f"the token carries '{principal.role.value}'.",
                type_="forbidden",
            )
        return principal

    return dependency
