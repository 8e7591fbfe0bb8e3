"""HTTP transport of the registry client: URLs, the auth handshake, and errors turned into one line.

Every distribution API call goes through ``Transport.request``: it picks HTTP for loopback and
configured insecure registries and HTTPS otherwise, attaches Basic credentials or a Bearer token
(fetched from the realm in the registry's 401 challenge, then retried once), and maps failures to
the ``ImageError`` hierarchy: 401/403 -> ``AuthError``, 404 -> ``RegistryNotFound``, timeouts ->
``RegistryTimeout``, refused connections -> ``RegistryUnavailable``; the registry's own error code
and message are kept in the text.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import aiohttp
import orjson
import yarl

from engine.images.auth import DOCKER_HUB, DOCKER_HUB_ENDPOINT, Authenticator, parse_challenge
from engine.images.errors import (
    AuthError,
    ImageError,
    RegistryError,
    RegistryNotFound,
    RegistryTimeout,
    RegistryUnavailable,
)
from engine.images.reference import Reference

Body = bytes | Callable[[], Any] | None
_ERROR_BODY_MAX = 64 * 1024


def is_loopback(host: str) -> bool:
    """localhost and 127.0.0.0/8 / ::1 (with or without a port) are plain HTTP, as Docker treats them."""
    if host.startswith("["):
        name = host[1 : host.find("]")]
    elif host.count(":") == 1:
        name = host.split(":", 1)[0]
    else:
        name = host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def pull_scope(ref: Reference) -> str:
    return f"repository:{ref.path}:pull"


def push_scope(ref: Reference) -> str:
    return f"repository:{ref.path}:pull,push"


class Transport:
    """One aiohttp session plus auth state, shared by every pull and push of a client."""

    def __init__(
        self,
        *,
        auth: Authenticator | None = None,
        insecure: Iterable[str] = (),
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.auth = auth or Authenticator()
        self.insecure = {h.lower() for h in insecure}
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_connect=connect_timeout, sock_read=timeout
        )
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def scheme(self, host: str) -> str:
        host = host.lower()
        if is_loopback(host) or host in self.insecure or host.split(":", 1)[0] in self.insecure:
            return "http"
        return "https"

    def url(self, ref: Reference, tail: str) -> str:
        """``<scheme>://<endpoint>/v2/<repository path>/<tail>``."""
        endpoint = DOCKER_HUB_ENDPOINT if ref.domain == DOCKER_HUB else ref.domain
        return f"{self.scheme(ref.domain)}://{endpoint}/v2/{ref.path}/{tail}"

    @contextlib.asynccontextmanager
    async def request(
        self,
        method: str,
        url: str | yarl.URL,
        *,
        ref: Reference,
        scopes: tuple[str, ...],
        what: str,
        headers: dict[str, str] | None = None,
        body: Body = None,
        ok: tuple[int, ...] = (200,),
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send (authenticating and retrying once on 401); yield the response if its status is ``ok``.

        ``body`` may be a factory so a retry can send it again (an async generator is single-use).
        """
        host = ref.domain
        target = url if isinstance(url, yarl.URL) else yarl.URL(url, encoded=True)
        for attempt in (0, 1):
            sent = dict(headers or {})
            auth_header = await self._auth_header(host, scopes)
            if auth_header:
                sent["Authorization"] = auth_header
            data = body() if callable(body) else body
            try:
                resp = await self.session.request(method, target, headers=sent, data=data)
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise self._translate(exc, host, what) from None
            if resp.status == 401 and attempt == 0:
                challenge = resp.headers.get("WWW-Authenticate", "")
                resp.release()
                if self._learn(host, challenge, scopes, had_auth="Authorization" in sent):
                    continue
                raise AuthError(f"{what}: {host}: unauthorized: authentication required")
            break
        try:
            if resp.status not in ok:
                raise await self._error(resp, host, what)
            yield resp
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._translate(exc, host, what) from None
        finally:
            resp.release()

    @staticmethod
    def _translate(exc: BaseException, host: str, what: str) -> ImageError:
        if isinstance(exc, TimeoutError):
            return RegistryTimeout(f"{what}: registry {host} timed out")
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = exc.os_error.strerror if exc.os_error and exc.os_error.strerror else str(exc)
            return RegistryUnavailable(f"{what}: cannot connect to registry {host}: {reason}")
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return RegistryUnavailable(f"{what}: registry {host} closed the connection")
        return RegistryError(f"{what}: registry {host}: {exc.__class__.__name__}: {exc}")

    def _learn(self, host: str, challenge: str, scopes: tuple[str, ...], *, had_auth: bool) -> bool:
        """Record a 401 challenge; True when a retry can succeed."""
        if not challenge:
            return False
        scheme, params = parse_challenge(challenge)
        self.auth.challenges[host] = (scheme, params)
        if scheme == "bearer":
            if had_auth:
                self.auth.forget_token(host, scopes)
            return True
        if scheme == "basic":
            return not had_auth and self.auth.credentials_for(host) is not None
        return False

    async def _auth_header(self, host: str, scopes: tuple[str, ...]) -> str | None:
        known = self.auth.challenges.get(host)
        if known is None:
            return None
        scheme, params = known
        creds = self.auth.credentials_for(host)
        if scheme == "basic":
            return creds.basic_header() if creds else None
        if scheme != "bearer":
            return None
        token = self.auth.cached_token(host, scopes)
        if token is None:
            token = await self._fetch_token(host, params, scopes)
        return f"Bearer {token}"

    async def _fetch_token(self, host: str, params: dict[str, str], scopes: tuple[str, ...]) -> str:
        realm = params.get("realm")
        if not realm:
            raise AuthError(f"registry {host}: bearer challenge without a realm")
        query = [("service", params["service"])] if params.get("service") else []
        query += [("scope", s) for s in scopes]
        creds = self.auth.credentials_for(host)
        headers = {"Authorization": creds.basic_header()} if creds else {}
        try:
            async with self.session.get(realm, params=query, headers=headers) as resp:
                if resp.status in (401, 403):
                    detail = "incorrect username or password" if creds else "authentication required"
                    raise AuthError(f"registry {host}: token request refused: {detail}")
                if resp.status != 200:
                    raise RegistryError(f"registry {host}: token endpoint answered HTTP {resp.status}")
                doc = orjson.loads(await resp.read())
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._translate(exc, host, "token request") from None
        except orjson.JSONDecodeError:
            raise RegistryError(f"registry {host}: token endpoint answered invalid JSON") from None
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not token:
            raise AuthError(f"registry {host}: token endpoint returned no token")
        self.auth.store_token(host, scopes, token, doc.get("expires_in"))
        return token

    @staticmethod
    async def _error(resp: aiohttp.ClientResponse, host: str, what: str) -> ImageError:
        code = message = ""
        with contextlib.suppress(Exception):
            raw = await read_limited(resp, _ERROR_BODY_MAX, what=what)
            errors = orjson.loads(raw).get("errors") or []
            if errors:
                code = str(errors[0].get("code", ""))
                message = str(errors[0].get("message", ""))
        detail = code.lower().replace("_", " ") if code else message
        if resp.status in (401, 403):
            return AuthError(
                f"{what}: {host}: {'denied' if resp.status == 403 else 'unauthorized'}: {message or detail}"
            )
        if resp.status == 404:
            return RegistryNotFound(f"{what} not found: {detail or 'not found'}")
        extra = f": {code} {message}".rstrip() if code or message else ""
        return RegistryError(f"{what}: registry {host} answered HTTP {resp.status}{extra}")


async def read_limited(resp: aiohttp.ClientResponse, limit: int, *, what: str) -> bytes:
    """The whole body, refusing more than ``limit`` bytes (documents must be small)."""
    data = bytearray()
    while chunk := await resp.content.read(65536):
        data += chunk
        if len(data) > limit:
            raise RegistryError(f"{what}: larger than {limit} bytes")
    return bytes(data)
