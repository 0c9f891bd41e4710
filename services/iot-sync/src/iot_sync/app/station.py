"""S1, automated stations: authorize a swap, then confirm the dispense or a plain return.

The station calls `authorize`; the answer names the battery to release (reserved briefly so
a second authorization cannot get it) or the first reason for refusal. Only the station's
`dispense_confirm` applies BATTERY_ISSUED: the battery in the customer's hand, if any, is
returned in the same swap and starts charging in the slot the new one left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from iot_sync.app.effects import GUIDANCE, Effects, new_event_id
from iot_sync.app.ports import CustomerDirectory
from iot_sync.app.signals import FieldMessage, FieldMessageKind, Signal
from iot_sync.domain.asset import Asset, AssetMove
from iot_sync.domain.checks import (
    AUTHORIZE_CHECKS,
    DISPENSE_CHECKS,
    RETURN_CHECKS,
    AuthorizationContext,
    HandOverContext,
    choose_battery,
    missing_field,
)
from iot_sync.domain.customer import Customer
from iot_sync.domain.rejection import Rejection, first_rejection
from iot_sync.domain.service import Service, ServiceInput, ServiceState

# customer id -> the customer, None when the directory has none by that id
CustomersRead = Mapping[str, Customer | None]

GRANTED = "GRANTED"
REFUSED = "REFUSED"


class StationCalls:
    """Answers `call/abs/station/{station_id}/{verb}`."""

    def __init__(self, *, customers: CustomerDirectory, reservation_ttl: timedelta) -> None:
        self._customers = customers
        self._reservation_ttl = reservation_ttl

    def prefetch(self, fx: Effects, signals: Sequence[Signal]) -> CustomersRead:
        """Read at once what these calls will look up, so each of them costs no round trip.

        The unit of work's repositories keep what they read (and lock) for the rest of the
        transaction; the customers read here are returned, for `handle` to be given.
        """
        uow = fx.uow
        station_ids = list(dict.fromkeys(s.source_id for s in signals))
        customer_ids = list(dict.fromkeys(_texts(signals, "customer_id")))
        uow.stations.get_many(station_ids)
        services = uow.services.for_customers(customer_ids)
        held = [s.battery_id for s in services.values() if s.battery_id is not None]
        uow.assets.get_many([*_texts(signals, "battery_id"), *held])
        uow.assets.at_stations(station_ids)
        found = self._customers.get_many(customer_ids) if customer_ids else {}
        return {c: found.get(c) for c in customer_ids}

    def handle(
        self, fx: Effects, signal: Signal, customers: CustomersRead | None = None
    ) -> Rejection | None:
        """Answer one call; `customers` holds what `prefetch` read (others are looked up)."""
        read = customers or {}
        if signal.verb == "authorize":
            return self.authorize(fx, signal, read)
        if signal.verb == "dispense_confirm":
            return self.confirm_dispense(fx, signal, read)
        if signal.verb == "return_confirm":
            return self.confirm_return(fx, signal, read)
        rejection = Rejection("unknown_verb", f"stations do not call {signal.verb!r}")
        _reply(
            fx, signal, {"result": "rejected", "reason": rejection.code, "detail": rejection.reason}
        )
        return rejection

    # ---- authorize ----------------------------------------------------------------------

    def authorize(
        self, fx: Effects, signal: Signal, customers: CustomersRead | None = None
    ) -> Rejection | None:
        data = signal.data
        shape = missing_field(data, ["customer_id"]) or _optional_text(data, "returned_battery_id")
        if shape is not None:
            _refuse(fx, signal, shape, customer_id=None)
            fx.error("station", signal.source_id, _error_data(signal, shape))
            return shape
        customer_id = str(data["customer_id"])
        if signal.expires_at is not None and signal.expires_at < fx.now:
            # A replayed authorization nobody waits for any more must not hold a battery.
            expired = Rejection("call_expired", f"the call expired at {signal.expires_at}")
            _refuse(fx, signal, expired, customer_id=None)
            return expired
        uow = fx.uow
        station = uow.stations.get_many([signal.source_id]).get(signal.source_id)
        context = AuthorizationContext(
            station_id=signal.source_id,
            customer_id=customer_id,
            now=fx.now,
            station=station,
            customer=self._customer(customer_id, customers),
            service=uow.services.for_customers([customer_id]).get(customer_id),
            returned_battery_id=data.get("returned_battery_id"),
            batteries_at_station=uow.assets.at_station(signal.source_id) if station else (),
        )
        rejection = first_rejection(AUTHORIZE_CHECKS, context)
        battery = choose_battery(context) if rejection is None else None
        if rejection is not None or battery is None:
            rejection = rejection or Rejection("no_charged_battery", "no charged battery free")
            known = customer_id if context.customer is not None else None
            _refuse(fx, signal, rejection, customer_id=known)
            return rejection
        uow.assets.save(battery.reserve(customer_id, fx.now + self._reservation_ttl))
        _reply(
            fx,
            signal,
            {"decision": GRANTED, "battery_id": battery.asset_id, "slot": battery.slot},
        )
        return None

    # ---- dispense -----------------------------------------------------------------------

    def confirm_dispense(
        self, fx: Effects, signal: Signal, customers: CustomersRead | None = None
    ) -> Rejection | None:
        data = signal.data
        shape = missing_field(data, ["customer_id", "battery_id"])
        if shape is not None:
            return _reject_handover(fx, signal, shape)
        customer_id, battery_id = str(data["customer_id"]), str(data["battery_id"])
        uow = fx.uow
        service = uow.services.for_customers([customer_id]).get(customer_id)
        held_id = service.battery_id if service is not None else None
        assets = uow.assets.get_many([battery_id, *([held_id] if held_id else [])])
        customer = self._customer(customer_id, customers)
        context = HandOverContext(
            station_id=signal.source_id,
            customer_id=customer_id,
            battery_id=battery_id,
            now=fx.now,
            customer=customer,
            service=service,
            battery=assets.get(battery_id),
        )
        rejection = first_rejection(DISPENSE_CHECKS, context)
        if rejection is None:
            assert service is not None
            rejection = _swap_refusal(service, battery_id, fx)
        if rejection is not None:
            return _reject_handover(fx, signal, rejection)
        assert service is not None and customer is not None
        dispensed = assets[battery_id]
        cause = signal.message_id
        for promised in uow.assets.at_station(signal.source_id):
            # One swap, one battery: whatever else was promised to this customer is free again.
            if promised.reserved_for == customer_id and promised.asset_id != battery_id:
                uow.assets.save(replace(promised, reserved_for=None, reserved_until=None))
        # The new battery leaves first, so the slot it frees can take the returned one.
        fx.move_asset(
            dispensed, dispensed.issue(holder=customer_id, at=fx.now), AssetMove.ISSUE, cause=cause
        )
        if held_id is not None:
            returned = assets.get(held_id)
            service = _applied(
                fx.apply_to_service(
                    service, ServiceInput.BATTERY_RETURNED, cause=cause, battery_id=held_id
                )
            )
            if returned is not None:
                self._dock(fx, returned, signal, slot=_slot(data) or dispensed.slot)
        service = _applied(
            fx.apply_to_service(
                service, ServiceInput.BATTERY_ISSUED, cause=cause, battery_id=battery_id
            )
        )
        service = service.count_swap(customer.plan, fx.now)
        uow.services.save(service)
        _reply(
            fx,
            signal,
            {
                "result": "accepted",
                "battery_id": battery_id,
                "returned_battery_id": held_id,
                "service_state": service.state.value,
                "swaps_left": service.swaps_left(customer.plan, fx.now),
            },
        )
        fx.notify(customer_id, "battery_issued", battery_id=battery_id, station_id=signal.source_id)
        return None

    # ---- return without a new battery ---------------------------------------------------

    def confirm_return(
        self, fx: Effects, signal: Signal, customers: CustomersRead | None = None
    ) -> Rejection | None:
        data = signal.data
        shape = missing_field(data, ["customer_id", "battery_id"])
        if shape is not None:
            return _reject_handover(fx, signal, shape)
        customer_id, battery_id = str(data["customer_id"]), str(data["battery_id"])
        uow = fx.uow
        service = uow.services.for_customers([customer_id]).get(customer_id)
        context = HandOverContext(
            station_id=signal.source_id,
            customer_id=customer_id,
            battery_id=battery_id,
            now=fx.now,
            customer=self._customer(customer_id, customers),
            service=service,
            battery=uow.assets.get_many([battery_id]).get(battery_id),
        )
        rejection = first_rejection(RETURN_CHECKS, context)
        if rejection is not None:
            return _reject_handover(fx, signal, rejection)
        assert service is not None and context.battery is not None
        battery = context.battery
        slot = _slot(data) or self._free_slot(fx, signal.source_id)
        if slot is None:
            return _reject_handover(
                fx,
                signal,
                Rejection("station_full", f"station {signal.source_id} has no free slot"),
            )
        moved = self._dock(fx, battery, signal, slot=slot)
        if isinstance(moved, Rejection):
            return _reject_handover(fx, signal, moved)
        cause = signal.message_id
        if service.state is ServiceState.BATTERY_LOST:
            # A lost battery brought back to a station is found and returned at once.
            service = _applied(
                fx.apply_to_service(service, ServiceInput.BATTERY_FOUND, cause=cause)
            )
        if service.state in (ServiceState.BATTERY_ISSUED, ServiceState.BATTERY_FOUND):
            service = _applied(
                fx.apply_to_service(
                    service, ServiceInput.BATTERY_RETURNED, cause=cause, battery_id=None
                )
            )
        _reply(
            fx,
            signal,
            {
                "result": "accepted",
                "battery_id": battery_id,
                "slot": slot,
                "service_state": service.state.value,
            },
        )
        fx.notify(
            customer_id, "battery_returned", battery_id=battery_id, station_id=signal.source_id
        )
        return None

    def _customer(self, customer_id: str, read: CustomersRead | None) -> Customer | None:
        if read is not None and customer_id in read:
            return read[customer_id]
        return self._customers.get_many([customer_id]).get(customer_id)

    def _dock(
        self, fx: Effects, battery: Asset, signal: Signal, *, slot: int | None
    ) -> Asset | Rejection:
        station = fx.uow.stations.get_many([signal.source_id]).get(signal.source_id)
        region = station.region if station is not None else signal.region
        return fx.move_asset(
            battery,
            battery.dock(station_id=signal.source_id, slot=slot, region=region, at=fx.now),
            AssetMove.DOCK,
            cause=signal.message_id,
            reason="returned at station",
        )

    def _free_slot(self, fx: Effects, station_id: str) -> int | None:
        station = fx.uow.stations.get_many([station_id]).get(station_id)
        if station is None:
            return None
        occupied = {a.slot for a in fx.uow.assets.at_station(station_id) if a.slot is not None}
        return station.free_slot(occupied)


def _texts(signals: Sequence[Signal], name: str) -> list[str]:
    """`data[name]` of each signal that has one (as the handlers read it: as text)."""
    return [str(v) for s in signals if (v := s.data.get(name)) is not None]


def _swap_refusal(service: Service, battery_id: str, fx: Effects) -> Rejection | None:
    """Would the swap's service inputs apply? Tried on the value, before anything is written."""
    probe: Service | Rejection = service
    if service.battery_id is not None:
        probe = service.apply(
            ServiceInput.BATTERY_RETURNED, at=fx.now, battery_id=service.battery_id
        )
    if isinstance(probe, Service):
        probe = probe.apply(ServiceInput.BATTERY_ISSUED, at=fx.now, battery_id=battery_id)
    return probe if isinstance(probe, Rejection) else None


