"""``metadata.managedFields`` entries: reading them off objects and writing them back.

An entry is identified as upstream identifies managers: Apply entries by (manager, subresource),
Update entries also by apiVersion. Entries that were not touched are written back as the very
dicts they were read from, so a write that changes no ownership costs almost nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from apiserver.fieldmanager.fieldsets import FieldSet, union

APPLY = "Apply"
UPDATE = "Update"
_OPERATIONS = frozenset({APPLY, UPDATE})

EntryKey = tuple[str, str, str, str]


def entry_key(*, manager: str, operation: str, api_version: str, subresource: str) -> EntryKey:
    return (manager, operation, "" if operation == APPLY else api_version, subresource)


@dataclass(slots=True)
class Entry:
    manager: str
    operation: str
    api_version: str
    time: str | None
    fields: FieldSet
    subresource: str = ""
    #: the stored dict this entry was read from, reused while the entry is unchanged
    raw: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def key(self) -> EntryKey:
        return entry_key(manager=self.manager, operation=self.operation, api_version=self.api_version,
                         subresource=self.subresource)

    def set_fields(self, fields: FieldSet) -> None:
        if fields is not self.fields:
            self.fields = fields
            self.raw = None

    def set_time(self, time: str | None) -> None:
        if time != self.time:
            self.time = time
            self.raw = None


def _entry(raw: Any) -> Entry | None:
    if not isinstance(raw, dict):
        return None
    manager = raw.get("manager", "")
    operation = raw.get("operation")
    api_version = raw.get("apiVersion", "")
    time = raw.get("time")
    fields = raw.get("fieldsV1", {})
    subresource = raw.get("subresource", "")
    if (not isinstance(manager, str) or operation not in _OPERATIONS or not isinstance(api_version, str)
            or not (time is None or isinstance(time, str)) or not isinstance(fields, dict)
            or not isinstance(subresource, str) or raw.get("fieldsType", "FieldsV1") != "FieldsV1"):
        return None
    return Entry(manager, operation, api_version, time, fields, subresource, raw)


def decode(raw: Any) -> list[Entry] | None:
    """The entries of a ``managedFields`` value; None when it is absent, empty or malformed."""
    if not isinstance(raw, list) or not raw:
        return None
    entries: dict[EntryKey, Entry] = {}
    for item in raw:
        entry = _entry(item)
        if entry is None:
            return None
        same = entries.get(entry.key)
        if same is None:
            entries[entry.key] = entry
        else:
            same.set_fields(union(same.fields, entry.fields))
            same.set_time(max(same.time or "", entry.time or "") or None)
    return list(entries.values())


def is_reset(raw: Any) -> bool:
    """``[{}]``: the documented way for a client to clear managedFields (an empty list is not)."""
    return isinstance(raw, list) and len(raw) == 1 and raw[0] == {}


def _sort_key(entry: Entry) -> tuple[str, str, str, str, str]:
    return (entry.operation, entry.time or "", entry.manager, entry.api_version, entry.subresource)


def encode(entries: Iterable[Entry]) -> list[dict[str, Any]]:
    """The stored form, in upstream's order, without entries that own nothing."""
    out: list[dict[str, Any]] = []
    for entry in sorted((e for e in entries if e.fields), key=_sort_key):
        if entry.raw is None:
            raw: dict[str, Any] = {"manager": entry.manager, "operation": entry.operation,
                                   "apiVersion": entry.api_version}
            if entry.time is not None:
                raw["time"] = entry.time
            raw["fieldsType"] = "FieldsV1"
            raw["fieldsV1"] = entry.fields
            if entry.subresource:
                raw["subresource"] = entry.subresource
            entry.raw = raw
        out.append(entry.raw)
    return out
