"""The matching rules CRI list calls share: ids (full or a unique prefix) and label selectors.

CRI filters are ANDed fields where an unset field matches everything; ``label_selector`` is a
``matchLabels`` map (every pair must be present). Clients such as crictl pass truncated ids, so
``resolve_id`` accepts any prefix that names exactly one object, as containerd and CRI-O do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from engine.cri.errors import InvalidArgument, NotFound


def labels_match(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def id_matches(object_id: str, wanted: str) -> bool:
    return not wanted or object_id.startswith(wanted)


def resolve_id(wanted: str, ids: Iterable[str], *, what: str) -> str:
    """The one id equal to, or starting with, ``wanted``; NotFound or InvalidArgument otherwise."""
    if not wanted:
        raise InvalidArgument(f"{what} id is empty")
    candidates = [i for i in ids if i.startswith(wanted)]
    if wanted in candidates:
        return wanted
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise NotFound(f"{what} {wanted!r} not found")
    raise InvalidArgument(f"{what} id prefix {wanted!r} is ambiguous ({len(candidates)} matches)")
