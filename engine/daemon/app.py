"""The daemon's aiohttp application: one route table, the API-version rules, Docker-style errors.

Every route is served both bare (``/images/json``) and under a version prefix
(``/v1.43/images/json``), as dockerd does; a prefix outside [MIN_API_VERSION, API_VERSION] is a
400 naming the supported range, so clients negotiate down instead of misreading replies. Errors
of any handler become ``{"message": ...}`` with the status ``errors.status_of`` picks; unknown
paths are Docker's 404 "page not found".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from engine.daemon import archives, builds, containers, errors, events, execs, images, system, transfer
from engine.daemon.context import API_VERSION, CONTEXT, ENGINE_VERSION, MIN_API_VERSION, EngineContext
from engine.daemon.replies import json_response

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# (method, path, handler); order matters: fixed paths before the ``{name}`` patterns they shadow
ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/_ping", system.ping),
    ("HEAD", "/_ping", system.ping),
    ("GET", "/version", system.version),
    ("GET", "/info", system.info),
    ("GET", "/images/json", images.list_images),
    ("POST", "/images/create", transfer.pull),
    ("GET", "/images/get", archives.save_many),
    ("POST", "/images/load", archives.load),
    ("POST", "/images/prune", images.prune_images),
    ("POST", "/build", builds.build),
    ("GET", "/images/{name:.+}/json", images.inspect_image),
    ("GET", "/images/{name:.+}/history", images.image_history),
    ("GET", "/images/{name:.+}/get", archives.save_one),
    ("POST", "/images/{name:.+}/push", transfer.push),
    ("POST", "/images/{name:.+}/tag", images.tag_image),
    ("DELETE", "/images/{name:.+}", images.remove_image),
    ("POST", "/containers/create", containers.create_container),
    ("GET", "/containers/json", containers.list_containers),
    ("POST", "/containers/prune", containers.prune_containers),
    ("GET", "/containers/{name}/json", containers.inspect_container),
    ("POST", "/containers/{name}/start", containers.start_container),
    ("POST", "/containers/{name}/stop", containers.stop_container),
    ("POST", "/containers/{name}/restart", containers.restart_container),
    ("POST", "/containers/{name}/kill", containers.kill_container),
    ("POST", "/containers/{name}/wait", containers.wait_container),
    ("POST", "/containers/{name}/attach", containers.attach_container),
    ("POST", "/containers/{name}/resize", containers.resize_container),
    ("GET", "/containers/{name}/logs", containers.container_logs),
    ("GET", "/containers/{name}/stats", containers.container_stats),
    ("GET", "/containers/{name}/top", containers.container_top),
    ("POST", "/containers/{name}/exec", execs.create_exec),
    ("DELETE", "/containers/{name}", containers.remove_container),
    ("POST", "/exec/{id}/start", execs.start_exec),
    ("POST", "/exec/{id}/resize", execs.resize_exec),
    ("GET", "/exec/{id}/json", execs.inspect_exec),
    ("GET", "/events", events.events),
)
VERSION_PREFIX = r"/{api_version:v[0-9]+\.[0-9]+}"


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def check_api_version(requested: str) -> None:
    """Refuse a ``/vX.Y`` prefix outside the range this daemon speaks."""
    wanted = _version_tuple(requested)
    if wanted < _version_tuple(MIN_API_VERSION):
        raise errors.BadParameter(
            f"client version {requested} is too old. Minimum supported API version is {MIN_API_VERSION}, "
            "please upgrade your client to a newer version"
        )
    if wanted > _version_tuple(API_VERSION):
        raise errors.BadParameter(
            f"client version {requested} is too new. Maximum supported API version is {API_VERSION}"
        )


@web.middleware
async def docker_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        version = request.match_info.get("api_version")
        if version is not None:
            check_api_version(version[1:])
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = "page not found" if exc.status == 404 else exc.reason
        return json_response({"message": message}, status=exc.status)
    except Exception as exc:
        status = errors.status_of(exc)
        if errors.is_expected(exc):
            log.info("%s %s: %d %s", request.method, request.path, status, errors.message_of(exc))
        else:
            log.exception("%s %s failed", request.method, request.path)
        return json_response(errors.error_body(exc), status=status)


async def _server_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Api-Version"] = API_VERSION
    response.headers["Server"] = f"Pinnace-Engine/{ENGINE_VERSION} (linux)"


def make_app(context: EngineContext) -> web.Application:
    """The application serving ``context``; nothing starts until a runner sets it up."""
    app = web.Application(middlewares=[docker_errors], client_max_size=0)
    app[CONTEXT] = context
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
        app.router.add_route(method, VERSION_PREFIX + path, handler)
    app.on_response_prepare.append(_server_headers)
    return app
