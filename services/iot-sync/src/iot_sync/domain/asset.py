"""A battery (with its tracker) as ARM sees it, and the moves it may make."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from iot_sync.domain.rejection import Rejection


class AssetState(StrEnum):
    AVAILABLE = "AVAILABLE"  # charged, in a station slot
    CHARGING = "CHARGING"  # in a station slot, not ready yet
    ISSUED = "ISSUED"  # with a customer (`holder`)
    DAMAGED = "DAMAGED"
    LOST = "LOST"
    IN_INSPECTION = "IN_INSPECTION"  # recovered, being checked before it goes back in use
    RETIRED = "RETIRED"


class AssetMove(StrEnum):
    DOCK = "DOCK"  # put into a station slot (a return, or back from inspection)
    CHARGE_COMPLETE = "CHARGE_COMPLETE"
    ISSUE = "ISSUE"
    REPORT_DAMAGE = "REPORT_DAMAGE"
    DECLARE_LOST = "DECLARE_LOST"
    SIGHT = "SIGHT"  # a lost battery's tracker speaks again: still with its holder
    RECOVER = "RECOVER"  # staff have the lost battery in hand
    RETIRE = "RETIRE"


A = AssetState
_FROM: dict[AssetMove, frozenset[AssetState]] = {
    AssetMove.DOCK: frozenset({A.ISSUED, A.LOST, A.DAMAGED, A.IN_INSPECTION}),
    AssetMove.CHARGE_COMPLETE: frozenset({A.CHARGING}),
    AssetMove.ISSUE: frozenset({A.AVAILABLE}),
    AssetMove.REPORT_DAMAGE: frozenset({A.AVAILABLE, A.CHARGING, A.ISSUED, A.IN_INSPECTION}),
    AssetMove.DECLARE_LOST: frozenset({A.ISSUED}),
    AssetMove.SIGHT: frozenset({A.LOST}),
    AssetMove.RECOVER: frozenset({A.LOST}),
    AssetMove.RETIRE: frozenset({A.AVAILABLE, A.CHARGING, A.DAMAGED, A.IN_INSPECTION, A.LOST}),
}

# A charge at or above this counts as full: the battery may be handed out.
FULL_CHARGE_PCT = 95.0


@dataclass(frozen=True, slots=True)
class Position:
    latitude: float
    longitude: float
    at: datetime


@dataclass(frozen=True, slots=True)
class Asset:
    asset_id: str
    battery_class: str
    state: AssetState
    station_id: str | None = None
    slot: int | None = None
    holder: str | None = None  # customer id while ISSUED/LOST, person id while recovered
    charge_pct: float | None = None
    region: str | None = None  # where it was last: its station's region or its tracker's
    position: Position | None = None
    last_seen_at: datetime | None = None  # last tracking signal of any kind
    outside_since: datetime | None = None  # first of an unbroken run of positions outside
    state_since: datetime | None = None
    reserved_for: str | None = None  # customer an authorization promised it to
    reserved_until: datetime | None = None

    def free_for(self, customer_id: str, now: datetime) -> bool:
        """Charged, in a slot, and promised to nobody else."""
        if self.state is not A.AVAILABLE:
            return False
        if self.reserved_for is None or self.reserved_for == customer_id:
            return True
        return self.reserved_until is None or self.reserved_until <= now

    def reserve(self, customer_id: str, until: datetime) -> Asset:
        return replace(self, reserved_for=customer_id, reserved_until=until)

    def dock(
        self, *, station_id: str, slot: int | None, region: str | None, at: datetime
    ) -> Asset | Rejection:
        # A battery reported damaged stays out of the charging pool until inspected.
        target = A.IN_INSPECTION if self.state is A.DAMAGED else A.CHARGING
        return self._move(
            AssetMove.DOCK,
            target,
            at,
            station_id=station_id,
            slot=slot,
            holder=None,
            region=region or self.region,
            outside_since=None,
        )

    def complete_charge(self, *, at: datetime) -> Asset | Rejection:
        return self._move(AssetMove.CHARGE_COMPLETE, A.AVAILABLE, at)

    def issue(self, *, holder: str, at: datetime) -> Asset | Rejection:
        # Issuing counts as a sighting: the silence clock starts at the hand-over.
        return self._move(
            AssetMove.ISSUE,
            A.ISSUED,
            at,
            holder=holder,
            station_id=None,
            slot=None,
            last_seen_at=at,
            outside_since=None,
        )

    def report_damage(self, *, at: datetime) -> Asset | Rejection:
        return self._move(AssetMove.REPORT_DAMAGE, A.DAMAGED, at)

    def declare_lost(self, *, at: datetime) -> Asset | Rejection:
        return self._move(AssetMove.DECLARE_LOST, A.LOST, at)

    def sight(self, *, at: datetime) -> Asset | Rejection:
        return self._move(AssetMove.SIGHT, A.ISSUED, at, last_seen_at=at, outside_since=None)

    def recover(self, *, by: str, at: datetime) -> Asset | Rejection:
        return self._move(AssetMove.RECOVER, A.IN_INSPECTION, at, holder=by, outside_since=None)

    def retire(self, *, at: datetime) -> Asset | Rejection:
        return self._move(AssetMove.RETIRE, A.RETIRED, at, reserved_for=None, reserved_until=None)

    def _move(
        self, move: AssetMove, target: AssetState, at: datetime, **changes: object
    ) -> Asset | Rejection:
        if self.state not in _FROM[move]:
            return Rejection(
                "asset_transition_not_allowed",
                f"{move} refused: battery {self.asset_id} is {self.state}",
            )
        moved = replace(self, state=target, state_since=at, **changes)  # type: ignore[arg-type]
        if target is not A.AVAILABLE:
            moved = replace(moved, reserved_for=None, reserved_until=None)
        return moved


def allowed_moves(state: AssetState) -> frozenset[AssetMove]:
    return frozenset(move for move, sources in _FROM.items() if state in sources)
