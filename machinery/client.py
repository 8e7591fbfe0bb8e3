"""Async REST client for the Kubernetes API, used by every Pinnace component to reach the API server.

It speaks the plain Kubernetes wire format (JSON bodies, Status errors, chunked newline-delimited
watch streams) over one keep-alive aiohttp session per client, so it works against our API server
and a real one alike. Objects stay plain dicts; a ``Resource`` record names what to address.

Failures come in two kinds: the server answered with an error (``ApiError`` and its subclasses,
carrying the Kubernetes Status), or it could not be reached / the answer was unreadable
(``TransportError``). Watchers and informers retry the second kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from machinery.kubeconfig import ClusterConfig

USER_AGENT = "pinnace/0.1"
PatchType = Literal["merge", "strategic", "json", "apply"]
PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",  # JSON is YAML; servers accept it
}


@dataclass(frozen=True)
class Resource:
    """A REST resource: which group/version serves it, its plural path name, and its scope."""

    group: str
    version: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, *, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """The URL path; ``namespace=None`` on a namespaced resource means all namespaces."""
        if namespace is not None and not self.namespaced:
            raise ValueError(f"{self.plural} is cluster-scoped; no namespace may be given")
        if subresource and not name:
            raise ValueError("a subresource needs an object name")
        parts = ["api", self.version] if not self.group else ["apis", self.group, self.version]
        if namespace is not None:
            parts += ["namespaces", namespace]
        parts.append(self.plural)
        parts += [p for p in (name, subresource) if p]
        for part in parts:
            if not part or part in (".", ".."):
                raise ValueError(f"invalid path segment {part!r} for {self.plural}")
        return "/" + "/".join(quote(p, safe="") for p in parts)


# --- errors ------------------------------------------------------------------------------------

class TransportError(Exception):
    """The API server could not be reached, or its answer could not be read. Worth retrying."""


class ApiError(Exception):
    """The API server answered with an error; ``status`` is the Kubernetes Status object."""

    def __init__(self, status: Mapping[str, Any]) -> None:
        self.status: dict[str, Any] = dict(status)
        super().__init__(f"{self.code} {self.reason}: {self.message}")

    @property
    def code(self) -> int:
        return int(self.status.get("code") or 0)

    @property
    def reason(self) -> str:
        return str(self.status.get("reason") or "")

    @property
    def message(self) -> str:
        return str(self.status.get("message") or "")


class BadRequest(ApiError): ...
class Unauthorized(ApiError): ...
class Forbidden(ApiError): ...
class NotFound(ApiError): ...
class Conflict(ApiError): ...
class AlreadyExists(ApiError): ...
class Gone(ApiError):
    """The requested resourceVersion (or continue token) is too old: re-list."""
class Invalid(ApiError): ...
class TooManyRequests(ApiError): ...
class ServerError(ApiError): ...


#: what a failed connection, TLS handshake or read raises inside aiohttp
_TRANSPORT_ERRORS = (TimeoutError, aiohttp.ClientError, OSError)
#: Status.reason values that decide the class on their own (409 is both Conflict and AlreadyExists)
_ERROR_BY_REASON: dict[str, type[ApiError]] = {"AlreadyExists": AlreadyExists, "Expired": Gone}
_ERROR_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 410: Gone,
    422: Invalid, 429: TooManyRequests,
}
#: reasons for a synthesized Status when the server's error body is not a Status
_REASON_BY_CODE: dict[int, str] = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    409: "Conflict", 410: "Gone", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
    500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}


def error_from_status(status: Mapping[str, Any]) -> ApiError:
    """The ApiError subclass matching a Status object's reason, else its code."""
    code = int(status.get("code") or 0)
    cls = _ERROR_BY_REASON.get(str(status.get("reason") or "")) or _ERROR_BY_CODE.get(code)
    if cls is None:
        cls = ServerError if code >= 500 else ApiError
    return cls(status)


