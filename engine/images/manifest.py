"""Reading manifests, indexes and image configs, and picking the platform we run from an index.

Registries, archives and the store all hand the engine JSON documents that must be checked before
anything trusts them: the right schema version, descriptors with valid digests, as many layers as
the config has ``diff_ids``. Kept separate from the store so the registry client can validate a
document before a single byte of it is written locally.
"""

from __future__ import annotations

from typing import Any

import orjson

from engine.images import mediatypes as mt
from engine.images.digest import check_digest
from engine.images.errors import ImageError, InvalidReference, PlatformNotFound, UnsupportedImage

DEFAULT_PLATFORM = "linux/amd64"
MAX_DOCUMENT = 4 * 1024 * 1024  # manifests and configs bigger than this are refused


class BadDocument(ImageError):
    """A manifest, index or config that is not valid JSON or lacks required fields."""

    status = 400


def load_document(data: bytes, *, what: str) -> dict[str, Any]:
    if len(data) > MAX_DOCUMENT:
        raise BadDocument(f"{what}: larger than {MAX_DOCUMENT} bytes")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadDocument(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise BadDocument(f"{what}: not a JSON object")
    return doc


def document_kind(doc: dict[str, Any], media_type: str | None = None) -> str:
    """``"index"`` or ``"manifest"``, from the media type if known, else from the document's shape."""
    declared = media_type or doc.get("mediaType") or ""
    if declared in mt.SCHEMA1_TYPES or doc.get("schemaVersion") == 1:
        raise UnsupportedImage("image manifest schema 1 is not supported; re-push the image with a current client")
    if declared in mt.INDEX_TYPES:
        return "index"
    if declared in mt.MANIFEST_TYPES:
        return "manifest"
    if declared and declared not in ("application/json", "text/plain"):
        raise UnsupportedImage(f"unsupported manifest media type: {declared}")
    if "manifests" in doc:
        return "index"
    if "layers" in doc and "config" in doc:
        return "manifest"
    raise BadDocument("document is neither an image manifest nor an image index")


def check_descriptor(desc: Any, *, what: str) -> dict[str, Any]:
    if not isinstance(desc, dict):
        raise BadDocument(f"{what}: descriptor is not an object")
    try:
        check_digest(desc.get("digest"))
    except InvalidReference as exc:
        raise BadDocument(f"{what}: {exc}") from None
    size = desc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadDocument(f"{what}: descriptor size missing or negative")
    if not isinstance(desc.get("mediaType", ""), str):
        raise BadDocument(f"{what}: descriptor mediaType is not a string")
    return desc


def check_manifest(doc: dict[str, Any]) -> dict[str, Any]:
    """Validate an image manifest (OCI or Docker v2 schema 2) in place and return it."""
    if doc.get("schemaVersion") != 2:
        raise BadDocument("image manifest: schemaVersion must be 2")
    check_descriptor(doc.get("config"), what="image manifest config")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise BadDocument("image manifest: layers is not a list")
    for i, layer in enumerate(layers):
        check_descriptor(layer, what=f"image manifest layer {i}")
        media = layer.get("mediaType", mt.OCI_LAYER_GZIP)
        if media not in mt.LAYER_COMPRESSION:
            raise UnsupportedImage(f"unsupported layer media type: {media}")
    return doc


def check_index(doc: dict[str, Any]) -> dict[str, Any]:
    if doc.get("schemaVersion") != 2:
        raise BadDocument("image index: schemaVersion must be 2")
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise BadDocument("image index: manifests is not a list")
    for i, entry in enumerate(manifests):
        check_descriptor(entry, what=f"image index entry {i}")
    return doc


def check_config(doc: dict[str, Any], *, layers: int) -> dict[str, Any]:
    """Validate an image config against the manifest that names it (one diff_id per layer)."""
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers" or not isinstance(rootfs.get("diff_ids"), list):
        raise BadDocument("image config: rootfs.diff_ids missing")
    diff_ids = rootfs["diff_ids"]
    for d in diff_ids:
        try:
            check_digest(d)
        except InvalidReference as exc:
            raise BadDocument(f"image config: {exc}") from None
    if len(diff_ids) != layers:
        raise BadDocument(f"image config has {len(diff_ids)} diff_ids but the manifest has {layers} layers")
    return doc


def _platform_of(entry: dict[str, Any]) -> tuple[str, str, str]:
    plat = entry.get("platform") or {}
    return plat.get("os", ""), plat.get("architecture", ""), plat.get("variant", "")


def pick_platform(index: dict[str, Any], platform: str = DEFAULT_PLATFORM) -> dict[str, Any]:
    """The descriptor in ``index`` for ``platform`` (``os/arch[/variant]``), as Docker picks it.

    Attestation manifests (``unknown/unknown``) never match; an index holding a single entry without
    any platform is taken as is (indexes written by ``skopeo``/``docker save`` of one image).
    """
    want_os, want_arch, *rest = [*platform.split("/"), ""][:3]
    want_variant = rest[0] if rest else ""
    entries = [e for e in index.get("manifests", []) if isinstance(e, dict)]
    candidates = [
        e
        for e in entries
        if _platform_of(e)[:2] == (want_os, want_arch) and (not want_variant or _platform_of(e)[2] == want_variant)
    ]
    if candidates:
        # prefer the entry without a variant, then the first in order (registry order is preference)
        candidates.sort(key=lambda e: _platform_of(e)[2] != "")
        return candidates[0]
    unplatformed = [e for e in entries if not e.get("platform")]
    if len(entries) == 1 and unplatformed:
        return unplatformed[0]
    raise PlatformNotFound(f"no matching manifest for {platform} in the manifest list entries")


def dumps(doc: dict[str, Any]) -> bytes:
    """Canonical-enough JSON for documents we write ourselves (stable bytes, so stable digests)."""
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)
