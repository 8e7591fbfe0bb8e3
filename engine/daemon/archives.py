"""``docker save`` and ``docker load``: image tarballs streamed straight through the socket.

Save writes the archive (``engine.images.archive.save``) from a worker thread directly into the
HTTP response, so a large image never sits in memory or on disk twice; every name is resolved
first, so an unknown image is a 404 rather than a truncated tar. Load hands the request body to
``archive.load`` the same way and answers with Docker's ``{"stream": "Loaded image: ..."}`` lines.
"""

from __future__ import annotations

import asyncio
import logging
from typing import BinaryIO

from aiohttp import web

from engine.daemon import bodies, params
from engine.daemon.context import context_of
from engine.daemon.errors import BadParameter
from engine.daemon.jsonstream import JsonStream, respond, stream_text
from engine.images import archive
from engine.images.store import ImageStore

log = logging.getLogger(__name__)


def _save(store: ImageStore, names: list[str], out: BinaryIO) -> None:
    archive.save(store, names, out)
    out.flush()


async def _stream_save(request: web.Request, names: list[str]) -> web.StreamResponse:
    store = context_of(request).store
    if not names:
        raise BadParameter("no image names given (names)")
    await asyncio.to_thread(lambda: [store.resolve(n) for n in names])
    response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        await asyncio.to_thread(_save, store, names, bodies.response_writer(response))
    except ConnectionResetError:
        log.info("save of %s: client went away", names)
        return response
    except Exception as exc:
        # the status line has gone: cut the connection so the client sees a broken tar, not a short one
        log.warning("save of %s failed mid-stream: %s", names, exc)
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write_eof()
    return response


async def save_one(request: web.Request) -> web.StreamResponse:
    return await _stream_save(request, [request.match_info["name"]])


async def save_many(request: web.Request) -> web.StreamResponse:
    return await _stream_save(request, request.query.getall("names", []))


async def load(request: web.Request) -> web.StreamResponse:
    params.flag(request, "quiet")  # accepted; the output is the same short lines either way
    store = context_of(request).store
    reader = bodies.body_reader(request)

    async def work(stream: JsonStream) -> None:
        loaded = await asyncio.to_thread(archive.load, store, reader)
        for message in archive.loaded_names(loaded):
            stream.emit(stream_text(message))

    return await respond(request, work)