def _applied(result: Service | Rejection) -> Service:
    if isinstance(result, Rejection):  # the probe said it applies; anything else is a bug
        raise AssertionError(result.reason)
    return result


def _slot(data: Any) -> int | None:
    value = data.get("slot")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _optional_text(data: Any, name: str) -> Rejection | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        return Rejection("wrong_type", f"data.{name} must be a string")
    return None


def _reply(fx: Effects, signal: Signal, data: dict[str, Any]) -> None:
    fx.field(
        FieldMessage(
            kind=FieldMessageKind.STATION_REPLY,
            subject=signal.source_id,
            name=signal.verb,
            data=data,
            message_id=new_event_id(),
            correlation_id=signal.correlation_id,
            reply_to=signal.reply_to,
            traceparent=signal.traceparent,
        )
    )


def _refuse(fx: Effects, signal: Signal, rejection: Rejection, *, customer_id: str | None) -> None:
    _reply(fx, signal, {"decision": REFUSED, "reason": rejection.code, "detail": rejection.reason})
    if customer_id is not None:
        fx.notify(
            customer_id,
            "swap_refused",
            reason=rejection.reason,
            code=rejection.code,
            guidance=GUIDANCE.get(rejection.code, "Please contact support."),
            station_id=signal.source_id,
        )


def _reject_handover(fx: Effects, signal: Signal, rejection: Rejection) -> Rejection:
    # A battery may have moved physically without a valid transition: operations must know.
    _reply(fx, signal, {"result": "rejected", "reason": rejection.code, "detail": rejection.reason})
    fx.error("station", signal.source_id, _error_data(signal, rejection))
    return rejection


def _error_data(signal: Signal, rejection: Rejection) -> dict[str, Any]:
    return {
        "reason": rejection.code,
        "detail": rejection.reason,
        "topic": signal.topic,
        "message_id": signal.message_id,
        "verb": signal.verb,
    }
