"""Resource URLs -> what they name.

``/api/v1/namespaces/default/pods/web/log`` names the ``log`` subresource of pod ``web`` in
``default``. The one ambiguity Kubernetes has is kept as Kubernetes resolves it:
``/api/v1/namespaces/x/finalize`` is a subresource of namespace ``x``, while
``/api/v1/namespaces/x/pods`` is the pods of ``x``.
"""

from __future__ import annotations

from dataclasses import dataclass

from apiserver import errors, registry
from apiserver.registry import ResourceType


@dataclass(frozen=True)
class Target:
    resource: ResourceType
    namespace: str | None = None
    name: str = ""
    subresource: str = ""


def _not_found() -> errors.ApiError:
    return errors.ApiError(404, "NotFound", "the server could not find the requested resource")


def resolve(group: str, version: str, tail: str) -> Target:
    """Parse the part of the path after ``/api/v1/`` or ``/apis/<group>/<version>/``."""
    parts = [p for p in tail.split("/") if p]
    namespace = None
    if len(parts) >= 3 and parts[0] == "namespaces" and not _is_namespace_subresource(parts):
        namespace, parts = parts[1], parts[2:]
    if not parts or len(parts) > 3:
        raise _not_found()
    rt = registry.lookup(group, version, parts[0])
    if rt is None:
        raise _not_found()
    if namespace is not None and not rt.namespaced:
        raise _not_found()
    name = parts[1] if len(parts) > 1 else ""
    subresource = parts[2] if len(parts) > 2 else ""
    if subresource and subresource not in rt.subresources:
        raise _not_found()
    return Target(rt, namespace, name, subresource)


def _is_namespace_subresource(parts: list[str]) -> bool:
    namespaces = registry.lookup("", "v1", "namespaces")
    return len(parts) == 3 and namespaces is not None and parts[2] in namespaces.subresources
