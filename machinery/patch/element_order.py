"""Ordering a merged list by a ``$setElementOrder/<field>`` directive.

``kubectl apply`` sends the full order of the list as it appears in the manifest, because a
strategic merge patch only carries the items that changed. The items the manifest names are put
in that order; items only the server has (added by another writer) keep their place relative to
the named items that were already on the server, as upstream's ``normalizeElementOrder`` and
``mergeSortedSlice`` do (a named item that is new is placed before a server-only item).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from machinery.patch.errors import PatchError

#: the identity of an item: its merge-key value, or the item itself for a list of scalars
Identity = Callable[[Any], Hashable | None]


def _hashable(value: Any) -> Hashable:
    """A dict key for a JSON scalar that keeps ``true`` and ``1`` apart."""
    if isinstance(value, dict | list):
        return ("json", repr(value))
    return (isinstance(value, bool), value)


def identity_of(merge_key: str | None) -> Identity:
    """How to name an item of a list merged on ``merge_key`` (None: a list of scalars)."""
    if merge_key is None:
        return _hashable

    def by_key(item: Any) -> Hashable | None:
        if isinstance(item, dict) and merge_key in item:
            return _hashable(item[merge_key])
        return None

    return by_key


def order_list(*, merged: list, order: Sequence[Any], server: Sequence[Any], merge_key: str | None,
               where: str) -> list:
    """``merged`` reordered by ``order``; ``server`` is the list before the patch."""
    ident = identity_of(merge_key)
    wanted: dict[Hashable, int] = {}
    for item in order:
        name = ident(item)
        if name is None:
            raise PatchError(f"$setElementOrder/{where}: item {item!r} lacks merge key {merge_key!r}")
        wanted.setdefault(name, len(wanted))
    on_server: dict[Hashable | None, int] = {}
    for item in server:
        on_server.setdefault(ident(item), len(on_server))
    on_server.pop(None, None)

    named = sorted((x for x in merged if ident(x) in wanted), key=lambda x: wanted[ident(x)])
    others = [x for x in merged if ident(x) not in wanted]
    unplaced = len(on_server)
    others.sort(key=lambda x: on_server.get(ident(x), unplaced))

    result: list = []
    i = j = 0
    while i < len(others) and j < len(named):
        left, right = on_server.get(ident(others[i])), on_server.get(ident(named[j]))
        if left is not None and right is not None and left < right:
            result.append(others[i])
            i += 1
        else:
            result.append(named[j])
            j += 1
    result.extend(others[i:])
    result.extend(named[j:])
    return result
