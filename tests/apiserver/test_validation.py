"""Validation: each rule, with upstream's exact field paths, reasons and messages for the common ones."""

from __future__ import annotations

import base64
import copy
import random
import re
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiserver import defaults, validation

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QNAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def cause(field: str, message: str, reason: str = "FieldValueInvalid") -> dict:
    return {"reason": reason, "message": message, "field": field}


def by_field(causes: list[dict]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in causes:
        assert set(c) == {"reason", "message", "field"}
        out.setdefault(c["field"], []).append(c["message"])
    return out


def defaulted(default, obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    default(obj)
    return obj


# --- formats ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("check", "good", "bad"), [
    (validation.is_dns1123_label, ["a", "my-name", "123-abc", "a" * 63], ["", "A", "-a", "a-", "a.b", "a" * 64]),
    (validation.is_dns1123_subdomain, ["a", "example.com", "a-b.c-d", "a" * 253],
     ["", "Bad_Name", "a..b", ".a", "a" * 254]),
    (validation.is_dns1035_label, ["a", "my-svc", "abc-123"], ["", "1abc", "a_b", "a" * 64]),
    (validation.is_qualified_name, ["app", "My.Name_1", "example.com/app", "a" * 63],
     ["", "-a", "a/b/c", "/a", "Example.com/a", "a" * 64, "example.com/"]),
    (validation.is_label_value, ["", "v1", "My_Value-1", "a" * 63], ["-a", "a b", "a" * 64]),
    (validation.is_config_map_key, ["a", "app.properties", "KEY_NAME", ".hidden"],
     ["", ".", "..", "..x", "a/b", "a b", "a" * 254]),
    (validation.is_valid_port_name, ["http", "h2c", "web-1"], ["", "HTTP", "1234", "a--b", "-ab", "a" * 16]),
])
def test_formats(check, good: list[str], bad: list[str]) -> None:
    for value in good:
        assert check(value) == [], value
    for value in bad:
        assert check(value), value


def test_format_messages() -> None:
    assert validation.is_dns1123_subdomain("Bad_Name") == [SUBDOMAIN_MSG]
    assert validation.is_dns1123_label("Bad") == [LABEL_MSG]
    assert validation.is_dns1123_label("a.b") == ["must not contain dots"]
    assert validation.is_dns1035_label("1abc") == [DNS1035_MSG]
    assert validation.is_dns1123_label("a" * 64) == ["must be no more than 63 characters"]
    assert validation.is_qualified_name("bad key") == [QNAME_MSG]
    assert validation.is_qualified_name("/a") == ["prefix part must be non-empty"]
    assert validation.is_qualified_name("a/") == ["name part must be non-empty", QNAME_MSG]
    assert validation.is_qualified_name("Ex.com/a") == ["prefix part " + SUBDOMAIN_MSG]
    assert validation.is_qualified_name("a/b/c")[0].startswith("a qualified name must consist of")
    assert validation.is_label_value("a b") == [LABEL_VALUE_MSG]
    assert validation.is_valid_port_num(0) == ["must be between 1 and 65535, inclusive"]
    assert validation.is_valid_port_name("a--b") == ["must not contain consecutive hyphens"]


def test_go_value_rendering() -> None:
    assert validation.go_value("x") == '"x"'
    assert validation.go_value('a"b\n') == '"a\\"b\\n"'
    assert validation.go_value(80) == "80"
    assert validation.go_value(None) == "null"
    assert validation.go_value(True) == "true"
    assert validation.go_value({"b": "2", "a": "1"}) == 'map[string]string{"a":"1", "b":"2"}'
    assert validation.go_value(["10.0.0.1"]) == '[]string{"10.0.0.1"}'


@pytest.mark.parametrize(("text", "value"), [
    ("500m", Fraction(1, 2)), ("1", 1), ("1.5", Fraction(3, 2)), ("1Gi", 2**30), ("128Mi", 128 * 2**20),
    ("1k", 1000), ("1e3", 1000), ("2E-1", Fraction(1, 5)), ("100n", Fraction(1, 10**7)), (3, 3), (0.25, Fraction(1, 4)),
    ("-1", -1), ("+.5", Fraction(1, 2)),
])
def test_parse_quantity(text, value) -> None:
    assert validation.parse_quantity(text) == value


@pytest.mark.parametrize(("text", "message"), [
    ("abc", validation.QUANTITY_FORMAT_MSG), ("", validation.QUANTITY_FORMAT_MSG),
    ("1 Gi", validation.QUANTITY_FORMAT_MSG), (True, validation.QUANTITY_FORMAT_MSG),
    ("1Gb", validation.QUANTITY_FORMAT_MSG), ("1mi", validation.QUANTITY_SUFFIX_MSG),
    ("5KK", validation.QUANTITY_SUFFIX_MSG),
])
def test_parse_quantity_errors(text, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        validation.parse_quantity(text)


def test_name_rule() -> None:
    assert validation.name_rule("Namespace") == "label"
    assert validation.name_rule("Service") == "dns1035"
    assert validation.name_rule("StatefulSet") == "label"
    assert validation.name_rule("ConfigMap") == "subdomain"


# --- object metadata ----------------------------------------------------------------------------------


def meta(**fields) -> dict:
    return {"metadata": {"name": "web", "namespace": "default", **fields}}


def test_valid_metadata() -> None:
    obj = meta(labels={"app": "web", "example.com/tier": ""}, annotations={"Example.com/Note": "x"},
               finalizers=["kubernetes", "example.com/cleanup"],
               ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "1",
                                 "controller": True}])
    assert validation.object_meta(obj, namespaced=True) == []


def test_bad_name_exact_message() -> None:
    causes = validation.object_meta({"metadata": {"name": "Bad_Name", "namespace": "default"}}, namespaced=True)
    assert causes == [cause("metadata.name", 'Invalid value: "Bad_Name": ' + SUBDOMAIN_MSG)]


def test_name_rules_per_kind() -> None:
    ns = validation.object_meta({"metadata": {"name": "a.b"}}, namespaced=False, name_rule="label")
    assert ns == [cause("metadata.name", 'Invalid value: "a.b": must not contain dots')]
    svc = validation.object_meta(meta(name="1web"), namespaced=True, name_rule="dns1035")
    assert svc == [cause("metadata.name", 'Invalid value: "1web": ' + DNS1035_MSG)]


def test_name_required_unless_generate_name() -> None:
    causes = validation.object_meta({"metadata": {"namespace": "default"}}, namespaced=True)
    assert causes == [cause("metadata.name", "Required value: name or generateName is required",
                            "FieldValueRequired")]
    assert validation.object_meta({"metadata": {"generateName": "web-", "namespace": "default"}},
                                  namespaced=True) == []
    bad = validation.object_meta({"metadata": {"generateName": "Web-", "namespace": "default"}}, namespaced=True)
    assert by_field(bad) == {"metadata.generateName": ['Invalid value: "Web-": ' + SUBDOMAIN_MSG]}


