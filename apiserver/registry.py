"""The resource registry: one table declaring every API resource the server serves.

Routing, discovery, OpenAPI, defaulting, validation, Table output and storage keys are all driven
from these entries, so adding a resource is one entry here and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from apiserver import defaults, tables, validation

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CREATE_ONLY = ("create",)

#: field selector paths every resource supports
COMMON_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class ResourceType:
    """One served resource, e.g. apps/v1 deployments."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    #: kubernetes client model class (``kubernetes.client.<model>``) the OpenAPI schema comes from
    model: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    #: subresource name -> kind it answers with ("" for streams such as log/exec)
    subresources: dict[str, str] = field(default_factory=dict)
    #: extra field-selector paths beyond metadata.name/metadata.namespace
    field_selectors: tuple[str, ...] = ()
    printer: tables.Printer = tables.DEFAULT
    default: Callable[[dict], None] = defaults.nothing
    validate: validation.Validator = validation.nothing
    #: stored objects; False for virtual create-only kinds such as access reviews
    stored: bool = True
    #: metadata.generation tracks changes of everything but metadata and status
    has_generation: bool = False
    #: object fields a create/update may not change once set (dotted paths, checked on update)
    immutable: tuple[str, ...] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    api_version = group_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def qualified_name(self) -> str:
        """``deployments.apps`` — how Kubernetes names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """``Deployment.apps`` — how Kubernetes names a kind in Invalid messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def selectable_fields(self) -> tuple[str, ...]:
        return COMMON_FIELDS + self.field_selectors

    def key(self, namespace: str | None, name: str = "") -> str:
        """Storage key (or prefix, with an empty name) of an object of this resource."""
        group = self.group or "core"
        if self.namespaced and namespace:
            return f"/registry/{group}/{self.plural}/{namespace}/{name}"
        return f"/registry/{group}/{self.plural}/{name}"


_POD_STREAMS = {"log": "", "exec": "", "attach": "", "portforward": "", "proxy": ""}
_ALL = ("all",)

