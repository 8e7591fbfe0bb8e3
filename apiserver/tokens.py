"""Service-account tokens: the ``serviceaccounts/token`` subresource (TokenRequest) and their check.

Tokens are JWTs signed ES256 with the cluster's service-account key (``<data_dir>/pki/sa.key``,
made once beside the CA, so tokens stay valid across restarts), carrying the upstream claims:
``iss``, ``sub`` = ``system:serviceaccount:<ns>:<name>``, ``aud``, ``exp``/``iat``/``nbf``, ``jti``
and the private ``kubernetes.io`` claim naming the namespace, service account and bound object
(pod, and its node; or a secret or node). The kubelet asks for one per projected token volume.

Wiring (done by the server, not here): ``app[tokens.SIGNER] = TokenSigner.ensure(pki_dir)``, the
handler under ``"token": {"POST": tokens.create_token}``, and ``TokenSigner.authenticate`` as the
bearer-token check of :class:`apiserver.auth.Authenticator`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from apiserver import codec, errors, registry
from apiserver.context import User
from apiserver.handlers import common
from apiserver.handlers.paths import Target
from apiserver.store import ObjectStore

ISSUER = "https://kubernetes.default.svc.cluster.local"
KEY_FILE = "sa.key"
PUBLIC_FILE = "sa.pub"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600  # upstream: "may not specify a duration less than 10 minutes"
MAX_EXPIRATION = 1 << 32
GROUP = "authentication.k8s.io"
API_VERSION = f"{GROUP}/v1"
ALGORITHM = "ES256"
_COORD = 32  # bytes per P-256 coordinate: a JWS ES256 signature is r || s, 64 bytes

#: bound object kinds -> (resource plural, the claim key naming it)
BOUND_KINDS: dict[str, tuple[str, str]] = {"Pod": ("pods", "pod"), "Secret": ("secrets", "secret"),
                                           "Node": ("nodes", "node")}


class TokenError(ValueError):
    """A token is malformed, forged, expired or not for us."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise TokenError("token is not base64url") from exc


