"""Request bodies in, response bodies out: the content types the API server speaks.

Requests arrive as JSON, YAML or Kubernetes protobuf (kubectl 1.32's typed commands send protobuf
and never fall back); answers are always JSON, which every client accepts. Accept headers only
decide between a plain object, a meta.k8s.io Table (``kubectl get``) and aggregated discovery.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from apiserver import errors

MAX_BODY = 3 * 1024 * 1024

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``; missing means JSON (kubectl scale)."""
    if not content_type:
        return JSON
    return content_type.split(";", 1)[0].strip().lower() or JSON


def decode(body: bytes, content_type: str | None) -> Any:
    """Parse a request body by its media type; errors are 400/413/415 Statuses."""
    if len(body) > MAX_BODY:
        raise errors.too_large(MAX_BODY)
    kind = media_type(content_type)
    if kind in (JSON, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH):
        return _json(body)
    if kind in (YAML, APPLY_PATCH, "application/x-yaml", "text/yaml"):
        return _yaml(body)
    if kind == PROTOBUF:
        from apiserver import protobuf

        try:
            return protobuf.decode_request(body)
        except ValueError as exc:
            raise errors.bad_request(f"error decoding protobuf body: {exc}") from None
    raise errors.unsupported_media_type(content_type or "")


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"error decoding JSON body: {exc}") from None


def _yaml(body: bytes) -> Any:
    if body[:1] in (b"{", b"["):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return yaml.load(body, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        reason = str(exc).replace("\n", " ")
        raise errors.bad_request(f"error decoding YAML body: {reason}") from None


def decode_object(body: bytes, content_type: str | None) -> dict[str, Any]:
    """A request body that must be one object."""
    obj = decode(body, content_type)
    if not isinstance(obj, dict):
        raise errors.bad_request("the request body must be a JSON object")
    return obj


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def wants_table(accept: str | None) -> bool:
    """``kubectl get`` asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` first."""
    return bool(accept) and "as=Table" in accept  # type: ignore[operator]


def aggregated_discovery_type(accept: str | None) -> str | None:
    """The aggregated-discovery media type the client prefers, if it asked for one."""
    if not accept:
        return None
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip()
                  for p in part.split(";")[1:] if "=" in p}
        if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io":
            version = params.get("v", "v2")
            if version in ("v2", "v2beta1"):
                return f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
    return None
