"""The aiohttp application of the API server: routes and the two middlewares (auth, errors).

The app holds no listener; :mod:`apiserver.server` binds it to a TLS port, and tests may drive the
same app in-process.
"""

from __future__ import annotations

import logging

from aiohttp import web

from apiserver import errors
from apiserver.auth import Authenticator
from apiserver.context import User
from apiserver.handlers import common, discovery, openapi, paths, resources
from apiserver.openapi import v2 as openapi_v2
from apiserver.storage import interface as st
from apiserver.store import ObjectStore

log = logging.getLogger(__name__)

STORE = web.AppKey("store", ObjectStore)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.ApiError as exc:
        return common.json_response(exc.status(), status=exc.code)
    except st.Unavailable as exc:  # a datastore outage anywhere below a handler is a 503, never a 500
        return common.json_response(errors.unavailable(str(exc)).status(), status=503)
    except web.HTTPNotFound:
        return common.json_response(errors.ApiError(404, "NotFound", "the server could not find the requested "
                                                    "resource").status(), status=404)
    except web.HTTPMethodNotAllowed:
        return common.json_response(errors.method_not_allowed().status(), status=405)
    except web.HTTPException:
        raise
    except ConnectionResetError:
        raise
    except Exception as exc:
        log.exception("%s %s failed", request.method, request.path)
        return common.json_response(errors.internal(type(exc).__name__).status(), status=500)


@web.middleware
async def auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    authenticator = request.app[AUTHENTICATOR]
    user = authenticator.authenticate(request)
    if user is None:
        if not authenticator.is_public(request.path):
            raise errors.unauthorized()
        user = User("system:anonymous", ("system:unauthenticated",))
    request["user"] = user
    return await handler(request)


async def _core(request: web.Request) -> web.StreamResponse:
    target = paths.resolve("", "v1", request.match_info["tail"])
    return await resources.dispatch(request, request.app[STORE], target)


async def _grouped(request: web.Request) -> web.StreamResponse:
    info = request.match_info
    target = paths.resolve(info["group"], info["version"], info["tail"])
    return await resources.dispatch(request, request.app[STORE], target)


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def build_app(store: ObjectStore, *, authenticator: Authenticator) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware], client_max_size=4 * 1024 * 1024)
    app[STORE] = store
    app[AUTHENTICATOR] = authenticator
    router = app.router
    for path in ("/healthz", "/livez", "/readyz", "/healthz/{check}", "/livez/{check}", "/readyz/{check}"):
        router.add_get(path, _ok)
    router.add_get("/version", discovery.version)
    router.add_get("/api", discovery.api)
    router.add_get("/api/", discovery.api)
    router.add_get("/apis", discovery.apis)
    router.add_get("/apis/", discovery.apis)
    router.add_get("/api/v1", discovery.api_v1)
    router.add_get("/apis/{group}", discovery.api_group)
    router.add_get("/apis/{group}/{version}", discovery.group_version)
    router.add_get("/openapi/v2", openapi_v2.handle)
    router.add_get("/openapi/v3", openapi.index)
    router.add_get("/openapi/v3/{path:.+}", openapi.document)
    router.add_route("*", "/api/v1/{tail:.+}", _core)
    router.add_route("*", "/apis/{group}/{version}/{tail:.+}", _grouped)
    return app
