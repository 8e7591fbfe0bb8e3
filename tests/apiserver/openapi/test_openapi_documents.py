"""The /openapi/v3 index and group-version documents: shapes kubectl relies on, and stable hashes."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from apiserver import openapi
from apiserver.openapi import documents, schemas
from apiserver.openapi.paths import PATCH_TYPES
from apiserver.registry import GROUP_VERSIONS, RESOURCES

DEPLOYMENT_ITEM = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def doc(path: str) -> dict[str, Any]:
    body = openapi.document(path)
    assert body is not None
    return orjson.loads(body)


def test_index_lists_every_group_version_with_its_hash() -> None:
    paths = openapi.index()["paths"]
    assert set(paths) == {documents.gv_path(gv) for gv in GROUP_VERSIONS}
    assert "api/v1" in paths and "apis/apps/v1" in paths
    for key, entry in paths.items():
        url = urlsplit(entry["serverRelativeURL"])
        assert url.path == f"/openapi/v3/{key}"
        digest = parse_qs(url.query)["hash"][0]
        body = openapi.document(key)
        assert digest == hashlib.sha512(body).hexdigest().upper()
        assert len(digest) == 128


def test_hash_is_stable_across_rebuilds(monkeypatch: pytest.MonkeyPatch) -> None:
    before = openapi.index()
    fresh = orjson.dumps(documents.build_document("apps/v1"), option=orjson.OPT_SORT_KEYS)
    assert fresh == openapi.document("apis/apps/v1")
    monkeypatch.setattr(documents, "_built", None)
    assert openapi.index() == before


@pytest.mark.parametrize("path", ["apis/apps/v1", "/openapi/v3/apis/apps/v1", "/apis/apps/v1/"])
def test_document_path_forms(path: str) -> None:
    assert openapi.document(path) == openapi.document("apis/apps/v1")


@pytest.mark.parametrize("path", ["apis/apps/v2", "api/v2", "apis/nope/v1", "", "openapi/v3"])
def test_unknown_documents_are_none(path: str) -> None:
    assert openapi.document(path) is None


def test_document_header_and_self_contained_components() -> None:
    apps = doc("apis/apps/v1")
    assert apps["openapi"] == "3.0.0"
    assert apps["info"]["title"] == "Kubernetes"
    local = apps["components"]["schemas"]
    assert set(schemas.references(apps)) <= set(local)
    assert "io.k8s.api.apps.v1.Deployment" in local
    assert "io.k8s.api.autoscaling.v1.Scale" in local
    assert "io.k8s.api.batch.v1.Job" not in local


def test_patch_operation_is_what_kubectl_looks_for() -> None:
    patch = doc("apis/apps/v1")["paths"][DEPLOYMENT_ITEM]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert patch["x-kubernetes-action"] == "patch"
    names = {p["name"] for p in patch["parameters"]}
    assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= names
    assert set(patch["requestBody"]["content"]) == set(PATCH_TYPES)
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    ok = patch["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/io.k8s.api.apps.v1.Deployment"}


def test_collection_item_and_subresource_operations() -> None:
    paths = doc("apis/apps/v1")["paths"]
    collection = paths["/apis/apps/v1/namespaces/{namespace}/deployments"]
    assert collection["get"]["x-kubernetes-action"] == "list"
    assert {p["name"] for p in collection["get"]["parameters"]} >= {"labelSelector", "watch", "limit"}
    listed = collection["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["$ref"].endswith("io.k8s.api.apps.v1.DeploymentList")
    assert collection["post"]["x-kubernetes-action"] == "post"
    assert collection["delete"]["x-kubernetes-action"] == "deletecollection"
    assert {p["name"] for p in collection["parameters"]} == {"namespace", "pretty"}
    item = paths[DEPLOYMENT_ITEM]
    assert {m for m in item if m != "parameters"} == {"get", "put", "patch", "delete"}
    assert {p["name"] for p in item["parameters"]} == {"name", "namespace", "pretty"}
    scale = paths[DEPLOYMENT_ITEM + "/scale"]
    for method in ("get", "put", "patch"):
        assert scale[method]["x-kubernetes-group-version-kind"]["kind"] == "Scale"
        assert scale[method]["x-kubernetes-group-version-kind"]["group"] == "autoscaling"
    status = paths[DEPLOYMENT_ITEM + "/status"]
    assert status["patch"]["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    assert status["put"]["operationId"] == "replaceAppsV1NamespacedDeploymentStatus"
    assert paths["/apis/apps/v1/deployments"]["get"]["operationId"] == "listAppsV1DeploymentForAllNamespaces"


def test_cluster_scoped_and_core_paths() -> None:
    paths = doc("api/v1")["paths"]
    assert "/api/v1/namespaces/{name}" in paths
    assert "/api/v1/nodes/{name}/status" in paths
    assert "/api/v1/namespaces/{namespace}/pods/{name}/binding" in paths
    assert "/api/v1/namespaces/{namespace}/pods/{name}/log" not in paths
    patch = paths["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert patch["operationId"] == "patchCoreV1NamespacedPod"


def test_every_resource_has_its_operations() -> None:
    for rt in RESOURCES:
        ops = [op for item in doc(documents.gv_path(rt.group_version))["paths"].values()
               for op in item.values() if isinstance(op, dict)
               and op.get("x-kubernetes-group-version-kind", {}).get("kind") == rt.kind]
        actions = {op["x-kubernetes-action"] for op in ops}
        if "patch" in rt.verbs:
            assert "patch" in actions, rt.kind
        if "create" in rt.verbs:
            assert "post" in actions, rt.kind


def test_create_only_reviews() -> None:
    authz = doc("apis/authorization.k8s.io/v1")
    paths = authz["paths"]
    review = paths["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]
    assert set(review) == {"post", "parameters"}
    assert review["post"]["x-kubernetes-group-version-kind"]["kind"] == "SelfSubjectAccessReview"
    body = review["post"]["requestBody"]["content"]["*/*"]["schema"]
    assert body["$ref"].endswith("io.k8s.api.authorization.v1.SelfSubjectAccessReview")
    assert not any(p.endswith("{name}") for p in paths)


async def test_async_access_matches() -> None:
    assert await openapi.aindex() == openapi.index()
    assert await openapi.adocument("api/v1") == openapi.document("api/v1")
    await openapi.awarm()