def test_namespace_rules() -> None:
    missing = validation.object_meta({"metadata": {"name": "x"}}, namespaced=True)
    assert missing == [cause("metadata.namespace", "Required value", "FieldValueRequired")]
    bad = validation.object_meta({"metadata": {"name": "x", "namespace": "Team"}}, namespaced=True)
    assert bad == [cause("metadata.namespace", 'Invalid value: "Team": ' + LABEL_MSG)]
    cluster = validation.object_meta({"metadata": {"name": "x", "namespace": "default"}}, namespaced=False)
    assert cluster == [cause("metadata.namespace", "Forbidden: not allowed on this type", "FieldValueForbidden")]


def test_label_errors() -> None:
    causes = validation.object_meta(meta(labels={"bad key": "ok", "ok": "bad value"}), namespaced=True)
    assert causes == [cause("metadata.labels", 'Invalid value: "bad key": ' + QNAME_MSG),
                      cause("metadata.labels", 'Invalid value: "bad value": ' + LABEL_VALUE_MSG)]


def test_annotation_rules() -> None:
    bad_key = validation.object_meta(meta(annotations={"a b": "x"}), namespaced=True)
    assert bad_key == [cause("metadata.annotations", 'Invalid value: "a b": ' + QNAME_MSG)]
    at_limit = {"k": "v" * (256 * 1024 - 1)}
    assert validation.object_meta(meta(annotations=at_limit), namespaced=True) == []
    over = validation.object_meta(meta(annotations={"k": "v" * (256 * 1024)}), namespaced=True)
    assert over == [cause("metadata.annotations", "Too long: must have at most 262144 bytes", "FieldValueTooLong")]


def test_owner_references_and_finalizers() -> None:
    refs = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": True},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": True},
            {"apiVersion": "", "kind": "X", "name": "c", "uid": ""}]
    fields = by_field(validation.object_meta(meta(ownerReferences=refs), namespaced=True))
    assert fields["metadata.ownerReferences.apiVersion"] == ['Invalid value: "": version must not be empty']
    assert fields["metadata.ownerReferences.uid"] == ['Invalid value: "": must not be empty']
    assert "Only one reference can have Controller set to true" in fields["metadata.ownerReferences"][0]
    finalizers = validation.object_meta(meta(finalizers=["custom"]), namespaced=True)
    assert finalizers == [cause("metadata.finalizers", 'Invalid value: "custom": name is neither a standard '
                                "finalizer name nor is it fully qualified")]
    both = by_field(validation.object_meta(meta(finalizers=["orphan", "foregroundDeletion"]), namespaced=True))
    assert both["metadata.finalizers"][0].endswith("finalizer orphan and foregroundDeletion cannot be both set")


def test_null_map_values_read_as_empty_strings() -> None:
    assert validation.object_meta(meta(labels={"a": None}, annotations={"b": None}), namespaced=True) == []
    assert validation.configmap({"data": {"a": None}}, None) == []
    assert by_field(validation.object_meta(meta(labels={"a": 1}), namespaced=True)) == {
        "metadata.labels[a]": ["Invalid value: 1: must be of type string"]}


def test_negative_generation() -> None:
    causes = validation.object_meta(meta(generation=-1), namespaced=True)
    assert causes == [cause("metadata.generation", "Invalid value: -1: must be greater than or equal to 0")]


# --- pods ---------------------------------------------------------------------------------------------


def pod(**spec) -> dict:
    containers = spec.pop("containers", [{"name": "app", "image": "nginx:1.27"}])
    return defaulted(defaults.pod, {"metadata": {"name": "p", "namespace": "default"},
                                    "spec": {"containers": containers, **spec}})


def test_valid_pod() -> None:
    obj = pod(containers=[{"name": "app", "image": "nginx", "ports": [{"name": "http", "containerPort": 80}],
                           "env": [{"name": "A.B-c", "value": "1"}], "volumeMounts": [{"name": "d", "mountPath": "/d"}],
                           "resources": {"limits": {"cpu": "1", "example.com/gpu": "2"}},
                           "livenessProbe": {"httpGet": {"port": "http"}}}],
              volumes=[{"name": "d"}], nodeSelector={"disk": "ssd"})
    assert validation.pod(obj, None) == []


def test_pod_containers_required() -> None:
    causes = validation.pod(pod(containers=[]), None)
    assert causes == [cause("spec.containers", "Required value", "FieldValueRequired")]


def test_pod_container_rules() -> None:
    obj = pod(containers=[{"name": "Web", "image": ""}, {"name": "db", "image": "pg"}, {"name": "db", "image": "pg"}])
    fields = by_field(validation.pod(obj, None))
    assert fields["spec.containers[0].name"] == ['Invalid value: "Web": ' + LABEL_MSG]
    assert fields["spec.containers[0].image"] == ["Required value"]
    assert fields["spec.containers[2].name"] == ['Duplicate value: "db"']
    init_dup = pod(initContainers=[{"name": "app", "image": "busybox"}])
    assert by_field(validation.pod(init_dup, None)) == {"spec.initContainers[0].name": ['Duplicate value: "app"']}


def test_pod_port_rules() -> None:
    obj = pod(containers=[{"name": "a", "image": "x", "ports": [
        {"containerPort": 70000}, {"containerPort": 0}, {"containerPort": 80, "protocol": "HTTP"},
        {"containerPort": 81, "name": "HTTP"}, {"containerPort": 82, "name": "web"},
        {"containerPort": 83, "name": "web"}, {"containerPort": 84, "hostPort": 70000},
    ]}])
    fields = by_field(validation.pod(obj, None))
    assert fields["spec.containers[0].ports[0].containerPort"] == [
        "Invalid value: 70000: must be between 1 and 65535, inclusive"]
    assert fields["spec.containers[0].ports[1].containerPort"] == ["Required value"]
    assert fields["spec.containers[0].ports[2].protocol"] == [
        'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"']
    assert fields["spec.containers[0].ports[3].name"] == [
        'Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
        'Invalid value: "HTTP": must contain at least one letter (a-z)']
    assert fields["spec.containers[0].ports[5].name"] == ['Duplicate value: "web"']
    assert fields["spec.containers[0].ports[6].hostPort"] == [
        "Invalid value: 70000: must be between 1 and 65535, inclusive"]


def test_pod_policy_values() -> None:
    obj = pod(restartPolicy="Sometimes", dnsPolicy="Nope")
    obj["spec"]["containers"][0]["imagePullPolicy"] = "Maybe"
    fields = by_field(validation.pod(obj, None))
    assert fields["spec.restartPolicy"] == [
        'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"']
    assert fields["spec.dnsPolicy"] == [
        'Unsupported value: "Nope": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"']
    assert fields["spec.containers[0].imagePullPolicy"] == [
        'Unsupported value: "Maybe": supported values: "Always", "IfNotPresent", "Never"']
    no_config = by_field(validation.pod(pod(dnsPolicy="None"), None))
    assert no_config["spec.dnsConfig"] == ["Required value: must provide `dnsConfig` when `dnsPolicy` is None"]


