"""Defaulting: each upstream default, idempotency, and robustness against odd input."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiserver import defaults


def _pod(**spec) -> dict:
    containers = spec.pop("containers", [{"name": "c", "image": "busybox"}])
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": containers, **spec}}


def _template(**spec) -> dict:
    containers = spec.pop("containers", [{"name": "c", "image": "nginx:1.27"}])
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers, **spec}}


def _workload(**spec) -> dict:
    return {"metadata": {"name": "w", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": _template(), **spec}}


# --- pods ---------------------------------------------------------------------------------------------


def test_pod_spec_defaults() -> None:
    pod = _pod()
    defaults.pod(pod)
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    assert spec["priority"] == 0
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"


def test_pod_explicit_values_are_kept() -> None:
    pod = _pod(restartPolicy="Never", dnsPolicy="Default", terminationGracePeriodSeconds=0,
               enableServiceLinks=False, serviceAccountName="builder", priorityClassName="high")
    defaults.pod(pod)
    spec = pod["spec"]
    assert (spec["restartPolicy"], spec["dnsPolicy"]) == ("Never", "Default")
    assert spec["terminationGracePeriodSeconds"] == 0
    assert spec["enableServiceLinks"] is False
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "builder"
    assert "priority" not in spec  # resolved from the class by the Priority admission plugin


def test_empty_string_counts_as_unset() -> None:
    pod = _pod(restartPolicy="", dnsPolicy="")
    defaults.pod(pod)
    assert (pod["spec"]["restartPolicy"], pod["spec"]["dnsPolicy"]) == ("Always", "ClusterFirst")


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"),
    ("nginx:latest", "Always"),
    ("nginx:1.27", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
    ("nginx:1.27@sha256:" + "a" * 64, "IfNotPresent"),
    ("registry.local:5000/team/app", "Always"),
    ("registry.local:5000/team/app:v2", "IfNotPresent"),
])
def test_image_pull_policy_follows_the_tag(image: str, policy: str) -> None:
    pod = _pod(containers=[{"name": "c", "image": image}])
    defaults.pod(pod)
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_explicit_image_pull_policy_is_kept() -> None:
    pod = _pod(containers=[{"name": "c", "image": "nginx", "imagePullPolicy": "Never"}])
    defaults.pod(pod)
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Never"


def test_container_defaults() -> None:
    container = {
        "name": "c", "image": "nginx:1", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
        "livenessProbe": {"httpGet": {"port": 80}},
        "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5},
        "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/stop"}}},
        "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
    }
    pod = _pod(containers=[container], initContainers=[{"name": "init", "image": "busybox"}])
    defaults.pod(pod)
    c = pod["spec"]["containers"][0]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["resources"] == {}
    assert [p["protocol"] for p in c["ports"]] == ["TCP", "UDP"]
    assert c["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                  "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["readinessProbe"]["periodSeconds"] == 5
    assert c["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/stop", "scheme": "HTTP"}
    assert c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert pod["spec"]["initContainers"][0]["terminationMessagePolicy"] == "File"


def test_volume_defaults() -> None:
    pod = _pod(volumes=[{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "x"}},
                        {"name": "s", "secret": {"secretName": "x", "defaultMode": 0o400}},
                        {"name": "h", "hostPath": {"path": "/var/log"}}])
    defaults.pod(pod)
    scratch, cfg, sec, host = pod["spec"]["volumes"]
    assert scratch == {"name": "scratch", "emptyDir": {}}
    assert cfg["configMap"]["defaultMode"] == 420
    assert sec["secret"]["defaultMode"] == 0o400
    assert host["hostPath"]["type"] == ""


def test_requests_default_to_limits_on_pods_only() -> None:
    resources = {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "100m"}}
    pod = _pod(containers=[{"name": "c", "image": "x", "resources": copy.deepcopy(resources)}])
    defaults.pod(pod)
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "100m", "memory": "64Mi"}
    template = _template(containers=[{"name": "c", "image": "x", "resources": copy.deepcopy(resources)}])
    defaults.pod_template(template)
    assert template["spec"]["containers"][0]["resources"] == resources


def test_host_network_copies_container_ports() -> None:
    pod = _pod(hostNetwork=True, containers=[{"name": "c", "image": "x", "ports": [{"containerPort": 8080}]}])
    defaults.pod(pod)
    assert pod["spec"]["containers"][0]["ports"][0]["hostPort"] == 8080


def test_default_tolerations_added_once() -> None:
    pod = _pod()
    defaults.pod(pod)
    keys = [(t["key"], t["effect"], t["tolerationSeconds"]) for t in pod["spec"]["tolerations"]]
    assert keys == [("node.kubernetes.io/not-ready", "NoExecute", 300),
                    ("node.kubernetes.io/unreachable", "NoExecute", 300)]
    tolerate_all = _pod(tolerations=[{"operator": "Exists"}])
    defaults.pod(tolerate_all)
    assert tolerate_all["spec"]["tolerations"] == [{"operator": "Exists"}]


@pytest.mark.parametrize(("resources", "qos"), [
    ({}, "BestEffort"),
    ({"requests": {"cpu": "100m"}}, "Burstable"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1024Mi"}}, "Guaranteed"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}, "Burstable"),
    ({"limits": {"cpu": "1"}}, "Burstable"),
    ({"limits": {"nvidia.com/gpu": "1"}}, "BestEffort"),
])
def test_new_pod_status(resources: dict, qos: str) -> None:
    pod = _pod(containers=[{"name": "c", "image": "x", "resources": resources}])
    defaults.pod(pod)
    assert pod["status"] == {"phase": "Pending", "qosClass": qos}


def test_existing_pod_phase_is_kept() -> None:
    pod = _pod()
    pod["status"] = {"phase": "Running", "podIP": "10.0.0.5"}
    defaults.pod(pod)
    assert pod["status"] == {"phase": "Running", "podIP": "10.0.0.5"}


def test_pod_template_gets_no_pod_only_fields() -> None:
    template = _template()
    defaults.pod_template(template)
    spec = template["spec"]
    assert spec["restartPolicy"] == "Always" and spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    for pod_only in ("enableServiceLinks", "priority", "tolerations", "serviceAccountName"):
        assert pod_only not in spec
    assert "status" not in template


# --- services -----------------------------------------------------------------------------------------


def _service(**spec) -> dict:
    return {"metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}


def test_service_defaults() -> None:
    svc = _service()
    defaults.service(svc)
    spec = svc["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["ipFamilies"] == ["IPv4"]
    assert "externalTrafficPolicy" not in spec


def test_service_named_target_port_kept() -> None:
    svc = _service(ports=[{"port": 80, "targetPort": "http", "protocol": "UDP"}])
    defaults.service(svc)
    assert svc["spec"]["ports"] == [{"port": 80, "targetPort": "http", "protocol": "UDP"}]


@pytest.mark.parametrize("service_type", ["NodePort", "LoadBalancer"])
def test_externally_accessible_service(service_type: str) -> None:
    svc = _service(type=service_type)
    defaults.service(svc)
    assert svc["spec"]["externalTrafficPolicy"] == "Cluster"
    assert svc["spec"].get("allocateLoadBalancerNodePorts") is (True if service_type == "LoadBalancer" else None)


def test_client_ip_affinity_gets_timeout_and_none_drops_config() -> None:
    sticky = _service(sessionAffinity="ClientIP")
    defaults.service(sticky)
    assert sticky["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    plain = _service(sessionAffinityConfig={"clientIP": {"timeoutSeconds": 5}})
    defaults.service(plain)
    assert "sessionAffinityConfig" not in plain["spec"]


def test_cluster_ip_mirrored_and_families() -> None:
    svc = _service(clusterIP="fd00::10")
    defaults.service(svc)
    assert svc["spec"]["clusterIPs"] == ["fd00::10"]
    assert svc["spec"]["ipFamilies"] == ["IPv6"]
    headless = {"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}}
    defaults.service(headless)
    assert headless["spec"]["clusterIPs"] == ["None"]
    assert headless["spec"]["ipFamilyPolicy"] == "RequireDualStack"


def test_external_name_service_gets_no_ip_fields() -> None:
    svc = {"metadata": {"name": "db"}, "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    defaults.service(svc)
    for key in ("ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy", "clusterIPs"):
        assert key not in svc["spec"]


def test_secret_defaults_and_string_data() -> None:
    secret = {"metadata": {"name": "s"}, "data": {"a": "b2xk", "b": "eA=="}, "stringData": {"a": "new"}}
    defaults.secret(secret)
    assert secret == {"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "bmV3", "b": "eA=="}}
    tls = {"metadata": {"name": "t"}, "type": "kubernetes.io/tls"}
    defaults.secret(tls)
    assert tls["type"] == "kubernetes.io/tls"


def test_namespace_defaults_on_create() -> None:
    ns = {"metadata": {"name": "team-a"}}
    defaults.namespace(ns)
    assert ns["status"] == {"phase": "Active"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}


def test_namespace_kubernetes_finalizer_appended_on_create() -> None:
    ns = {"metadata": {"name": "team-a"}, "spec": {"finalizers": ["example.com/cleanup"]}}
    defaults.namespace(ns)
    assert ns["spec"]["finalizers"] == ["example.com/cleanup", "kubernetes"]


def test_namespace_finalizer_not_readded_after_create() -> None:
    ns = {"metadata": {"name": "team-a", "resourceVersion": "42"}, "spec": {"finalizers": []},
          "status": {"phase": "Terminating"}}
    defaults.namespace(ns)
    assert ns["spec"]["finalizers"] == []
    assert ns["status"]["phase"] == "Terminating"


def test_node_allocatable_defaults_to_capacity() -> None:
    node = {"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "4", "pods": "110"}}}
    defaults.node(node)
    assert node["status"]["allocatable"] == {"cpu": "4", "pods": "110"}
    node["status"]["capacity"]["cpu"] = "8"
    assert node["status"]["allocatable"]["cpu"] == "4"  # a copy, not an alias


def test_pvc_defaults() -> None:
    pvc = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
    defaults.persistentvolumeclaim(pvc)
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    assert pvc["status"] == {"phase": "Pending"}


def test_endpoint_port_protocols() -> None:
    ep = {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}
    defaults.endpoints(ep)
    assert ep["subsets"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    eps = {"addressType": "IPv4", "ports": [{"port": 80}]}
    defaults.endpointslice(eps)
    assert eps["ports"] == [{"port": 80, "protocol": "TCP", "name": ""}]


def test_events_have_no_defaults() -> None:
    event = {"metadata": {"name": "e"}, "reason": "Started"}
    before = copy.deepcopy(event)
    defaults.event(event)
    defaults.events_v1(event)
    assert event == before


# --- apps ---------------------------------------------------------------------------------------------


def test_deployment_defaults() -> None:
    dep = _workload()
    defaults.deployment(dep)
    spec = dep["spec"]
    assert spec["replicas"] == 1
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


def test_deployment_zero_replicas_and_recreate_are_kept() -> None:
    dep = _workload(replicas=0, strategy={"type": "Recreate"})
    defaults.deployment(dep)
    assert dep["spec"]["replicas"] == 0
    assert dep["spec"]["strategy"] == {"type": "Recreate"}


def test_replicaset_defaults() -> None:
    rs = _workload()
    defaults.replicaset(rs)
    assert rs["spec"]["replicas"] == 1
    assert rs["spec"]["template"]["spec"]["restartPolicy"] == "Always"


def test_daemonset_defaults() -> None:
    ds = _workload()
    defaults.daemonset(ds)
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert ds["spec"]["revisionHistoryLimit"] == 10
    on_delete = _workload(updateStrategy={"type": "OnDelete"})
    defaults.daemonset(on_delete)
    assert on_delete["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_statefulset_defaults() -> None:
    sts = _workload(serviceName="web", volumeClaimTemplates=[{"metadata": {"name": "data"},
                                                               "spec": {"accessModes": ["ReadWriteOnce"]}}])
    defaults.statefulset(sts)
    spec = sts["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["volumeClaimTemplates"][0]["spec"]["volumeMode"] == "Filesystem"
    assert spec["template"]["spec"]["schedulerName"] == "default-scheduler"


# --- batch --------------------------------------------------------------------------------------------


def _job(**spec) -> dict:
    template = {"spec": {"containers": [{"name": "pi", "image": "perl:5"}], "restartPolicy": "Never"}}
    return {"metadata": {"name": "pi", "namespace": "default"}, "spec": {"template": template, **spec}}


def test_job_defaults() -> None:
    job = _job()
    defaults.job(job)
    spec = job["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False and spec["manualSelector"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_job_parallelism_alone_leaves_completions_unset() -> None:
    job = _job(parallelism=3)
    defaults.job(job)
    assert "completions" not in job["spec"]
    assert job["spec"]["parallelism"] == 3


def test_job_selector_generated_from_uid() -> None:
    job = _job()
    job["metadata"]["uid"] = "1234-abcd"
    defaults.job(job)
    defaults.job_selector(job)
    expected_labels = {"job-name": "pi", "batch.kubernetes.io/job-name": "pi", "controller-uid": "1234-abcd",
                       "batch.kubernetes.io/controller-uid": "1234-abcd"}
    assert job["spec"]["template"]["metadata"]["labels"] == expected_labels
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "1234-abcd"}}
    assert job["metadata"]["labels"] == expected_labels


def test_job_selector_respects_manual_selector_and_missing_uid() -> None:
    manual = _job(manualSelector=True, selector={"matchLabels": {"x": "y"}})
    manual["metadata"]["uid"] = "u"
    before = copy.deepcopy(manual)
    defaults.job_selector(manual)
    assert manual == before
    no_uid = _job()
    before = copy.deepcopy(no_uid)
    defaults.job_selector(no_uid)
    assert no_uid == before


def test_cronjob_defaults() -> None:
    cj = {"metadata": {"name": "hello"}, "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": _job()["spec"]}}}
    defaults.cronjob(cj)
    spec = cj["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]  # Job defaults apply to Jobs, not templates


# --- idempotency and robustness ----------------------------------------------------------------------

SAMPLES = [
    (defaults.pod, _pod()),
    (defaults.service, _service(type="LoadBalancer", sessionAffinity="ClientIP")),
    (defaults.secret, {"metadata": {"name": "s"}, "stringData": {"k": "v"}}),
    (defaults.namespace, {"metadata": {"name": "ns"}}),
    (defaults.node, {"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "1"}}}),
    (defaults.persistentvolumeclaim, {"metadata": {"name": "c"}, "spec": {}}),
    (defaults.deployment, _workload()),
    (defaults.replicaset, _workload()),
    (defaults.daemonset, _workload()),
    (defaults.statefulset, _workload()),
    (defaults.job, _job()),
    (defaults.cronjob, {"metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": _job()["spec"]}}}),
    (defaults.endpoints, {"subsets": [{"ports": [{"port": 1}]}]}),
    (defaults.endpointslice, {"ports": [{"port": 1}]}),
]
ALL_DEFAULTERS = [defaults.nothing, defaults.namespace, defaults.pod, defaults.service, defaults.secret,
                  defaults.event, defaults.node, defaults.persistentvolumeclaim, defaults.deployment,
                  defaults.replicaset, defaults.daemonset, defaults.statefulset, defaults.job, defaults.cronjob,
                  defaults.events_v1, defaults.endpoints, defaults.endpointslice, defaults.job_selector,
                  defaults.pod_template]


@pytest.mark.parametrize(("default", "obj"), SAMPLES, ids=[fn.__name__ for fn, _ in SAMPLES])
def test_defaulting_is_idempotent(default, obj) -> None:
    once = copy.deepcopy(obj)
    default(once)
    assert once != obj
    twice = copy.deepcopy(once)
    default(twice)
    assert twice == once


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["", "x", "Always", "None", "25%"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["spec", "metadata", "status", "containers", "template", "ports", "strategy", "type",
                         "selector", "labels", "resources", "limits", "rollingUpdate", "clusterIP", "name"]),
        children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["metadata", "spec", "status", "data", "stringData", "type"]), JSON,
                       max_size=4))
def test_defaulting_never_raises_on_odd_json(obj: dict) -> None:
    for default in ALL_DEFAULTERS:
        default(copy.deepcopy(obj))
