"""Server-side printing: the meta.k8s.io/v1 Table that `kubectl get` asks for.

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints whatever columns the
server returns; given a plain list it falls back to NAME/AGE. So the server owns the column layout, and
to look like Kubernetes it must reproduce the upstream printers (pkg/printers/internalversion) column
for column and cell for cell. Each kind's printer is one ``Printer``: a tuple of ``Column``s plus a
function computing the row cells from the stored object (a plain dict that may lack any optional
field). Like the upstream API server, every printer always emits the ``-o wide`` (priority 1) cells;
kubectl hides them unless asked.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache


class TableError(TypeError):
    """An object handed to the table builder is not a JSON object (dict)."""


@dataclass(frozen=True)
class Column:
    """One meta.k8s.io/v1 TableColumnDefinition."""

    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0

    def definition(self) -> dict:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


@dataclass(frozen=True)
class Printer:
    """Columns of a kind plus how to fill them; ``cells(obj, now_epoch)`` returns one row's cells."""

    columns: tuple[Column, ...]
    cells: Callable[[dict, float], list]
    #: optional TableRowConditions for a row (upstream marks finished pods "Completed")
    conditions: Callable[[dict], list] | None = None

    def column_definitions(self) -> list[dict]:
        return [column.definition() for column in self.columns]


# --------------------------------------------------------------------------------------------------
# Durations and timestamps


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}
#: duration.HumanDuration's tiers: (exclusive upper bound in seconds, major unit, minor unit or "")
_DURATION_TIERS: tuple[tuple[float, str, str], ...] = (
    (120, "s", ""),
    (10 * 60, "m", "s"),
    (180 * 60, "m", ""),
    (8 * 3600, "h", "m"),
    (48 * 3600, "h", ""),
    (8 * 86400, "d", "h"),
    (2 * 365 * 86400, "d", ""),
    (8 * 365 * 86400, "y", "d"),
    (math.inf, "y", ""),
)


def human_duration(seconds: float) -> str:
    """Kubernetes' duration.HumanDuration: about two significant figures, "<invalid>" for the future.

    Up to two seconds in the future still reads "0s", tolerating clock skew between machines.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"duration must be a number of seconds, not {type(seconds).__name__}")
    if not math.isfinite(seconds):
        raise ValueError(f"duration must be finite, not {seconds!r}")
    return _humanize(seconds)


def _humanize(seconds: float) -> str:
    whole = int(seconds)  # truncates toward zero, as Go's int(d.Seconds()) does
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    for tier in _DURATION_TIERS:
        if whole < tier[0]:
            break
    _, major, minor = tier
    major_seconds = _UNIT_SECONDS[major]
    count = whole // major_seconds
    if not minor:
        return f"{count}{major}"
    minor_seconds = _UNIT_SECONDS[minor]
    rest = (whole // minor_seconds) % (major_seconds // minor_seconds)
    return f"{count}{major}{rest}{minor}" if rest else f"{count}{major}"


_ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, which printers treat as "unset"
_ZERO_EPOCH = datetime.fromisoformat(_ZERO_TIME).timestamp()


@lru_cache(maxsize=16384)
def _parse_time(value: str) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp; cached because list items share timestamps."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    epoch = parsed.timestamp()
    return None if epoch == _ZERO_EPOCH else epoch


def _epoch(value: object) -> float | None:
    return _parse_time(value) if isinstance(value, str) and value else None


def _since(value: object, now: float) -> str:
    """translateTimestampSince: "<unknown>" for a missing timestamp."""
    epoch = _epoch(value)
    return "<unknown>" if epoch is None else _humanize(now - epoch)


def _rfc3339(value: object) -> str:
    """A timestamp as Go's time.RFC3339 in UTC (what the default table shows)."""
    if isinstance(value, str) and len(value) == 20 and value.endswith("Z"):
        return value
    epoch = _epoch(value)
    if epoch is None:
        return _ZERO_TIME
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------------
# Tolerant field access: stored objects may omit anything optional, or hold null


def _d(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _l(value: object) -> list:
    return value if isinstance(value, list) else []


def _s(value: object) -> str:
    return value if isinstance(value, str) else ""


def _n(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _name(obj: dict) -> str:
    return _s(_d(obj.get("metadata")).get("name"))


def _age(obj: dict, now: float) -> str:
    return _since(_d(obj.get("metadata")).get("creationTimestamp"), now)


def _deleting(obj: dict) -> bool:
    return bool(_d(obj.get("metadata")).get("deletionTimestamp"))


def _len(value: object) -> int:
    return len(value) if isinstance(value, dict | list) else 0


def _condition_true(conditions: object, kind: str) -> bool:
    """The first condition of a type decides, as upstream's hasJobCondition does."""
    for condition in _l(conditions):
        condition = _d(condition)
        if condition.get("type") == kind:
            return condition.get("status") == "True"
    return False


# --------------------------------------------------------------------------------------------------
# Shared cell formats


def _containers(pod_spec: object) -> tuple[str, str]:
    """layoutContainerCells: container names and images, each comma-joined."""
    containers = [_d(c) for c in _l(_d(pod_spec).get("containers"))]
    return (",".join(_s(c.get("name")) for c in containers),
            ",".join(_s(c.get("image")) for c in containers))


def _format_labels(labels: object) -> str:
    """labels.FormatLabels: sorted k=v pairs, "<none>" when empty."""
    labels = _d(labels)
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels)) or "<none>"


#: label selector operator -> (template, whether it takes values)
_SELECTOR_OPERATORS = {
    "In": ("{key} in ({values})", True),
    "NotIn": ("{key} notin ({values})", True),
    "Exists": ("{key}", False),
    "DoesNotExist": ("!{key}", False),
}


