"""Reading kubeconfig files into what a client needs to reach and authenticate to a cluster.

Every component (controllers, scheduler, kubelet, CLI) finds the API server the way kubectl does:
an explicit file, else the ``KUBECONFIG`` list (merged, first file wins per name), else
``~/.kube/config``; then the chosen context's cluster and user. File references are resolved
relative to the kubeconfig that names them, and read at load time so that errors surface at once.
The result, ``ClusterConfig``, is plain data; it builds the ssl.SSLContext and auth headers.

Loading reads files, so async callers run it in a thread.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path("~/.kube/config")


class KubeconfigError(ValueError):
    """The kubeconfig is missing, malformed, or does not describe a usable cluster and user."""


@dataclass(frozen=True, repr=False)
class ClusterConfig:
    """Where the API server is and how to authenticate to it (credentials held in memory)."""

    server: str
    ca_data: bytes | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    token: str | None = None
    username: str | None = None
    password: str | None = None
    #: the context's default namespace
    namespace: str = "default"
    context: str = ""

    def __repr__(self) -> str:  # never print credentials
        return f"ClusterConfig(server={self.server!r}, context={self.context!r})"

    @property
    def is_https(self) -> bool:
        return self.server.startswith("https://")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context (None for plain http, where kubectl sends no credentials either)."""
        if not self.is_https:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(["http/1.1"])
        try:
            if self.insecure_skip_tls_verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            elif self.ca_data:
                ctx.load_verify_locations(cadata=self.ca_data.decode("ascii", "replace"))
            else:
                ctx.load_default_certs()
            if self.client_cert_data and self.client_key_data:
                with _private_file(self.client_cert_data + b"\n" + self.client_key_data) as path:
                    ctx.load_cert_chain(path)
        except ssl.SSLError as e:
            raise KubeconfigError(f"context {self.context!r}: unusable TLS material: {e}") from e
        return ctx

    def headers(self) -> dict[str, str]:
        """Auth headers to send on every request (bearer token, or basic auth)."""
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.username is not None and self.password is not None:
            pair = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return {"Authorization": f"Basic {pair}"}
        return {}


def load_kubeconfig(path: str | os.PathLike[str] | None = None, *,
                    context: str | None = None) -> ClusterConfig:
    """Load the cluster config of ``context`` (default: current-context) from the kubeconfig."""
    files = _config_files(path)
    merged = _merge([(f, _read_yaml(f)) for f in files])
    name = context or merged.current_context
    if not name:
        raise KubeconfigError(f"no current-context in {_names(files)}; pass a context name")
    if name not in merged.contexts:
        raise KubeconfigError(f"context {name!r} not found in {_names(files)}")
    ctx, _ = merged.contexts[name]
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    if cluster_name not in merged.clusters:
        raise KubeconfigError(f"context {name!r}: cluster {cluster_name!r} not found")
    if user_name and user_name not in merged.users:
        raise KubeconfigError(f"context {name!r}: user {user_name!r} not found")
    cluster, cluster_base = merged.clusters[cluster_name]
    user, user_base = merged.users.get(user_name, ({}, Path()))
    where = f"context {name!r}"
    server = _server_url(cluster.get("server"), where)
    cert = _blob(user, "client-certificate", user_base, where)
    key = _blob(user, "client-key", user_base, where)
    if (cert is None) != (key is None):
        raise KubeconfigError(f"{where}: client-certificate and client-key must be given together")
    token = _str(user, "token", where)
    if token is None and user.get("tokenFile"):
        token = _read_file(user_base, _str(user, "tokenFile", where) or "", where).decode().strip()
    if cert is None and token is None and ("exec" in user or "auth-provider" in user):
        raise KubeconfigError(f"{where}: exec and auth-provider credentials are not supported")
    return ClusterConfig(
        server=server,
        ca_data=_blob(cluster, "certificate-authority", cluster_base, where),
        insecure_skip_tls_verify=_bool(cluster, "insecure-skip-tls-verify", where),
        tls_server_name=_str(cluster, "tls-server-name", where),
        client_cert_data=cert,
        client_key_data=key,
        token=token,
        username=_str(user, "username", where),
        password=_str(user, "password", where),
        namespace=_str(ctx, "namespace", where) or "default",
        context=name,
    )


