"""Image config documents and history entries written the way Docker's legacy builder writes them.

History ``created_by`` strings follow Docker so ``docker history`` looks familiar:
``/bin/sh -c #(nop)  CMD ["sh"]`` for metadata steps (two spaces: Docker joins "#(nop) " and the
text with a space), ``/bin/sh -c #(nop) COPY file:<hex> in /dst `` and ``#(nop) WORKDIR /x`` with
one, ``|1 A=b /bin/sh -c make`` for a RUN that sees build args. Metadata steps carry
``empty_layer: true``. The final config is canonicalised (sorted keys) so an unchanged rebuild
produces byte-identical JSON, hence the same image id.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import orjson

from engine.build.state import State

NOP_PREFIX = "/bin/sh -c #(nop) "


def now() -> str:
    """An RFC 3339 UTC timestamp with nanosecond-style precision, as Docker writes ``created``."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def go_list(items: Sequence[str]) -> str:
    """A string list as Go's ``%q`` prints it: ``["a" "b c"]``."""
    return "[" + " ".join(json.dumps(i, ensure_ascii=False) for i in items) + "]"


def nop(text: str) -> str:
    """``created_by`` of a metadata step: ``/bin/sh -c #(nop)  TEXT``."""
    return f"{NOP_PREFIX} {text}"


def nop_single(text: str) -> str:
    """``created_by`` of COPY/ADD/WORKDIR: ``/bin/sh -c #(nop) TEXT`` (one space)."""
    return f"{NOP_PREFIX}{text}"


def history_entry(created_by: str, *, empty_layer: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"created": now(), "created_by": created_by}
    if empty_layer:
        entry["empty_layer"] = True
    return entry


def canonical(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with every mapping's keys sorted, recursively (stable bytes for stable digests)."""
    return orjson.loads(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))


def image_config(state: State, *, default_platform: str) -> dict[str, Any]:
    """The image config JSON of ``state``: what ``write_image`` stores and hashes into the image id."""
    default_os, _, rest = default_platform.partition("/")
    default_arch, _, default_variant = rest.partition("/")
    created = next((h["created"] for h in reversed(state.history) if h.get("created")), state.created or now())
    doc: dict[str, Any] = {
        "architecture": state.platform.get("architecture") or default_arch,
        "os": state.platform.get("os") or default_os,
        "config": state.config,
        "created": created,
        "history": state.history,
        "rootfs": {"type": "layers", "diff_ids": state.diff_ids},
    }
    variant = state.platform.get("variant") or default_variant
    if variant:
        doc["variant"] = variant
    if state.author:
        doc["author"] = state.author
    return canonical(doc)
