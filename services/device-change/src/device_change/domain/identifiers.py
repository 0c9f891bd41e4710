"""Device identifiers as value objects: an instance always holds a well-formed value."""

from __future__ import annotations

from dataclasses import dataclass


class InvalidIdentifier(ValueError):
    """The text is not a well-formed identifier; the message says why in words."""


def luhn_check_digit(body: str) -> str:
    """The digit that makes `body + digit` pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_check_digit(number[:-1]) == number[-1]


@dataclass(frozen=True, slots=True)
class Iccid:
    """SIM serial: 19 or 20 digits starting with 89 (telecom), last digit a Luhn check."""

    value: str

    def __post_init__(self) -> None:
        v = self.value
        if not v.isdigit():
            raise InvalidIdentifier(f"ICCID '{v}' must contain digits only")
        if len(v) not in (19, 20):
            raise InvalidIdentifier(f"ICCID '{v}' must be 19 or 20 digits long, not {len(v)}")
        if not v.startswith("89"):
            raise InvalidIdentifier(f"ICCID '{v}' must start with 89 (telecom industry prefix)")
        if not luhn_valid(v):
            raise InvalidIdentifier(
                f"ICCID '{v}' has a wrong check digit (expected {luhn_check_digit(v[:-1])})"
            )

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Imei:
    """Handset serial: 15 digits, last digit a Luhn check."""

    value: str

    def __post_init__(self) -> None:
        v = self.value
        if not v.isdigit():
            raise InvalidIdentifier(f"IMEI '{v}' must contain digits only")
        if len(v) != 15:
            raise InvalidIdentifier(f"IMEI '{v}' must be 15 digits long, not {len(v)}")
        if not luhn_valid(v):
            raise InvalidIdentifier(
                f"IMEI '{v}' has a wrong check digit (expected {luhn_check_digit(v[:-1])})"
            )

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Msisdn:
    """The line's phone number: 10 to 15 digits."""

    value: str

    def __post_init__(self) -> None:
        v = self.value
        if not v.isdigit() or not 10 <= len(v) <= 15:
            raise InvalidIdentifier(f"MSISDN '{v}' must be 10 to 15 digits")

    def __str__(self) -> str:
        return self.value
