"""Small pieces every resource handler shares: reading bodies, the request context, JSON answers."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from apiserver import codec, context, errors


def json_response(body: Any, *, status: int = 200, ctx: context.RequestContext | None = None) -> web.Response:
    headers = {"Content-Type": codec.JSON}
    response = web.Response(body=codec.dumps(body), status=status, headers=headers)
    if ctx is not None:
        for warning in ctx.warnings:
            escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
            response.headers.add("Warning", f'299 - "{escaped}"')
    return response


def request_context(request: web.Request) -> context.RequestContext:
    return context.from_query(request.query, user=request["user"],
                              user_agent=request.headers.get("User-Agent"))


async def read_object(request: web.Request) -> dict[str, Any]:
    return codec.decode_object(await body(request), request.headers.get("Content-Type"))


async def body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > codec.MAX_BODY:
        raise errors.too_large(codec.MAX_BODY)
    body = await request.content.read(codec.MAX_BODY + 1)
    if len(body) > codec.MAX_BODY:
        raise errors.too_large(codec.MAX_BODY)
    return body


async def delete_options(request: web.Request) -> dict[str, Any]:
    """DeleteOptions from the body (kubectl sends JSON) and the query (the Python client may)."""
    raw = await body(request)
    options: dict[str, Any] = {}
    if raw.strip():
        options = codec.decode_object(raw, request.headers.get("Content-Type"))
    query = request.query
    if "gracePeriodSeconds" in query:
        try:
            options["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
        except ValueError:
            raise errors.bad_request("gracePeriodSeconds must be an integer") from None
    if "propagationPolicy" in query:
        options["propagationPolicy"] = query["propagationPolicy"]
    if "orphanDependents" in query:
        options["orphanDependents"] = query["orphanDependents"] == "true"
    return options


