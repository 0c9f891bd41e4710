"""RFC 9457 problem details: one error model, rendered the same way by every service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://fleetops.dev/problems/"


class InvalidParam(BaseModel):
    name: str = Field(description="Where the bad value is, e.g. `body.devices[3].iccid`")
    reason: str


class ProblemDetails(BaseModel):
    """The body of every error answer (RFC 9457)."""

    type: str = Field(default="about:blank", examples=[TYPE_BASE + "validation-error"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    invalid_params: list[InvalidParam] | None = Field(
        default=None, description="One entry per rejected field (validation errors only)"
    )


class Problem(Exception):
    """Raise from an entrypoint to answer with problem details."""

    def __init__(
        self,
        *,
        status: int,
        title: str,
        detail: str | None = None,
        type_: str | None = None,
        invalid_params: Sequence[InvalidParam] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = TYPE_BASE + type_ if type_ else "about:blank"
        self.invalid_params = list(invalid_params) if invalid_params else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def to_response(self, instance: str | None = None) -> JSONResponse:
        body = ProblemDetails(
            type=self.type,
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=instance,
            invalid_params=self.invalid_params,
        ).model_dump(exclude_none=True)
        body.update(self.extra)
        return JSONResponse(
            body, status_code=self.status, media_type=PROBLEM_MEDIA_TYPE, headers=self.headers
        )


def _location(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_problem(errors: Sequence[Mapping[str, Any]]) -> Problem:
    params = [InvalidParam(name=_location(e.get("loc", ())), reason=str(e["msg"])) for e in errors]
    first = params[0] if params else None
    detail = f"{first.name}: {first.reason}" if first else "The request is not valid."
    if len(params) > 1:
        detail += f" (and {len(params) - 1} more)"
    return Problem(
        status=422,
        title="Request is not valid",
        detail=detail,
        type_="validation-error",
        invalid_params=params,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error (ours, validation, routing) as problem details."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return exc.to_response(instance=request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_problem(exc.errors()).to_response(instance=request.url.path)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        problem = Problem(
            status=exc.status_code,
            title=str(exc.detail) if exc.detail else "HTTP error",
            headers=dict(exc.headers or {}),
        )
        return problem.to_response(instance=request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails, "content": {PROBLEM_MEDIA_TYPE: {}}, "description": text}
    for status, text in {
        400: "Malformed request",
        401: "Missing or invalid bearer token",
        403: "Role or tenant not allowed",
        404: "Not found (or not visible to this tenant)",
        409: "Conflicts with the current state",
        422: "Validation failed; `invalid_params` names each field",
    }.items()
}
