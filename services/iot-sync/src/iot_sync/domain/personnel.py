"""Field personnel: who may report what, and where."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PersonnelRole(StrEnum):
    TECHNICIAN = "TECHNICIAN"  # services stations and batteries
    FIELD_AGENT = "FIELD_AGENT"  # meets customers, recovers batteries
    SUPERVISOR = "SUPERVISOR"


class PersonnelAction(StrEnum):
    ASSET_SCAN = "asset_scan"
    REPORT_DAMAGE = "report_damage"
    REPORT_LOST = "report_lost"
    REPORT_RECOVERED = "report_recovered"


# Damage is a technical judgement; declaring a customer's battery lost is a customer matter.
ALLOWED_ACTIONS: dict[PersonnelRole, frozenset[PersonnelAction]] = {
    PersonnelRole.TECHNICIAN: frozenset(
        {
            PersonnelAction.ASSET_SCAN,
            PersonnelAction.REPORT_DAMAGE,
            PersonnelAction.REPORT_RECOVERED,
        }
    ),
    PersonnelRole.FIELD_AGENT: frozenset(
        {PersonnelAction.ASSET_SCAN, PersonnelAction.REPORT_LOST, PersonnelAction.REPORT_RECOVERED}
    ),
    PersonnelRole.SUPERVISOR: frozenset(PersonnelAction),
}


@dataclass(frozen=True, slots=True)
class Person:
    person_id: str
    name: str
    role: PersonnelRole
    regions: frozenset[str]
    stations: frozenset[str] = frozenset()
    active: bool = True

    def may(self, action: PersonnelAction) -> bool:
        return action in ALLOWED_ACTIONS[self.role]

    def covers(self, *, region: str | None, station_id: str | None) -> bool:
        """Assigned to the station itself, or to the region it (or the battery) is in."""
        if station_id is not None and station_id in self.stations:
            return True
        return region is not None and region in self.regions
