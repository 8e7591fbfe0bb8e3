"""Exceptions of the OCI runtime layer: one line each, printed as is by the daemon and CLI.

They derive from ``engine.images.errors.ImageError`` so the daemon maps every engine failure to an
HTTP status the same way; ``status`` is that status.
"""

from __future__ import annotations

from engine.images.errors import ImageError


class RuntimeLayerError(ImageError):
    """Base of every failure to prepare or run a container process."""

    status = 500


class SpecError(RuntimeLayerError):
    """The options cannot become a runtime spec: unknown user or group, bad path, bad option."""

    status = 400


class UnsafePath(SpecError):
    """A path inside a root filesystem that resolves through too many symlinks or is malformed."""


class HostSetupError(RuntimeLayerError):
    """The host is not ready for the OCI runtime and we could not make it so (cgroups, binaries)."""


class OCIRuntimeError(RuntimeLayerError):
    """crun/runc could not be found, or failed to start or clean up a container."""
