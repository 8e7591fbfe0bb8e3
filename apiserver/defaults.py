"""Defaulting: the fields upstream fills in before an object is validated and stored.

Kubernetes' v1 defaulters (pkg/apis/*/v1/defaults.go), a few create-time registry strategies and the
default admission plugins (Priority, ServiceAccount, DefaultTolerationSeconds) fill fields the client
left out. kubectl and controllers read those fields back (``kubectl get -o yaml``, rollout logic,
pod workers), so the server fills the same ones with the same values.

Every function takes a fresh dict owned by the server, mutates it in place and is idempotent: running
it twice changes nothing the second time. A field holding a value of the wrong JSON type is left alone
(validation reports it), so defaulting never raises on odd input. A value counts as unset when the key
is missing or null, and for string fields also when it is "" — as for Go's zero values.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

from apiserver.validation import parse_quantity

# --- small helpers --------------------------------------------------------------------------------


def _child(parent: dict, key: str) -> dict | None:
    """``parent[key]`` as a dict, created empty when unset; None when it holds another type."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    return value if isinstance(value, dict) else None


def _dicts(parent: dict, key: str) -> list[dict]:
    """The dict elements of the list ``parent[key]`` (nothing when unset or not a list)."""
    value = parent.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _fill(target: dict, key: str, value: Any) -> None:
    """Set ``target[key]`` when unset (missing, null, or "" for a string default)."""
    current = target.get(key)
    if current is None or (current == "" and isinstance(value, str)):
        target[key] = value


def _fill_all(target: dict, table: Iterable[tuple[str, Any]]) -> None:
    for key, value in table:
        _fill(target, key, value)


def _fill_nonzero(target: dict, table: Iterable[tuple[str, Any]]) -> None:
    """Like ``_fill`` for Go non-pointer ints, where 0 also means unset (probe timings)."""
    for key, value in table:
        if target.get(key) in (None, 0):
            target[key] = value


def _is_creating(obj: dict) -> bool:
    """True for an object being created: the server has not given it a resourceVersion yet."""
    meta = obj.get("metadata")
    return not (isinstance(meta, dict) and meta.get("resourceVersion"))


# --- shared pod-template defaulting -----------------------------------------------------------------

_POD_SPEC_DEFAULTS = (
    ("restartPolicy", "Always"),
    ("dnsPolicy", "ClusterFirst"),
    ("schedulerName", "default-scheduler"),
    ("terminationGracePeriodSeconds", 30),
)
_CONTAINER_DEFAULTS = (
    ("terminationMessagePath", "/dev/termination-log"),
    ("terminationMessagePolicy", "File"),
)
_PROBE_DEFAULTS = (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3))
_HTTP_GET_DEFAULTS = (("path", "/"), ("scheme", "HTTP"))
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
#: volume sources whose files get mode 0644 unless the manifest says otherwise
_MODE_DEFAULTED_SOURCES = ("secret", "configMap", "downwardAPI", "projected")
_DEFAULT_FILE_MODE = 0o644


def _image_tag(image: Any) -> str:
    """The tag of an image reference: "latest" when it has neither tag nor digest."""
    if not isinstance(image, str):
        return ""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return "" if digest else "latest"


def _http_get(handler: Any) -> None:
    if isinstance(handler, dict) and isinstance(handler.get("httpGet"), dict):
        _fill_all(handler["httpGet"], _HTTP_GET_DEFAULTS)


