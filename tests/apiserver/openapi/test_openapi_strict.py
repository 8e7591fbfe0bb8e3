"""Unknown-field detection: what Strict field validation rejects, and what it must let through."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiserver.openapi import SchemaError, strict_message, unknown_fields

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "x/y": "z"},
                 "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                 "creationTimestamp": "2025-01-01T00:00:00Z", "uid": "u", "resourceVersion": "3",
                 "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
                                    "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
    "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
        "template": {
            "metadata": {"labels": {"app": "web"}, "creationTimestamp": None},
            "spec": {"containers": [
                {"name": "a", "image": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                 "env": [{"name": "A", "value": "1"},
                         {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                 "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": 1}},
                 "readinessProbe": {"httpGet": {"path": "/", "port": "http"}}},
                {"name": "b", "image": "busybox", "command": ["sleep", "1"]},
            ], "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}]},
        },
    },
    "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True",
                                              "lastTransitionTime": "2025-01-01T00:00:00Z"}]},
}


def with_change(path: list[Any], key: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(DEPLOYMENT)
    node: Any = obj
    for step in path:
        node = node[step]
    node[key] = value
    return obj


def test_a_valid_deployment_has_no_unknown_fields() -> None:
    assert unknown_fields("V1Deployment", DEPLOYMENT) == []


@pytest.mark.parametrize(("path", "key", "expected"), [
    ([], "spex", "spex"),
    (["spec"], "replicaz", "spec.replicaz"),
    (["metadata"], "nam", "metadata.nam"),
    (["spec", "template", "spec", "containers", 0], "imagee", "spec.template.spec.containers[0].imagee"),
    (["spec", "template", "spec", "containers", 1], "x", "spec.template.spec.containers[1].x"),
    (["spec", "template", "spec", "containers", 0, "ports", 0], "hostPortt",
     "spec.template.spec.containers[0].ports[0].hostPortt"),
    (["spec", "template", "spec", "containers", 0, "env", 1, "valueFrom", "fieldRef"], "oops",
     "spec.template.spec.containers[0].env[1].valueFrom.fieldRef.oops"),
    (["spec", "strategy", "rollingUpdate"], "maxSurgee", "spec.strategy.rollingUpdate.maxSurgee"),
    (["status", "conditions", 0], "typo", "status.conditions[0].typo"),
    (["spec", "template", "metadata"], "label", "spec.template.metadata.label"),
])
def test_unknown_fields_are_found_where_they_are(path: list[Any], key: str, expected: str) -> None:
    assert unknown_fields("V1Deployment", with_change(path, key, 1)) == [expected]


def test_several_unknown_fields_in_document_order() -> None:
    obj = with_change(["spec"], "replicaz", 3)
    obj["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    obj["bogus"] = True
    found = unknown_fields("V1Deployment", obj)
    assert found == ["spec.template.spec.containers[0].imagee", "spec.replicaz", "bogus"]
    assert strict_message(found[1:]) == 'strict decoding error: unknown field "spec.replicaz", ' \
                                        'unknown field "bogus"'


def test_unknown_field_with_null_value_is_still_unknown() -> None:
    assert unknown_fields("V1Deployment", with_change(["spec"], "replicaz", None)) == ["spec.replicaz"]


@pytest.mark.parametrize(("model", "obj"), [
    ("V1ConfigMap", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                     "data": {"any.key": "v", "spec": "x"}, "binaryData": {"b": "AAEC"}}),
    ("V1Secret", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque",
                  "data": {"password": "cGFzcw=="}, "stringData": {"replicaz": "x"}}),
    ("V1Service", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                   "spec": {"selector": {"app": "x", "whatever": "y"},
                            "ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}]}}),
    ("V1Node", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
                "status": {"capacity": {"cpu": "4", "example.com/gpu": "1"}, "allocatable": {"pods": 110}}}),
    ("CoreV1Event", {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
                     "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "R",
                     "eventTime": "2025-01-01T00:00:00.000000Z", "count": 1}),
    ("V1Pod", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {"a": "{}"}},
               "spec": {"containers": [{"name": "c", "image": "i"}], "nodeSelector": {"disk": "ssd"}}}),
])
def test_maps_int_or_string_and_quantities_are_never_flagged(model: str, obj: dict[str, Any]) -> None:
    assert unknown_fields(model, obj) == []


def test_status_is_checked_too() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1", "ipp": 1}]}}
    assert unknown_fields("V1Pod", pod) == ["status.podIPs[0].ipp"]


def test_wrong_types_are_not_unknown_fields() -> None:
    odd = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": "x",
           "spec": {"replicas": {"a": 1}, "template": {"spec": {"containers": "c"}}}}
    assert unknown_fields("V1Deployment", odd) == []


def test_other_client_models_work() -> None:
    obj = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "templat": {}}
    assert unknown_fields("V1PodTemplate", obj) == ["templat"]


@pytest.mark.parametrize("model", ["V1NoSuchKind", "Deployment", ""])
def test_unknown_models_raise(model: str) -> None:
    with pytest.raises(SchemaError):
        unknown_fields(model, {})


def test_non_object_input_raises() -> None:
    with pytest.raises(SchemaError):
        unknown_fields("V1Deployment", [])  # type: ignore[arg-type]


def test_repeated_checks_agree() -> None:
    first = unknown_fields("V1Deployment", DEPLOYMENT)
    assert all(unknown_fields("V1Deployment", DEPLOYMENT) == first for _ in range(100))


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(label_keys=st.dictionaries(names, names, max_size=5), extra=names)
def test_label_keys_never_flagged_but_a_new_spec_field_always_is(label_keys: dict[str, str],
                                                                   extra: str) -> None:
    obj = copy.deepcopy(DEPLOYMENT)
    obj["metadata"]["labels"] = label_keys
    obj["spec"]["template"]["metadata"]["annotations"] = label_keys
    assert unknown_fields("V1Deployment", obj) == []
    known = {"replicas", "selector", "strategy", "template", "minReadySeconds", "paused",
             "progressDeadlineSeconds", "revisionHistoryLimit"}
    obj["spec"][extra] = 1
    assert unknown_fields("V1Deployment", obj) == ([] if extra in known else [f"spec.{extra}"])
