"""The real kubectl (v1.32) against our OpenAPI documents: explain, and apply's validation and patch.

Needs /usr/bin/kubectl; the tests skip when it is missing.
"""

from __future__ import annotations

import orjson
import pytest

from apiserver.openapi import documents, extensions

DEPLOYMENT = b"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: a
        image: nginx
      - name: b
        image: busybox
"""


async def test_explain_nested_field(kubectl) -> None:
    result = await kubectl("explain", "deployment.spec.template")
    assert result.code == 0, result.stderr
    out = result.stdout
    assert "KIND:       Deployment" in out
    assert "FIELD: template <PodTemplateSpec>" in out
    assert "FIELDS:" in out
    assert "metadata\t<ObjectMeta>" in out
    assert "spec\t<PodSpec>" in out
    assert "<no description>" not in out


async def test_explain_kind_lists_fields_with_descriptions(kubectl) -> None:
    result = await kubectl("explain", "pods")
    assert result.code == 0, result.stderr
    out = result.stdout
    assert "KIND:       Pod" in out
    assert "VERSION:    v1" in out
    assert "Pod is a collection of containers" in out
    for line in ("apiVersion\t<string>", "metadata\t<ObjectMeta>", "spec\t<PodSpec>", "status\t<PodStatus>"):
        assert line in out


async def test_explain_lists_maps_and_special_types(kubectl) -> None:
    containers = await kubectl("explain", "deploy.spec.template.spec.containers")
    assert containers.code == 0, containers.stderr
    assert "FIELD: containers <[]Container>" in containers.stdout
    assert "name\t<string> -required-" in containers.stdout
    assert "env\t<[]EnvVar>" in containers.stdout
    resources = await kubectl("explain", "pods.spec.containers.resources")
    assert "limits\t<map[string]Quantity>" in resources.stdout
    rolling = await kubectl("explain", "deployments.spec.strategy.rollingUpdate")
    assert "maxSurge\t<IntOrString>" in rolling.stdout
    meta = await kubectl("explain", "pods.metadata")
    assert "labels\t<map[string]string>" in meta.stdout


async def test_apply_hands_validation_to_the_server(kubectl, fake_server) -> None:
    result = await kubectl("apply", "-f", "-", stdin=DEPLOYMENT)
    assert result.code == 0, result.stderr
    assert "deployment.apps/web created" in result.stdout
    posts = fake_server.find("POST", "/apis/apps/v1/namespaces/default/deployments")
    assert len(posts) == 1
    assert posts[0].query.get("fieldValidation") == "Strict"
    assert orjson.loads(posts[0].body)["spec"]["replicas"] == 2
    assert not fake_server.find("GET", "/openapi/v2")


async def _apply_twice(kubectl, fake_server) -> dict:
    first = await kubectl("apply", "-f", "-", stdin=DEPLOYMENT)
    assert first.code == 0, first.stderr
    second = await kubectl("apply", "-f", "-", stdin=DEPLOYMENT.replace(b"busybox", b"busybox:2"))
    assert second.code == 0, second.stderr
    assert "warning" not in second.stderr.lower()
    patches = fake_server.find("PATCH", "/apis/apps/v1/namespaces/default/deployments/web")
    assert len(patches) == 1
    assert patches[0].content_type == "application/strategic-merge-patch+json"
    assert not fake_server.find("GET", "/openapi/v2")
    return orjson.loads(patches[0].body)


async def test_second_apply_patch_merges_containers_by_name(kubectl, fake_server) -> None:
    spec = (await _apply_twice(kubectl, fake_server))["spec"]["template"]["spec"]
    assert spec["$setElementOrder/containers"] == [{"name": "a"}, {"name": "b"}]
    assert spec["containers"] == [{"image": "busybox:2", "name": "b"}]


async def test_apply_patch_really_comes_from_our_schema(kubectl, fake_server,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the merge-key extensions kubectl replaces the list: proof it reads our v3 schema."""
    monkeypatch.setattr(extensions, "annotate", lambda components, roots: None)
    monkeypatch.setattr(documents, "_built", None)
    spec = (await _apply_twice(kubectl, fake_server))["spec"]["template"]["spec"]
    assert "$setElementOrder/containers" not in spec
    assert [c["name"] for c in spec["containers"]] == ["a", "b"]
