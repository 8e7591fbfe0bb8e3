"""JSON Merge Patch (RFC 7386): ``application/merge-patch+json`` (kubectl label/annotate/scale).

An object in the patch merges into the target member by member, ``null`` removes a member, and any
other value (lists included) replaces the target whole.
"""

from __future__ import annotations

from typing import Any

from machinery.patch.errors import PatchError
from machinery.patch.values import clone


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = _merge(result.get(name), value)
    return result


def apply_merge_patch(doc: dict, patch: dict) -> dict:
    """``doc`` with the merge patch applied; inputs are left untouched."""
    if not isinstance(doc, dict):
        raise PatchError("the document to patch must be a JSON object")
    if not isinstance(patch, dict):
        raise PatchError(f"a merge patch for an object must be a JSON object, got {type(patch).__name__}")
    # _merge shares structure with both inputs; one copy at the end makes the result independent
    return clone(_merge(doc, patch))
