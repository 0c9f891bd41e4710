"""Swap stations as iot-sync keeps them in step with ARM."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Station:
    station_id: str
    name: str
    region: str
    site: str
    latitude: float
    longitude: float
    slot_count: int
    online: bool = True
    last_seen_at: datetime | None = None

    def free_slot(self, occupied: set[int]) -> int | None:
        """The lowest slot number (1-based) no battery sits in, if any."""
        for slot in range(1, self.slot_count + 1):
            if slot not in occupied:
                return slot
        return None
