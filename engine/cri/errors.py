"""The CRI server's exceptions and how every failure becomes a gRPC status.

A CRI client only sees a status code and a message, so each exception carries its code: unknown
ids are NOT_FOUND, malformed requests INVALID_ARGUMENT, a request the current state forbids
FAILED_PRECONDITION, anything else INTERNAL. Failures of the layers underneath (the image store
and OCI runtime raise ``ImageError`` with an HTTP-like ``status``; the container manager raises its
own errors) are mapped by ``status_of`` from one table, so the servicers never branch on types.
"""

from __future__ import annotations

import grpc


class CRIError(Exception):
    """Base of the CRI layer's failures; ``code`` is the gRPC status the client gets."""

    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class NotFound(CRIError):
    """No sandbox, container or image with that id."""

    code = grpc.StatusCode.NOT_FOUND


class InvalidArgument(CRIError, ValueError):
    """A request that cannot be valid whatever the state: missing fields, bad values."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class AlreadyExists(CRIError):
    """A name the request wants is taken (a second container with the same name in a sandbox)."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(CRIError):
    """Valid, but not now: starting a container of a stopped sandbox, exec in a stopped container."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class DeadlineExceeded(CRIError):
    """A command given a timeout (ExecSync) did not finish in time."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NetworkError(CRIError):
    """A CNI plugin failed or answered nonsense."""

    code = grpc.StatusCode.UNKNOWN


class NamespaceError(CRIError):
    """A sandbox's namespaces could not be created or released."""


# HTTP-like status of the engine's lower layers -> gRPC status code
_HTTP_TO_GRPC: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    502: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}

# Python exception types -> gRPC status code, checked in order (first match wins)
_TYPES_TO_GRPC: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (FileNotFoundError, grpc.StatusCode.NOT_FOUND),
    (LookupError, grpc.StatusCode.NOT_FOUND),
    (ValueError, grpc.StatusCode.INVALID_ARGUMENT),
    (TimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (PermissionError, grpc.StatusCode.PERMISSION_DENIED),
)


def status_of(exc: BaseException) -> grpc.StatusCode:
    """The gRPC code for ``exc``: its own ``code``, its HTTP ``status``, or its type."""
    if isinstance(exc, CRIError):
        return exc.code
    code = getattr(exc, "code", None)
    if isinstance(code, grpc.StatusCode):
        return code
    status = getattr(exc, "status", None)
    if isinstance(status, int):  # ImageError and the runtime's errors
        return _HTTP_TO_GRPC.get(status, grpc.StatusCode.INTERNAL)
    for kind, mapped in _TYPES_TO_GRPC:
        if isinstance(exc, kind):
            return mapped
    return grpc.StatusCode.INTERNAL


def message_of(exc: BaseException) -> str:
    """One line for the client: the exception's text, or its class name if it has none."""
    text = " ".join(str(exc).split())
    return text or exc.__class__.__name__
