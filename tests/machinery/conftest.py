"""Fixtures of the machinery tests: the fake API server and a client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakeapi import FakeApiServer, start_fake

from machinery.client import ApiClient


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[tuple[FakeApiServer, ApiClient]]:
    server, config = await start_fake(tmp_path)
    try:
        async with ApiClient(config) as client:
            yield server, client
    finally:
        await server.stop()


