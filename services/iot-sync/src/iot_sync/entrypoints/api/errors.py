"""The one place where business conditions become HTTP problems (RFC 9457)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fleetops_common.problems import InvalidParam, Problem, install_problem_handlers
from iot_sync.app.errors import InvalidInput, NotFound, Refused, UseCaseError


def problem_for(exc: UseCaseError) -> Problem:
    if isinstance(exc, InvalidInput):
        return Problem(
            status=422,
            title="Request is not valid",
            detail=str(exc),
            type_="validation-error",
            invalid_params=[InvalidParam(name=f"body.{exc.field}", reason=exc.reason)],
        )
    if isinstance(exc, NotFound):
        return Problem(status=404, title="Not found", detail=str(exc), type_="not-found")
    if isinstance(exc, Refused):
        return Problem(
            status=409,
            title="Does not apply in the current state",
            detail=exc.reason,
            type_="transition-refused",
            extra={"code": exc.code},
        )
    return Problem(status=400, title="Request refused", detail=str(exc))


def install_error_handlers(app: FastAPI) -> None:
    install_problem_handlers(app)

    async def on_use_case_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, UseCaseError)
        return problem_for(exc).to_response(instance=request.url.path)

    app.add_exception_handler(UseCaseError, on_use_case_error)