def _container(container: dict) -> None:
    if not container.get("imagePullPolicy"):
        latest = _image_tag(container.get("image")) == "latest"
        container["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    _fill_all(container, _CONTAINER_DEFAULTS)
    if container.get("resources") is None:
        container["resources"] = {}
    for port in _dicts(container, "ports"):
        _fill(port, "protocol", "TCP")
    for probe_key in _PROBES:
        probe = container.get(probe_key)
        if isinstance(probe, dict):
            _fill_nonzero(probe, _PROBE_DEFAULTS)
            _http_get(probe)
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        _http_get(lifecycle.get("postStart"))
        _http_get(lifecycle.get("preStop"))
    for env in _dicts(container, "env"):
        source = env.get("valueFrom")
        if isinstance(source, dict) and isinstance(source.get("fieldRef"), dict):
            _fill(source["fieldRef"], "apiVersion", "v1")


def _volume(volume: dict) -> None:
    if all(key == "name" for key in volume):
        volume["emptyDir"] = {}
        return
    for source_key in _MODE_DEFAULTED_SOURCES:
        source = volume.get(source_key)
        if isinstance(source, dict):
            _fill(source, "defaultMode", _DEFAULT_FILE_MODE)
    host_path = volume.get("hostPath")
    if isinstance(host_path, dict) and host_path.get("type") is None:
        host_path["type"] = ""


def _pod_spec(spec: dict) -> None:
    _fill_all(spec, _POD_SPEC_DEFAULTS)
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    # v1 keeps the deprecated serviceAccount field mirrored with serviceAccountName
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if isinstance(account, str) and account:
        spec["serviceAccountName"] = spec["serviceAccount"] = account
    for list_key in _CONTAINER_LISTS:
        for container in _dicts(spec, list_key):
            _container(container)
    for volume in _dicts(spec, "volumes"):
        _volume(volume)


def pod_template(template: dict) -> None:
    """Default a PodTemplateSpec ({metadata, spec}) as every workload's spec.template gets it."""
    if not isinstance(template, dict):
        return
    spec = _child(template, "spec")
    if spec is not None:
        _pod_spec(spec)


def _template_of(obj: dict, *path: str) -> None:
    """Default the pod template found at ``obj[path...]`` (e.g. spec.template)."""
    node: Any = obj
    for key in path:
        node = _child(node, key) if isinstance(node, dict) else None
        if node is None:
            return
    pod_template(node)


# --- core/v1 ----------------------------------------------------------------------------------------


def nothing(obj: dict) -> None:
    """Kinds with no defaults."""


def namespace(obj: dict) -> None:
    meta = _child(obj, "metadata")
    if meta is not None and isinstance(meta.get("name"), str) and meta["name"]:
        labels = _child(meta, "labels")
        if labels is not None:
            labels["kubernetes.io/metadata.name"] = meta["name"]
    status = _child(obj, "status")
    if status is not None:
        _fill(status, "phase", "Active")
    # the namespace controller removes "kubernetes" while deleting; only a create adds it
    if _is_creating(obj):
        spec = _child(obj, "spec")
        finalizers = spec.get("finalizers") if spec is not None else None
        if spec is not None and not finalizers:
            spec["finalizers"] = ["kubernetes"]
        elif isinstance(finalizers, list) and "kubernetes" not in finalizers:
            finalizers.append("kubernetes")


_NOT_READY_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
_DEFAULT_TOLERATION_SECONDS = 300
#: what this process's API server uses (``pinnace server --default-unreachable-toleration-seconds``)
_toleration_seconds = {"value": _DEFAULT_TOLERATION_SECONDS}


def set_default_toleration_seconds(seconds: int) -> None:
    """Per process: one API server per ``pinnace server`` process (tests of short evictions use it)."""
    if seconds < 0:
        raise ValueError(f"--default-unreachable-toleration-seconds {seconds} must not be negative")
    _toleration_seconds["value"] = seconds
_QOS_RESOURCES = ("cpu", "memory")


def _requests_from_limits(container: dict) -> None:
    resources = container.get("resources")
    if not isinstance(resources, dict) or not isinstance(resources.get("limits"), dict):
        return
    requests = _child(resources, "requests")
    if requests is not None:
        for name, quantity in resources["limits"].items():
            requests.setdefault(name, quantity)


def _default_tolerations(spec: dict) -> None:
    """What the DefaultTolerationSeconds admission plugin adds: leave a dead node after 5 minutes."""
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = spec["tolerations"] = []
    if not isinstance(tolerations, list):
        return
    for taint in _NOT_READY_TAINTS:
        tolerated = any(
            isinstance(t, dict) and t.get("key") in (taint, "", None) and t.get("effect") in ("NoExecute", "", None)
            for t in tolerations
        )
        if not tolerated:
            tolerations.append({"key": taint, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": _toleration_seconds["value"]})


def _quantity(value: Any) -> Fraction | None:
    try:
        return parse_quantity(value)
    except ValueError:
        return None


def qos_class(spec: dict) -> str:
    """The pod's QoS class (Guaranteed, Burstable or BestEffort) from its containers' cpu/memory."""
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
    guaranteed = True
    for list_key in ("initContainers", "containers"):
        for container in _dicts(spec, list_key):
            resources = _mapping(container.get("resources"))
            for name, raw in _mapping(resources.get("requests")).items():
                value = _quantity(raw) if name in _QOS_RESOURCES else None
                if value is not None and value > 0:
                    requests[name] = requests.get(name, Fraction(0)) + value
            found = set()
            for name, raw in _mapping(resources.get("limits")).items():
                value = _quantity(raw) if name in _QOS_RESOURCES else None
                if value is not None and value > 0:
                    found.add(name)
                    limits[name] = limits.get(name, Fraction(0)) + value
            if not found.issuperset(_QOS_RESOURCES):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(name) == value for name, value in requests.items()):
        if len(requests) == len(limits):
            return "Guaranteed"
    return "Burstable"


def pod(obj: dict) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    _pod_spec(spec)
    # Pod-only defaults (not applied to templates, so workload specs stay as written)
    _fill(spec, "enableServiceLinks", True)
    for list_key in ("containers", "initContainers"):
        for container in _dicts(spec, list_key):
            _requests_from_limits(container)
            if spec.get("hostNetwork") is True:
                for port in _dicts(container, "ports"):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
    # admission plugins: Priority, ServiceAccount, DefaultTolerationSeconds
    if not spec.get("priorityClassName"):
        _fill(spec, "priority", 0)
    _fill(spec, "preemptionPolicy", "PreemptLowerPriority")
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec["serviceAccount"] = "default"
    _default_tolerations(spec)
    status = _child(obj, "status")
    if status is not None and not status.get("phase"):
        status["phase"] = "Pending"
        _fill(status, "qosClass", qos_class(spec))


_EXTERNALLY_ACCESSIBLE = ("NodePort", "LoadBalancer")
_CLIENT_IP_TIMEOUT = 10800


def _externally_accessible(spec: dict) -> bool:
    return spec.get("type") in _EXTERNALLY_ACCESSIBLE or (
        spec.get("type") == "ClusterIP" and bool(spec.get("externalIPs")))


def _service_ip_families(spec: dict) -> None:
    """What the service IP allocator fills on create: one family, IPv4 unless the IP says v6."""
    if spec.get("type") == "ExternalName":
        return
    if spec.get("ipFamilyPolicy") is None:
        headless_selectorless = spec.get("clusterIP") == "None" and not spec.get("selector")
        spec["ipFamilyPolicy"] = "RequireDualStack" if headless_selectorless else "SingleStack"
    if not spec.get("ipFamilies"):
        ip = spec.get("clusterIP")
        spec["ipFamilies"] = ["IPv6" if isinstance(ip, str) and ":" in ip else "IPv4"]


def service(obj: dict) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    _fill(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig")
        client = config.get("clientIP") if isinstance(config, dict) else None
        if not isinstance(client, dict) or client.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": _CLIENT_IP_TIMEOUT}}
    _fill(spec, "type", "ClusterIP")
    for port in _dicts(spec, "ports"):
        _fill(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if _externally_accessible(spec):
        _fill(spec, "externalTrafficPolicy", "Cluster")
    if spec["type"] in ("ClusterIP", "NodePort", "LoadBalancer"):
        _fill(spec, "internalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        _fill(spec, "allocateLoadBalancerNodePorts", True)
    # the service strategy keeps clusterIPs[0] in step with clusterIP
    cluster_ip = spec.get("clusterIP")
    if isinstance(cluster_ip, str) and cluster_ip and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [cluster_ip]
    _service_ip_families(spec)


def _node_port(port: dict) -> int | None:
    value = port.get("nodePort")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _port_name(port: dict) -> str | None:
    value = port.get("name") or ""
    return value if isinstance(value, str) else None


def secret(obj: dict) -> None:
    _fill(obj, "type", "Opaque")
    # v1 conversion folds stringData into data (its entries win) and never stores stringData
    string_data = obj.get("stringData")
    if isinstance(string_data, dict) and all(isinstance(v, str) for v in string_data.values()):
        data = _child(obj, "data")
        if data is not None:
            for key, value in string_data.items():
                data[key] = base64.b64encode(value.encode()).decode("ascii")
            del obj["stringData"]


def event(obj: dict) -> None:
    """core/v1 Event: upstream defines no defaults (clients set count, type and timestamps)."""


def events_v1(obj: dict) -> None:
    """events.k8s.io/v1 Event: upstream defines no defaults."""


def node(obj: dict) -> None:
    status = obj.get("status")
    if isinstance(status, dict) and status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])


def persistentvolumeclaim(obj: dict) -> None:
    spec = _child(obj, "spec")
    if spec is not None:
        _fill(spec, "volumeMode", "Filesystem")
    status = _child(obj, "status")
    if status is not None:
        _fill(status, "phase", "Pending")


def endpoints(obj: dict) -> None:
    """Endpoints subsets' ports default to TCP (not yet wired in the registry)."""
    for subset in _dicts(obj, "subsets"):
        for port in _dicts(subset, "ports"):
            _fill(port, "protocol", "TCP")


def endpointslice(obj: dict) -> None:
    """EndpointSlice ports default to protocol TCP and name "" (not yet wired in the registry)."""
    for port in _dicts(obj, "ports"):
        _fill(port, "protocol", "TCP")
        if port.get("name") is None:
            port["name"] = ""


# --- apps/v1 ----------------------------------------------------------------------------------------

_PERCENT_25 = "25%"


def deployment(obj: dict) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    _fill_all(spec, (("replicas", 1), ("revisionHistoryLimit", 10), ("progressDeadlineSeconds", 600)))
    strategy = _child(spec, "strategy")
    if strategy is not None:
        _fill(strategy, "type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = _child(strategy, "rollingUpdate")
            if rolling is not None:
                _fill_all(rolling, (("maxUnavailable", _PERCENT_25), ("maxSurge", _PERCENT_25)))
    _template_of(obj, "spec", "template")


def replicaset(obj: dict) -> None:
    spec = _child(obj, "spec")
    if spec is not None:
        _fill(spec, "replicas", 1)
        _template_of(obj, "spec", "template")


def daemonset(obj: dict) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    _fill(spec, "revisionHistoryLimit", 10)
    strategy = _child(spec, "updateStrategy")
    if strategy is not None:
        _fill(strategy, "type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = _child(strategy, "rollingUpdate")
            if rolling is not None:
                _fill_all(rolling, (("maxUnavailable", 1), ("maxSurge", 0)))
    _template_of(obj, "spec", "template")


def statefulset(obj: dict) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    _fill_all(spec, (("replicas", 1), ("revisionHistoryLimit", 10), ("podManagementPolicy", "OrderedReady")))
    strategy = _child(spec, "updateStrategy")
    if strategy is not None:
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            _child(strategy, "rollingUpdate")
        rolling = strategy.get("rollingUpdate")
        if strategy["type"] == "RollingUpdate" and isinstance(rolling, dict):
            _fill(rolling, "partition", 0)
    retention = _child(spec, "persistentVolumeClaimRetentionPolicy")
    if retention is not None:
        _fill_all(retention, (("whenDeleted", "Retain"), ("whenScaled", "Retain")))
    for claim in _dicts(spec, "volumeClaimTemplates"):
        persistentvolumeclaim(claim)
    _template_of(obj, "spec", "template")


# --- batch/v1 ---------------------------------------------------------------------------------------

_JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
_CONTROLLER_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"


def job(obj: dict) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    _fill(spec, "parallelism", 1)
    _fill(spec, "backoffLimit", 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6)
    _fill_all(spec, (("completionMode", "NonIndexed"), ("suspend", False), ("manualSelector", False)))
    _fill(spec, "podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    template = spec.get("template")
    template_meta = template.get("metadata") if isinstance(template, dict) else None
    template_labels = template_meta.get("labels") if isinstance(template_meta, dict) else None
    meta = _child(obj, "metadata")
    if isinstance(template_labels, dict) and meta is not None and not meta.get("labels"):
        meta["labels"] = dict(template_labels)
    _template_of(obj, "spec", "template")


def job_selector(obj: dict) -> None:
    """Generate a Job's selector and pod labels from its uid, as upstream does at create; call after
    metadata.uid is set. A Job with ``spec.manualSelector: true`` keeps its own selector."""
    spec, meta = obj.get("spec"), obj.get("metadata")
    if not isinstance(spec, dict) or not isinstance(meta, dict) or spec.get("manualSelector") is True:
        return
    uid, name = meta.get("uid"), meta.get("name")
    if not uid:
        return
    template = _child(spec, "template")
    template_meta = _child(template, "metadata") if template is not None else None
    labels = _child(template_meta, "labels") if template_meta is not None else None
    if labels is None:
        return
    for key in _JOB_NAME_LABELS:
        labels.setdefault(key, name)
    for key in _CONTROLLER_UID_LABELS:
        labels.setdefault(key, uid)
    selector = _child(spec, "selector")
    match_labels = _child(selector, "matchLabels") if selector is not None else None
    if match_labels is not None:
        match_labels.setdefault(CONTROLLER_UID_LABEL, uid)
    # v1 defaulting copies the pod labels onto a Job that has none (upstream does it when read back)
    if not meta.get("labels"):
        meta["labels"] = dict(labels)


def cronjob(obj: dict) -> None:
    spec = _child(obj, "spec")
    if spec is None:
        return
    _fill_all(spec, (("concurrencyPolicy", "Allow"), ("suspend", False),
                     ("successfulJobsHistoryLimit", 3), ("failedJobsHistoryLimit", 1)))
    _template_of(obj, "spec", "jobTemplate", "spec", "template")