# --- locating and merging files ----------------------------------------------------------------

@dataclass
class _Merged:
    """Named entries, each with the directory its relative paths are resolved against."""

    clusters: dict[str, tuple[Mapping[str, Any], Path]]
    users: dict[str, tuple[Mapping[str, Any], Path]]
    contexts: dict[str, tuple[Mapping[str, Any], Path]]
    current_context: str | None = None


#: top-level list (also the _Merged attribute) -> key of each entry's body
_SECTIONS = {"clusters": "cluster", "users": "user", "contexts": "context"}


def _config_files(path: str | os.PathLike[str] | None) -> list[Path]:
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise KubeconfigError(f"kubeconfig {p} does not exist")
        return [p]
    env = os.environ.get("KUBECONFIG", "")
    candidates = [Path(p).expanduser() for p in env.split(os.pathsep) if p] or [DEFAULT_PATH.expanduser()]
    found = [p for p in candidates if p.is_file()]
    if not found:
        raise KubeconfigError(f"no kubeconfig found (looked at {_names(candidates)})")
    return found


def _read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {e}") from e
    except yaml.YAMLError as e:
        raise KubeconfigError(f"kubeconfig {path} is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise KubeconfigError(f"kubeconfig {path} is not a mapping")
    return data


def _merge(docs: list[tuple[Path, Mapping[str, Any]]]) -> _Merged:
    """Merge like kubectl: the first file that defines a name (or current-context) wins."""
    merged = _Merged(clusters={}, users={}, contexts={})
    for path, doc in docs:
        base = path.resolve().parent
        for section, body_key in _SECTIONS.items():
            entries = doc.get(section) or []
            if not isinstance(entries, list):
                raise KubeconfigError(f"{path}: {section} must be a list")
            target = getattr(merged, section)
            for entry in entries:
                if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                    raise KubeconfigError(f"{path}: every entry of {section} needs a name")
                body = entry.get(body_key) or {}
                if not isinstance(body, Mapping):
                    raise KubeconfigError(
                        f"{path}: {section} {entry['name']!r}: {body_key} must be a mapping")
                target.setdefault(entry["name"], (body, base))
        if not merged.current_context and doc.get("current-context"):
            merged.current_context = str(doc["current-context"])
    return merged


def _names(paths: list[Path]) -> str:
    return ", ".join(str(p) for p in paths)


# --- reading fields ----------------------------------------------------------------------------

def _str(section: Mapping[str, Any], key: str, where: str) -> str | None:
    value = section.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise KubeconfigError(f"{where}: {key} must be a string")
    return value


def _bool(section: Mapping[str, Any], key: str, where: str) -> bool:
    value = section.get(key, False)
    if not isinstance(value, bool):
        raise KubeconfigError(f"{where}: {key} must be true or false")
    return value


def _server_url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise KubeconfigError(f"{where}: the cluster has no server")
    if "://" not in value:
        value = f"https://{value}"
    if not value.startswith(("https://", "http://")):
        raise KubeconfigError(f"{where}: server {value!r} is not an http(s) URL")
    return value.rstrip("/")


def _blob(section: Mapping[str, Any], key: str, base: Path, where: str) -> bytes | None:
    """``<key>-data`` (base64) wins over ``<key>`` (a file path, relative to the kubeconfig)."""
    data = _str(section, f"{key}-data", where)
    if data is not None:
        try:
            return base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError) as e:
            raise KubeconfigError(f"{where}: {key}-data is not valid base64") from e
    file = _str(section, key, where)
    return None if file is None else _read_file(base, file, where)


def _read_file(base: Path, name: str, where: str) -> bytes:
    path = base / Path(name).expanduser()
    try:
        return path.read_bytes()
    except OSError as e:
        raise KubeconfigError(f"{where}: cannot read {path}: {e.strerror or e}") from e


@contextlib.contextmanager
def _private_file(data: bytes) -> Iterator[str]:
    """A path holding ``data`` for ssl's file-only loaders; in memory (memfd) where possible."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("pinnace-credentials", os.MFD_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    fd, name = tempfile.mkstemp(prefix="pinnace-cred-")  # created 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield name
    finally:
        os.unlink(name)
