"""Authentication: who sent a request, from its TLS client certificate or a bearer token.

As in Kubernetes, a client certificate's Common Name is the user and its Organizations are the
groups. Requests with neither are anonymous and get 401, except the health and version endpoints
that probes and the kubectl dispatcher call first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from apiserver.context import User

PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})


def _certificate_user(request: web.Request) -> User | None:
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    if not cert:
        return None
    name, groups = "", []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                name = value
            elif key == "organizationName":
                groups.append(value)
    return User(name, tuple(groups)) if name else None


@dataclass
class Authenticator:
    #: static bearer tokens (token -> user), e.g. for components started by ``pinnace up``
    tokens: dict[str, User] = field(default_factory=dict)
    #: the identity of requests without credentials; None means they are refused (401)
    anonymous: User | None = None
    #: signed bearer tokens (service-account JWTs): token -> user, or None when not valid
    verify_token: Callable[[str], User | None] | None = None

    def authenticate(self, request: web.Request) -> User | None:
        user = _certificate_user(request)
        if user is not None:
            return user
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            token = header[7:].strip()
            user = self.tokens.get(token)
            if user is None and self.verify_token is not None:
                user = self.verify_token(token)
            return user
        return self.anonymous

    @staticmethod
    def is_public(path: str) -> bool:
        return path in PUBLIC_PATHS or path.startswith(("/healthz/", "/livez/", "/readyz/"))
