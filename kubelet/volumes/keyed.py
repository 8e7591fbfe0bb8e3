"""The key -> file projection that configMap and secret volumes (and projected sources) share.

Without ``items`` every key becomes a file of that name; with ``items`` only the listed keys,
at their ``path`` and ``mode``. A listed key that is missing fails the volume, unless the source
is optional, as upstream.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from kubelet.sources import ObjectSource
from kubelet.volumes.atomic_writer import FileProjection
from kubelet.volumes.errors import VolumeError
from kubelet.volumes.plugin import mode_of


@dataclass(frozen=True)
class Kind:
    plural: str  # for ObjectSource.get
    singular: str  # in messages: 'configmap "x" not found'
    key_word: str  # 'configmap references non-existent config key: k'


CONFIG_MAP = Kind("configmaps", "configmap", "config")
SECRET = Kind("secrets", "secret", "secret")


def _b64(value: Any, *, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise VolumeError(f"{what}: value is not valid base64") from None


def object_data(kind: Kind, obj: dict[str, Any]) -> dict[str, bytes]:
    """All keys of a ConfigMap (data + binaryData) or Secret (data, base64; stringData if stored)."""
    out: dict[str, bytes] = {}
    if kind is CONFIG_MAP:
        out.update({k: str(v).encode() for k, v in (obj.get("data") or {}).items()})
        out.update({k: _b64(v, what=f"binaryData[{k}]") for k, v in (obj.get("binaryData") or {}).items()})
    else:
        out.update({k: str(v).encode() for k, v in (obj.get("stringData") or {}).items()})
        out.update({k: _b64(v, what=f"data[{k}]") for k, v in (obj.get("data") or {}).items()})
    return out


async def fetch(kind: Kind, source: ObjectSource, *, namespace: str, name: str,
                optional: bool) -> dict[str, bytes] | None:
    """The object's keys; None when it is missing and optional; VolumeError when missing otherwise."""
    obj = await source.get(kind.plural, namespace, name) if name else None
    if obj is None:
        if optional:
            return None
        raise VolumeError(f'{kind.singular} "{name}" not found')
    return object_data(kind, obj)


def payload(kind: Kind, data: dict[str, bytes] | None, *, spec: dict[str, Any],
            default_mode: int) -> dict[str, FileProjection]:
    if data is None:
        return {}
    items = spec.get("items") or []
    if not items:
        return {key: FileProjection(value, default_mode) for key, value in data.items()}
    out: dict[str, FileProjection] = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if spec.get("optional"):
                continue
            raise VolumeError(f"{kind.singular} references non-existent {kind.key_word} key: {key}")
        out[item.get("path") or key] = FileProjection(data[key], mode_of(item.get("mode"), default_mode))
    return out
