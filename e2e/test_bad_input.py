"""Bad input gets a Kubernetes Status with the right code, never a traceback or a 500."""

from __future__ import annotations

import json

import pytest

from e2e.cluster import Server


def _request(server: Server, method: str, path: str, body: bytes | None = None, **kwargs) -> tuple[int, dict]:
    return server.request(method, path, body, **kwargs)


CMS = "/api/v1/namespaces/default/configmaps"


def _status(body: dict, code: int, reason: str) -> None:
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == code and body["reason"] == reason, body


def test_malformed_json_and_yaml(server: Server):
    code, body = _request(server, "POST", CMS, b'{"metadata": ')
    assert code == 400
    _status(body, 400, "BadRequest")
    code, body = _request(server, "POST", CMS, b"metadata: [unclosed", content_type="application/yaml")
    assert code == 400 and "YAML" in body["message"]


def test_unknown_resource_and_object(server: Server):
    code, body = _request(server, "GET", "/api/v1/namespaces/default/widgets")
    assert code == 404
    _status(body, 404, "NotFound")
    code, body = _request(server, "GET", f"{CMS}/nope")
    assert code == 404 and body["message"] == 'configmaps "nope" not found'
    code, body = _request(server, "POST", "/api/v1/namespaces/no-such-ns/configmaps",
                          json.dumps({"metadata": {"name": "x"}}).encode())
    assert code == 404 and body["message"] == 'namespaces "no-such-ns" not found'


def test_invalid_object_has_causes(server: Server):
    code, body = _request(server, "POST", CMS, json.dumps({"metadata": {"name": "Not_Valid"}}).encode())
    assert code == 422
    _status(body, 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    code, body = _request(server, "POST", "/apis/apps/v1/namespaces/default/deployments",
                          json.dumps({"metadata": {"name": "d"}, "spec": {}}).encode())
    assert code == 422 and any(c["field"].startswith("spec.") for c in body["details"]["causes"])


def test_stale_resource_version_conflicts(server: Server):
    _request(server, "POST", CMS, json.dumps({"metadata": {"name": "stale"}}).encode())
    code, first = _request(server, "GET", f"{CMS}/stale")
    first["data"] = {"a": "1"}
    code, _ = _request(server, "PUT", f"{CMS}/stale", json.dumps(first).encode())
    assert code == 200
    code, body = _request(server, "PUT", f"{CMS}/stale", json.dumps(first).encode())
    assert code == 409
    _status(body, 409, "Conflict")
    _request(server, "DELETE", f"{CMS}/stale")


def test_body_too_large(server: Server):
    huge = json.dumps({"metadata": {"name": "big"}, "data": {"x": "a" * (3 * 1024 * 1024 + 10)}}).encode()
    code, body = _request(server, "POST", CMS, huge)
    assert code == 413
    _status(body, 413, "RequestEntityTooLarge")


def test_unsupported_patch_type(server: Server):
    _request(server, "POST", CMS, json.dumps({"metadata": {"name": "patchme"}}).encode())
    code, body = _request(server, "PATCH", f"{CMS}/patchme", b"{}", content_type="text/plain")
    assert code == 415
    _status(body, 415, "UnsupportedMediaType")
    _request(server, "DELETE", f"{CMS}/patchme")


def test_strict_field_validation(server: Server):
    body = json.dumps({"metadata": {"name": "strict"}, "dataa": {}}).encode()
    code, status = _request(server, "POST", f"{CMS}?fieldValidation=Strict", body)
    assert code == 400 and 'unknown field "dataa"' in status["message"]


@pytest.mark.parametrize("path", ["/api/v1/namespaces", "/apis"])
def test_no_credentials_is_401(server: Server, path: str):
    code, body = _request(server, "GET", path, credentials=False)
    assert code == 401
    _status(body, 401, "Unauthorized")
