"""Server-side apply (``PATCH`` with ``application/apply-patch+yaml``): ``apply``.

The steps, as upstream's structured-merge-diff takes them:

1. the configuration's field set becomes the applier's claim;
2. the configuration is merged into the live object;
3. fields the applier claimed last time and no longer configures are pruned unless still owned;
4. the live and merged objects are compared: a changed field owned by another entry is a conflict,
   refused unless ``force`` (then the other entry loses it); removed fields leave every entry;
5. the applier's Apply entry is set to exactly the claim.

``metadata.managedFields`` and the server-owned metadata (uid, resourceVersion, generation,
creationTimestamp, selfLink) of the configuration are ignored; the live values stay.
"""

from __future__ import annotations

from typing import Any

from apiserver.fieldmanager import lastapplied
from apiserver.fieldmanager.entries import APPLY, Entry, decode, encode, entry_key
from apiserver.fieldmanager.errors import ApplyConflict, Conflict, FieldManagerError
from apiserver.fieldmanager.extract import diff, fields_of
from apiserver.fieldmanager.fieldsets import common_members, difference, remove_subtrees, union
from apiserver.fieldmanager.merge import merge_into, prune
from machinery.patch.values import clone

#: metadata a configuration may carry but that only the server sets
_IGNORED_META = frozenset({"managedFields", "uid", "resourceVersion", "generation", "creationTimestamp",
                           "selfLink"})


def _config_body(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise FieldManagerError(f"an apply configuration must be a JSON object, got {type(config).__name__}")
    meta = config.get("metadata")
    if meta is None:
        return config
    if not isinstance(meta, dict):
        raise FieldManagerError("metadata of an apply configuration must be an object")
    body = dict(config)
    body["metadata"] = {k: v for k, v in meta.items() if k not in _IGNORED_META}
    return body


def _live_body(live: dict[str, Any] | None) -> tuple[dict[str, Any], list[Entry]]:
    if live is None:
        return {}, []
    if not isinstance(live, dict):
        raise FieldManagerError("the live object must be a JSON object")
    base = clone(live)
    meta = base.get("metadata")
    raw = meta.pop("managedFields", None) if isinstance(meta, dict) else None
    return base, decode(raw) or []


def apply(live: dict[str, Any] | None, config: dict[str, Any], *, manager: str, force: bool, kind: str,
          api_version: str, now: str, subresource: str = "") -> dict[str, Any]:
    """The object after ``manager`` applies ``config`` to ``live`` (None to create); inputs untouched.

    Raises ``ApplyConflict`` (HTTP 409) or ``FieldManagerError`` (bad configuration).
    """
    body = _config_body(config)
    claim = fields_of(body, kind=kind, strict=True)
    base, entries = _live_body(live)

    own_key = entry_key(manager=manager, operation=APPLY, api_version=api_version, subresource=subresource)
    own = next((e for e in entries if e.key == own_key), None)
    others = [e for e in entries if e is not own]

    result = clone(base)
    merge_into(result, body, kind=kind)
    if own is not None:
        stale = difference(own.fields, claim)
        if stale:
            keep = claim
            for entry in others:
                keep = union(keep, entry.fields)
            prune(result, stale, keep, kind=kind)

    changed, removed = diff(base, result, kind=kind)
    conflicts = [Conflict(e.manager, e.operation, e.api_version, e.subresource, path)
                 for e in others for path in common_members(e.fields, changed)]
    if conflicts and not force and not lastapplied.conflicts_allowed(
            manager=manager, live=live, conflicts=conflicts, kind=kind):
        raise ApplyConflict(conflicts)
    for entry in others:
        entry.set_fields(remove_subtrees(difference(entry.fields, changed), removed))

    if own is None:
        entries.append(Entry(manager, APPLY, api_version, now, claim, subresource))
    else:
        if changed or removed or claim != own.fields:
            own.set_time(now)
        own.set_fields(claim)
        if own.api_version != api_version:
            own.api_version = api_version
            own.raw = None

    lastapplied.sync(manager=manager, result=result, config=body)
    meta = result.setdefault("metadata", {})
    encoded = encode(entries)
    if encoded:
        meta["managedFields"] = clone(encoded)
    else:
        meta.pop("managedFields", None)
    return result
