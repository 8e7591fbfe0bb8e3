"""Moving between client-side and server-side ``kubectl apply`` (manager ``kubectl`` only).

Upstream eases the switch in both directions, and so do we:

* upgrading: a server-side apply by ``kubectl`` that conflicts only on fields listed in the
  client-side ``last-applied-configuration`` annotation is forced, since those fields were that
  same user's earlier apply;
* downgrading: while the annotation exists, a server-side apply by ``kubectl`` rewrites it from the
  applied configuration, so a later client-side apply computes the right patch.
"""

from __future__ import annotations

from typing import Any

import orjson

from apiserver.fieldmanager.errors import Conflict, FieldManagerError
from apiserver.fieldmanager.extract import fields_of
from apiserver.fieldmanager.fieldsets import has_member

ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
KUBECTL = "kubectl"


def _annotations(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return annotations if isinstance(annotations, dict) else None


def conflicts_allowed(*, manager: str, live: dict[str, Any] | None, conflicts: list[Conflict],
                      kind: str | None) -> bool:
    """Whether the conflicts are all on fields ``kubectl`` itself applied client-side."""
    if manager != KUBECTL:
        return False
    text = (_annotations(live) or {}).get(ANNOTATION)
    if not isinstance(text, str) or not text:
        return False
    try:
        last = orjson.loads(text)
        allowed = fields_of(last, kind=kind, strict=False)
    except (orjson.JSONDecodeError, FieldManagerError):
        return False
    return all(has_member(allowed, c.path) for c in conflicts)


def sync(*, manager: str, result: dict[str, Any], config: dict[str, Any]) -> None:
    """Rewrite the annotation of ``result`` from ``config`` if ``kubectl`` applied and it exists."""
    annotations = _annotations(result)
    if manager != KUBECTL or annotations is None or ANNOTATION not in annotations:
        return
    body = dict(config)
    meta = body.get("metadata")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k != "managedFields"}
        inner = meta.get("annotations")
        if isinstance(inner, dict):
            inner = {k: v for k, v in inner.items() if k != ANNOTATION}
            if inner:
                meta["annotations"] = inner
            else:
                del meta["annotations"]
        body["metadata"] = meta
    annotations[ANNOTATION] = orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode() + "\n"
