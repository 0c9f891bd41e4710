"""What every route asks for: the container and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from fleetops_common.auth import Principal, Role, require_principal, require_role
from iot_sync.bootstrap import Container


def container(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


Services = Annotated[Container, Depends(container)]
Viewer = Annotated[Principal, Depends(require_principal)]
Operator = Annotated[Principal, Depends(require_role(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require_role(Role.ADMIN))]