def _selector_string(selector: object) -> str | None:
    """LabelSelectorAsSelector(...).String(): requirements sorted by key; None when invalid."""
    if not isinstance(selector, dict):
        return ""
    requirements = [(key, f"{key}={value}") for key, value in _d(selector.get("matchLabels")).items()]
    for expression in _l(selector.get("matchExpressions")):
        expression = _d(expression)
        key = _s(expression.get("key"))
        values = sorted(str(v) for v in _l(expression.get("values")))
        template, takes_values = _SELECTOR_OPERATORS.get(_s(expression.get("operator")), ("", None))
        if takes_values is None or takes_values != bool(values):
            return None
        requirements.append((key, template.format(key=key, values=",".join(values))))
    requirements.sort(key=lambda requirement: requirement[0])
    return ",".join(text for _, text in requirements)


def _format_selector(selector: object) -> str:
    """metav1.FormatLabelSelector: "<none>" when empty, "<error>" when invalid."""
    text = _selector_string(selector)
    if text is None:
        return "<error>"
    return text or "<none>"


def _more(items: list[str], total: int, limit: int = 3) -> str:
    """listWithMoreString: the first few items, then "+ N more..."; "<unset>" when empty."""
    text = ",".join(items[:limit])
    if total > limit:
        return f"{text} + {total - limit} more..."
    return text or "<unset>"


# --------------------------------------------------------------------------------------------------
# Column descriptions (the API field docs upstream takes from SwaggerDoc, plus its literal strings)

