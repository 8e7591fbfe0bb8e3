"""/openapi/v3: the index and one document per group-version, computed once and cached."""

from __future__ import annotations

from aiohttp import web

from apiserver import errors
from apiserver.handlers.common import json_response
from apiserver.openapi import documents


async def index(request: web.Request) -> web.Response:
    return json_response(await documents.aindex())


async def document(request: web.Request) -> web.Response:
    body = await documents.adocument(request.match_info["path"])
    if body is None:
        raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
    return web.Response(body=body, headers={"Content-Type": "application/json"})
