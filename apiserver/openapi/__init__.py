"""OpenAPI v3 for the API server: the /openapi/v3 documents and strict unknown-field checks.

Both come from the kubernetes client's pydantic models (see :mod:`.schemas`), converted once per
process on first use. Modules: ``names`` (upstream schema names), ``catalog`` (which kinds are
published), ``schemas`` (conversion), ``extensions`` (merge-key annotations), ``paths``
(operations), ``documents`` (index and per-group-version documents), ``strict`` (unknown fields).
"""

from __future__ import annotations

import asyncio

from apiserver.openapi.documents import adocument, aindex, document, index
from apiserver.openapi.errors import SchemaError
from apiserver.openapi.strict import strict_message, unknown_fields

__all__ = ["SchemaError", "adocument", "aindex", "awarm", "document", "index", "strict_message",
           "unknown_fields", "warm"]


def warm() -> None:
    """Build the documents and compile the strict checks now (blocking, under a second)."""
    from apiserver.openapi import documents, strict

    documents.warm()
    strict.warm()


async def awarm() -> None:
    """:func:`warm` in a worker thread, e.g. as a background task after the server starts."""
    await asyncio.to_thread(warm)
