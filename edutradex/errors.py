"""Domain errors. Services raise them with a message a user can read; views turn them
into a 4xx response or an HTMX error fragment."""

from typing import TypeVar

T = TypeVar("T")


class DomainError(Exception):
    status_code = 400
    field: str | None = None  # the form field the message is about, when there is one

    def __init__(self, message: str, *, status_code: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        if field is not None:
            self.field = field

    @property
    def field_errors(self) -> dict[str, str]:
        """Field name -> message, so a form can show each message next to its field."""
        return {self.field: self.message} if self.field else {}


class InvalidFields(DomainError):
    """Several fields of one form are wrong: every message at once, each by its field."""

    def __init__(self, errors: dict[str, str], *, status_code: int | None = None):
        super().__init__(" ".join(errors.values()), status_code=status_code)
        self.errors = dict(errors)

    @property
    def field_errors(self) -> dict[str, str]:
        return self.errors


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
