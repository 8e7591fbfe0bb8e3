"""Object and metadata helpers shared by every component (objects are plain Kubernetes-shaped dicts)."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

# what Kubernetes' generateName uses: no vowels (no words), no look-alike characters
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now() -> str:
    """RFC 3339 in UTC with seconds, as Kubernetes writes metav1.Time."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> float:
    """Epoch seconds of an RFC 3339 timestamp (``Z`` or offset, optional fraction)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


def name_of(obj: dict[str, Any]) -> str:
    return obj.get("metadata", {}).get("name", "")


def namespace_of(obj: dict[str, Any]) -> str:
    return obj.get("metadata", {}).get("namespace", "")


def key_of(obj: dict[str, Any]) -> str:
    """``namespace/name`` or ``name``: the key informers and workqueues use."""
    ns = namespace_of(obj)
    return f"{ns}/{name_of(obj)}" if ns else name_of(obj)


def lookup(obj: dict[str, Any], dotted: str) -> Any:
    """Value at a dotted path such as ``spec.nodeName``; None where any step is missing."""
    node: Any = obj
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
        if node is None:
            return None
    return node


def field_value(obj: dict[str, Any], dotted: str) -> str:
    """A field as a field selector compares it: strings as is, booleans lower-case, missing as ''."""
    value = lookup(obj, dotted)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The ownerReference marked ``controller: true``, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None