_DOC = {
    "name": "Name must be unique within a namespace. Is required when creating resources, although some "
            "resources may allow a client to request the generation of an appropriate name automatically. "
            "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
            "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "age": "CreationTimestamp is a timestamp representing the server time when this object was created. It "
           "is not guaranteed to be set in happens-before order across separate operations. Clients may not "
           "set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. "
           "Read-only. Null for lists. More info: "
           "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    "containers": "Names of each container in the template.",
    "images": "Images referenced by each container in the template.",
    "pod.ip": "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet "
              "allocated.",
    "pod.node": "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate "
                "for scheduling by the scheduler defined in schedulerName. Once this field is set, the "
                "kubelet for this node becomes responsible for the lifecycle of this pod. This field should "
                "not be used to express a desire for the pod to be scheduled on a specific node. "
                "https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
    "pod.nominated": "nominatedNodeName is set only when this pod preempts other pods on the node, but it "
                     "cannot be scheduled right away as preemption victims receive their graceful "
                     "termination periods. This field does not guarantee that the pod will be scheduled on "
                     "this node. Scheduler may decide to place the pod elsewhere if other nodes become "
                     "available sooner. Scheduler may also decide to give the resources on this node to a "
                     "higher priority pod that is created after preemption. As a result, this field may be "
                     "different than PodSpec.nodeName when the pod is scheduled.",
    "pod.gates": "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when "
                 "all its containers are ready AND all conditions specified in the readiness gates have "
                 "status equal to \"True\" More info: "
                 "https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
    "rs.desired": "Replicas is the number of desired pods. This is a pointer to distinguish between explicit "
                  "zero and unspecified. Defaults to 1. More info: "
                  "https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
    "rs.current": "Replicas is the most recently observed number of non-terminating pods. More info: "
                  "https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
    "rs.ready": "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
    "rs.selector": "Selector is a label query over pods that should match the replica count. If the "
                   "selector is empty, it is defaulted to the labels present on the pod template. Label keys "
                   "and values that must match in order to be controlled by this replica set. More info: "
                   "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    "ds.desired": "The total number of nodes that should be running the daemon pod (including nodes "
                  "correctly running the daemon pod). More info: "
                  "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    "ds.current": "The number of nodes that are running at least 1 daemon pod and are supposed to run the "
                  "daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    "ds.ready": "numberReady is the number of nodes that should be running the daemon pod and have one or "
                "more of the daemon pod running with a Ready Condition.",
    "ds.updated": "The total number of nodes that are running updated daemon pod",
    "ds.available": "The number of nodes that should be running the daemon pod and have one or more of the "
                    "daemon pod running and available (ready for at least spec.minReadySeconds)",
    "ds.nodeSelector": "NodeSelector is a selector which must be true for the pod to fit on a node. Selector "
                       "which must match a node's labels for the pod to be scheduled on that node. More "
                       "info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
    "ds.selector": "A label query over pods that are managed by the daemon set. Must match in order to be "
                   "controlled. If empty, defaulted to labels on Pod template. More info: "
                   "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    "deploy.ready": "Number of the pod with ready state",
    "deploy.updated": "Total number of non-terminating pods targeted by this deployment that have the "
                      "desired template spec.",
    "deploy.available": "Total number of available non-terminating pods (ready for at least "
                        "minReadySeconds) targeted by this deployment.",
    "deploy.selector": "Label selector for pods. Existing ReplicaSets whose pods are selected by this will "
                       "be the ones affected by this deployment.",
    "job.succeeded": "The number of pods which reached phase Succeeded. The value increases monotonically "
                     "for a given spec. However, it may decrease in reaction to scale down of elastic "
                     "indexed jobs.",
    "job.selector": "A label query over pods that should match the pod count. Normally, the system sets this "
                    "field for you. More info: "
                    "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    "cj.schedule": "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
    "cj.timeZone": "The time zone name for the given schedule, see "
                   "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this "
                   "will default to the time zone of the kube-controller-manager process. The set of valid "
                   "time zone names and the time zone offset is loaded from the system-wide time zone "
                   "database by the API server during CronJob validation and the controller manager during "
                   "execution. If no system-wide time zone database can be found a bundled version of the "
                   "database is used instead. If the time zone name becomes invalid during the lifetime of "
                   "a CronJob or due to a change in host configuration, the controller will stop creating "
                   "new new Jobs and will create a system event with the reason UnknownTimeZone. More "
                   "information can be found in "
                   "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones",
    "cj.suspend": "This flag tells the controller to suspend subsequent executions, it does not apply to "
                  "already started executions.  Defaults to false.",
    "cj.active": "A list of pointers to currently running jobs.",
    "cj.last": "Information when was the last time the job was successfully scheduled.",
    "svc.type": "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are "
                "ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a "
                "cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by "
                "the selector or if that is not specified, by manual construction of an Endpoints object or "
                "EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the "
                "endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds "
                "on ClusterIP and allocates a port on every node which routes to the same endpoints as the "
                "clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if "
                "supported in the current cloud) which routes to the same endpoints as the clusterIP. "
                "\"ExternalName\" aliases this service to the specified externalName. Several other fields "
                "do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/"
                "services-networking/service/#publishing-services-service-types",
    "svc.clusterIP": "clusterIP is the IP address of the service and is usually assigned randomly. If an "
                     "address is specified manually, is in-range (as per system configuration), and is not "
                     "in use, it will be allocated to the service; otherwise creation of the service will "
                     "fail. This field may not be changed through updates unless the type field is also "
                     "being changed to ExternalName (which requires this field to be blank) or the type "
                     "field is being changed from ExternalName (in which case this field may optionally be "
                     "specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a "
                     "valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual "
                     "IP), which is useful when direct endpoint connections are preferred and proxying is "
                     "not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this "
                     "field is specified when creating a Service of type ExternalName, creation will fail. "
                     "This field will be wiped when updating a Service to type ExternalName. More info: "
                     "https://kubernetes.io/docs/concepts/services-networking/service/"
                     "#virtual-ips-and-service-proxies",
    "svc.externalIPs": "externalIPs is a list of IP addresses for which nodes in the cluster will also "
                       "accept traffic for this service.  These IPs are not managed by Kubernetes.  The user "
                       "is responsible for ensuring that traffic arrives at a node with this IP.  A common "
                       "example is external load-balancers that are not part of the Kubernetes system.",
    "svc.ports": "The list of ports that are exposed by this service. More info: "
                 "https://kubernetes.io/docs/concepts/services-networking/service/"
                 "#virtual-ips-and-service-proxies",
    "svc.selector": "Route service traffic to pods with label keys and values matching this selector. If "
                    "empty or not present, the service is assumed to have an external process managing its "
                    "endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, "
                    "and LoadBalancer. Ignored if type is ExternalName. More info: "
                    "https://kubernetes.io/docs/concepts/services-networking/service/",
    "ep.subsets": "The set of all endpoints is the union of all subsets. Addresses are placed into subsets "
                  "according to the IPs they share. A single address with multiple ports, some of which are "
                  "ready and some of which are not (because they come from different containers) will "
                  "result in the address being displayed in different subsets for the different ports. No "
                  "address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of "
                  "addresses and ports that comprise a service.",
    "node.version": "Kubelet Version reported by the node.",
    "node.addresses": "List of addresses reachable to the node. Queried from cloud provider, if available. "
                      "More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: "
                      "This field is declared as mergeable, but the merge key is not sufficiently unique, "
                      "which can cause data corruption when it is merged. Callers should instead use a "
                      "full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should "
                      "assume that addresses can change during the lifetime of a Node. However, there are "
                      "some exceptions where this may not be possible, such as Pods that inherit a Node's "
                      "address in its own status or consumers of the downward API (status.hostIP).",
    "node.osImage": "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    "node.kernel": "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    "node.runtime": "ContainerRuntime Version reported by the node through runtime remote API (e.g. "
                    "containerd://1.4.2).",
    "ev.last": "The time at which the most recent occurrence of this event was recorded.",
    "ev.type": "Type of this event (Normal, Warning), new types could be added in the future",
    "ev.reason": "This should be a short, machine understandable string that gives the reason for the "
                 "transition into the object's current status.",
    "ev.object": "The object that this event is about.",
    "ev.fieldPath": "If referring to a piece of an object instead of an entire object, this string should "
                    "contain a valid JSON/Go field access statement, such as "
                    "desiredState.manifest.containers[2]. For example, if the object reference is to a "
                    "container within a pod, this would take on a value like: \"spec.containers{name}\" "
                    "(where \"name\" refers to the name of the container that triggered the event) or if no "
                    "container name is specified \"spec.containers[2]\" (container with index 2 in this "
                    "pod). This syntax is chosen only to have some well-defined way of referencing a part "
                    "of an object.",
    "ev.source": "The component reporting this event. Should be a short machine understandable string.",
    "ev.message": "A human-readable description of the status of this operation.",
    "ev.first": "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    "ev.count": "The number of times this event has occurred.",
    "secret.type": "Used to facilitate programmatic handling of secret data. More info: "
                   "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
    "secret.data": "Data contains the secret data. Each key must consist of alphanumeric characters, '-', "
                   "'_' or '.'. The serialized form of the secret data is a base64 encoded string, "
                   "representing the arbitrary (possibly non-string) data value here. Described in "
                   "https://tools.ietf.org/html/rfc4648#section-4",
    "sa.secrets": "Secrets is a list of the secrets in the same namespace that pods running using this "
                  "ServiceAccount are allowed to use. Pods are only limited to this list if this service "
                  "account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The "
                  "\"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer "
                  "separate namespaces to isolate access to mounted secrets. This field should not be used "
                  "to find auto-generated service account token secrets for use outside of pods. Instead, "
                  "tokens can be requested directly using the TokenRequest API, or service account token "
                  "secrets can be manually created. More info: "
                  "https://kubernetes.io/docs/concepts/configuration/secret",
    "cm.data": "Data contains the configuration data. Each key must consist of alphanumeric characters, "
               "'-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The "
               "keys stored in Data must not overlap with the keys in the BinaryData field, this is "
               "enforced during validation process.",
    "pvc.phase": "phase represents the current phase of PersistentVolumeClaim.",
    "pvc.volume": "volumeName is the binding reference to the PersistentVolume backing this claim.",
    "pvc.capacity": "capacity represents the actual resources of the underlying volume.",
    "pvc.accessModes": "accessModes contains the actual access modes the volume backing the PVC has. More "
                       "info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1",
    "pvc.volumeMode": "volumeMode defines what type of volume is required by the claim. Value of Filesystem "
                      "is implied when not included in claim spec.",
    "lease.holder": "holderIdentity contains the identity of the holder of a current lease. If Coordinated "
                    "Leader Election is used, the holder identity must be equal to the elected "
                    "LeaseCandidate.metadata.name field.",
    "eps.addressType": "addressType specifies the type of address carried by this EndpointSlice. All "
                       "addresses in this slice must be the same type. This field is immutable after "
                       "creation. The following address types are currently supported: * IPv4: Represents "
                       "an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully "
                       "Qualified Domain Name. (Deprecated) The EndpointSlice controller only generates, and "
                       "kube-proxy only processes, slices of addressType \"IPv4\" and \"IPv6\". No semantics "
                       "are defined for the \"FQDN\" type.",
    "eps.ports": "ports specifies the list of network ports exposed by each endpoint in this slice. Each "
                 "port must have a unique name. Each slice may include a maximum of 100 ports. Services "
                 "always have at least 1 port, so EndpointSlices generated by the EndpointSlice controller "
                 "will likewise always have at least 1 port. EndpointSlices used for other purposes may have "
                 "an empty ports list.",
    "eps.endpoints": "endpoints is a list of unique endpoints in this slice. Each slice may include a "
                     "maximum of 1000 endpoints.",
}

_NAME = Column("Name", format="name", description=_DOC["name"])
_AGE = Column("Age", description=_DOC["age"])
_CONTAINERS = Column("Containers", priority=1, description=_DOC["containers"])
_IMAGES = Column("Images", priority=1, description=_DOC["images"])


# --------------------------------------------------------------------------------------------------
# Default: what Kubernetes' DefaultTableConvertor shows for kinds without a printer


def _default_cells(obj: dict, now: float) -> list:
    return [_name(obj), _rfc3339(_d(obj.get("metadata")).get("creationTimestamp"))]


DEFAULT = Printer((_NAME, Column("Created At", type="date", description=_DOC["age"])), _default_cells)


# --------------------------------------------------------------------------------------------------
# Pods


def _restartable_init(container: object) -> bool:
    """A sidecar: an init container with restartPolicy Always keeps running beside the app."""
    return _d(container).get("restartPolicy") == "Always"


def _finished_at(status: dict) -> float | None:
    terminated = _d(status.get("lastState")).get("terminated")
    return _epoch(_d(terminated).get("finishedAt")) if terminated is not None else None


def _later(current: float | None, candidate: float | None) -> float | None:
    if candidate is None:
        return current
    return candidate if current is None or candidate > current else current


def _exit_reason(terminated: dict, prefix: str) -> str:
    signal = _n(terminated.get("signal"))
    if signal:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{_n(terminated.get('exitCode'))}"


@dataclass
class _PodTally:
    """Running totals while walking a pod's container statuses, as upstream printPod keeps them."""

    reason: str
    ready: int = 0
    restarts: int = 0
    last_restart: float | None = None
    sidecar_restarts: int = 0
    last_sidecar_restart: float | None = None


def _walk_init_containers(spec: dict, status: dict, tally: _PodTally) -> bool:
    """Account init containers; True while the pod is still initializing (reason set to "Init:...")."""
    specs = _l(spec.get("initContainers"))
    by_name = {_s(_d(c).get("name")): c for c in specs}
    for index, container in enumerate(_l(status.get("initContainerStatuses"))):
        container = _d(container)
        count = _n(container.get("restartCount"))
        finished = _finished_at(container)
        tally.restarts += count
        tally.last_restart = _later(tally.last_restart, finished)
        sidecar = _restartable_init(by_name.get(_s(container.get("name"))))
        if sidecar:
            tally.sidecar_restarts += count
            tally.last_sidecar_restart = _later(tally.last_sidecar_restart, finished)
        state = _d(container.get("state"))
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and _n(_d(terminated).get("exitCode")) == 0:
            continue
        if sidecar and container.get("started") is True:
            tally.ready += bool(container.get("ready"))
            continue
        if terminated is not None:
            reason = _s(_d(terminated).get("reason"))
            tally.reason = f"Init:{reason}" if reason else _exit_reason(_d(terminated), "Init:")
        elif _s(_d(waiting).get("reason")) not in ("", "PodInitializing"):
            tally.reason = "Init:" + _d(waiting)["reason"]
        else:
            tally.reason = f"Init:{index}/{len(specs)}"
        return True
    return False


def _walk_containers(status: dict, tally: _PodTally) -> None:
    """Account app containers, last first, so the first container's state wins the STATUS cell."""
    tally.restarts, tally.last_restart = tally.sidecar_restarts, tally.last_sidecar_restart
    running = False
    for container in reversed(_l(status.get("containerStatuses"))):
        container = _d(container)
        tally.restarts += _n(container.get("restartCount"))
        tally.last_restart = _later(tally.last_restart, _finished_at(container))
        state = _d(container.get("state"))
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if _s(_d(waiting).get("reason")):
            tally.reason = _d(waiting)["reason"]
        elif terminated is not None:
            tally.reason = _s(_d(terminated).get("reason")) or _exit_reason(_d(terminated), "")
        elif container.get("ready") and state.get("running") is not None:
            running = True
            tally.ready += 1
    if tally.reason == "Completed" and running:
        tally.reason = "Running" if _condition_true(status.get("conditions"), "Ready") else "NotReady"


def _readiness_gates(spec: dict, status: dict) -> str:
    gates = _l(spec.get("readinessGates"))
    if not gates:
        return "<none>"
    conditions = [_d(c) for c in _l(status.get("conditions"))]
    passed = 0
    for gate in gates:
        kind = _d(gate).get("conditionType")
        match = next((c for c in conditions if c.get("type") == kind), None)
        passed += match is not None and match.get("status") == "True"
    return f"{passed}/{len(gates)}"


def _pod_ip(status: dict) -> str:
    ips = _l(status.get("podIPs"))
    ip = _s(_d(ips[0]).get("ip")) if ips else _s(status.get("podIP"))
    return ip or "<none>"


def _pod_cells(pod: dict, now: float) -> list:
    spec, status = _d(pod.get("spec")), _d(pod.get("status"))
    phase = _s(status.get("phase"))
    tally = _PodTally(reason=_s(status.get("reason")) or phase)
    for condition in _l(status.get("conditions")):
        condition = _d(condition)
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            tally.reason = "SchedulingGated"
    total = len(_l(spec.get("containers"))) + sum(map(_restartable_init, _l(spec.get("initContainers"))))
    initializing = _walk_init_containers(spec, status, tally)
    if not initializing or _condition_true(status.get("conditions"), "Initialized"):
        _walk_containers(status, tally)
    if _deleting(pod) and status.get("reason") == "NodeLost":
        tally.reason = "Unknown"
    elif _deleting(pod) and phase not in ("Succeeded", "Failed"):
        tally.reason = "Terminating"
    restarts = str(tally.restarts)
    if tally.restarts and tally.last_restart is not None:
        restarts = f"{tally.restarts} ({_humanize(now - tally.last_restart)} ago)"
    return [_name(pod), f"{tally.ready}/{total}", tally.reason, restarts, _age(pod, now),
            _pod_ip(status), _s(spec.get("nodeName")) or "<none>",
            _s(status.get("nominatedNodeName")) or "<none>", _readiness_gates(spec, status)]


#: row conditions upstream attaches to finished pods
_POD_DONE = {
    "Succeeded": [{"type": "Completed", "status": "True", "reason": "Succeeded",
                   "message": "The pod has completed successfully."}],
    "Failed": [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}],
}


