"""The one exception hierarchy of the image half of the engine.

Every failure the store, the snapshotter, the registry client or the archive code can meet on bad
input surfaces as an ``ImageError`` whose ``str()`` is one line the CLI prints as is, and whose
``status`` is the HTTP status the daemon answers with (the Docker Engine API maps errors the same
way: 400 bad parameter, 404 no such image, 409 conflict, 500 server error).
"""

from __future__ import annotations


class ImageError(Exception):
    """Base of every image-side failure; the message is a single line."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class InvalidReference(ImageError, ValueError):
    """An image name, tag, digest or id that does not parse."""

    status = 400


class ImageNotFound(ImageError, LookupError):
    """No such image locally (or, for ``RegistryNotFound``, in the registry)."""

    status = 404


class PlatformNotFound(ImageNotFound):
    """An image index has no manifest for the platform we run."""


class ImageConflict(ImageError):
    """The operation would break something still in use (a tag, a container)."""

    status = 409


class DigestMismatch(ImageError):
    """Content whose sha256 is not the one announced: corrupted or tampered with."""


class UnsafeArchive(ImageError):
    """A tarball trying to write outside its destination (traversal, symlink or hard-link escape)."""

    status = 400


class ArchiveError(ImageError):
    """A tarball that is not a docker-archive nor an OCI image layout, or is malformed."""

    status = 400


class UnsupportedImage(ImageError):
    """Valid content we do not handle (schema 1 manifests, zstd layers, foreign media types)."""

    status = 400


class StoreError(ImageError):
    """The local store is missing something it should hold."""


class MountError(ImageError):
    """An overlay mount or unmount failed."""


class RegistryError(ImageError):
    """A registry answered with an error or could not be reached."""

    status = 502


class RegistryNotFound(RegistryError, ImageNotFound):
    """The registry has no such repository, manifest or blob."""

    status = 404


class AuthError(RegistryError):
    """The registry refused our credentials (401/403)."""

    status = 401


class RegistryTimeout(RegistryError):
    """The registry did not answer in time."""

    status = 504


class RegistryUnavailable(RegistryError):
    """The registry could not be connected to at all."""

    status = 502


class ConfigError(ImageError):
    """A configuration file (docker ``config.json``) that cannot be read."""

    status = 400
