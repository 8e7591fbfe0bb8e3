"""The cluster's certificates: a private CA, the API server's serving cert and client certs.

Kubernetes authenticates components and users by client certificates signed by the cluster CA
(CN = user name, O = groups), and clients trust the API server through the same CA. ``ensure_pki``
creates this set once under ``<data_dir>/pki/`` and reuses it on later starts, so kubeconfigs handed
out earlier stay valid; a part that is missing, expired, unreadable or (for the serving cert) lacks a
requested host name is re-issued. Keys are ECDSA P-256: generation takes milliseconds.

All functions here do blocking file I/O; async callers run them in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import ipaddress
import os
import socket
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=365)
#: a leaf closer than this to its expiry is re-issued by ensure_pki
RENEW_BEFORE = dt.timedelta(days=30)
#: host names every serving cert carries: loopback plus the in-cluster service names
DEFAULT_SERVER_HOSTS = ("localhost", "127.0.0.1", "::1", "kubernetes", "kubernetes.default",
                        "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
ADMIN_NAME = "admin"
ADMIN_GROUPS = ("system:masters",)
KUBECONFIG_NAME = "pinnace"
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock skew between nodes


class PkiError(ValueError):
    """Bad input to the PKI functions (e.g. an unusable host name or user name)."""


@dataclass(frozen=True)
class Pki:
    """Paths of the cluster's certificates and keys, plus what is built from them."""

    dir: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    admin_cert: Path
    admin_key: Path

    @classmethod
    def at(cls, pki_dir: Path) -> Pki:
        return cls(dir=pki_dir, ca_cert=pki_dir / "ca.crt", ca_key=pki_dir / "ca.key",
                   server_cert=pki_dir / "server.crt", server_key=pki_dir / "server.key",
                   admin_cert=pki_dir / "admin.crt", admin_key=pki_dir / "admin.key")

    def server_ssl_context(self) -> ssl.SSLContext:
        """TLS for the API server: asks for (but does not demand) a client cert signed by our CA.

        CERT_OPTIONAL lets a request without a cert reach the app, which answers 401 with a Status,
        as Kubernetes does, instead of failing the handshake. A cert that is *presented* and not
        signed by the CA still fails the handshake. HTTP/1.1 only: kubectl streams need it.
        """
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.server_cert, self.server_key)
        ctx.load_verify_locations(cafile=self.ca_cert)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def client_ssl_context(self) -> ssl.SSLContext:
        """TLS for an in-process admin client (tests, the `pinnace` CLI on the server host)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        ctx.load_cert_chain(self.admin_cert, self.admin_key)
        return ctx

    def issue_client_cert(self, name: str, groups: Iterable[str] = ()) -> tuple[bytes, bytes]:
        """A new client cert (CN=name, O=each group) and its key, both PEM; nothing is written."""
        ca_cert, ca_key = _load_ca(self)
        key = _new_key()
        cert = _sign_leaf(subject=_client_subject(name, groups), key=key, ca_cert=ca_cert,
                          ca_key=ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
        return _cert_pem(cert), _key_pem(key)


def ensure_pki(data_dir: Path, *, hosts: Iterable[str] = ()) -> Pki:
    """Create the CA, serving cert and admin cert under ``data_dir/pki`` unless valid ones exist."""
    hosts = list(hosts)
    wanted_sans = _sans([*DEFAULT_SERVER_HOSTS, socket.gethostname(), *hosts])
    pki = Pki.at(Path(data_dir) / "pki")
    pki.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(pki.dir / ".lock"):
        ca = _valid_ca(pki)
        fresh_ca = ca is None
        if ca is None:
            ca = _new_ca()
            _write_pair(pki.ca_cert, pki.ca_key, *ca)
        ca_cert, ca_key = ca
        if fresh_ca or not _valid_leaf(pki.server_cert, pki.server_key, ca_cert, wanted_sans):
            key = _new_key()
            cert = _sign_leaf(subject=_name(cn="pinnace-apiserver"), key=key, ca_cert=ca_cert,
                              ca_key=ca_key, usage=ExtendedKeyUsageOID.SERVER_AUTH, sans=wanted_sans)
            _write_pair(pki.server_cert, pki.server_key, cert, key)
        if fresh_ca or not _valid_leaf(pki.admin_cert, pki.admin_key, ca_cert, ()):
            key = _new_key()
            cert = _sign_leaf(subject=_client_subject(ADMIN_NAME, ADMIN_GROUPS), key=key,
                              ca_cert=ca_cert, ca_key=ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
            _write_pair(pki.admin_cert, pki.admin_key, cert, key)
    return pki


def write_admin_kubeconfig(pki: Pki, path: Path, *, server: str) -> Path:
    """Write a kubeconfig for the admin user with all credentials embedded; mode 0600."""
    if not server.startswith(("https://", "http://")):
        raise PkiError(f"server must be an http(s) URL, got {server!r}")
    user = f"{KUBECONFIG_NAME}-admin"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": KUBECONFIG_NAME, "cluster": {
            "server": server, "certificate-authority-data": _b64(pki.ca_cert.read_bytes())}}],
        "users": [{"name": user, "user": {
            "client-certificate-data": _b64(pki.admin_cert.read_bytes()),
            "client-key-data": _b64(pki.admin_key.read_bytes())}}],
        "contexts": [{"name": KUBECONFIG_NAME, "context": {"cluster": KUBECONFIG_NAME, "user": user}}],
        "current-context": KUBECONFIG_NAME,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, yaml.safe_dump(config, sort_keys=False).encode())
    return path


# --- building certificates ---------------------------------------------------------------------

def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(*, cn: str, orgs: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _client_subject(name: str, groups: Iterable[str]) -> x509.Name:
    groups = list(groups)
    for value in (name, *groups):
        if not isinstance(value, str) or not value or len(value) > 64:
            raise PkiError(f"user and group names must be 1-64 characters, got {value!r}")
    return _name(cn=name, orgs=groups)


def _sans(hosts: Iterable[str]) -> tuple[x509.GeneralName, ...]:
    """Deduplicated SAN entries: IP literals as IPAddress, everything else as DNSName."""
    out: dict[str, x509.GeneralName] = {}
    for raw in hosts:
        host = raw.strip().strip("[]") if isinstance(raw, str) else ""
        if _is_ip(host):
            ip = ipaddress.ip_address(host)
            out.setdefault(str(ip), x509.IPAddress(ip))
        elif host and not any(c.isspace() or c in "/:@[]" for c in host):
            out.setdefault(host.lower(), x509.DNSName(host.lower()))
        else:
            raise PkiError(f"not a usable host name or IP address: {raw!r}")
    return tuple(out.values())


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _new_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    subject = _name(cn="pinnace-ca")
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE).not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
                         crl_sign=cert_sign, encipher_only=False, decipher_only=False)


def _sign_leaf(*, subject: x509.Name, key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
               ca_key: ec.EllipticCurvePrivateKey, usage: x509.ObjectIdentifier,
               sans: tuple[x509.GeneralName, ...] = ()) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    not_after = min(now + LEAF_VALIDITY, ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


# --- checking what is on disk ------------------------------------------------------------------

def _load_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise ValueError(f"{key_path} does not belong to {cert_path}")
    return cert, key


def _load_ca(pki: Pki) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        return _load_pair(pki.ca_cert, pki.ca_key)
    except (OSError, ValueError) as e:
        raise PkiError(f"cannot load the cluster CA from {pki.dir}: {e}") from e


def _valid_ca(pki: Pki) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert, key = _load_pair(pki.ca_cert, pki.ca_key)
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return None
    if not constraints.ca or _remaining(cert) < LEAF_VALIDITY:
        return None
    return cert, key


def _valid_leaf(cert_path: Path, key_path: Path, ca_cert: x509.Certificate,
                wanted_sans: tuple[x509.GeneralName, ...]) -> bool:
    try:
        cert, _ = _load_pair(cert_path, key_path)
        cert.verify_directly_issued_by(ca_cert)
        present = (cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                   if wanted_sans else ())
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return _remaining(cert) > RENEW_BEFORE and all(san in present for san in wanted_sans)


def _remaining(cert: x509.Certificate) -> dt.timedelta:
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC)


# --- files -------------------------------------------------------------------------------------

def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _write_pair(cert_path: Path, key_path: Path, cert: x509.Certificate,
                key: ec.EllipticCurvePrivateKey) -> None:
    _write_private(key_path, _key_pem(key))
    _write_private(cert_path, _cert_pem(cert), mode=0o644)


def _write_private(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write atomically (temp file + rename) so a reader never sees half a key."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, mode)  # O_CREAT's mode is filtered by the umask and ignored for old files
        f.write(data)
        f.flush()
        os.fsync(fd)
    os.replace(tmp, path)


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Serialise ensure_pki between processes (server and agent may start together)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