def _pod_conditions(pod: dict) -> list:
    return [dict(c) for c in _POD_DONE.get(_s(_d(pod.get("status")).get("phase")), ())]


POD = Printer((
    _NAME,
    Column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", description="The aggregate status of the containers in this pod."),
    Column("Restarts", description="The number of times the containers in this pod have been restarted "
                                   "and when the last container in this pod has restarted."),
    _AGE,
    Column("IP", priority=1, description=_DOC["pod.ip"]),
    Column("Node", priority=1, description=_DOC["pod.node"]),
    Column("Nominated Node", priority=1, description=_DOC["pod.nominated"]),
    Column("Readiness Gates", priority=1, description=_DOC["pod.gates"]),
), _pod_cells, _pod_conditions)


# --------------------------------------------------------------------------------------------------
# Workloads


def _template_spec(obj: dict) -> dict:
    return _d(_d(_d(obj.get("spec")).get("template")).get("spec"))


def _deployment_cells(obj: dict, now: float) -> list:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    names, images = _containers(_template_spec(obj))
    selector = _selector_string(spec.get("selector"))
    return [_name(obj), f"{_n(status.get('readyReplicas'))}/{_n(spec.get('replicas'), 1)}",
            _n(status.get("updatedReplicas")), _n(status.get("availableReplicas")), _age(obj, now),
            names, images, "<invalid>" if selector is None else selector]


