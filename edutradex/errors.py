"""Domain errors. Services raise them with a message a user can read; views turn them
into a 4xx response or an HTMX error fragment."""

from typing import TypeVar

T = TypeVar("T")


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str, *, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class NotFound(DomainError):
    status_code = 404


def found(row: T | None, message: str) -> T:
    """What a lookup returned, or NotFound with `message` when it found nothing."""
    if row is None:
        raise NotFound(message)
    return row


class Forbidden(DomainError):
    status_code = 403


class Conflict(DomainError):
    status_code = 409
