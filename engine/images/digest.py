"""sha256 digests: the identity of every blob, manifest, config and layer in the engine.

Only sha256 is accepted (it is what every registry and ``docker`` emits); anything else is refused
up front so a path like ``blobs/sha256/<hex>`` can be built from a digest without further checks.
"""

from __future__ import annotations

import hashlib
import re

from engine.images.errors import DigestMismatch, InvalidReference

DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
HEX_RE = re.compile(r"[a-f0-9]{64}")


def check_digest(value: str) -> str:
    """Return ``value`` if it is a well-formed sha256 digest, else raise ``InvalidReference``."""
    if not isinstance(value, str) or not DIGEST_RE.fullmatch(value):
        algo = value.split(":", 1)[0] if isinstance(value, str) and ":" in value else ""
        if algo and algo != "sha256" and re.fullmatch(r"[a-z0-9+._-]+", algo):
            raise InvalidReference(f"unsupported digest algorithm: {algo}")
        raise InvalidReference(f"invalid digest: {value!r}")
    return value


def hex_of(digest: str) -> str:
    """The 64 hex characters of a checked digest (its file name in ``blobs/sha256``)."""
    return check_digest(digest)[7:]


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_bytes(data: bytes, expected: str, *, what: str) -> None:
    """Refuse content whose digest is not ``expected`` (``what`` names it in the error)."""
    actual = sha256_of(data)
    if actual != expected:
        raise DigestMismatch(f"{what}: digest mismatch: expected {expected}, got {actual}")


def short_id(digest: str) -> str:
    """The 12-character id Docker displays for an image."""
    return digest.split(":", 1)[-1][:12]