DEPLOYMENT = Printer((
    _NAME,
    Column("Ready", description=_DOC["deploy.ready"]),
    Column("Up-to-date", description=_DOC["deploy.updated"]),
    Column("Available", description=_DOC["deploy.available"]),
    _AGE, _CONTAINERS, _IMAGES,
    Column("Selector", priority=1, description=_DOC["deploy.selector"]),
), _deployment_cells)


def _replicaset_cells(obj: dict, now: float) -> list:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    names, images = _containers(_template_spec(obj))
    return [_name(obj), _n(spec.get("replicas"), 1), _n(status.get("replicas")),
            _n(status.get("readyReplicas")), _age(obj, now), names, images,
            _format_selector(spec.get("selector"))]


REPLICASET = Printer((
    _NAME,
    Column("Desired", type="integer", description=_DOC["rs.desired"]),
    Column("Current", type="integer", description=_DOC["rs.current"]),
    Column("Ready", type="integer", description=_DOC["rs.ready"]),
    _AGE, _CONTAINERS, _IMAGES,
    Column("Selector", priority=1, description=_DOC["rs.selector"]),
), _replicaset_cells)


#: DaemonSet status counters, in column order
_DAEMONSET_COUNTS = ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
                     "updatedNumberScheduled", "numberAvailable")


def _daemonset_cells(obj: dict, now: float) -> list:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    pod_spec = _template_spec(obj)
    names, images = _containers(pod_spec)
    return [_name(obj), *(_n(status.get(field)) for field in _DAEMONSET_COUNTS),
            _format_labels(pod_spec.get("nodeSelector")), _age(obj, now), names, images,
            _format_selector(spec.get("selector"))]


DAEMONSET = Printer((
    _NAME,
    Column("Desired", type="integer", description=_DOC["ds.desired"]),
    Column("Current", type="integer", description=_DOC["ds.current"]),
    Column("Ready", type="integer", description=_DOC["ds.ready"]),
    Column("Up-to-date", type="integer", description=_DOC["ds.updated"]),
    Column("Available", type="integer", description=_DOC["ds.available"]),
    Column("Node Selector", description=_DOC["ds.nodeSelector"]),
    _AGE, _CONTAINERS, _IMAGES,
    Column("Selector", priority=1, description=_DOC["ds.selector"]),
), _daemonset_cells)


def _statefulset_cells(obj: dict, now: float) -> list:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    names, images = _containers(_template_spec(obj))
    return [_name(obj), f"{_n(status.get('readyReplicas'))}/{_n(spec.get('replicas'), 1)}",
            _age(obj, now), names, images]


STATEFULSET = Printer((
    _NAME,
    Column("Ready", description="Number of the pod with ready state"),
    _AGE, _CONTAINERS, _IMAGES,
), _statefulset_cells)


