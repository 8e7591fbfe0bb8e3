"""KubeletServer's TLS without a runtime: serving cert made once and reused, client certs, bad CAs."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest

from apiserver import pki
from kubelet.config import KubeletConfig
from kubelet.server import KubeletServer, tls


def config(root: Path) -> KubeletConfig:
    return KubeletConfig(node_name="n", kubeconfig="", cri_socket="/nonexistent", root_dir=root,
                         address="127.0.0.1", port=0, node_ip="10.1.2.3")


def client_ssl(cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


async def status_of(server: KubeletServer, path: str, cert: tuple[Path, Path] | None) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"https://127.0.0.1:{server.port}{path}", ssl=client_ssl(cert)) as answer:
            return answer.status


async def test_client_certs_and_serving_cert_reuse(tmp_path: Path):
    cluster = pki.ensure_pki(tmp_path / "cluster")
    admin = (cluster.admin_cert, cluster.admin_key)
    server = KubeletServer(config=config(tmp_path / "k"), cri=None, ca_pem=cluster.ca_cert.read_bytes())  # type: ignore[arg-type]
    await server.start()
    try:
        assert server.port != 0
        assert await status_of(server, "/healthz", None) == 200
        assert await status_of(server, "/containerLogs/a/b/c", None) == 401
        assert await status_of(server, "/nope", admin) == 404  # through auth, to routing
    finally:
        await server.stop()
    cert_path, _ = tls.serving_paths(tmp_path / "k")
    first = cert_path.read_bytes()
    assert tls.ensure_serving_cert(tmp_path / "k", hosts=("10.1.2.3",)) == tls.serving_paths(tmp_path / "k")
    assert cert_path.read_bytes() == first  # still valid: reused
    tls.ensure_serving_cert(tmp_path / "k", hosts=("10.9.9.9",))
    assert cert_path.read_bytes() != first  # a new address: re-issued

    other = pki.ensure_pki(tmp_path / "other")  # a cert from another CA fails the handshake
    server = KubeletServer(config=config(tmp_path / "k"), cri=None, ca_pem=cluster.ca_cert.read_bytes())  # type: ignore[arg-type]
    await server.start()
    try:
        with pytest.raises(aiohttp.ClientError):
            await status_of(server, "/containerLogs/a/b/c", (other.admin_cert, other.admin_key))
    finally:
        await server.stop()


async def test_without_a_ca_everything_but_healthz_is_401(tmp_path: Path):
    cluster = pki.ensure_pki(tmp_path / "cluster")
    server = KubeletServer(config=config(tmp_path / "k"), cri=None, ca_pem=b"")  # type: ignore[arg-type]
    await server.start()
    try:
        assert await status_of(server, "/healthz", None) == 200
        assert await status_of(server, "/containerLogs/a/b/c", (cluster.admin_cert, cluster.admin_key)) == 401
    finally:
        await server.stop()


def test_a_bad_ca_is_a_clear_error(tmp_path: Path):
    cert, key = tls.ensure_serving_cert(tmp_path, hosts=())
    with pytest.raises(tls.TlsError, match="not a PEM certificate"):
        tls.server_context(cert_path=cert, key_path=key, ca_pem=b"-----BEGIN CERTIFICATE-----\nxx\n")
