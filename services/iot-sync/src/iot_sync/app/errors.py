"""Business conditions the request-driven use cases report; the API maps each to a problem."""

from __future__ import annotations


class UseCaseError(Exception):
    """Base class: the message is written for the person who sent the request."""


class NotFound(UseCaseError):
    pass


class Refused(UseCaseError):
    """The request conflicts with the current state (a transition that does not apply)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class InvalidInput(UseCaseError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
