"""PATCH bodies by content type: JSON patch, merge patch, strategic merge patch, apply.

Each patch type is one entry of :data:`APPLIERS`: a function from (current object, patch body,
kind) to the desired object. Server-side apply is handled apart, in the resource handler, because
it may create the object and needs the field manager.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apiserver import codec, errors
from machinery.patch import json_patch, merge_patch, strategic
from machinery.patch.errors import PatchError

Applier = Callable[[dict[str, Any], Any, str], dict[str, Any]]


def _json_patch(current: dict[str, Any], body: Any, kind: str) -> dict[str, Any]:
    if not isinstance(body, list):
        raise errors.bad_request("json patch must be a JSON array of operations")
    return json_patch.apply_json_patch(current, body)


def _merge_patch(current: dict[str, Any], body: Any, kind: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.bad_request("merge patch must be a JSON object")
    return merge_patch.apply_merge_patch(current, body)


def _strategic(current: dict[str, Any], body: Any, kind: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.bad_request("strategic merge patch must be a JSON object")
    return strategic.apply_strategic_merge_patch(current, body, kind=kind)


APPLIERS: dict[str, Applier] = {
    codec.JSON_PATCH: _json_patch,
    codec.MERGE_PATCH: _merge_patch,
    codec.STRATEGIC_PATCH: _strategic,
}


def patch_type(content_type: str | None) -> str:
    kind = codec.media_type(content_type) if content_type else ""
    if kind not in codec.PATCH_TYPES:
        raise errors.ApiError(415, "UnsupportedMediaType", f'the body of the request was in an unknown '
                              f'format - accepted media types include: {", ".join(codec.PATCH_TYPES)}')
    return kind


def apply(kind_of_patch: str, current: dict[str, Any], body: Any, kind: str) -> dict[str, Any]:
    """The patched object; a patch that cannot apply is a 422, as Kubernetes answers."""
    try:
        result = APPLIERS[kind_of_patch](current, body, kind)
    except PatchError as exc:
        raise errors.ApiError(422, "Invalid", str(exc)) from None
    if not isinstance(result, dict):
        raise errors.ApiError(422, "Invalid", "the patch must leave a JSON object")
    return result
