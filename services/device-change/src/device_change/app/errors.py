"""Business conditions a use case reports; the API maps each to one HTTP problem."""

from __future__ import annotations


class UseCaseError(Exception):
    """Base class: the message is written for the person who sent the request."""


class InvalidRequest(UseCaseError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(UseCaseError):
    pass


class Conflict(UseCaseError):
    pass
