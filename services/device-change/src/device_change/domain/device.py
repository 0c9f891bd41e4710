"""Devices in the inventory and the statuses they move through."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any


class DeviceStatus(enum.StrEnum):
    INVENTORY = "INVENTORY"  # known to us only, not on the carrier account
    PENDING_ACTIVATION = "PENDING_ACTIVATION"  # on the carrier account, never activated
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    DEACTIVATED = "DEACTIVATED"

    @classmethod
    def from_carrier_state(cls, state: str) -> DeviceStatus:
        """Map a ThingSpace `carrierInformations[].state` to our status (case-insensitive)."""
        s = state.strip().lower().replace("_", " ").replace("-", " ")
        if s in ("active",):
            return cls.ACTIVE
        if s in ("suspend", "suspended"):
            return cls.SUSPENDED
        if s in ("deactive", "deactivated", "inactive"):
            return cls.DEACTIVATED
        if s.startswith("pre") or s.startswith("pending activation"):
            return cls.PENDING_ACTIVATION
        raise ValueError(f"unknown carrier device state '{state}'")


@dataclass(frozen=True, slots=True)
class Device:
    tenant: str
    iccid: str
    imei: str | None
    msisdn: str | None
    status: DeviceStatus
    rate_plan: str | None
    account_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def snapshot(self) -> dict[str, Any]:
        """The fields a change can touch, for the audit trail's before/after."""
        return {
            "iccid": self.iccid,
            "imei": self.imei,
            "msisdn": self.msisdn,
            "status": self.status.value,
            "rate_plan": self.rate_plan,
        }

    def with_changes(self, **changes: Any) -> Device:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class RatePlan:
    """A carrier service plan as the carrier lists it for an account."""

    code: str
    name: str
    size_kb: int | None = None