def make_status(code: int, message: str, reason: str | None = None) -> dict[str, Any]:
    """A Failure Status, for error answers that did not carry one."""
    if reason is None:
        reason = _REASON_BY_CODE.get(code, "Unknown")
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def is_not_found(err: BaseException) -> bool:
    return isinstance(err, NotFound)


def is_conflict(err: BaseException) -> bool:
    return isinstance(err, Conflict)


def is_already_exists(err: BaseException) -> bool:
    return isinstance(err, AlreadyExists)


def is_gone(err: BaseException) -> bool:
    return isinstance(err, Gone)


# --- the client --------------------------------------------------------------------------------

class ApiClient:
    """One keep-alive HTTP session to one API server; use as ``async with ApiClient(cfg) as c``."""

    def __init__(self, config: ClusterConfig, *, request_timeout: float = 60.0,
                 max_connections: int = 100) -> None:
        self.config = config
        self.request_timeout = request_timeout
        self._max_connections = max_connections
        self._ssl = config.ssl_context()
        self._headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **config.headers()}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ApiClient:
        self._open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        # created lazily: an aiohttp session belongs to the running event loop
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else False,
                                             limit=self._max_connections, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers)
        return self._session

    # -- CRUD -------------------------------------------------------------------------------------

    async def get(self, res: Resource, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        return await self.request("GET", res.path(namespace=self._ns(res, namespace), name=name))

    async def list(self, res: Resource, *, namespace: str | None = None,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None) -> dict[str, Any]:
        """One List (page); ``namespace=None`` lists a namespaced resource across all namespaces."""
        params = _params(labelSelector=label_selector, fieldSelector=field_selector, limit=limit,
                         resourceVersion=resource_version, **{"continue": continue_})
        return await self.request("GET", res.path(namespace=namespace), params=params)

    async def create(self, res: Resource, obj: Mapping[str, Any], *,
                     namespace: str | None = None) -> dict[str, Any]:
        ns = self._ns(res, namespace or _meta(obj).get("namespace"))
        return await self.request("POST", res.path(namespace=ns), body=obj)

    async def replace(self, res: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        """PUT the whole object; its resourceVersion makes it a compare-and-swap (409 on mismatch)."""
        return await self.request("PUT", self._obj_path(res, obj), body=obj)

    async def update_status(self, res: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("PUT", self._obj_path(res, obj, subresource="status"), body=obj)

    async def patch(self, res: Resource, name: str, patch: Any, *, namespace: str | None = None,
                    patch_type: PatchType = "merge", field_manager: str | None = None,
                    force: bool | None = None, subresource: str | None = None) -> dict[str, Any]:
        if patch_type not in PATCH_CONTENT_TYPES:
            raise ValueError(f"patch_type must be one of {sorted(PATCH_CONTENT_TYPES)}, not {patch_type!r}")
        if patch_type == "apply" and not field_manager:
            raise ValueError("a server-side apply patch needs a field_manager")
        params = _params(fieldManager=field_manager, force=force)
        path = res.path(namespace=self._ns(res, namespace), name=name, subresource=subresource)
        return await self.request("PATCH", path, params=params, body=patch,
                                  content_type=PATCH_CONTENT_TYPES[patch_type])

    async def delete(self, res: Resource, name: str, *, namespace: str | None = None,
                     propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                     preconditions: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Delete; returns the object (if finalizers/grace keep it) or a Success Status."""
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = dict(preconditions)
        path = res.path(namespace=self._ns(res, namespace), name=name)
        return await self.request("DELETE", path, body=options)

    # -- watch ------------------------------------------------------------------------------------

    async def watch(self, res: Resource, *, namespace: str | None = None,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, timeout_seconds: int | None = None,
                    allow_bookmarks: bool = True) -> AsyncIterator[dict[str, Any]]:
        """Yield ``{"type", "object"}`` events until the server ends the stream.

        An ERROR event raises the matching ApiError (``Gone`` for 410: re-list). Close the generator
        (``contextlib.aclosing``) when leaving early, to free the connection at once.
        """
        params = _params(watch="true", resourceVersion=resource_version, labelSelector=label_selector,
                         fieldSelector=field_selector, timeoutSeconds=timeout_seconds,
                         allowWatchBookmarks="true" if allow_bookmarks else None)
        # no overall deadline; a silent connection is dropped a while after the server should have
        # ended the stream (bookmarks keep a healthy one talking)
        read_timeout = None if timeout_seconds is None else timeout_seconds + 30
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout)
        url = self._url(res.path(namespace=namespace), params)
        try:
            async with self._open().get(url, timeout=timeout, **self._tls_kwargs()) as resp:
                if resp.status >= 400:
                    raise _error_from_response(resp.status, await resp.read())
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield _watch_event(line)
                if buffer.strip():
                    yield _watch_event(buffer)
        except _TRANSPORT_ERRORS as e:
            raise TransportError(f"watch {url.path}: {_describe(e)}") from e

    # -- raw requests -----------------------------------------------------------------------------

    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> dict[str, Any]:
        """Send one request to ``path`` (e.g. "/version") and decode the JSON answer."""
        data = None
        headers = {}
        if body is not None:
            data = body if isinstance(body, bytes | str) else orjson.dumps(body)
            headers["Content-Type"] = content_type
        url = self._url(path, params or {})
        timeout = aiohttp.ClientTimeout(total=self.request_timeout, sock_connect=10)
        try:
            async with self._open().request(method, url, data=data, headers=headers, timeout=timeout,
                                            **self._tls_kwargs()) as resp:
                raw = await resp.read()
                status = resp.status
        except _TRANSPORT_ERRORS as e:
            raise TransportError(f"{method} {url.path}: {_describe(e)}") from e
        if status >= 400:
            raise _error_from_response(status, raw)
        if not raw.strip():
            return {}
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise TransportError(f"{method} {url.path}: answer is not JSON: {raw[:200]!r}") from e
        if not isinstance(answer, dict):
            raise TransportError(f"{method} {url.path}: answer is not a JSON object")
        return answer

    # -- helpers ----------------------------------------------------------------------------------

    def _url(self, path: str, params: Mapping[str, str]) -> URL:
        url = URL(self.config.server + path, encoded=True)
        return url.with_query(dict(params)) if params else url

    def _tls_kwargs(self) -> dict[str, Any]:
        name = self.config.tls_server_name
        return {"server_hostname": name} if name and self.config.is_https else {}

    def _ns(self, res: Resource, namespace: str | None) -> str | None:
        """A single object's namespace: as given, else the kubeconfig context's (like kubectl)."""
        if not res.namespaced:
            return None
        return namespace or self.config.namespace

    def _obj_path(self, res: Resource, obj: Mapping[str, Any], *, subresource: str | None = None) -> str:
        meta = _meta(obj)
        name = meta.get("name")
        if not name:
            raise ValueError(f"{res.plural}: the object has no metadata.name")
        return res.path(namespace=self._ns(res, meta.get("namespace")), name=name,
                        subresource=subresource)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise TypeError(f"an object must be a mapping, not {type(obj).__name__}")
    meta = obj.get("metadata") or {}
    if not isinstance(meta, Mapping):
        raise ValueError("metadata must be a mapping")
    return meta


def _params(**values: Any) -> dict[str, str]:
    """Query parameters, leaving out the unset ones; booleans in Kubernetes spelling."""
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _error_from_response(code: int, raw: bytes) -> ApiError:
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return error_from_status({**body, "code": body.get("code") or code})
    text = raw.decode("utf-8", "replace").strip()[:500]
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = f"HTTP {code}"
    return error_from_status(make_status(code, text or phrase))


def _watch_event(line: bytes) -> dict[str, Any]:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise TransportError(f"unreadable watch event: {line[:200]!r}") from e
    if not isinstance(event, dict) or "type" not in event:
        raise TransportError(f"not a watch event: {line[:200]!r}")
    if event["type"] == "ERROR":
        obj = event.get("object")
        status = obj if isinstance(obj, dict) else make_status(500, "watch ERROR event without a Status")
        raise error_from_status(status)
    return event


def _describe(err: BaseException) -> str:
    return str(err) or type(err).__name__
