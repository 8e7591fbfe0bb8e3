"""GET /openapi/v2: the Swagger 2.0 document as gnostic protobuf, built once and cached.

kubectl ≤ 1.27 needs it for ``apply``/``create``/``replace``/``diff`` (validation and patches) and
``explain``; later versions read it for ``explain --output=plaintext-openapiv2`` and fall back to it
when /openapi/v3 cannot answer. kubectl asks for
``application/com.github.proto-openapi.spec.v2@v1.0+protobuf`` and parses whatever comes back as
that protobuf, so the answer is protobuf whatever the Accept header says (JSON would be a parse
error on the client, worse than this). The Content-Type is the spelling upstream answers with,
``...spec.v2.v1.0+protobuf``: Go's media-type parser rejects the ``@`` of the one kubectl asks for
("mime: unexpected content after media subtype"). The document is derived from the cached v3 documents
(:mod:`.swagger`) and encoded by :mod:`.gnostic`, in a worker thread on first use.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from typing import Any

import orjson
from aiohttp import web

from apiserver.openapi import documents, gnostic, swagger
from apiserver.registry import GROUP_VERSIONS

CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

_lock = threading.Lock()
_body: bytes | None = None
_etag: str = ""


def build() -> dict[str, Any]:
    """The Swagger 2.0 document as a fresh dict (from the v3 documents of every group-version)."""
    docs = []
    for gv in GROUP_VERSIONS:
        body = documents.document(documents.gv_path(gv))
        if body is not None:
            docs.append(orjson.loads(body))
    return swagger.build(docs)


def body() -> bytes:
    """The protobuf bytes (blocking the first time: well under a second)."""
    global _body, _etag
    with _lock:
        if _body is None:
            encoded = gnostic.encode_document(build())
            _etag = '"' + hashlib.sha512(encoded).hexdigest()[:32].upper() + '"'
            _body = encoded
        return _body


async def abody() -> bytes:
    """:func:`body` without blocking the event loop: built in a worker thread when not cached."""
    if _body is None:
        return await asyncio.to_thread(body)
    return _body


async def handle(request: web.Request) -> web.Response:
    """The aiohttp handler of GET /openapi/v2 (answers 304 to a matching If-None-Match)."""
    payload = await abody()
    headers = {"Content-Type": CONTENT_TYPE, "ETag": _etag}
    if request.headers.get("If-None-Match") == _etag:
        return web.Response(status=304, headers={"ETag": _etag})
    return web.Response(body=payload, headers=headers)