def test_pod_resources() -> None:
    obj = pod(containers=[{"name": "a", "image": "x", "resources": {
        "limits": {"cpu": "abc", "memory": "64Mi"}, "requests": {"memory": "128Mi", "cpu": "-1"}}}])
    fields = by_field(validation.pod(obj, None))
    assert fields["spec.containers[0].resources.limits[cpu]"] == [
        'Invalid value: "abc": ' + validation.QUANTITY_FORMAT_MSG]
    assert fields["spec.containers[0].resources.requests[cpu]"] == [
        'Invalid value: "-1": must be greater than or equal to 0']
    assert fields["spec.containers[0].resources.requests"] == [
        'Invalid value: "128Mi": must be less than or equal to memory limit of 64Mi']
    names = pod(containers=[{"name": "a", "image": "x", "resources": {"limits": {"gpus": "1", "pods": "1"}}}])
    name_fields = by_field(validation.pod(names, None))
    assert name_fields["spec.containers[0].resources.limits[gpus]"] == [
        'Invalid value: "gpus": must be a standard resource type or fully qualified',
        'Invalid value: "gpus": must be a standard resource for containers']
    assert name_fields["spec.containers[0].resources.limits[pods]"] == [
        'Invalid value: "pods": must be a standard resource for containers']
    extended = pod(containers=[{"name": "a", "image": "x", "resources": {"requests": {"example.com/gpu": "500m"}}}])
    ext_fields = by_field(validation.pod(extended, None))
    assert ext_fields["spec.containers[0].resources.requests[example.com/gpu]"] == [
        "Invalid value: 500m: must be an integer"]
    assert ext_fields["spec.containers[0].resources.limits"] == [
        "Required value: Limit must be set for non overcommitable resources"]
    unequal = pod(containers=[{"name": "a", "image": "x", "resources": {"requests": {"example.com/gpu": "1"},
                                                                        "limits": {"example.com/gpu": "2"}}}])
    assert by_field(validation.pod(unequal, None)) == {"spec.containers[0].resources.requests": [
        'Invalid value: "1": must be equal to example.com/gpu limit of 2']}


def test_pod_volumes_mounts_env_and_probes() -> None:
    obj = pod(volumes=[{"name": "d", "emptyDir": {}}, {"name": "d", "emptyDir": {}, "secret": {"secretName": "s"}}],
              containers=[{"name": "a", "image": "x",
                           "volumeMounts": [{"name": "missing", "mountPath": "/m"}, {"name": "d", "mountPath": "/m"}],
                           "env": [{"name": ""}, {"name": "A=B"},
                                   {"name": "C", "valueFrom": {}}],
                           "livenessProbe": {"periodSeconds": -1}}])
    fields = by_field(validation.pod(obj, None))
    assert fields["spec.volumes[1].name"] == ['Duplicate value: "d"']
    assert fields["spec.volumes[1].secret"] == ["Forbidden: may not specify more than 1 volume type"]
    assert fields["spec.containers[0].volumeMounts[0].name"] == ['Not found: "missing"']
    assert fields["spec.containers[0].volumeMounts[1].mountPath"] == ['Invalid value: "/m": must be unique']
    assert fields["spec.containers[0].env[0].name"] == ["Required value"]
    assert fields["spec.containers[0].env[1].name"] == [
        "Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters "
        "other than '='"]
    assert fields["spec.containers[0].env[2].valueFrom"][0].startswith('Invalid value: "": must specify one of')
    assert fields["spec.containers[0].livenessProbe"] == ["Required value: must specify a handler type"]
    assert fields["spec.containers[0].livenessProbe.periodSeconds"] == [
        "Invalid value: -1: must be greater than or equal to 0"]


def test_init_container_rules() -> None:
    obj = pod(initContainers=[{"name": "i", "image": "x", "restartPolicy": "Never", "readinessProbe": {"exec": {}}},
                              {"name": "side", "image": "x", "restartPolicy": "Always",
                               "readinessProbe": {"exec": {"command": ["true"]}}}])
    obj["spec"]["containers"][0]["restartPolicy"] = "Always"
    fields = by_field(validation.pod(obj, None))
    assert fields["spec.initContainers[0].restartPolicy"] == ['Unsupported value: "Never": supported values: "Always"']
    assert fields["spec.initContainers[0].readinessProbe"] == [
        "Forbidden: may not be set for init containers without restartPolicy=Always"]
    assert "spec.initContainers[1].readinessProbe" not in fields
    assert fields["spec.containers[0].restartPolicy"] == ["Forbidden: may not be set for non-init containers"]