@dataclass(frozen=True)
class TokenSigner:
    key: ec.EllipticCurvePrivateKey
    issuer: str = ISSUER
    #: the API server's own audiences: the default of a TokenRequest, required of a bearer token
    audiences: tuple[str, ...] = (ISSUER,)

    @classmethod
    def ensure(cls, pki_dir: Path) -> TokenSigner:
        """Load ``sa.key`` or create it once (atomically: concurrent servers agree on one key). Blocking."""
        pki_dir.mkdir(parents=True, exist_ok=True)
        path = pki_dir / KEY_FILE
        if not path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            tmp = pki_dir / f".{KEY_FILE}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            try:
                os.link(tmp, path)  # fails if another process won the race: its key is used
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise TokenError(f"{path}: not an ECDSA key")
        signer = cls(loaded)
        public = pki_dir / PUBLIC_FILE
        if not public.exists() or public.read_bytes() != signer.public_pem():
            public.write_bytes(signer.public_pem())
        return signer

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def kid(self) -> str:
        """As upstream: base64url(sha256(DER of the public key))."""
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        return _b64url(hashlib.sha256(der).digest())

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": ALGORITHM, "kid": self.kid}
        signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + _b64url(json.dumps(claims, separators=(",", ":")).encode()))
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64url(r.to_bytes(_COORD, "big") + s.to_bytes(_COORD, "big"))

    def verify(self, token: str, *, now: float | None = None) -> dict[str, Any]:
        """The claims of a token we signed that is valid now and meant for us; TokenError otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("token is not a JWS compact serialization")
        try:
            header = json.loads(_unb64url(parts[0]))
            claims = json.loads(_unb64url(parts[1]))
        except ValueError as exc:
            raise TokenError("token header or claims are not JSON") from exc
        if not isinstance(header, dict) or header.get("alg") != ALGORITHM or not isinstance(claims, dict):
            raise TokenError("unexpected token algorithm")
        signature = _unb64url(parts[2])
        if len(signature) != 2 * _COORD:
            raise TokenError("bad signature length")
        der = encode_dss_signature(int.from_bytes(signature[:_COORD], "big"),
                                   int.from_bytes(signature[_COORD:], "big"))
        try:
            self.key.public_key().verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise TokenError("invalid signature") from None
        moment = time.time() if now is None else now
        if claims.get("iss") != self.issuer:
            raise TokenError("token issuer is not ours")
        if not isinstance(claims.get("exp"), int) or moment >= claims["exp"]:
            raise TokenError("token has expired")
        if isinstance(claims.get("nbf"), int) and moment < claims["nbf"] - 60:
            raise TokenError("token is not valid yet")
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences or []
        if not set(audiences) & set(self.audiences):
            raise TokenError("token audiences are not ours")
        return claims

    def authenticate(self, token: str) -> User | None:
        """The bearer-token check for auth.py: the service account's user, or None."""
        try:
            claims = self.verify(token)
        except TokenError:
            return None
        private = claims.get("kubernetes.io") or {}
        namespace = private.get("namespace") or ""
        name = (private.get("serviceaccount") or {}).get("name") or ""
        if not namespace or not name or claims.get("sub") != subject(namespace, name):
            return None
        return User(subject(namespace, name), ("system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                                               "system:authenticated"))


def subject(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


SIGNER = web.AppKey("token_signer", TokenSigner)


def _rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _invalid(name: str, field: str, message: str) -> errors.ApiError:
    return errors.invalid(f"TokenRequest.{GROUP}", name, [errors.cause(field, message)], group=GROUP,
                          kind="TokenRequest")


def _expiration(spec: dict[str, Any], name: str) -> int:
    value = spec.get("expirationSeconds")
    if value is None:
        return DEFAULT_EXPIRATION
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(name, "spec.expirationSeconds", f"Invalid value: {value!r}: must be an integer")
    if value < MIN_EXPIRATION:
        raise _invalid(name, "spec.expirationSeconds",
                       f"Invalid value: {value}: may not specify a duration less than 10 minutes")
    if value > MAX_EXPIRATION:
        raise _invalid(name, "spec.expirationSeconds",
                       f"Invalid value: {value}: may not specify a duration larger than 2^32 seconds")
    return value


async def _bound_claims(store: ObjectStore, namespace: str, ref: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``kubernetes.io`` entries naming the bound object (and a pod's node), checked as upstream."""
    kind = ref.get("kind") or ""
    if kind not in BOUND_KINDS or (ref.get("apiVersion") or "v1") != "v1":
        raise _invalid(name, "spec.boundObjectRef.kind",
                       f'Unsupported value: "{kind}": supported values: "Node", "Pod", "Secret"')
    plural, claim = BOUND_KINDS[kind]
    rt = registry.lookup("", "v1", plural)
    assert rt is not None
    obj = await store.get(rt, namespace if rt.namespaced else None, ref.get("name") or "")
    md = obj["metadata"]
    if ref.get("uid") and ref["uid"] != md.get("uid"):
        raise errors.conflict(kind, ref.get("name") or "",
                              f"the UID in the bound object reference ({ref['uid']}) does not match the UID "
                              f"in record. The object might have been deleted and then recreated")
    out = {claim: {"name": md["name"], "uid": md.get("uid", "")}}
    node_name = (obj.get("spec") or {}).get("nodeName") if kind == "Pod" else None
    if node_name:
        nodes = registry.lookup("", "v1", "nodes")
        assert nodes is not None
        try:
            node = await store.get(nodes, None, node_name)
            out["node"] = {"name": node_name, "uid": node["metadata"].get("uid", "")}
        except errors.ApiError:
            pass  # a pod on a node that is gone still gets its token, without the node claim
    return out


async def create_token(request: web.Request, store: ObjectStore, target: Target) -> web.StreamResponse:
    """POST .../serviceaccounts/<name>/token: a signed token for that service account."""
    signer = request.app.get(SIGNER)
    if signer is None:
        raise errors.unavailable("service account token signing is not configured on this server")
    if target.resource.plural != "serviceaccounts" or target.namespace is None:
        raise errors.method_not_allowed()
    raw = await common.body(request)
    body = codec.decode_object(raw, request.headers.get("Content-Type")) if raw.strip() else {}
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise errors.bad_request("TokenRequest spec must be an object")
    account = await store.get(target.resource, target.namespace, target.name)  # 404 as upstream
    audiences = spec.get("audiences") or list(signer.audiences)
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise _invalid(target.name, "spec.audiences", "Invalid value: must be a list of strings")
    expiration = _expiration(spec, target.name)
    private: dict[str, Any] = {"namespace": target.namespace,
                               "serviceaccount": {"name": target.name, "uid": account["metadata"].get("uid", "")}}
    bound = spec.get("boundObjectRef")
    if bound:
        private.update(await _bound_claims(store, target.namespace, bound, target.name))
    now = int(time.time())
    claims = {"aud": audiences, "exp": now + expiration, "iat": now, "iss": signer.issuer,
              "jti": str(uuid.uuid4()), "kubernetes.io": private, "nbf": now,
              "sub": subject(target.namespace, target.name)}
    answer = {
        "kind": "TokenRequest", "apiVersion": API_VERSION,
        "metadata": {"name": target.name, "namespace": target.namespace, "creationTimestamp": None},
        "spec": {"audiences": audiences, "expirationSeconds": expiration,
                 "boundObjectRef": bound or None},
        "status": {"token": signer.sign(claims), "expirationTimestamp": _rfc3339(now + expiration)},
    }
    return common.json_response(answer, status=201)
