"""The kubelet server's TLS: a self-signed serving certificate and client-cert verification.

Like the upstream kubelet without ``--tls-cert-file``, the serving certificate is self-signed and
generated once into ``<root_dir>/pki/kubelet.{crt,key}`` (reused while valid), because the API
server does not verify kubelet serving certs by default. Clients are authenticated by certificates
signed by the cluster CA (``ca_pem``, taken from the kubelet's kubeconfig). The handshake asks for a
client cert without demanding it, so a request without one gets an HTTP 401, not a TLS failure.

Blocking file I/O and key generation: call ``ensure_serving_cert`` from a thread.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from apiserver import pki

SERVING_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)


def serving_paths(root_dir: Path) -> tuple[Path, Path]:
    base = Path(root_dir) / "pki"
    return base / "kubelet.crt", base / "kubelet.key"


def ensure_serving_cert(root_dir: Path, *, hosts: tuple[str, ...]) -> tuple[Path, Path]:
    """The serving cert and key paths, generating a self-signed pair when none usable exists."""
    cert_path, key_path = serving_paths(root_dir)
    cert_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    wanted = pki._sans(("localhost", "127.0.0.1", socket.gethostname(), *hosts))
    if _usable(cert_path, key_path, wanted):
        return cert_path, key_path
    key = pki._new_key()
    now = dt.datetime.now(dt.UTC)
    subject = pki._name(cn=f"{socket.gethostname()}@{int(now.timestamp())}")
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + SERVING_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(wanted)), critical=False)
        .sign(key, hashes.SHA256())
    )
    pki._write_pair(cert_path, key_path, cert, key)
    return cert_path, key_path


def _usable(cert_path: Path, key_path: Path, wanted: tuple[x509.GeneralName, ...]) -> bool:
    try:
        cert, _ = pki._load_pair(cert_path, key_path)
        present = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound):
        return False
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return left > RENEW_BEFORE and all(san in present for san in wanted)


class TlsError(ValueError):
    """The cluster CA given to the kubelet server is not a usable PEM certificate."""


def server_context(*, cert_path: Path, key_path: Path, ca_pem: bytes) -> ssl.SSLContext:
    """TLS 1.2+, HTTP/1.1 only (streams upgrade), client certs checked against the cluster CA.

    Without a CA (a kubeconfig that names none) no client cert can be verified, so the server
    still runs but answers every authenticated path with 401."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path)
    ctx.set_alpn_protocols(["http/1.1"])
    if not ca_pem.strip():
        return ctx
    try:
        ctx.load_verify_locations(cadata=ca_pem.decode("ascii"))
    except (ssl.SSLError, ValueError) as exc:
        raise TlsError(f"the cluster CA for the kubelet server is not a PEM certificate: {exc}") from None
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx
