"""Tests of the cluster PKI: issued certs chain to the CA, carry the right names, are reused, and
the server TLS context accepts our client certs, tolerates none, and rejects foreign ones."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import socket
import ssl
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apiserver import pki as pki_mod
from apiserver.pki import PkiError, ensure_pki, write_admin_kubeconfig


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _names(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


def _eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_creates_a_ca_and_certs_that_chain_to_it(tmp_path: Path) -> None:
    p = ensure_pki(tmp_path, hosts=["10.1.2.3", "api.example.com", "[fd00::1]"])
    assert p.dir == tmp_path / "pki"

    ca = _cert(p.ca_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == "secp256r1"
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert dt.timedelta(days=3640) < lifetime < dt.timedelta(days=3660)

    server = _cert(p.server_cert)
    server.verify_directly_issued_by(ca)
    assert _eku(server) == [ExtendedKeyUsageOID.SERVER_AUTH]
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = sans.get_values_for_type(x509.DNSName)
    ips = sans.get_values_for_type(x509.IPAddress)
    for name in ("localhost", socket.gethostname().lower(), "api.example.com", "kubernetes.default.svc"):
        assert name in dns
    for ip in ("127.0.0.1", "::1", "10.1.2.3", "fd00::1"):
        assert ipaddress.ip_address(ip) in ips

    admin = _cert(p.admin_cert)
    admin.verify_directly_issued_by(ca)
    assert _eku(admin) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert _names(admin, NameOID.COMMON_NAME) == ["admin"]
    assert _names(admin, NameOID.ORGANIZATION_NAME) == ["system:masters"]

    for key_path, cert in ((p.ca_key, ca), (p.server_key, server), (p.admin_key, admin)):
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert key.public_key() == cert.public_key()


def test_reuses_valid_material_and_reissues_only_what_is_needed(tmp_path: Path) -> None:
    p = ensure_pki(tmp_path, hosts=["10.0.0.1"])
    files = {f: f.read_bytes() for f in (p.ca_cert, p.ca_key, p.server_cert, p.admin_cert)}

    ensure_pki(tmp_path, hosts=["10.0.0.1"])
    assert {f: f.read_bytes() for f in files} == files

    # a new host name needs a new serving cert; the CA and the admin cert stay
    ensure_pki(tmp_path, hosts=["10.0.0.1", "new.example.com"])
    assert p.ca_cert.read_bytes() == files[p.ca_cert]
    assert p.admin_cert.read_bytes() == files[p.admin_cert]
    assert p.server_cert.read_bytes() != files[p.server_cert]
    sans = _cert(p.server_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "new.example.com" in sans.get_values_for_type(x509.DNSName)


def test_a_broken_ca_replaces_everything(tmp_path: Path) -> None:
    p = ensure_pki(tmp_path, hosts=[])
    old_server = p.server_cert.read_bytes()
    p.ca_key.write_text("garbage")
    ensure_pki(tmp_path, hosts=[])
    ca = _cert(p.ca_cert)
    _cert(p.server_cert).verify_directly_issued_by(ca)
    _cert(p.admin_cert).verify_directly_issued_by(ca)
    assert p.server_cert.read_bytes() != old_server


def test_a_leaf_near_expiry_is_reissued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pki_mod, "LEAF_VALIDITY", dt.timedelta(days=10))  # inside RENEW_BEFORE
    p = ensure_pki(tmp_path, hosts=[])
    short = _cert(p.admin_cert)
    monkeypatch.undo()
    ensure_pki(tmp_path, hosts=[])
    renewed = _cert(p.admin_cert)
    assert renewed.serial_number != short.serial_number
    assert renewed.not_valid_after_utc - short.not_valid_after_utc > dt.timedelta(days=300)


def test_issue_client_cert_for_a_node(tmp_path: Path) -> None:
    p = ensure_pki(tmp_path, hosts=[])
    cert_pem, key_pem = p.issue_client_cert("system:node:n1", ["system:nodes", "extra"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(_cert(p.ca_cert))
    assert _names(cert, NameOID.COMMON_NAME) == ["system:node:n1"]
    assert _names(cert, NameOID.ORGANIZATION_NAME) == ["system:nodes", "extra"]
    assert serialization.load_pem_private_key(key_pem, password=None).public_key() == cert.public_key()


@pytest.mark.parametrize("hosts", [["bad host"], ["http://x"], [""], ["a/b"]])
def test_bad_hosts_are_rejected(tmp_path: Path, hosts: list[str]) -> None:
    with pytest.raises(PkiError):
        ensure_pki(tmp_path, hosts=hosts)


def test_bad_client_names_are_rejected(tmp_path: Path) -> None:
    p = ensure_pki(tmp_path, hosts=[])
    with pytest.raises(PkiError):
        p.issue_client_cert("", ["g"])
    with pytest.raises(PkiError):
        p.issue_client_cert("n", ["x" * 65])


def test_admin_kubeconfig_embeds_credentials(tmp_path: Path) -> None:
    p = ensure_pki(tmp_path, hosts=[])
    path = write_admin_kubeconfig(p, tmp_path / "kube" / "config", server="https://127.0.0.1:6443")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "pinnace"
    [cluster] = doc["clusters"]
    [context] = doc["contexts"]
    [user] = doc["users"]
    assert cluster["name"] == "pinnace" and context["name"] == "pinnace"
    assert context["context"] == {"cluster": "pinnace", "user": user["name"]}
    assert cluster["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == p.ca_cert.read_bytes()
    assert base64.b64decode(user["user"]["client-certificate-data"]) == p.admin_cert.read_bytes()
    assert base64.b64decode(user["user"]["client-key-data"]) == p.admin_key.read_bytes()
    with pytest.raises(PkiError):
        write_admin_kubeconfig(p, tmp_path / "x", server="127.0.0.1:6443")


async def _peer_of(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> bytes:
    """What a TLS server using server_ctx sees of a client using client_ctx."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert")
        subject = dict(x[0] for x in peer["subject"]) if peer else {}
        writer.write(f"cn={subject.get('commonName', '-')}\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                       server_hostname="localhost")
        try:
            return await asyncio.wait_for(reader.readline(), 5)
        finally:
            writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_server_tls_context_client_cert_policy(tmp_path: Path) -> None:
    p = ensure_pki(tmp_path / "a", hosts=[])
    server_ctx = p.server_ssl_context()
    assert await _peer_of(server_ctx, p.client_ssl_context()) == b"cn=admin\n"

    anonymous = ssl.create_default_context(cafile=str(p.ca_cert))
    assert await _peer_of(server_ctx, anonymous) == b"cn=-\n"

    foreign = ensure_pki(tmp_path / "b", hosts=[])
    stranger = ssl.create_default_context(cafile=str(p.ca_cert))
    stranger.load_cert_chain(foreign.admin_cert, foreign.admin_key)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        answer = await _peer_of(server_ctx, stranger)
        if not answer:  # TLS 1.3: the rejection can show as a closed stream
            raise ConnectionError("closed")
