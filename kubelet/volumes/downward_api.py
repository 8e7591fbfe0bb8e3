"""downwardAPI volumes: pod fields and container resources as files, formatted as upstream.

Labels and annotations are ``key="value"`` lines sorted by key, the value quoted as Go's ``%q``
quotes it (what the upstream kubelet writes). Resource values are ``ceil(quantity / divisor)``;
an unset limit reads as the node's allocatable, as upstream.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
from fractions import Fraction
from typing import Any

from kubelet.volumes import quantity
from kubelet.volumes.atomic_writer import FileProjection
from kubelet.volumes.errors import VolumeError
from kubelet.volumes.plugin import DEFAULT_MODE, Context, Plugin, mode_of, write_projection

PLUGIN_DIR = "downward-api"
_SUBSCRIPT = re.compile(r"metadata\.(labels|annotations)\['(.*)'\]")
_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
            "\\": "\\\\", '"': '\\"'}


def go_quote(value: str) -> str:
    """Go's strconv.Quote for the characters labels and annotations carry."""
    out = []
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def format_map(values: dict[str, Any]) -> str:
    return "\n".join(f"{key}={go_quote(str(values[key]))}" for key in sorted(values))


def field_value(pod: dict[str, Any], path: str) -> str:
    md = pod.get("metadata") or {}
    simple = {"metadata.name": "name", "metadata.namespace": "namespace", "metadata.uid": "uid"}
    if path in simple:
        return str(md.get(simple[path]) or "")
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map(md.get(path.split(".")[1]) or {})
    match = _SUBSCRIPT.fullmatch(path)
    if match:
        return str((md.get(match.group(1)) or {}).get(match.group(2), ""))
    raise VolumeError(f'unsupported fieldPath: "{path}"')


def _node_allocatable() -> dict[str, Fraction]:
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"cpu": Fraction(os.cpu_count() or 1), "memory": Fraction(mem),
            "ephemeral-storage": Fraction(0)}


def resource_value(pod: dict[str, Any], ref: dict[str, Any]) -> str:
    name = ref.get("containerName") or ""
    containers = [*(pod.get("spec") or {}).get("containers", []), *(pod.get("spec") or {}).get("initContainers", [])]
    container = next((c for c in containers if c.get("name") == name), None)
    if container is None:
        raise VolumeError(f'container "{name}" not found in pod')
    kind, _, resource = (ref.get("resource") or "").partition(".")
    if kind not in ("limits", "requests") or resource not in ("cpu", "memory", "ephemeral-storage"):
        raise VolumeError(f'unsupported container resource: "{ref.get("resource")}"')
    amounts = (container.get("resources") or {}).get(kind) or {}
    if resource in amounts:
        amount = quantity.parse(amounts[resource])
    elif kind == "limits":
        amount = _node_allocatable()[resource]
    else:
        amount = Fraction(0)
    divisor = quantity.parse(ref.get("divisor") or "1")
    if divisor <= 0:
        raise VolumeError(f"invalid divisor {ref.get('divisor')!r}")
    return str(math.ceil(amount / divisor))


def payload(pod: dict[str, Any], items: list[dict[str, Any]], *, default_mode: int) -> dict[str, FileProjection]:
    out: dict[str, FileProjection] = {}
    for item in items:
        if item.get("fieldRef"):
            text = field_value(pod, (item["fieldRef"] or {}).get("fieldPath", ""))
        elif item.get("resourceFieldRef"):
            text = resource_value(pod, item["resourceFieldRef"])
        else:
            raise VolumeError(f'downwardAPI item "{item.get("path")}" has neither fieldRef nor resourceFieldRef')
        out[item.get("path") or ""] = FileProjection(text.encode(), mode_of(item.get("mode"), default_mode))
    return out


async def setup(ctx: Context, name: str, spec: dict[str, Any]) -> str:
    files = await asyncio.to_thread(payload, ctx.pod, spec.get("items") or [],
                                    default_mode=mode_of(spec.get("defaultMode"), DEFAULT_MODE))
    return await write_projection(ctx=ctx, path=ctx.volume_dir(PLUGIN_DIR, name), payload=files, memory=True)


PLUGIN = Plugin("downwardAPI", setup, refreshable=True)
