"""TokenRequest on a real (in-process) API server: the JWT, its signature, claims, errors, bearer use."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from apiserver import tokens
from machinery.client import ApiError, Resource

NS = Resource("", "v1", "namespaces", False)
SA = Resource("", "v1", "serviceaccounts", True)
PODS = Resource("", "v1", "pods", True)
NODES = Resource("", "v1", "nodes", False)
CMS = Resource("", "v1", "configmaps", True)
KUBECTL = "/usr/bin/kubectl"


def _part(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_and_verify(token: str, public_pem: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Independent of apiserver.tokens: a JWS ES256 check with the published public key."""
    head, body, sig = token.split(".")
    raw = _part(sig)
    assert len(raw) == 64
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key = serialization.load_pem_public_key(public_pem)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    return json.loads(_part(head)), json.loads(_part(body))


async def _setup(client) -> tuple[dict, dict, dict]:
    await client.create(NS, {"metadata": {"name": "t1"}})
    sa = await client.create(SA, {"metadata": {"name": "robot", "namespace": "t1"}})
    node = await client.create(NODES, {"metadata": {"name": "n1"}})
    pod = await client.create(PODS, {"metadata": {"name": "web", "namespace": "t1"}, "spec": {
        "nodeName": "n1", "serviceAccountName": "robot", "containers": [{"name": "c", "image": "busybox"}]}})
    return sa, node, pod


def _request(pod: dict | None = None, **spec: Any) -> dict:
    if pod is not None:
        spec["boundObjectRef"] = {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                                  "uid": pod["metadata"]["uid"]}
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}


async def test_pod_bound_token(api) -> None:
    server, client = api
    sa, node, pod = await _setup(client)
    before = int(time.time())
    answer = await client.request("POST", SA.path(namespace="t1", name="robot", subresource="token"),
                                  body=_request(pod, audiences=["vault"], expirationSeconds=900))
    assert answer["kind"] == "TokenRequest" and answer["spec"]["expirationSeconds"] == 900
    public = (server.data_dir / "pki" / "sa.pub").read_bytes()
    header, claims = decode_and_verify(answer["status"]["token"], public)
    assert header["alg"] == "ES256" and header["kid"]
    assert claims["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert claims["sub"] == "system:serviceaccount:t1:robot" and claims["aud"] == ["vault"]
    assert before <= claims["iat"] == claims["nbf"] <= int(time.time())
    assert claims["exp"] == claims["iat"] + 900
    assert claims["kubernetes.io"] == {
        "namespace": "t1", "serviceaccount": {"name": "robot", "uid": sa["metadata"]["uid"]},
        "pod": {"name": "web", "uid": pod["metadata"]["uid"]}, "node": {"name": "n1", "uid": node["metadata"]["uid"]}}
    assert answer["status"]["expirationTimestamp"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"]))
    # tampering breaks the signature
    head, body, sig = answer["status"]["token"].split(".")
    forged = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    with pytest.raises((InvalidSignature, ValueError)):
        decode_and_verify(f"{head}.{forged}.{sig}", public)


async def test_defaults_and_errors(api) -> None:
    _server, client = api
    _sa, _node, pod = await _setup(client)
    path = SA.path(namespace="t1", name="robot", subresource="token")
    answer = await client.request("POST", path, body=_request())
    assert answer["spec"]["audiences"] == ["https://kubernetes.default.svc.cluster.local"]
    assert answer["spec"]["expirationSeconds"] == 3600
    with pytest.raises(ApiError) as info:
        await client.request("POST", SA.path(namespace="t1", name="nope", subresource="token"), body=_request())
    assert info.value.code == 404 and info.value.message == 'serviceaccounts "nope" not found'
    with pytest.raises(ApiError) as info:
        await client.request("POST", path, body=_request(expirationSeconds=60))
    assert info.value.code == 422 and "may not specify a duration less than 10 minutes" in info.value.message
    stale = {**pod, "metadata": {**pod["metadata"], "uid": "00000000-0000-0000-0000-000000000000"}}
    with pytest.raises(ApiError) as info:
        await client.request("POST", path, body=_request(stale))
    assert info.value.code == 409 and "does not match the UID in record" in info.value.message
    with pytest.raises(ApiError) as info:
        await client.request("POST", path, body=_request(None, boundObjectRef={"kind": "Deployment", "name": "x"}))
    assert info.value.code == 422


async def test_bearer_token_authenticates(api) -> None:
    server, client = api
    await _setup(client)
    answer = await client.request("POST", SA.path(namespace="t1", name="robot", subresource="token"),
                                  body=_request())
    token = answer["status"]["token"]
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "pki" / "ca.crt"))
    url = f"{server.url}/api/v1/namespaces/t1/configmaps"
    async with aiohttp.ClientSession() as session:
        for bearer, expected in ((token, 200), (token[:-3] + "AAA", 401), ("garbage", 401)):
            async with session.get(url, ssl=ctx, headers={"Authorization": f"Bearer {bearer}"}) as response:
                assert response.status == expected, bearer
    signer = tokens.TokenSigner.ensure(server.data_dir / "pki")
    user = signer.authenticate(token)
    assert user is not None and user.name == "system:serviceaccount:t1:robot"
    assert "system:serviceaccounts:t1" in user.groups
    with pytest.raises(tokens.TokenError, match="expired"):
        signer.verify(token, now=time.time() + 3601)


def test_signing_key_is_made_once(tmp_path: Path) -> None:
    first = tokens.TokenSigner.ensure(tmp_path)
    second = tokens.TokenSigner.ensure(tmp_path)
    assert first.kid == second.kid
    assert os.stat(tmp_path / "sa.key").st_mode & 0o777 == 0o600
    assert (tmp_path / "sa.pub").read_bytes() == first.public_pem()


@pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl not installed")
async def test_kubectl_create_token(api) -> None:
    server, client = api
    await _setup(client)
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(server.kubeconfig), "-n", "t1", "create", "token", "robot",
        "--duration=20m", "--audience=a1", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    _header, claims = decode_and_verify(out.decode().strip(), (server.data_dir / "pki" / "sa.pub").read_bytes())
    assert claims["aud"] == ["a1"] and claims["exp"] - claims["iat"] == 1200