def test_pod_misc_spec_rules() -> None:
    obj = pod(hostNetwork=True, nodeName="Node_1", activeDeadlineSeconds=0,
              tolerations=[{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Exists", "value": "v"},
                           {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}],
              containers=[{"name": "a", "image": " nginx", "ports": [{"containerPort": 80, "hostPort": 81}]}])
    fields = by_field(validation.pod(obj, None))
    assert fields["spec.containers[0].ports[0].hostPort"] == [
        "Invalid value: 81: must match `containerPort` when `hostNetwork` is true"]
    assert fields["spec.nodeName"] == ['Invalid value: "Node_1": ' + SUBDOMAIN_MSG]
    assert fields["spec.activeDeadlineSeconds"] == ["Invalid value: 0: must be between 1 and 2147483647, inclusive"]
    assert fields["spec.containers[0].image"] == [
        'Invalid value: " nginx": must not have leading or trailing whitespace']
    assert fields["spec.tolerations[0].operator"][0].startswith('Invalid value: "Equal": operator must be Exists')
    assert fields["spec.tolerations[1].operator"] == [
        "Invalid value: \"v\": value must be empty when `operator` is 'Exists'"]
    assert fields["spec.tolerations[2].effect"] == [
        "Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set"]


def test_pod_update_rules() -> None:
    old = pod(tolerations=[{"key": "a", "operator": "Exists"}])
    same = copy.deepcopy(old)
    same["spec"]["containers"][0]["image"] = "nginx:1.28"
    same["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})
    same["spec"]["activeDeadlineSeconds"] = 30
    same["spec"]["nodeName"] = "node-1"
    same["metadata"]["labels"] = {"changed": "yes"}
    same["status"] = {"phase": "Running"}
    assert validation.pod(same, old) == []
    changed = copy.deepcopy(old)
    changed["spec"]["containers"][0]["ports"] = [{"containerPort": 8080, "protocol": "TCP"}]
    causes = validation.pod(changed, old)
    assert [c["field"] for c in causes] == ["spec"]
    assert causes[0]["reason"] == "FieldValueForbidden"
    assert causes[0]["message"].startswith("Forbidden: " + validation.POD_UPDATE_MSG + "\n")
    assert "spec.containers[0].ports" in causes[0]["message"]
    dropped = copy.deepcopy(old)
    dropped["spec"]["tolerations"] = []
    assert "spec.tolerations" in by_field(validation.pod(dropped, old))


# --- services -----------------------------------------------------------------------------------------


def service(**spec) -> dict:
    spec.setdefault("ports", [{"port": 80}])
    return defaulted(defaults.service, {"metadata": {"name": "web", "namespace": "default"},
                                        "spec": {"selector": {"app": "web"}, **spec}})


def test_valid_services() -> None:
    assert validation.service(service(), None) == []
    assert validation.service(service(type="NodePort", ports=[{"port": 80, "nodePort": 30080}]), None) == []
    assert validation.service(service(clusterIP="None", ports=[]), None) == []
    external = defaulted(defaults.service, {"metadata": {"name": "db"},
                                            "spec": {"type": "ExternalName", "externalName": "db.example.com."}})
    assert validation.service(external, None) == []


def test_service_port_rules() -> None:
    fields = by_field(validation.service(service(ports=[]), None))
    assert fields == {"spec.ports": ["Required value"]}
    multi = service(ports=[{"port": 0}, {"port": 81, "name": "Web", "targetPort": "HTTP"}, {"port": 81, "name": "a"}])
    fields = by_field(validation.service(multi, None))
    assert fields["spec.ports[0].name"] == ["Required value"]
    assert fields["spec.ports[0].port"] == ["Invalid value: 0: must be between 1 and 65535, inclusive"]
    assert fields["spec.ports[1].name"] == ['Invalid value: "Web": ' + LABEL_MSG]
    assert fields["spec.ports[1].targetPort"][0].startswith('Invalid value: "HTTP": must contain only')
    assert fields["spec.ports[2]"] == [
        'Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:81, '
        'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}']


def test_service_node_ports() -> None:
    out_of_range = service(type="NodePort", ports=[{"port": 80, "nodePort": 80}])
    assert validation.service(out_of_range, None) == [cause(
        "spec.ports[0].nodePort", "Invalid value: 80: provided port is not in the valid range. The range of valid "
        "ports is 30000-32767")]
    cluster_ip = service(ports=[{"port": 80, "nodePort": 30080}])
    assert by_field(validation.service(cluster_ip, None)) == {
        "spec.ports[0].nodePort": ["Forbidden: may not be used when `type` is 'ClusterIP'"]}


def test_service_type_and_selector() -> None:
    fields = by_field(validation.service(service(type="Magic", selector={"app": "bad value"}), None))
    assert fields["spec.type"] == [
        'Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"']
    assert fields["spec.selector"] == ['Invalid value: "bad value": ' + LABEL_VALUE_MSG]


def test_service_session_affinity_and_cluster_ips() -> None:
    sticky = service(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}})
    assert by_field(validation.service(sticky, None)) == {"spec.sessionAffinityConfig.clientIP.timeoutSeconds": [
        "Invalid value: 0: must be greater than 0 and less than 86400"]}
    mismatch = service(clusterIP="10.0.0.1", clusterIPs=["10.0.0.2"])
    assert by_field(validation.service(mismatch, None)) == {
        "spec.clusterIPs": ['Invalid value: []string{"10.0.0.2"}: first value must match `clusterIP`']}
    bad_ip = service(clusterIP="10.0.0.300")
    assert by_field(validation.service(bad_ip, None)) == {
        "spec.clusterIPs[0]": ['Invalid value: "10.0.0.300": ' + validation.IP_MSG]}


def test_service_cluster_ip_immutable() -> None:
    old = service(clusterIP="10.96.0.10")
    changed = service(clusterIP="10.96.0.11")
    assert validation.service(changed, old) == [
        cause("spec.clusterIPs[0]", 'Invalid value: []string{"10.96.0.11"}: may not change once set')]
    unset_before = service()
    assert validation.service(old, unset_before) == []
    dual = service(clusterIP="10.96.0.10", clusterIPs=["10.96.0.10", "fd00::10"], ipFamilyPolicy="PreferDualStack",
                   ipFamilies=["IPv4", "IPv6"])
    moved = service(clusterIP="10.96.0.10", clusterIPs=["10.96.0.10", "fd00::11"], ipFamilyPolicy="PreferDualStack",
                    ipFamilies=["IPv4", "IPv6"])
    assert validation.service(moved, dual) == [cause(
        "spec.clusterIPs[1]", 'Invalid value: []string{"10.96.0.10", "fd00::11"}: may not change once set')]
    single = service(clusterIP="10.96.0.10", ipFamilyPolicy="PreferDualStack")
    assert by_field(validation.service(single, dual)) == {"spec.ipFamilyPolicy": [
        "Invalid value: \"PreferDualStack\": must be set to 'SingleStack' when releasing the secondary clusterIP"]}
    dropped = service()
    assert by_field(validation.service(dropped, old)) == {
        "spec.clusterIPs[0]": ["Invalid value: []string{}: primary clusterIP can not be unset"]}


def test_external_name_rules() -> None:
    svc = defaulted(defaults.service, {"metadata": {"name": "db"},
                                       "spec": {"type": "ExternalName", "clusterIP": "10.0.0.1"}})
    fields = by_field(validation.service(svc, None))
    assert fields["spec.externalName"] == ["Required value"]
    assert fields["spec.clusterIPs"] == ["Forbidden: may not be set for ExternalName services"]


# --- configmaps and secrets ---------------------------------------------------------------------------


def test_configmap_rules() -> None:
    ok = {"metadata": {"name": "c"}, "data": {"app.properties": "a=1", "ключ": "y"}}
    assert by_field(validation.configmap(ok, None)) == {"data[ключ]": [
        "Invalid value: \"ключ\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
        "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"]}
    dotdot = validation.configmap({"data": {"..x": "1"}}, None)
    assert dotdot == [cause("data[..x]", "Invalid value: \"..x\": must not start with '..'")]
    dup = validation.configmap({"data": {"k": "1"}, "binaryData": {"k": "MQ=="}}, None)
    assert dup == [cause("data[k]", 'Invalid value: "k": duplicate of key present in binaryData')]
    big = validation.configmap({"data": {"a": "x" * (1024 * 1024), "b": "y"}}, None)
    assert big == [cause("", "Too long: must have at most 1048576 bytes", "FieldValueTooLong")]
    assert validation.configmap({"data": {"a": "x" * (1024 * 1024)}}, None) == []


def test_configmap_immutable() -> None:
    old = {"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": True}
    assert validation.configmap(copy.deepcopy(old), old) == []
    changed = {**old, "data": {"a": "2"}}
    assert validation.configmap(changed, old) == [
        cause("data", "Forbidden: field is immutable when `immutable` is set", "FieldValueForbidden")]
    unfrozen = {**old, "immutable": False}
    assert by_field(validation.configmap(unfrozen, old)) == {
        "immutable": ["Forbidden: field is immutable when `immutable` is set"]}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_secret_data_rules() -> None:
    assert validation.secret({"type": "Opaque", "data": {"a": b64("x")}}, None) == []
    bad = validation.secret({"type": "Opaque", "data": {"a": "not*base64"}}, None)
    assert bad == [cause("data[a]", 'Invalid value: "<secret contents redacted>": illegal base64 data at input '
                                    "byte 3")]
    big = validation.secret({"type": "Opaque", "data": {"a": b64("x" * (1024 * 1024 + 1))}}, None)
    assert big == [cause("data", "Too long: must have at most 1048576 bytes", "FieldValueTooLong")]


