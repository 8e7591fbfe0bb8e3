"""GET /openapi/v2: always protobuf, the Content-Type Go clients can parse, ETag revalidation."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from apiserver.openapi import v2
from apiserver.protobuf.wire import iter_fields

TSPECIALS = '()<>@,;:\\"/[]?='


@pytest.fixture
async def client():
    app = web.Application()
    app.router.add_get("/openapi/v2", v2.handle)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.mark.parametrize("accept", ["application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
                                    "application/json", "*/*", None])
async def test_always_answers_protobuf(client, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    response = await client.get("/openapi/v2", headers=headers)
    assert response.status == 200
    assert response.headers["Content-Type"] == v2.CONTENT_TYPE
    body = await response.read()
    assert body == v2.body()
    top = {number: value for number, _wire, value in iter_fields(body)}
    assert top[1] == b"2.0"  # Document.swagger


def test_content_type_is_a_valid_media_type() -> None:
    """Go's mime.ParseMediaType (client-go) accepts only RFC 2045 token characters in the subtype;
    the '@' of the type kubectl asks for would make it fail with an InternalError."""
    kind, _, subtype = v2.CONTENT_TYPE.partition("/")
    assert kind == "application"
    assert subtype and not set(subtype) & set(TSPECIALS + " ")


async def test_etag_revalidation(client) -> None:
    first = await client.get("/openapi/v2")
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = await client.get("/openapi/v2", headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    stale = await client.get("/openapi/v2", headers={"If-None-Match": '"other"'})
    assert stale.status == 200


async def test_body_is_built_once_and_shared() -> None:
    assert await v2.abody() is await v2.abody()
