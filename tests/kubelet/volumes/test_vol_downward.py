"""downwardAPI formatting: Go-quoted label maps and resource values with divisors, as upstream."""

from __future__ import annotations

import pytest

from kubelet.volumes import VolumeError
from kubelet.volumes.downward_api import field_value, format_map, go_quote, resource_value
from kubelet.volumes.quantity import parse

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"b": "2", "a": "1"},
                    "annotations": {"x/y": 'say "hi"\\'}},
       "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "250m", "memory": "1Gi"},
                                                           "requests": {"cpu": "100m"}}}]}}


def test_go_quote() -> None:
    assert go_quote('a"b\\c\nd\te') == '"a\\"b\\\\c\\nd\\te"'
    assert go_quote("\x01é") == '"\\x01é"'


def test_field_values() -> None:
    assert field_value(POD, "metadata.labels") == 'a="1"\nb="2"'
    assert field_value(POD, "metadata.annotations") == 'x/y="say \\"hi\\"\\\\"'
    assert field_value(POD, "metadata.labels['b']") == "2"
    assert format_map({}) == ""
    assert [field_value(POD, f"metadata.{k}") for k in ("name", "namespace", "uid")] == ["p", "ns", "u"]
    with pytest.raises(VolumeError, match="unsupported fieldPath"):
        field_value(POD, "spec.nodeName")


@pytest.mark.parametrize(("resource", "divisor", "expected"), [
    ("limits.cpu", "1", "1"), ("limits.cpu", "1m", "250"), ("requests.cpu", "1m", "100"),
    ("limits.memory", "1Mi", "1024"), ("limits.memory", None, str(2**30)), ("requests.memory", "1", "0"),
])
def test_resource_values(resource: str, divisor: str | None, expected: str) -> None:
    ref = {"containerName": "c", "resource": resource, **({"divisor": divisor} if divisor else {})}
    assert resource_value(POD, ref) == expected


def test_unset_limit_is_node_allocatable() -> None:
    assert int(resource_value(POD, {"containerName": "c", "resource": "limits.ephemeral-storage"})) == 0
    pod = {"spec": {"containers": [{"name": "c"}]}}
    assert int(resource_value(pod, {"containerName": "c", "resource": "limits.memory"})) > 0
    with pytest.raises(VolumeError, match='container "d" not found'):
        resource_value(pod, {"containerName": "d", "resource": "limits.memory"})


def test_quantities() -> None:
    assert parse("1.5Gi") == 3 * 2**29 and parse("1e3") == 1000 and parse("250m") * 4 == 1 and parse(2) == 2
    for bad in ("1.5.5", "10Xi", "1e3Mi", ""):
        with pytest.raises(VolumeError):
            parse(bad)