#: Job STATUS cell: the first matching rule wins (condition type, or "deleting" for deletionTimestamp)
_JOB_STATUS = (("Complete", "Complete"), ("Failed", "Failed"), ("deleting", "Terminating"),
               ("Suspended", "Suspended"), ("FailureTarget", "FailureTarget"))


def _job_status(obj: dict) -> str:
    conditions = _d(obj.get("status")).get("conditions")
    for rule, text in _JOB_STATUS:
        if _deleting(obj) if rule == "deleting" else _condition_true(conditions, rule):
            return text
    return "Running"


def _job_completions(spec: dict, succeeded: int) -> str:
    completions = spec.get("completions")
    if isinstance(completions, int):
        return f"{succeeded}/{completions}"
    parallelism = _n(spec.get("parallelism"))
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _job_duration(status: dict, now: float) -> str:
    start = _epoch(status.get("startTime"))
    if start is None:
        return ""
    end = _epoch(status.get("completionTime"))
    return _humanize((now if end is None else end) - start)


def _job_cells(obj: dict, now: float) -> list:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    names, images = _containers(_template_spec(obj))
    return [_name(obj), _job_status(obj), _job_completions(spec, _n(status.get("succeeded"))),
            _job_duration(status, now), _age(obj, now), names, images,
            _format_selector(spec.get("selector"))]


JOB = Printer((
    _NAME,
    Column("Status", description="Status of the job."),
    Column("Completions", description=_DOC["job.succeeded"]),
    Column("Duration", description="Time required to complete the job."),
    _AGE, _CONTAINERS, _IMAGES,
    Column("Selector", priority=1, description=_DOC["job.selector"]),
), _job_cells)


def _cronjob_cells(obj: dict, now: float) -> list:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    job_spec = _d(_d(spec.get("jobTemplate")).get("spec"))
    names, images = _containers(_d(_d(job_spec.get("template")).get("spec")))
    suspend = spec.get("suspend")
    last = status.get("lastScheduleTime")
    return [_name(obj), _s(spec.get("schedule")), _s(spec.get("timeZone")) or "<none>",
            ("True" if suspend else "False") if isinstance(suspend, bool) else "<unset>",
            _len(status.get("active")), _since(last, now) if last else "<none>", _age(obj, now),
            names, images, _format_selector(job_spec.get("selector"))]


CRONJOB = Printer((
    _NAME,
    Column("Schedule", description=_DOC["cj.schedule"]),
    Column("Timezone", description=_DOC["cj.timeZone"]),
    Column("Suspend", type="boolean", description=_DOC["cj.suspend"]),
    Column("Active", type="integer", description=_DOC["cj.active"]),
    Column("Last Schedule", description=_DOC["cj.last"]),
    _AGE, _CONTAINERS, _IMAGES,
    Column("Selector", priority=1, description=_DOC["job.selector"]),
), _cronjob_cells)


# --------------------------------------------------------------------------------------------------
# Networking


def _load_balancer_ips(status: dict) -> str:
    """loadBalancerStatusStringer (wide): unique IPs or hostnames, sorted."""
    found = set()
    for ingress in _l(_d(status.get("loadBalancer")).get("ingress")):
        ingress = _d(ingress)
        address = _s(ingress.get("ip")) or _s(ingress.get("hostname"))
        if address:
            found.add(address)
    return ",".join(sorted(found))


def _external_ip(spec: dict, status: dict) -> str:
    kind = spec.get("type")
    external = [_s(ip) for ip in _l(spec.get("externalIPs"))]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        balancer = _load_balancer_ips(status)
        if external:
            return ",".join([*(balancer.split(",") if balancer else []), *external])
        return balancer or "<pending>"
    if kind == "ExternalName":
        return _s(spec.get("externalName"))
    return "<unknown>"


def _service_ports(spec: dict) -> str:
    pieces = []
    for port in _l(spec.get("ports")):
        port = _d(port)
        number, node_port, protocol = _n(port.get("port")), _n(port.get("nodePort")), _s(port.get("protocol"))
        pieces.append(f"{number}:{node_port}/{protocol}" if node_port > 0 else f"{number}/{protocol}")
    return ",".join(pieces) or "<none>"


def _service_cells(obj: dict, now: float) -> list:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    cluster_ips = _l(spec.get("clusterIPs"))
    cluster_ip = _s(cluster_ips[0]) if cluster_ips else _s(spec.get("clusterIP"))
    return [_name(obj), _s(spec.get("type")), cluster_ip or "<none>", _external_ip(spec, status),
            _service_ports(spec), _age(obj, now), _format_labels(spec.get("selector"))]


SERVICE = Printer((
    _NAME,
    Column("Type", description=_DOC["svc.type"]),
    Column("Cluster-IP", description=_DOC["svc.clusterIP"]),
    Column("External-IP", description=_DOC["svc.externalIPs"]),
    Column("Port(s)", description=_DOC["svc.ports"]),
    _AGE,
    Column("Selector", priority=1, description=_DOC["svc.selector"]),
), _service_cells)


def _join_host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _format_endpoints(subsets: list, limit: int = 3) -> str:
    """formatEndpoints: up to three ip:port pairs, then "+ N more..."; "<none>" without subsets."""
    if not subsets:
        return "<none>"
    shown: list[str] = []
    total = 0
    for subset in subsets:
        subset = _d(subset)
        ips = [_s(_d(a).get("ip")) for a in _l(subset.get("addresses"))]
        ports = _l(subset.get("ports"))
        if not ports:  # headless services may have no ports
            total += len(ips)
            shown.extend(ips[:limit - len(shown)])
            continue
        for port in ports:
            total += len(ips)
            number = _n(_d(port).get("port"))
            shown.extend(_join_host_port(ip, number) for ip in ips[:limit - len(shown)])
    text = ",".join(shown)
    return f"{text} + {total - limit} more..." if total > limit else text


def _endpoints_cells(obj: dict, now: float) -> list:
    return [_name(obj), _format_endpoints(_l(obj.get("subsets"))), _age(obj, now)]


