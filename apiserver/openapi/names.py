"""Upstream OpenAPI names for the kubernetes client's model classes.

The client names its pydantic models ``V1Deployment``, ``CoreV1Event``, ``V1ObjectMeta``...; the
Kubernetes OpenAPI documents name the same types by Go package (``io.k8s.api.apps.v1.Deployment``,
``io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta``). kubectl only matches kinds by the
``x-kubernetes-group-version-kind`` extension, but explain prints the last name segment and other
tools key on the full names, so we publish the upstream ones. The client's names say the version
and sometimes the API (``EventsV1``), never the group, so the group comes from the tables below.
"""

from __future__ import annotations

import re

from apiserver.openapi.errors import SchemaError

_MODEL = re.compile(r"^(?P<api>[A-Z][a-z]+)?(?P<version>V\d+(?:(?:alpha|beta)\d+)?)(?P<type>[A-Z]\w*)$")

META_PACKAGE = "io.k8s.apimachinery.pkg.apis.meta"

#: types of k8s.io/apimachinery/pkg/apis/meta
_META_TYPES = frozenset({
    "APIResource", "Condition", "DeleteOptions", "FieldSelectorRequirement", "LabelSelector",
    "LabelSelectorRequirement", "ListMeta", "ManagedFieldsEntry", "ObjectMeta", "OwnerReference",
    "Preconditions", "ShardInfo", "Status", "StatusCause", "StatusDetails",
})

#: exact type names outside the core group (checked before the prefixes)
_EXACT: dict[str, str] = {
    "Scale": "autoscaling", "ScaleSpec": "autoscaling", "ScaleStatus": "autoscaling",
    "Endpoint": "discovery", "EndpointConditions": "discovery", "EndpointHints": "discovery",
    "ForZone": "discovery", "ForNode": "discovery",
    "ResourceAttributes": "authorization", "NonResourceAttributes": "authorization",
    "ResourceRule": "authorization", "NonResourceRule": "authorization",
    "FieldSelectorAttributes": "authorization", "LabelSelectorAttributes": "authorization",
    "SubjectAccessReviewStatus": "authorization", "SubjectRulesReviewStatus": "authorization",
    "UserInfo": "authentication",
    "Eviction": "policy",
    "TopologyConstraint": "scheduling",
}

#: type-name prefixes outside the core group; ``ScaleIOVolumeSource`` is core, hence exact Scale*
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("Deployment", "apps"), ("ReplicaSet", "apps"), ("DaemonSet", "apps"), ("StatefulSet", "apps"),
    ("RollingUpdate", "apps"), ("ControllerRevision", "apps"),
    ("CronJob", "batch"), ("Job", "batch"), ("PodFailurePolicy", "batch"), ("SuccessPolicy", "batch"),
    ("UncountedTerminatedPods", "batch"),
    ("Lease", "coordination"),
    ("EndpointSlice", "discovery"),
    ("SelfSubjectAccessReview", "authorization"), ("SelfSubjectRulesReview", "authorization"),
    ("SelfSubjectReview", "authentication"), ("TokenRequest", "authentication"),
    ("TokenReview", "authentication"),
    ("Workload", "scheduling"),
)


def package(group: str) -> str:
    """Go package segment of an API group: ``apps`` → apps, ``events.k8s.io`` → events, core → core."""
    return group.split(".", 1)[0] if group else "core"


def _package_of(type_name: str) -> str:
    exact = _EXACT.get(type_name)
    if exact:
        return exact
    for prefix, pkg in _PREFIXES:
        if type_name.startswith(prefix):
            return pkg
    return "core"


def upstream_name(model: str) -> str:
    """``V1Deployment`` → ``io.k8s.api.apps.v1.Deployment``; raises SchemaError for unknown shapes."""
    match = _MODEL.match(model)
    if match is None:
        raise SchemaError(f"not a kubernetes client model name: {model!r}")
    api, version, type_name = match["api"], match["version"].lower(), match["type"]
    if api is None and type_name in _META_TYPES:
        return f"{META_PACKAGE}.{version}.{type_name}"
    pkg = api.lower() if api else _package_of(type_name)
    return f"io.k8s.api.{pkg}.{version}.{type_name}"


def short_name(component: str) -> str:
    """The type name kubectl shows: the last dotted segment."""
    return component.rsplit(".", 1)[-1]