@pytest.mark.parametrize(("secret_type", "data", "fields"), [
    ("kubernetes.io/tls", {}, {"data[tls.crt]": ["Required value"], "data[tls.key]": ["Required value"]}),
    ("kubernetes.io/tls", {"tls.crt": b64("c"), "tls.key": b64("k")}, {}),
    ("kubernetes.io/basic-auth", {}, {"data[username]": ["Required value"], "data[password]": ["Required value"]}),
    ("kubernetes.io/basic-auth", {"password": b64("")}, {}),
    ("kubernetes.io/ssh-auth", {"ssh-privatekey": ""}, {"data[ssh-privatekey]": ["Required value"]}),
    ("kubernetes.io/dockerconfigjson", {}, {"data[.dockerconfigjson]": ["Required value"]}),
    ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": b64('{"auths":{}}')}, {}),
    ("kubernetes.io/service-account-token", {},
     {"metadata.annotations[kubernetes.io/service-account.name]": ["Required value"]}),
    ("example.com/custom", {}, {}),
])
def test_secret_type_rules(secret_type: str, data: dict, fields: dict) -> None:
    assert by_field(validation.secret({"metadata": {"name": "s"}, "type": secret_type, "data": data}, None)) == fields


def test_secret_bad_docker_json_and_updates() -> None:
    bad = validation.secret({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64("{")}}, None)
    assert bad[0]["field"] == "data[.dockerconfigjson]"
    assert bad[0]["message"].startswith('Invalid value: "<secret contents redacted>": ')
    old = {"type": "Opaque", "data": {"a": b64("1")}, "immutable": True}
    changed = {"type": "kubernetes.io/tls", "data": {"a": b64("2")}, "immutable": True}
    fields = by_field(validation.secret(changed, old))
    assert fields["type"] == ['Invalid value: "kubernetes.io/tls": field is immutable']
    assert fields["data"] == ["Forbidden: field is immutable when `immutable` is set"]


# --- namespaces, PVCs ---------------------------------------------------------------------------------


def test_namespace_finalizers() -> None:
    assert validation.namespace({"spec": {"finalizers": ["kubernetes"]}}, None) == []
    assert validation.namespace({"spec": {"finalizers": ["bogus"]}}, None) == [cause(
        "spec.finalizers", 'Invalid value: "bogus": name is neither a standard finalizer name nor is it fully '
        "qualified")]


def pvc(**spec) -> dict:
    base = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    return defaulted(defaults.persistentvolumeclaim, {"metadata": {"name": "d"}, "spec": {**base, **spec}})


def test_pvc_rules() -> None:
    assert validation.persistentvolumeclaim(pvc(), None) == []
    fields = by_field(validation.persistentvolumeclaim(pvc(accessModes=[], resources={}), None))
    assert fields == {"spec.accessModes": ["Required value: at least 1 access mode is required"],
                      "spec.resources[storage]": ["Required value"]}
    fields = by_field(validation.persistentvolumeclaim(pvc(accessModes=["ReadWriteSometimes"], volumeMode="Raw",
                                                           resources={"requests": {"storage": "0"}}), None))
    assert fields["spec.accessModes"] == ['Unsupported value: "ReadWriteSometimes": supported values: '
                                          '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"']
    assert fields["spec.volumeMode"] == ['Unsupported value: "Raw": supported values: "Block", "Filesystem"']
    assert fields["spec.resources[storage]"] == ['Invalid value: "0": must be greater than zero']


def test_pvc_updates() -> None:
    old = pvc()
    grown = pvc(resources={"requests": {"storage": "2Gi"}})
    assert by_field(validation.persistentvolumeclaim(grown, old))["spec"][0].startswith(
        "Forbidden: " + validation.PVC_SPEC_IMMUTABLE_MSG)
    grown["status"] = {"phase": "Bound"}
    assert validation.persistentvolumeclaim(grown, old) == []
    shrunk = pvc(resources={"requests": {"storage": "512Mi"}})
    shrunk["status"] = {"phase": "Bound"}
    assert by_field(validation.persistentvolumeclaim(shrunk, old)) == {
        "spec.resources.requests.storage": ["Forbidden: field can not be less than previous value"]}
    bound = pvc(volumeName="pv-1")
    assert validation.persistentvolumeclaim(bound, old) == []


# --- apps ---------------------------------------------------------------------------------------------


def workload(default, **spec) -> dict:
    template = spec.pop("template", {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "web", "image": "nginx"}]}})
    selector = spec.pop("selector", {"matchLabels": {"app": "web"}})
    body = {"template": template, **spec}
    if selector is not None:
        body["selector"] = selector
    return defaulted(default, {"metadata": {"name": "web", "namespace": "default"}, "spec": body})


