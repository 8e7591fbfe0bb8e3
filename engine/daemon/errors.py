"""How failures become Docker Engine API error responses: ``{"message": "..."}`` plus a status code.

The docker CLI and SDK print that message as is and pick their exception type from the status
(404 "No such image", 409 conflict, 400 bad parameter), so every error the engine can raise maps to
one status here: the image side and the builder (``BuildError`` is an ``ImageError``) carry their
own ``status``; the daemon adds ``ApiError`` for bad parameters; anything else is a 500 and a bug.
"""

from __future__ import annotations

from typing import Any

from engine.images.errors import ImageError


class ApiError(Exception):
    """A request the daemon refuses before doing any work."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class BadParameter(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


# exception type -> status, for errors that do not carry one; first match wins (None: its own)
_STATUS_BY_TYPE: tuple[tuple[type[BaseException], int | None], ...] = (
    (ApiError, None),
    (ImageError, None),
    (ValueError, 400),
    (LookupError, 404),
)


def status_of(exc: BaseException) -> int:
    """The HTTP status Docker would answer ``exc`` with (500 for anything unexpected)."""
    for kind, status in _STATUS_BY_TYPE:
        if isinstance(exc, kind):
            return int(getattr(exc, "status", 500)) if status is None else status
    return 500


def is_expected(exc: BaseException) -> bool:
    """A user-facing failure (logged in one line) rather than a bug (logged with its traceback)."""
    return isinstance(exc, (ApiError, ImageError)) or status_of(exc) != 500


def message_of(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or exc.__class__.__name__


def error_body(exc: BaseException) -> dict[str, Any]:
    return {"message": message_of(exc)}


def stream_error(message: str) -> dict[str, Any]:
    """An error inside a JSON progress stream, after the 200 status has gone out."""
    return {"errorDetail": {"message": message}, "error": message}
