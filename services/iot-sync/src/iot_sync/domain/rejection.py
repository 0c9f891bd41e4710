"""A business "no", with a machine-readable code and the words a person can act on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str  # stable, machine-readable: unknown_customer, swap_quota_exhausted, ...
    reason: str  # in words, for the station display, the person's scanner, the signal log


Check = Callable[[C], Rejection | None]
"""One validator: a small pure check of a context that passes (None) or rejects."""


def first_rejection(
    checks: Sequence[Callable[[C], Rejection | None]], context: C
) -> Rejection | None:
    """Run the checks in order; the first rejection wins, so the order states the priority."""
    for check in checks:
        rejection = check(context)
        if rejection is not None:
            return rejection
    return None