ENDPOINTS = Printer((_NAME, Column("Endpoints", description=_DOC["ep.subsets"]), _AGE), _endpoints_cells)


def _slice_port(port: object) -> str:
    port = _d(port)
    number, name = port.get("port"), port.get("name")
    if isinstance(number, int):
        return str(number)
    return name if isinstance(name, str) else "*"


def _endpointslice_cells(obj: dict, now: float) -> list:
    ports = _l(obj.get("ports"))
    addresses = [_s(a) for e in _l(obj.get("endpoints")) for a in _l(_d(e).get("addresses"))]
    return [_name(obj), _s(obj.get("addressType")), _more([_slice_port(p) for p in ports[:3]], len(ports)),
            _more(addresses[:3], len(addresses)), _age(obj, now)]


ENDPOINTSLICE = Printer((
    _NAME,
    Column("AddressType", description=_DOC["eps.addressType"]),
    Column("Ports", description=_DOC["eps.ports"]),
    Column("Endpoints", description=_DOC["eps.endpoints"]),
    _AGE,
), _endpointslice_cells)


# --------------------------------------------------------------------------------------------------
# Configuration and identity


def _configmap_cells(obj: dict, now: float) -> list:
    return [_name(obj), _len(obj.get("data")) + _len(obj.get("binaryData")), _age(obj, now)]


CONFIGMAP = Printer((_NAME, Column("Data", description=_DOC["cm.data"]), _AGE), _configmap_cells)


def _secret_cells(obj: dict, now: float) -> list:
    return [_name(obj), _s(obj.get("type")), _len(obj.get("data")), _age(obj, now)]


SECRET = Printer((
    _NAME,
    Column("Type", description=_DOC["secret.type"]),
    Column("Data", description=_DOC["secret.data"]),
    _AGE,
), _secret_cells)


def _serviceaccount_cells(obj: dict, now: float) -> list:
    return [_name(obj), _len(obj.get("secrets")), _age(obj, now)]


SERVICEACCOUNT = Printer((_NAME, Column("Secrets", description=_DOC["sa.secrets"]), _AGE),
                         _serviceaccount_cells)


def _namespace_cells(obj: dict, now: float) -> list:
    return [_name(obj), _s(_d(obj.get("status")).get("phase")), _age(obj, now)]


NAMESPACE = Printer((_NAME, Column("Status", description="The status of the namespace"), _AGE),
                    _namespace_cells)


def _lease_cells(obj: dict, now: float) -> list:
    return [_name(obj), _s(_d(obj.get("spec")).get("holderIdentity")), _age(obj, now)]


LEASE = Printer((_NAME, Column("Holder", description=_DOC["lease.holder"]), _AGE), _lease_cells)


# --------------------------------------------------------------------------------------------------
# Nodes

_ROLE_PREFIX = "node-role.kubernetes.io/"
_ROLE_LABEL = "kubernetes.io/role"


def _node_status(obj: dict) -> str:
    ready = None
    for condition in _l(_d(obj.get("status")).get("conditions")):
        condition = _d(condition)
        if condition.get("type") == "Ready":
            ready = condition  # the last Ready condition wins, as in upstream's condition map
    parts = ["Unknown" if ready is None else "Ready" if ready.get("status") == "True" else "NotReady"]
    if _d(obj.get("spec")).get("unschedulable") is True:
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def _node_roles(obj: dict) -> str:
    roles = set()
    for key, value in _d(_d(obj.get("metadata")).get("labels")).items():
        if key.startswith(_ROLE_PREFIX) and len(key) > len(_ROLE_PREFIX):
            roles.add(key[len(_ROLE_PREFIX):])
        elif key == _ROLE_LABEL and _s(value):
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(status: dict, kind: str) -> str:
    for address in _l(status.get("addresses")):
        address = _d(address)
        if address.get("type") == kind:
            return _s(address.get("address"))
    return "<none>"


def _node_cells(obj: dict, now: float) -> list:
    status = _d(obj.get("status"))
    info = _d(status.get("nodeInfo"))
    return [_name(obj), _node_status(obj), _node_roles(obj), _age(obj, now), _s(info.get("kubeletVersion")),
            _node_address(status, "InternalIP"), _node_address(status, "ExternalIP"),
            _s(info.get("osImage")) or "<unknown>", _s(info.get("kernelVersion")) or "<unknown>",
            _s(info.get("containerRuntimeVersion")) or "<unknown>"]


NODE = Printer((
    _NAME,
    Column("Status", description="The status of the node"),
    Column("Roles", description="The roles of the node"),
    _AGE,
    Column("Version", description=_DOC["node.version"]),
    Column("Internal-IP", priority=1, description=_DOC["node.addresses"]),
    Column("External-IP", priority=1, description=_DOC["node.addresses"]),
    Column("OS-Image", priority=1, description=_DOC["node.osImage"]),
    Column("Kernel-Version", priority=1, description=_DOC["node.kernel"]),
    Column("Container-Runtime", priority=1, description=_DOC["node.runtime"]),
), _node_cells)


# --------------------------------------------------------------------------------------------------
# Storage

#: GetAccessModesAsString: fixed order, duplicates dropped
_ACCESS_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                 ("ReadWriteOncePod", "RWOP"))
_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


def _access_modes(modes: object) -> str:
    present = {mode for mode in _l(modes) if isinstance(mode, str)}
    return ",".join(short for mode, short in _ACCESS_MODES if mode in present)


def _claim_class(obj: dict, spec: dict) -> str:
    annotations = _d(_d(obj.get("metadata")).get("annotations"))
    if _STORAGE_CLASS_ANNOTATION in annotations:
        return _s(annotations[_STORAGE_CLASS_ANNOTATION])
    return _s(spec.get("storageClassName"))


