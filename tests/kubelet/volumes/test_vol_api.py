"""Volumes fed by a real (in-process) API server through ApiSource: ConfigMap updates and a real token.

The API server's token subresource is wired test-locally here, as tests/apiserver/tokens does.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from vol_env import config

from apiserver import app as app_module
from apiserver import registry, tokens
from apiserver.handlers import subresources
from apiserver.server import ApiServer
from kubelet.sources import ApiSource
from kubelet.volumes import VolumeError, VolumeManager
from kubelet.volumes import fs as vfs
from machinery.client import ApiClient, Resource
from machinery.kubeconfig import load_kubeconfig

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="secret volumes mount a tmpfs: needs root")

NS = Resource("", "v1", "namespaces", False)
SA = Resource("", "v1", "serviceaccounts", True)
PODS = Resource("", "v1", "pods", True)
CMS = Resource("", "v1", "configmaps", True)
SECRETS = Resource("", "v1", "secrets", True)


def _restore(table: dict, value: object) -> None:
    """Put back what the lead's real wiring had there (if it exists yet), else remove ours."""
    if value is None:
        table.pop("token", None)
    else:
        table["token"] = value


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[ApiServer, ApiClient]]:
    data = tmp_path / "data"
    rt = registry.lookup("", "v1", "serviceaccounts")
    assert rt is not None
    build = app_module.build_app
    signer = tokens.TokenSigner.ensure(data / "pki")

    def build_app(store, *, authenticator):
        app = build(store, authenticator=authenticator)
        app[tokens.SIGNER] = signer
        return app

    app_module.build_app = build_app
    saved = rt.subresources.get("token"), subresources.SUBRESOURCES.get("token")
    rt.subresources["token"] = "TokenRequest"
    subresources.SUBRESOURCES["token"] = {"POST": tokens.create_token}
    server = ApiServer(data_dir=data, port=0)
    try:
        await server.start()
        async with ApiClient(load_kubeconfig(server.kubeconfig), request_timeout=10) as api:
            yield server, api
    finally:
        await server.stop()
        app_module.build_app = build
        _restore(rt.subresources, saved[0])
        _restore(subresources.SUBRESOURCES, saved[1])


def _claims(token: str, public_pem: bytes) -> dict:
    def part(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    head, body, sig = token.split(".")
    raw = part(sig)
    key = serialization.load_pem_public_key(public_pem)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
               f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    return json.loads(part(body))


async def test_api_backed_volumes(client, tmp_path: Path) -> None:
    server, api = client
    await api.create(NS, {"metadata": {"name": "v1ns"}})
    await api.create(SA, {"metadata": {"name": "default", "namespace": "v1ns"}})
    await api.create(CMS, {"metadata": {"name": "cfg", "namespace": "v1ns"}, "data": {"greeting": "hello"}})
    # what the serviceaccount controller publishes in every namespace (the pod's kube-api-access volume needs it)
    await api.create(CMS, {"metadata": {"name": "kube-root-ca.crt", "namespace": "v1ns"},
                           "data": {"ca.crt": (server.data_dir / "pki" / "ca.crt").read_text()}})
    await api.create(SECRETS, {"metadata": {"name": "sec", "namespace": "v1ns"}, "stringData": {"pw": "hunter2"}})
    pod = await api.create(PODS, {"metadata": {"name": "web", "namespace": "v1ns"}, "spec": {
        "containers": [{"name": "c", "image": "busybox"}],
        "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}},
                    {"name": "sec", "secret": {"secretName": "sec"}},
                    {"name": "token", "projected": {"sources": [
                        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                        {"configMap": {"name": "cfg", "items": [{"key": "greeting", "path": "g"}]}}]}}]}})
    source = ApiSource(api)
    manager = VolumeManager(config=config(tmp_path / "kubelet"), source=source, tokens=source)
    try:
        paths = await manager.setup(pod)
        cfg = Path(paths["cfg"])
        assert (cfg / "greeting").read_text() == "hello"
        assert (Path(paths["sec"]) / "pw").read_text() == "hunter2"
        claims = _claims((Path(paths["token"]) / "token").read_text(),
                         (server.data_dir / "pki" / "sa.pub").read_bytes())
        assert claims["sub"] == "system:serviceaccount:v1ns:default"
        assert claims["kubernetes.io"]["pod"] == {"name": "web", "uid": pod["metadata"]["uid"]}
        # the API server's ServiceAccount admission added kube-api-access-*: token, CA and namespace
        access = next(Path(p) for n, p in paths.items() if n.startswith("kube-api-access-"))
        assert (access / "namespace").read_text() == "v1ns"
        assert (access / "ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert _claims((access / "token").read_text(), (server.data_dir / "pki" / "sa.pub").read_bytes())["sub"] \
            == "system:serviceaccount:v1ns:default"
        first = os.readlink(cfg / "..data")
        await api.patch(CMS, "cfg", {"data": {"greeting": "bonjour"}}, namespace="v1ns")
        await manager.refresh(pod)
        assert (cfg / "greeting").read_text() == "bonjour"
        assert (Path(paths["token"]) / "g").read_text() == "bonjour"
        assert os.readlink(cfg / "..data") != first
        await api.delete(SECRETS, "sec", namespace="v1ns")
        with pytest.raises(VolumeError, match='secret "sec" not found'):
            await manager.refresh(pod)
    finally:
        await manager.teardown(pod["metadata"]["uid"])
        for point in vfs.mounts_under(tmp_path):
            vfs.unmount(point)
    assert vfs.mounts_under(tmp_path) == []
    assert not (tmp_path / "kubelet" / "pods" / pod["metadata"]["uid"]).exists()
