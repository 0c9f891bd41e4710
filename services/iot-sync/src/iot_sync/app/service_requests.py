"""Service inputs that come from the back office rather than the field.

DEPOSIT_CONFIRMED and ASSET_SETTLEMENT_COMPLETE come from billing, CONTINUE_SERVICE_REQUESTED
and SERVICE_CANCELLED from the customer (through the portal or support). The battery
inputs (ISSUED, RETURNED, LOST, FOUND) only ever come from validated field signals.
"""

from __future__ import annotations

from iot_sync.app.effects import Effects
from iot_sync.app.errors import InvalidInput, NotFound, Refused
from iot_sync.app.ports import Clock, UnitOfWorkFactory
from iot_sync.domain.rejection import Rejection
from iot_sync.domain.service import Service, ServiceInput

BACK_OFFICE_INPUTS = frozenset(
    {
        ServiceInput.DEPOSIT_CONFIRMED,
        ServiceInput.ASSET_SETTLEMENT_COMPLETE,
        ServiceInput.CONTINUE_SERVICE_REQUESTED,
        ServiceInput.SERVICE_CANCELLED,
    }
)


class ServiceRequests:
    def __init__(self, *, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow_factory = uow_factory
        self._clock = clock

    def apply(self, service_id: str, event: ServiceInput, *, actor: str) -> Service:
        if event not in BACK_OFFICE_INPUTS:
            raise InvalidInput("input", f"{event} comes only from validated field signals")
        with self._uow_factory() as uow:
            service = uow.services.get(service_id)
            if service is None:
                raise NotFound(f"no service {service_id}")
            fx = Effects(uow, self._clock.now())
            after = fx.apply_to_service(service, event, cause=f"request:{actor}", actor=actor)
            if isinstance(after, Rejection):
                raise Refused(after.code, after.reason)
            fx.notify(
                after.customer_id, "service_state", state=after.state.value, input=event.value
            )
            fx.flush()
            uow.commit()
        return after