RESOURCES: tuple[ResourceType, ...] = (
    # core/v1
    ResourceType("", "v1", "Namespace", "namespaces", False, "V1Namespace", ("ns",),
                 subresources={"status": "Namespace", "finalize": "Namespace"},
                 field_selectors=("status.phase",), printer=tables.NAMESPACE,
                 default=defaults.namespace, validate=validation.namespace),
    ResourceType("", "v1", "Pod", "pods", True, "V1Pod", ("po",), _ALL,
                 subresources={"status": "Pod", "binding": "Binding", "ephemeralcontainers": "Pod",
                               "eviction": "Eviction", **_POD_STREAMS},
                 field_selectors=("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                                  "spec.serviceAccountName", "status.phase", "status.podIP",
                                  "status.nominatedNodeName"),
                 printer=tables.POD, default=defaults.pod, validate=validation.pod),
    ResourceType("", "v1", "Service", "services", True, "V1Service", ("svc",), _ALL,
                 subresources={"status": "Service", "proxy": ""}, printer=tables.SERVICE,
                 default=defaults.service, validate=validation.service),
    ResourceType("", "v1", "Endpoints", "endpoints", True, "V1Endpoints", ("ep",),
                 printer=tables.ENDPOINTS, default=defaults.endpoints, validate=validation.endpoints),
    ResourceType("", "v1", "ConfigMap", "configmaps", True, "V1ConfigMap", ("cm",),
                 printer=tables.CONFIGMAP, validate=validation.configmap),
    ResourceType("", "v1", "Secret", "secrets", True, "V1Secret", field_selectors=("type",),
                 printer=tables.SECRET, default=defaults.secret, validate=validation.secret),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True, "V1ServiceAccount", ("sa",),
                 subresources={"token": "TokenRequest"}, printer=tables.SERVICEACCOUNT),
    ResourceType("", "v1", "Event", "events", True, "CoreV1Event", ("ev",),
                 field_selectors=("involvedObject.kind", "involvedObject.namespace",
                                  "involvedObject.name", "involvedObject.uid",
                                  "involvedObject.apiVersion", "involvedObject.resourceVersion",
                                  "involvedObject.fieldPath", "reason", "reportingComponent",
                                  "source", "type"),
                 printer=tables.EVENT, default=defaults.event, validate=validation.event),
    ResourceType("", "v1", "Node", "nodes", False, "V1Node", ("no",),
                 subresources={"status": "Node", "proxy": ""}, field_selectors=("spec.unschedulable",),
                 printer=tables.NODE, default=defaults.node),
    ResourceType("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True,
                 "V1PersistentVolumeClaim", ("pvc",), subresources={"status": "PersistentVolumeClaim"},
                 printer=tables.PERSISTENTVOLUMECLAIM, default=defaults.persistentvolumeclaim,
                 validate=validation.persistentvolumeclaim),
    # apps/v1
    ResourceType("apps", "v1", "Deployment", "deployments", True, "V1Deployment", ("deploy",), _ALL,
                 subresources={"status": "Deployment", "scale": "Scale"}, printer=tables.DEPLOYMENT,
                 default=defaults.deployment, validate=validation.deployment, has_generation=True,
                 immutable=("spec.selector",)),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", True, "V1ReplicaSet", ("rs",), _ALL,
                 subresources={"status": "ReplicaSet", "scale": "Scale"}, field_selectors=("status.replicas",),
                 printer=tables.REPLICASET, default=defaults.replicaset, validate=validation.replicaset,
                 has_generation=True, immutable=("spec.selector",)),
    ResourceType("apps", "v1", "DaemonSet", "daemonsets", True, "V1DaemonSet", ("ds",), _ALL,
                 subresources={"status": "DaemonSet"}, printer=tables.DAEMONSET,
                 default=defaults.daemonset, validate=validation.daemonset, has_generation=True,
                 immutable=("spec.selector",)),
    ResourceType("apps", "v1", "StatefulSet", "statefulsets", True, "V1StatefulSet", ("sts",), _ALL,
                 subresources={"status": "StatefulSet", "scale": "Scale"}, printer=tables.STATEFULSET,
                 default=defaults.statefulset, validate=validation.statefulset, has_generation=True,
                 immutable=("spec.selector", "spec.serviceName")),
    ResourceType("apps", "v1", "ControllerRevision", "controllerrevisions", True, "V1ControllerRevision",
                 immutable=("data",)),
    # policy/v1
    ResourceType("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, "V1PodDisruptionBudget",
                 ("pdb",), subresources={"status": "PodDisruptionBudget"}, has_generation=True),
    # batch/v1
    ResourceType("batch", "v1", "Job", "jobs", True, "V1Job", (), _ALL,
                 subresources={"status": "Job"}, field_selectors=("status.successful",),
                 printer=tables.JOB, default=defaults.job, validate=validation.job, has_generation=True,
                 immutable=("spec.selector", "spec.template", "spec.completions")),
    ResourceType("batch", "v1", "CronJob", "cronjobs", True, "V1CronJob", ("cj",), _ALL,
                 subresources={"status": "CronJob"}, printer=tables.CRONJOB, default=defaults.cronjob,
                 validate=validation.cronjob, has_generation=True),
    # coordination.k8s.io/v1
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True, "V1Lease",
                 printer=tables.LEASE, validate=validation.lease),
    # discovery.k8s.io/v1
    ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True, "V1EndpointSlice",
                 printer=tables.ENDPOINTSLICE, default=defaults.endpointslice, validate=validation.endpointslice),
    # events.k8s.io/v1
    ResourceType("events.k8s.io", "v1", "Event", "events", True, "EventsV1Event", ("ev",),
                 printer=tables.EVENTS_V1, default=defaults.events_v1, validate=validation.events_v1),
    # virtual, create-only reviews (answered for the admin identity until RBAC exists)
    ResourceType("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
                 False, "V1SelfSubjectAccessReview", verbs=CREATE_ONLY, stored=False),
    ResourceType("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
                 False, "V1SelfSubjectRulesReview", verbs=CREATE_ONLY, stored=False),
    ResourceType("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews",
                 False, "V1SelfSubjectReview", verbs=CREATE_ONLY, stored=False),
)

#: the group-versions served, in discovery order (core first)
GROUP_VERSIONS: tuple[str, ...] = tuple(dict.fromkeys(r.group_version for r in RESOURCES))

_BY_PATH: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND: dict[tuple[str, str], ResourceType] = {(r.group_version, r.kind): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    """The resource served at /apis/<group>/<version>/<plural> (group "" for /api/v1)."""
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    return _BY_KIND.get((api_version, kind))


def in_group_version(group: str, version: str) -> Iterable[ResourceType]:
    return (r for r in RESOURCES if r.group == group and r.version == version)


def namespaced_stored() -> Iterable[ResourceType]:
    """Everything a namespace holds, for namespace deletion."""
    return (r for r in RESOURCES if r.namespaced and r.stored)
