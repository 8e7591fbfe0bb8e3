"""The exception hierarchy of the container half of the engine.

Every failure of ``ContainerManager`` on bad input or a bad state is a ``ContainerError`` whose
``str()`` is one line a CLI prints as is, and whose ``status`` is the HTTP status a daemon answers
with (Docker's mapping: 400 bad parameter, 404 no such container or image, 409 conflict — a name
in use, a container that is not running, or still running —, 500 anything else). It derives from
``engine.images.errors.ImageError``, the engine's common base, so one error handler in the daemon
covers images, builds and containers alike.
"""

from __future__ import annotations

from engine.images.errors import ImageError


class ContainerError(ImageError):
    """Base of every container-side failure; the message is a single line."""

    status = 500


class NotFound(ContainerError, LookupError):
    """No such container (or no such image to create one from)."""

    status = 404


class Conflict(ContainerError):
    """The request clashes with the current state: a name in use, a running container removed."""

    status = 409


class NotRunning(Conflict):
    """The operation needs a running container (exec, attach, top, stats, kill)."""


class InvalidArgument(ContainerError, ValueError):
    """Bad input: a malformed config, a missing bind source, an invalid limit, a command not found."""

    status = 400


class RuntimeFailure(ContainerError):
    """conmon or the OCI runtime failed for a reason that is not the caller's input."""

    status = 500
