"""When a battery counts as lost: only on evidence, never on a single odd reading.

Three kinds of evidence (S3): silence (no tracking signal for `silence_timeout` while
ISSUED), dwell (every position outside the region's allowed area for `dwell`; one position
back inside, even a GPS jump, resets the run), and a manual report by field personnel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from iot_sync.domain.asset import Asset, AssetState


class EvidenceKind(StrEnum):
    SILENCE = "silence"
    OUTSIDE_AREA = "outside_area"
    MANUAL_REPORT = "manual_report"


@dataclass(frozen=True, slots=True)
class LossEvidence:
    kind: EvidenceKind
    detail: str
    reported_by: str | None = None


@dataclass(frozen=True, slots=True)
class AllowedArea:
    """A region's service area, as a latitude/longitude box."""

    min_latitude: float
    min_longitude: float
    max_latitude: float
    max_longitude: float

    def __post_init__(self) -> None:
        if self.min_latitude > self.max_latitude or self.min_longitude > self.max_longitude:
            raise ValueError("an allowed area's minimum corner must be below its maximum")

    def contains(self, latitude: float, longitude: float) -> bool:
        return (
            self.min_latitude <= latitude <= self.max_latitude
            and self.min_longitude <= longitude <= self.max_longitude
        )


@dataclass(frozen=True, slots=True)
class LossPolicy:
    silence_timeout: timedelta
    dwell: timedelta


def outside_since_after(
    outside_since: datetime | None, *, inside: bool, at: datetime
) -> datetime | None:
    """Carry the start of the current run of outside positions over one more position."""
    if inside:
        return None
    if outside_since is None or at < outside_since:
        return at
    return outside_since


def loss_evidence(asset: Asset, policy: LossPolicy, now: datetime) -> LossEvidence | None:
    """Evidence that an ISSUED battery is lost, if there is any by `now`."""
    if asset.state is not AssetState.ISSUED:
        return None
    last_seen = asset.last_seen_at or asset.state_since
    if last_seen is not None and now - last_seen >= policy.silence_timeout:
        return LossEvidence(
            EvidenceKind.SILENCE,
            f"no tracking signal since {last_seen.isoformat()} "
            f"(limit {int(policy.silence_timeout.total_seconds())} s)",
        )
    if asset.outside_since is not None and now - asset.outside_since >= policy.dwell:
        return LossEvidence(
            EvidenceKind.OUTSIDE_AREA,
            f"outside the allowed area of {asset.region or 'its region'} since "
            f"{asset.outside_since.isoformat()} (limit {int(policy.dwell.total_seconds())} s)",
        )
    return None


def manual_report(person_id: str, note: str | None) -> LossEvidence:
    return LossEvidence(
        EvidenceKind.MANUAL_REPORT, note or f"reported lost by {person_id}", reported_by=person_id
    )
