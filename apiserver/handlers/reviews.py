"""Self reviews (``kubectl auth can-i``, ``can-i --list``, ``auth whoami``): answered, never stored.

Until RBAC exists every authenticated identity in ``system:masters`` may do everything, which is
what Kubernetes answers for the admin; anyone else is told no, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apiserver import errors
from apiserver.context import User
from apiserver.registry import ResourceType

ADMIN_GROUP = "system:masters"


def _allowed(user: User) -> bool:
    return ADMIN_GROUP in user.groups


def _access(obj: dict[str, Any], user: User) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    if bool(spec.get("resourceAttributes")) == bool(spec.get("nonResourceAttributes")):
        raise errors.invalid("SelfSubjectAccessReview.authorization.k8s.io", "", [errors.cause(
            "spec.resourceAttributes", "Invalid value: \"null\": exactly one of nonResourceAttributes or "
            "resourceAttributes must be specified")], group="authorization.k8s.io",
            kind="SelfSubjectAccessReview")
    if _allowed(user):
        return {"allowed": True, "reason": f"{user.name} is in group {ADMIN_GROUP}"}
    return {"allowed": False, "reason": "only members of system:masters are authorized until RBAC is served"}


def _rules(obj: dict[str, Any], user: User) -> dict[str, Any]:
    if not _allowed(user):
        return {"resourceRules": [], "nonResourceRules": [], "incomplete": False}
    return {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": False}


def _whoami(obj: dict[str, Any], user: User) -> dict[str, Any]:
    return {"userInfo": {"username": user.name, "groups": [*user.groups, "system:authenticated"]}}


#: kind -> how its status is computed
ANSWERS: dict[str, Callable[[dict[str, Any], User], dict[str, Any]]] = {
    "SelfSubjectAccessReview": _access,
    "SelfSubjectRulesReview": _rules,
    "SelfSubjectReview": _whoami,
}


def answer(rt: ResourceType, obj: dict[str, Any], user: User) -> dict[str, Any]:
    status = ANSWERS[rt.kind](obj, user)
    return {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": {"creationTimestamp": None},
            "spec": obj.get("spec") or {}, "status": status}
