"""How the API server reaches kubelets: its client certificate, the node's endpoint, the proxying.

pods/log, exec, attach and portforward are served by the kubelet of the pod's node; the API server
proxies to ``https://<InternalIP>:<daemonEndpoints.kubeletEndpoint.Port>/<kubelet path>``. It
authenticates with a client certificate issued once from the cluster CA (CN
``kube-apiserver-kubelet-client``, O ``system:masters``, kept as ``pki/apiserver-kubelet-client.*``)
and, as upstream does by default, does not verify the kubelet's self-signed serving certificate.

``install(app, pki_dir)`` puts a :class:`KubeletClient` on the app (blocking: call it from a thread
or before serving); handlers find it with ``of(app)``.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from cryptography import x509

from apiserver import errors, pki
from machinery import upgrade_proxy

CLIENT_NAME = "kube-apiserver-kubelet-client"
CLIENT_GROUPS = ("system:masters",)
CERT_FILE, KEY_FILE = "apiserver-kubelet-client.crt", "apiserver-kubelet-client.key"
DEFAULT_KUBELET_PORT = 10250
ADDRESS_PREFERENCE = ("InternalIP", "ExternalIP", "Hostname")
CONNECT_TIMEOUT = 10.0
#: kubelet answer code -> (Status code, reason) passed on to the client
STATUS_REASONS: dict[int, str] = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                                  500: "InternalError", 502: "BadGateway", 503: "ServiceUnavailable"}


class KubeletClient:
    """TLS settings for kubelet connections; ``proxy`` forwards one request to one kubelet."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self.ssl_context = ssl_context

    @classmethod
    def from_pki_dir(cls, pki_dir: Path) -> KubeletClient:
        """Blocking: issues the client certificate on first use, then reuses it while valid."""
        cluster = pki.Pki.at(Path(pki_dir))
        cert_path, key_path = cluster.dir / CERT_FILE, cluster.dir / KEY_FILE
        if not _still_valid(cert_path, cluster.ca_cert):
            cert_pem, key_pem = cluster.issue_client_cert(CLIENT_NAME, CLIENT_GROUPS)
            pki._write_private(key_path, key_pem)
            pki._write_private(cert_path, cert_pem, mode=0o644)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False  # kubelet serving certs are self-signed (upstream default)
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(cert_path, key_path)
        ctx.set_alpn_protocols(["http/1.1"])
        return cls(ctx)

    async def proxy(self, request: web.Request, *, host: str, port: int, path: str,
                    query: Mapping[str, Any] | list[tuple[str, str]]) -> web.StreamResponse:
        netloc = f"[{host}]" if ":" in host else host
        qs = urlencode(query, doseq=True)
        url = f"https://{netloc}:{port}{path}" + (f"?{qs}" if qs else "")
        try:
            return await upgrade_proxy.forward(request, url=url, ssl=self.ssl_context,
                                               connect_timeout=CONNECT_TIMEOUT, refuse=_refusal)
        except upgrade_proxy.DialError as exc:
            raise errors.unavailable(f"error dialing backend: {exc}") from None
        except upgrade_proxy.BackendError as exc:
            raise errors.unavailable(str(exc)) from None


def _refusal(status: int, body: bytes) -> web.StreamResponse:
    """A kubelet error (plain text) becomes a Status the way upstream's log/stream checks do."""
    message = body.decode("utf-8", "replace").strip() or f"the kubelet answered {status}"
    raise errors.ApiError(status, STATUS_REASONS.get(status, "InternalError"), message)


def _still_valid(cert_path: Path, ca_path: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_path.read_bytes()))
    except Exception:  # unreadable, not PEM, not signed by this CA: issue a new one
        return False
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > pki.RENEW_BEFORE


KUBELET_CLIENT: web.AppKey[KubeletClient] = web.AppKey("kubelet_client", KubeletClient)


def install(app: web.Application, pki_dir: Path) -> KubeletClient:
    """Blocking (may issue a certificate); call before the app starts serving."""
    client = KubeletClient.from_pki_dir(pki_dir)
    app[KUBELET_CLIENT] = client
    return client


def of(app: web.Application) -> KubeletClient:
    client = app.get(KUBELET_CLIENT)
    if client is None:
        raise errors.unavailable("this API server has no kubelet client credentials (kubelet_client.install)")
    return client


# ------------------------------------------------------------------------------ pods and nodes

def kubelet_endpoint(node: dict[str, Any]) -> tuple[str, int]:
    """The node's preferred address and the kubelet's port, as upstream's connection info."""
    status = node.get("status") or {}
    addresses = status.get("addresses") or []
    for kind in ADDRESS_PREFERENCE:
        for address in addresses:
            if address.get("type") == kind and address.get("address"):
                port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
                return address["address"], int(port or DEFAULT_KUBELET_PORT)
    known = [f"{{{a.get('type', '')} {a.get('address', '')}}}" for a in addresses]
    raise errors.unavailable(f"no preferred addresses found; known addresses: [{' '.join(known)}]")


def pick_container(pod: dict[str, Any], requested: str) -> str:
    """The container a stream is for, with upstream's errors for a missing or unknown name."""
    spec = pod.get("spec") or {}
    name = pod.get("metadata", {}).get("name", "")
    regular = [c.get("name", "") for c in spec.get("containers") or []]
    init = [c.get("name", "") for c in spec.get("initContainers") or []]
    ephemeral = [c.get("name", "") for c in spec.get("ephemeralContainers") or []]
    if not requested:
        if len(regular) == 1:
            return regular[0]
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(regular)}]"
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        raise errors.bad_request(message)
    if requested not in (*regular, *init, *ephemeral):
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


#: pod subresource -> kubelet path prefix (containers follow for all but portforward)
KUBELET_PATHS = {"log": "/containerLogs", "exec": "/exec", "attach": "/attach", "portforward": "/portforward"}


def kubelet_path(subresource: str, pod: dict[str, Any], query: Mapping[str, str]) -> tuple[str, list[tuple[str, str]]]:
    """The kubelet path and query for ``pods/<subresource>`` (``container`` moves into the path)."""
    md = pod.get("metadata", {})
    parts = [KUBELET_PATHS[subresource], md.get("namespace", ""), md.get("name", "")]
    if subresource != "portforward":
        parts.append(pick_container(pod, query.get("container", "")))
    path = "/".join(quote(p, safe="") if i else p for i, p in enumerate(parts))
    rest = [(k, v) for k, v in query.items() if k != "container"]
    return path, rest
