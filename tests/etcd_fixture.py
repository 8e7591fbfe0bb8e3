"""A real etcd for tests: one ``etcd`` process on free loopback ports with its own data dir.

Used by the storage contract suite, the multi-API-server and resilience tests, and e2e. The server
is tuned for tests (short heartbeat and election timeout, so it elects itself within ~0.2 s and
accepts 1-second leases); it can be SIGKILLed and started again on the same ports and data dir.
Processes are stopped by their own PID. Without the ``etcd`` binary (Debian package etcd-server)
the tests that need one are skipped with a reason saying so.

Optionally with TLS (``tls=True``): a throwaway CA, a server certificate for 127.0.0.1 and a
client certificate are written to the data dir's parent, and etcd requires client certificates.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ETCD = os.environ.get("PINNACE_TEST_ETCD", "etcd")
SKIP_REASON = "etcd is not installed (Debian package etcd-server; `make test` installs it)"


def etcd_binary() -> str | None:
    return shutil.which(ETCD)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@dataclass
class EtcdServer:
    """One etcd member. ``start()`` waits until it answers; ``kill()`` is SIGKILL."""

    data_dir: Path
    tls: bool = False
    client_port: int = 0
    peer_port: int = 0
    process: subprocess.Popen | None = None
    certs: TlsFiles | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def datastore(self) -> str:
        """The ``--datastore`` value naming this etcd."""
        return f"etcd://{self.endpoint}"

    def tls_args(self) -> list[str]:
        """The ``pinnace server`` flags of the client side of TLS (empty without TLS)."""
        if self.certs is None:
            return []
        return ["--etcd-cafile", str(self.certs.ca), "--etcd-certfile", str(self.certs.client_cert),
                "--etcd-keyfile", str(self.certs.client_key)]

    def start(self, *, timeout: float = 20.0) -> EtcdServer:
        binary = etcd_binary()
        if binary is None:
            raise RuntimeError(SKIP_REASON)
        self.client_port = self.client_port or free_port()
        self.peer_port = self.peer_port or free_port()
        if self.tls and self.certs is None:
            self.certs = write_certs(self.data_dir.parent / f"{self.data_dir.name}-pki")
        scheme = "https" if self.tls else "http"
        client_url = f"{scheme}://127.0.0.1:{self.client_port}"
        peer_url = f"http://127.0.0.1:{self.peer_port}"
        args = [binary, "--name", "test", "--data-dir", str(self.data_dir),
                "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                "--initial-cluster", f"test={peer_url}", "--initial-cluster-state", "new",
                "--heartbeat-interval", "50", "--election-timeout", "500",
                "--logger", "zap", "--log-level", "warn"]
        if self.certs is not None:
            args += ["--cert-file", str(self.certs.server_cert), "--key-file", str(self.certs.server_key),
                     "--trusted-ca-file", str(self.certs.ca), "--client-cert-auth"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.process.returncode}; log in {self.log_path}")
            if self.healthy():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"etcd not healthy within {timeout}s; log in {self.log_path}")

    def healthy(self) -> bool:
        if self.certs is None:
            url, context = f"http://{self.endpoint}/health", None
        else:
            import ssl

            url = f"https://{self.endpoint}/health"
            context = ssl.create_default_context(cafile=str(self.certs.ca))
            context.load_cert_chain(self.certs.client_cert, self.certs.client_key)
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as response:
                return b'"true"' in response.read()
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL, as a crash: no clean shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# ---- throwaway TLS material


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(*, subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None = None,
          signer: ec.EllipticCurvePrivateKey | None = None, ca: bool = False,
          usage: ExtendedKeyUsageOID | None = None) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
    return builder.sign(signer or key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate | None = None, key: ec.EllipticCurvePrivateKey | None = None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        assert key is not None
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)
    return path


def write_certs(directory: Path) -> TlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _cert(subject="test etcd CA", key=ca_key, ca=True)
    files = {}
    for role, usage in (("server", ExtendedKeyUsageOID.SERVER_AUTH), ("client", ExtendedKeyUsageOID.CLIENT_AUTH)):
        key = _key()
        cert = _cert(subject=f"etcd {role}", key=key, issuer=ca.subject, signer=ca_key, usage=usage)
        files[f"{role}_cert"] = _write(directory / f"{role}.crt", cert)
        files[f"{role}_key"] = _write(directory / f"{role}.key", key=key)
    return TlsFiles(ca=_write(directory / "ca.crt", ca), **files)
