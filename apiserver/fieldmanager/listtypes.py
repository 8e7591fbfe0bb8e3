"""How server-side apply sees each list, and the path element naming each of its items.

Upstream's schema marks lists ``map`` (items identified by key fields), ``set`` (distinct scalars)
or ``atomic`` (owned and replaced whole). We derive the same from the strategic-merge table in
``machinery.patch.merge_keys``: a rule with keys is a map, a rule without a key is a set, no rule
is atomic. Lookups are memoised because every list on every write asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from apiserver.fieldmanager.errors import FieldManagerError
from apiserver.fieldmanager.fieldsets import key_element, value_element
from machinery.patch.merge_keys import list_rule

ATOMIC = "atomic"
SET = "set"
MAP = "map"

#: values assumed for key fields an item leaves out (upstream takes them from the schema default)
KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}

_SCALARS = (str, int, float, bool)


@dataclass(frozen=True, slots=True)
class ListType:
    shape: str
    #: map keys, sorted (upstream sorts them in ``k:`` elements)
    keys: tuple[str, ...] = ()


_ATOMIC = ListType(ATOMIC)
_SET = ListType(SET)
_cache: dict[tuple[str | None, tuple[str, ...]], ListType] = {}
_CACHE_LIMIT = 4096


def list_type(names: tuple[str, ...], kind: str | None) -> ListType:
    """The type of the list at ``names`` (field names from the root, list positions dropped)."""
    found = _cache.get((kind, names))
    if found is None:
        rule = list_rule(names, kind)
        if rule is None:
            found = _ATOMIC
        elif rule.apply_keys:
            found = ListType(MAP, tuple(sorted(rule.apply_keys)))
        else:
            found = _SET
        if len(_cache) < _CACHE_LIMIT:
            _cache[(kind, names)] = found
    return found


def _item_element(lt: ListType, item: Any) -> str | None:
    if lt.shape == SET:
        return value_element(item) if isinstance(item, _SCALARS) else None
    if not isinstance(item, dict):
        return None
    keys: dict[str, Any] = {}
    for name in lt.keys:
        value = item.get(name)
        if value is None:
            value = KEY_DEFAULTS.get(name)
        if not isinstance(value, _SCALARS):
            return None
        keys[name] = value
    return key_element(keys)


def _describe(names: Sequence[str]) -> str:
    return "." + ".".join(names) if names else "<root>"


def item_elements(lt: ListType, items: list[Any]) -> list[str] | None:
    """Each item's element, or None when some item cannot be named or two share a name.

    Callers holding stored objects fall back to treating such a list as atomic.
    """
    elements: list[str] = []
    seen: set[str] = set()
    for item in items:
        element = _item_element(lt, item)
        if element is None or element in seen:
            return None
        seen.add(element)
        elements.append(element)
    return elements


def config_item_elements(lt: ListType, items: list[Any], names: tuple[str, ...]) -> list[str]:
    """Like ``item_elements`` for an apply configuration, where a bad item is the client's error."""
    elements: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        element = _item_element(lt, item)
        if element is None:
            if lt.shape == SET:
                raise FieldManagerError(
                    f"{_describe(names)}: element {index}: a set list may only hold scalar values")
            if not isinstance(item, dict):
                raise FieldManagerError(
                    f"{_describe(names)}: element {index}: associative list with keys may not have "
                    "non-map elements")
            missing = next(k for k in lt.keys if not isinstance(item.get(k, KEY_DEFAULTS.get(k)), _SCALARS))
            raise FieldManagerError(
                f"{_describe(names)}: element {index}: associative list with keys has an element that "
                f"omits key field {missing!r} (or gives it a non-scalar value)")
        if element in seen:
            raise FieldManagerError(f"{_describe(names)}: duplicate entries for {element}")
        seen.add(element)
        elements.append(element)
    return elements


def live_item_elements(lt: ListType, items: list[Any]) -> list[str]:
    """Elements for a stored list, giving unnameable or repeated items a unique ``#<index>`` stand-in.

    Merging and pruning must keep such items rather than fail on data already stored.
    """
    elements: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        element = _item_element(lt, item)
        if element is None or element in seen:
            element = f"#{index}"
        seen.add(element)
        elements.append(element)
    return elements
