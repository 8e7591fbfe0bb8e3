"""Ownership after a non-apply write (create, update, patch): ``record_update``.

The writer takes every field the write added or changed, in its Update entry (one per manager,
apiVersion and subresource); other entries lose those fields and every entry loses the fields
the write removed. Unlike apply there are no conflicts: an update always wins.

Which entries to start from follows upstream: ``[{}]`` in the written object clears them; a
well-formed non-empty list the client sent is taken as the client's explicit choice; otherwise
the stored object's entries carry over (clients unaware of managedFields cannot wipe them).
Writes to a subresource always start from the stored entries.

This runs on every write, so it does one walk over the changed parts of the two objects and reuses
the stored entry dicts that did not change. The entries written into ``new`` may share dicts with
``old``'s; treat managedFields as read-only.
"""

from __future__ import annotations

from typing import Any

from apiserver.fieldmanager.entries import UPDATE, Entry, decode, encode, entry_key, is_reset
from apiserver.fieldmanager.errors import FieldManagerError
from apiserver.fieldmanager.extract import added_fields, diff
from apiserver.fieldmanager.fieldsets import difference, remove_subtrees, union


def _starting_entries(old: dict[str, Any] | None, raw_new: Any, subresource: str) -> list[Entry]:
    if not subresource:
        if is_reset(raw_new):
            return []
        taken = decode(raw_new)
        if taken is not None:
            return taken
    if old is None:
        return []
    old_meta = old.get("metadata")
    raw_old = old_meta.get("managedFields") if isinstance(old_meta, dict) else None
    return decode(raw_old) or []


def record_update(old: dict[str, Any] | None, new: dict[str, Any], *, manager: str, kind: str,
                  api_version: str, now: str, subresource: str = "") -> None:
    """Set ``new["metadata"]["managedFields"]`` for a write by ``manager`` turning ``old`` into ``new``."""
    if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
        raise FieldManagerError("the written object must be a JSON object with a metadata object")
    if old is not None and not isinstance(old, dict):
        raise FieldManagerError("the stored object must be a JSON object")
    meta = new["metadata"]
    entries = _starting_entries(old, meta.get("managedFields"), subresource)

    if old is None:
        changed, removed = added_fields(new, kind=kind), {}
    else:
        changed, removed = diff(old, new, kind=kind)

    own_key = entry_key(manager=manager, operation=UPDATE, api_version=api_version, subresource=subresource)
    own: Entry | None = None
    if changed or removed:
        for entry in entries:
            if entry.key == own_key:
                own = entry
                entry.set_fields(remove_subtrees(entry.fields, removed))
            else:
                entry.set_fields(remove_subtrees(difference(entry.fields, changed), removed))
    if changed:
        if own is None:
            entries.append(Entry(manager, UPDATE, api_version, now, changed, subresource))
        else:
            own.set_fields(union(own.fields, changed))
            own.set_time(now)

    encoded = encode(entries)
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)