@pytest.mark.parametrize(("default", "validate"), [
    (defaults.deployment, validation.deployment), (defaults.replicaset, validation.replicaset),
    (defaults.daemonset, validation.daemonset), (defaults.statefulset, validation.statefulset),
])
def test_workload_common_rules(default, validate) -> None:
    assert validate(workload(default), None) == []
    mismatch = workload(default, selector={"matchLabels": {"app": "other"}})
    assert by_field(validate(mismatch, None)) == {"spec.template.metadata.labels": [
        'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`']}
    missing = by_field(validate(workload(default, selector=None), None))
    assert missing["spec.selector"] == ["Required value"]
    assert missing["spec.template.metadata.labels"] == [
        'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`']
    template = {"metadata": {"labels": {"app": "web"}},
                "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "w", "image": "x"}]}}
    assert by_field(validate(workload(default, template=template), None)) == {
        "spec.template.spec.restartPolicy": ['Unsupported value: "OnFailure": supported values: "Always"']}
    bad_expr = workload(default, selector={"matchExpressions": [{"key": "app", "operator": "Like"}]})
    assert "spec.selector.matchExpressions[0].operator" in by_field(validate(bad_expr, None))


def test_empty_selector_messages() -> None:
    causes = validation.deployment(workload(defaults.deployment, selector={}), None)
    assert causes == [cause("spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                                             "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector "
                                             "is invalid for deployment")]
    ds = by_field(validation.daemonset(workload(defaults.daemonset, selector={"matchLabels": {}}), None))
    assert ds["spec.selector"][0].endswith("empty selector is invalid for daemonset")


def test_deployment_rules() -> None:
    obj = workload(defaults.deployment, replicas=-1, minReadySeconds=700,
                   strategy={"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}})
    fields = by_field(validation.deployment(obj, None))
    assert fields["spec.replicas"] == ["Invalid value: -1: must be greater than or equal to 0"]
    assert fields["spec.strategy.rollingUpdate.maxUnavailable"] == [
        'Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0']
    assert fields["spec.progressDeadlineSeconds"] == ["Invalid value: 600: must be greater than minReadySeconds"]
    percent = workload(defaults.deployment, strategy={"rollingUpdate": {"maxSurge": "lots", "maxUnavailable": "150%"}})
    fields = by_field(validation.deployment(percent, None))
    assert fields["spec.strategy.rollingUpdate.maxSurge"] == [
        'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"lots"}: a valid percent string must be a '
        "numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"]
    assert fields["spec.strategy.rollingUpdate.maxUnavailable"] == [
        'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: must not be greater than 100%']
    not_int = workload(defaults.deployment, strategy={"rollingUpdate": {"maxSurge": 1.5, "maxUnavailable": 1}})
    assert by_field(validation.deployment(not_int, None))["spec.strategy.rollingUpdate.maxSurge"] == [
        "Invalid value: 1.5: must be an integer or percentage (e.g '5%%')"]
    unusable = workload(defaults.deployment, selector={"matchExpressions": [{"key": "app", "operator": "In"}]})
    assert by_field(validation.deployment(unusable, None))["spec.selector"][-1].endswith(": invalid label selector")
    odd = by_field(validation.deployment(workload(defaults.deployment, strategy={"type": "Canary"}), None))
    assert odd["spec.strategy"] == [
        'Unsupported value: apps.DeploymentStrategy{Type:"Canary", RollingUpdate:(*apps.RollingUpdateDeployment)'
        '(nil)}: supported values: "Recreate", "RollingUpdate"']
    recreate = workload(defaults.deployment, strategy={"type": "Recreate", "rollingUpdate": {}})
    assert by_field(validation.deployment(recreate, None)) == {
        "spec.strategy.rollingUpdate": ["Forbidden: may not be specified when strategy `type` is 'Recreate'"]}


def test_daemonset_update_strategy() -> None:
    both = workload(defaults.daemonset, updateStrategy={"type": "RollingUpdate",
                                                        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}})
    assert by_field(validation.daemonset(both, None)) == {"spec.updateStrategy.rollingUpdate.maxSurge": [
        'Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:""}: may not be set when maxUnavailable is '
        "non-zero"]}
    neither = workload(defaults.daemonset, updateStrategy={"type": "RollingUpdate",
                                                           "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}})
    assert by_field(validation.daemonset(neither, None)) == {
        "spec.updateStrategy.rollingUpdate.maxUnavailable": ["Required value: cannot be 0 when maxSurge is 0"]}
    odd = by_field(validation.daemonset(workload(defaults.daemonset, updateStrategy={"type": "Never"}), None))
    assert odd["spec.updateStrategy"][0].endswith('supported values: "RollingUpdate", "OnDelete"')


def test_statefulset_rules() -> None:
    obj = workload(defaults.statefulset, podManagementPolicy="Random",
                   persistentVolumeClaimRetentionPolicy={"whenDeleted": "Keep", "whenScaled": "Retain"},
                   volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {"accessModes": []}}])
    fields = by_field(validation.statefulset(obj, None))
    assert fields["spec.podManagementPolicy"] == [
        "Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"]
    assert fields["spec.persistentVolumeClaimRetentionPolicy.whenDeleted"] == [
        'Unsupported value: "Keep": supported values: "Retain", "Delete"']
    assert fields["spec.volumeClaimTemplates[0].spec.accessModes"] == [
        "Required value: at least 1 access mode is required"]
    # upstream validates only a StatefulSet template's labels and annotations, not its pod spec
    no_containers = workload(defaults.statefulset, template={"metadata": {"labels": {"app": "web", "x": "bad value"}},
                                                             "spec": {"containers": []}})
    assert by_field(validation.statefulset(no_containers, None)) == {
        "spec.template.labels": ['Invalid value: "bad value": ' + LABEL_VALUE_MSG]}
    old = workload(defaults.statefulset, serviceName="web")
    scaled = workload(defaults.statefulset, serviceName="web", replicas=5)
    assert validation.statefulset(scaled, old) == []
    renamed = workload(defaults.statefulset, serviceName="other")
    assert validation.statefulset(renamed, old) == [
        cause("spec", "Forbidden: " + validation.STATEFULSET_UPDATE_MSG, "FieldValueForbidden")]


# --- batch --------------------------------------------------------------------------------------------


def job(restart: str | None = "Never", **spec) -> dict:
    pod_spec: dict = {"containers": [{"name": "pi", "image": "perl"}]}
    if restart is not None:
        pod_spec["restartPolicy"] = restart
    obj = {"metadata": {"name": "pi", "namespace": "default", "uid": "uid-1"},
           "spec": {"template": {"spec": pod_spec}, **spec}}
    defaults.job(obj)
    defaults.job_selector(obj)
    return obj


def test_valid_job() -> None:
    assert validation.job(job(), None) == []
    assert validation.job(job("OnFailure", completionMode="Indexed", completions=3), None) == []


def test_job_restart_policy() -> None:
    assert by_field(validation.job(job(None), None)) == {
        "spec.template.spec.restartPolicy": ['Required value: valid values: "OnFailure", "Never"']}
    # upstream reports it twice: once as a pod restartPolicy, once as a Job one
    assert by_field(validation.job(job("Sometimes"), None)) == {"spec.template.spec.restartPolicy": [
        'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
        'Unsupported value: "Sometimes": supported values: "OnFailure", "Never"']}


def test_job_spec_rules() -> None:
    fields = by_field(validation.job(job(parallelism=-1, backoffLimit=-2, completionMode="Sometimes"), None))
    assert fields["spec.parallelism"] == ["Invalid value: -1: must be greater than or equal to 0"]
    assert fields["spec.backoffLimit"] == ["Invalid value: -2: must be greater than or equal to 0"]
    assert fields["spec.completionMode"] == ['Unsupported value: "Sometimes": supported values: "NonIndexed", '
                                             '"Indexed"']
    fields = by_field(validation.job(job(podReplacementPolicy="Never"), None))
    assert fields["spec.podReplacementPolicy"] == [
        'Unsupported value: "Never": supported values: "Failed", "TerminatingOrFailed"']


def test_job_generated_selector() -> None:
    tampered = job()
    tampered["spec"]["template"]["metadata"]["labels"]["controller-uid"] = "other"
    del tampered["spec"]["template"]["metadata"]["labels"]["job-name"]
    tampered["spec"]["selector"]["matchLabels"]["extra"] = "x"
    fields = by_field(validation.job(tampered, None))
    assert fields["spec.template.metadata.labels[controller-uid]"][0].startswith('Invalid value: map[string]string{')
    assert fields["spec.template.metadata.labels[controller-uid]"][0].endswith(": must be 'uid-1'")
    assert fields["spec.template.metadata.labels[job-name]"] == ["Required value: must be 'pi'"]
    assert fields["spec.selector"][0].endswith("`selector` not auto-generated")
    no_uid = job()
    del no_uid["metadata"]["uid"]
    assert "metadata.uid" in by_field(validation.job(no_uid, None))
    manual = job(manualSelector=True)
    manual["spec"]["selector"] = {"matchLabels": {"app": "pi"}}
    fields = by_field(validation.job(manual, None))
    assert list(fields) == ["spec.template.metadata.labels"]
    assert fields["spec.template.metadata.labels"][0].endswith("`selector` does not match template `labels`")
    missing = job(manualSelector=True)
    assert "selector" not in missing["spec"]
    assert by_field(validation.job(missing, None))["spec.selector"] == ["Required value"]


def cronjob(schedule: str | None = "*/5 * * * *", name: str = "hello", **spec) -> dict:
    template = {"spec": {"template": {"spec": {"containers": [{"name": "h", "image": "busybox"}],
                                               "restartPolicy": "OnFailure"}}}}
    body = {"jobTemplate": template, **spec}
    if schedule is not None:
        body["schedule"] = schedule
    return defaulted(defaults.cronjob, {"metadata": {"name": name, "namespace": "default"}, "spec": body})


@pytest.mark.parametrize("schedule", ["*/5 * * * *", "0 0 1 jan-mar MON-FRI", "@hourly", "@every 1h30m",
                                      "5,10-20/2 3 * * 0", "0 0 ? * *"])
def test_valid_cron_schedules(schedule: str) -> None:
    assert validation.cronjob(cronjob(schedule), None) == []


@pytest.mark.parametrize(("schedule", "error"), [
    ("61 * * * *", "end of range (61) above maximum (59): 61"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("0 0 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("1/2/3 * * * *", "too many slashes: 1/2/3"),
])
def test_invalid_cron_schedules(schedule: str, error: str) -> None:
    assert validation.cronjob(cronjob(schedule), None) == [
        cause("spec.schedule", f"Invalid value: {validation.go_quote(schedule)}: {error}")]


def test_cronjob_rules() -> None:
    assert by_field(validation.cronjob(cronjob(None), None)) == {"spec.schedule": ["Required value"]}
    tz = by_field(validation.cronjob(cronjob("TZ=UTC 0 * * * *"), None))
    assert tz["spec.schedule"] == [
        'Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead']
    long_name = by_field(validation.cronjob(cronjob(name="c" * 53), None))
    assert long_name["metadata.name"] == [f'Invalid value: "{"c" * 53}": must be no more than 52 characters']
    fields = by_field(validation.cronjob(cronjob(concurrencyPolicy="Sometimes", timeZone="Mars/Olympus"), None))
    assert fields["spec.concurrencyPolicy"] == [
        'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"']
    assert fields["spec.timeZone"] == ['Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus']
    assert validation.cronjob(cronjob(timeZone="Etc/UTC"), None) == []
    selector = cronjob()
    selector["spec"]["jobTemplate"]["spec"]["selector"] = {"matchLabels": {"a": "b"}}
    assert by_field(validation.cronjob(selector, None))["spec.jobTemplate.spec.selector"][0].endswith(
        "`selector` will be auto-generated")
    never = cronjob()
    never["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert by_field(validation.cronjob(never, None)) == {"spec.jobTemplate.spec.template.spec.restartPolicy": [
        'Required value: valid values: "OnFailure", "Never"']}


# --- leases, endpoints, endpoint slices, events -------------------------------------------------------


def test_lease_rules() -> None:
    assert validation.lease({"spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}}, None) == []
    fields = by_field(validation.lease({"spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}}, None))
    assert fields == {"spec.leaseDurationSeconds": ["Invalid value: 0: must be greater than 0"],
                      "spec.leaseTransitions": ["Invalid value: -1: must be greater than or equal to 0"]}


def test_endpoints_rules() -> None:
    ok = {"subsets": [{"addresses": [{"ip": "10.0.0.5"}], "ports": [{"port": 80, "protocol": "TCP"}]}]}
    assert validation.endpoints(ok, None) == []
    bad = {"subsets": [{"ports": [{"port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "TCP"}]},
                       {"addresses": [{"ip": "127.0.0.1"}, {"ip": "nope"}]}]}
    fields = by_field(validation.endpoints(bad, None))
    assert fields["subsets[0]"] == ["Required value: must specify `addresses` or `notReadyAddresses`"]
    assert fields["subsets[0].ports[0].name"] == ["Required value"]
    assert fields["subsets[1].addresses[0].ip"] == [
        'Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)']
    assert fields["subsets[1].addresses[1].ip"] == ['Invalid value: "nope": ' + validation.IP_MSG]


def test_endpointslice_rules() -> None:
    ok = {"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}],
          "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    assert validation.endpointslice(ok, None) == []
    bad = {"addressType": "IPv5", "endpoints": [{"addresses": []}],
           "ports": [{"name": "", "protocol": "TCP"}, {"name": "", "protocol": "TCP"}]}
    fields = by_field(validation.endpointslice(bad, None))
    assert fields["addressType"] == ['Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"']
    assert fields["endpoints[0].addresses"] == ["Required value: must contain at least 1 address"]
    assert fields["ports[1].name"] == ['Duplicate value: ""']
    wrong_family = {"addressType": "IPv6", "endpoints": [{"addresses": ["10.0.0.1"]}]}
    assert by_field(validation.endpointslice(wrong_family, None)) == {
        "endpoints[0].addresses[0]": ['Invalid value: "10.0.0.1": must be a valid IPv6 address']}


def test_core_event_rules() -> None:
    legacy = {"metadata": {"name": "e", "namespace": "default"}, "involvedObject": {"namespace": "default"}}
    assert validation.event(legacy, None) == []
    other_ns = {"metadata": {"name": "e", "namespace": "default"}, "involvedObject": {"namespace": "prod"}}
    assert validation.event(other_ns, None) == [
        cause("involvedObject.namespace", 'Invalid value: "prod": does not match event.namespace')]
    modern = {"metadata": {"name": "e", "namespace": "default"}, "eventTime": "2024-01-01T00:00:00.000000Z",
              "involvedObject": {"namespace": "default"}}
    fields = by_field(validation.event(modern, None))
    assert set(fields) == {"reportingComponent", "reportingInstance", "action", "reason"}
    assert fields["reportingInstance"] == fields["action"] == fields["reason"] == ["Required value"]
    assert fields["reportingComponent"][0] == "Required value"
    assert fields["reportingComponent"][1] == 'Invalid value: "": name part must be non-empty'


def test_events_v1_rules() -> None:
    good = {"metadata": {"name": "e", "namespace": "default"}, "eventTime": "2024-01-01T00:00:00.000000Z",
            "regarding": {"namespace": "default"}, "reportingController": "example.com/ctl",
            "reportingInstance": "ctl-1", "action": "Sync", "reason": "Synced", "type": "Normal"}
    assert validation.events_v1(good, None) == []
    bad = {**good, "type": "Info", "deprecatedCount": 3, "note": "n" * 1025, "series": {"count": 1}}
    fields = by_field(validation.events_v1(bad, None))
    assert fields["type"] == ['Invalid value: "": has invalid value: Info']
    assert fields["count"] == ['Invalid value: "": needs to be unset']
    assert fields["message"] == ['Invalid value: "": can have at most 1024 characters']
    assert fields["series.count"] == ['Invalid value: "": should be at least 2']
    assert fields["series.lastObservedTime"] == ["Required value"]


# --- robustness and speed -----------------------------------------------------------------------------

VALIDATORS = [validation.nothing, validation.namespace, validation.pod, validation.service, validation.endpoints,
              validation.configmap, validation.secret, validation.event, validation.persistentvolumeclaim,
              validation.deployment, validation.replicaset, validation.daemonset, validation.statefulset,
              validation.job, validation.cronjob, validation.lease, validation.endpointslice, validation.events_v1]

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70000) | st.sampled_from(["", "x", "Always", "None", "25%", "1Gi"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["spec", "metadata", "containers", "template", "ports", "port", "selector", "matchLabels",
                         "labels", "resources", "limits", "data", "type", "name", "image", "strategy", "schedule",
                         "clusterIPs", "subsets", "endpoints", "addresses", "jobTemplate", "rollingUpdate"]),
        children, max_size=4),
    max_leaves=14,
)


@pytest.mark.parametrize("obj", [[], "x", None])
def test_non_object_input_yields_a_cause(obj) -> None:
    for validate in VALIDATORS[1:]:
        causes = validate(obj, None)
        assert [c["reason"] for c in causes] == ["FieldValueTypeInvalid"]
    assert validation.object_meta(obj, namespaced=True)[0]["reason"] == "FieldValueTypeInvalid"


def test_wrong_types_become_causes() -> None:
    causes = validation.deployment({"spec": {"replicas": "3", "selector": [], "template": {"spec": "x"}}}, None)
    fields = by_field(causes)
    assert fields["spec.replicas"] == ['Invalid value: "3": must be of type integer']
    assert fields["spec.selector"] == ["Invalid value: []: must be of type object"]
    assert fields["spec.template.spec"] == ['Invalid value: "x": must be of type object']


@settings(max_examples=80, deadline=None)
@given(JSON, st.one_of(st.none(), JSON))
def test_validators_never_raise(obj, old) -> None:
    for validate in VALIDATORS:
        causes = validate(obj if isinstance(obj, dict) else {"spec": obj}, old)
        assert isinstance(causes, list)
        assert all(set(c) == {"reason", "message", "field"} for c in causes)
    assert isinstance(validation.object_meta({"metadata": obj}, namespaced=True), list)


def test_many_valid_configmaps_pass() -> None:
    objs = [{"metadata": {"name": f"cm-{i}", "namespace": "bench", "labels": {"app": "bench", "i": str(i)},
                          "annotations": {"note": "x" * 100}},
             "data": {"key": "value" * 20, "app.properties": "a=1"}} for i in range(10000)]
    for obj in objs:
        assert not validation.object_meta(obj, namespaced=True) and not validation.configmap(obj, None)


# A mutation fuzzer: take valid objects and replace random subtrees with odd JSON. The validators are
# called unwrapped, so a crash is a failure here rather than being absorbed by the last-resort guard.
ODD_VALUES = [None, True, 0, -1, 70000, "", "x", "None", "Always", [], [1], ["x"], {}, {"a": 1}, 1.5, [None], [{}]]


def _paths(node, prefix=()):
    yield prefix
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _paths(child, (*prefix, key))


def mutate(obj: dict, rng: random.Random, paths: list) -> dict:
    out = copy.deepcopy(obj)
    for _ in range(rng.randint(1, 3)):
        *parents, last = rng.choice(paths)
        node = out
        try:
            for key in parents:
                node = node[key]
            node[last] = copy.deepcopy(rng.choice(ODD_VALUES))
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed this path
    return out


def fuzz_samples() -> list[tuple[dict, object]]:
    return [
        (pod(volumes=[{"name": "d"}], initContainers=[{"name": "i", "image": "x"}],
             tolerations=[{"key": "a", "operator": "Exists"}],
             containers=[{"name": "a", "image": "x", "ports": [{"containerPort": 80, "name": "http"}],
                          "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                          "volumeMounts": [{"name": "d", "mountPath": "/d"}], "resources": {"limits": {"cpu": "1"}},
                          "livenessProbe": {"httpGet": {"port": 80}}}]), validation.pod),
        (service(type="NodePort", sessionAffinity="ClientIP", clusterIP="10.0.0.1", externalIPs=["1.2.3.4"],
                 ports=[{"port": 80, "nodePort": 30001, "name": "a"}, {"port": 81, "name": "b"}]),
         validation.service),
        (workload(defaults.deployment), validation.deployment),
        (workload(defaults.daemonset), validation.daemonset),
        (workload(defaults.statefulset, volumeClaimTemplates=[{"metadata": {"name": "x"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]),
         validation.statefulset),
        (job(), validation.job),
        (cronjob(timeZone="UTC"), validation.cronjob),
        (pvc(selector={"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]}]}),
         validation.persistentvolumeclaim),
        ({"metadata": {"name": "s", "annotations": {"a": "b"}}, "type": "kubernetes.io/dockerconfigjson",
          "data": {".dockerconfigjson": b64("{}")}, "immutable": True}, validation.secret),
        ({"metadata": {"name": "c"}, "data": {"a": "b"}, "binaryData": {"b": "eA=="}, "immutable": True},
         validation.configmap),
        ({"subsets": [{"addresses": [{"ip": "10.0.0.1", "hostname": "h"}],
                       "ports": [{"port": 80, "protocol": "TCP"}]}]}, validation.endpoints),
        ({"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}],
          "ports": [{"name": "a", "port": 80, "protocol": "TCP"}]}, validation.endpointslice),
        ({"metadata": {"name": "e", "namespace": "default"}, "eventTime": "t", "regarding": {"namespace": "default"},
          "reportingController": "a", "reportingInstance": "b", "action": "c", "reason": "d", "type": "Normal",
          "series": {"count": 2, "lastObservedTime": "t"}}, validation.events_v1),
    ]


@pytest.mark.parametrize("index", range(13))
def test_mutated_objects_never_crash(index: int) -> None:
    obj, validate = fuzz_samples()[index]
    assert validate(obj, None) == []  # the samples start out valid
    rng = random.Random(index)
    paths = [p for p in _paths(obj) if p]
    for _ in range(400):
        mutated = mutate(obj, rng, paths)
        for old in (None, obj):
            validate.__wrapped__(mutated, old)
        validation.object_meta(mutated, namespaced=True)