def _pvc_cells(obj: dict, now: float) -> list:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    volume = _s(spec.get("volumeName"))
    capacity = modes = ""
    if volume:
        modes = _access_modes(status.get("accessModes"))
        capacity = str(_d(status.get("capacity")).get("storage") or "0")
    return [_name(obj), "Terminating" if _deleting(obj) else _s(status.get("phase")), volume, capacity, modes,
            _claim_class(obj, spec), _s(spec.get("volumeAttributesClassName")) or "<unset>", _age(obj, now),
            _s(spec.get("volumeMode")) or "<unset>"]


PERSISTENTVOLUMECLAIM = Printer((
    _NAME,
    Column("Status", description=_DOC["pvc.phase"]),
    Column("Volume", description=_DOC["pvc.volume"]),
    Column("Capacity", description=_DOC["pvc.capacity"]),
    Column("Access Modes", description=_DOC["pvc.accessModes"]),
    Column("StorageClass", description="StorageClass of the pvc"),
    Column("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
    _AGE,
    Column("VolumeMode", priority=1, description=_DOC["pvc.volumeMode"]),
), _pvc_cells)


# --------------------------------------------------------------------------------------------------
# Events (core/v1 and events.k8s.io/v1 share upstream's printer: the latter converts to the former)


@dataclass(frozen=True)
class _EventFields:
    """JSON names of the event fields the printer reads, which differ between the two APIs."""

    involved: str
    first: str
    last: str
    count: str
    source: str
    message: str
    controller: str


_CORE_EVENT = _EventFields(
    involved="involvedObject", first="firstTimestamp", last="lastTimestamp", count="count",
    source="source", message="message", controller="reportingComponent")
_V1_EVENT = _EventFields(
    involved="regarding", first="deprecatedFirstTimestamp", last="deprecatedLastTimestamp",
    count="deprecatedCount", source="deprecatedSource", message="note", controller="reportingController")


def _event_source(obj: dict, fields: _EventFields) -> str:
    source = _d(obj.get(fields.source))
    component = _s(source.get("component")) or _s(obj.get(fields.controller))
    instance = _s(source.get("host")) or _s(obj.get("reportingInstance"))
    return f"{component}, {instance}" if instance else component


def _event_cells_for(fields: _EventFields) -> Callable[[dict, float], list]:
    def cells(obj: dict, now: float) -> list:
        first_at = obj.get(fields.first)
        first = _since(first_at, now) if _epoch(first_at) is not None else _since(obj.get("eventTime"), now)
        last_at = obj.get(fields.last)
        last = _since(last_at, now) if _epoch(last_at) is not None else first
        count = _n(obj.get(fields.count))
        series = obj.get("series")
        if isinstance(series, dict):
            last = _since(series.get("lastObservedTime"), now)
            count = _n(series.get("count"))
        elif count == 0:
            count = 1  # singleton events of the new API carry no count
        involved = _d(obj.get(fields.involved))
        kind, name = _s(involved.get("kind")).lower(), _s(involved.get("name"))
        message = _s(obj.get(fields.message)).strip()
        return [last, _s(obj.get("type")), _s(obj.get("reason")), f"{kind}/{name}" if name else kind,
                _s(involved.get("fieldPath")), _event_source(obj, fields), message, first, count, _name(obj)]
    return cells


_EVENT_COLUMNS = (
    Column("Last Seen", description=_DOC["ev.last"]),
    Column("Type", description=_DOC["ev.type"]),
    Column("Reason", description=_DOC["ev.reason"]),
    Column("Object", description=_DOC["ev.object"]),
    Column("Subobject", priority=1, description=_DOC["ev.fieldPath"]),
    Column("Source", priority=1, description=_DOC["ev.source"]),
    Column("Message", description=_DOC["ev.message"]),
    Column("First Seen", priority=1, description=_DOC["ev.first"]),
    Column("Count", priority=1, description=_DOC["ev.count"]),
    Column("Name", priority=1, format="name", description=_DOC["name"]),
)

EVENT = Printer(_EVENT_COLUMNS, _event_cells_for(_CORE_EVENT))
EVENTS_V1 = Printer(_EVENT_COLUMNS, _event_cells_for(_V1_EVENT))


# --------------------------------------------------------------------------------------------------
# The Table document


def _partial_metadata(obj: dict) -> dict:
    """PartialObjectMetadata for a row: kubectl reads namespace, labels and name from it."""
    metadata = _d(obj.get("metadata"))
    if "managedFields" in metadata:
        metadata = {key: value for key, value in metadata.items() if key != "managedFields"}
    else:
        metadata = dict(metadata)
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}


def _row(printer: Printer, obj: object, now: float) -> dict:
    if not isinstance(obj, dict):
        raise TableError(f"cannot print a {type(obj).__name__} as a table row; expected an object")
    row: dict = {"cells": printer.cells(obj, now)}
    if printer.conditions is not None and (conditions := printer.conditions(obj)):
        row["conditions"] = conditions
    row["object"] = _partial_metadata(obj)
    return row


def table(printer: Printer, objects: Iterable[dict], *, resource_version: str, continue_: str | None = None,
          now: float | None = None) -> dict:
    """The meta.k8s.io/v1 Table answering a list request that asked for ``as=Table``."""
    when = time.time() if now is None else now
    if isinstance(when, bool) or not isinstance(when, int | float) or not math.isfinite(when):
        raise TableError(f"now must be a finite epoch time in seconds, not {when!r}")
    metadata = {"resourceVersion": resource_version}
    if continue_:
        metadata["continue"] = continue_
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
            "columnDefinitions": printer.column_definitions(),
            "rows": [_row(printer, obj, when) for obj in objects]}


def row_table(printer: Printer, obj: dict, *, now: float | None = None) -> dict:
    """A one-row Table, the ``object`` of each watch event when the watch asked for ``as=Table``."""
    if not isinstance(obj, dict):
        raise TableError(f"cannot print a {type(obj).__name__} as a table row; expected an object")
    version = _s(_d(obj.get("metadata")).get("resourceVersion"))
    return table(printer, [obj], resource_version=version, now=now)
