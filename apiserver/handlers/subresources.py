"""Subresources that are not plain field writes: scale, binding, eviction, and the node streams.

``status``, ``finalize`` and ``ephemeralcontainers`` are writes limited to one part of the object
and go through the item verbs (see :data:`apiserver.store.FIELD_SUBRESOURCES`); the rest are here,
one table entry per (subresource, method).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from apiserver import codec, errors, eviction, kubelet_client, registry, tokens
from apiserver.handlers import common, patching
from apiserver.handlers.paths import Target
from apiserver.store import ObjectStore
from machinery import meta
from machinery.selectors import LabelSelector

Handler = Callable[[web.Request, ObjectStore, Target], Awaitable[web.StreamResponse]]


# ---- scale ------------------------------------------------------------------------------------

def to_scale(obj: dict[str, Any]) -> dict[str, Any]:
    md = obj["metadata"]
    spec, status = obj.get("spec", {}), obj.get("status", {})
    selector = spec.get("selector")
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in md},
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {"replicas": status.get("replicas", 0),
                   "selector": str(LabelSelector.from_dict(selector)) if selector else ""},
    }


def _replicas_of(scale: Any, name: str) -> int:
    replicas = (scale.get("spec") or {}).get("replicas", 0) if isinstance(scale, dict) else None
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.invalid("Scale.autoscaling", name, [errors.cause(
            "spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")],
            group="autoscaling", kind="Scale")
    return replicas


async def get_scale(request: web.Request, store: ObjectStore, target: Target) -> web.StreamResponse:
    obj = await store.get(target.resource, target.namespace, target.name)
    return common.json_response(to_scale(obj))


async def put_scale(request: web.Request, store: ObjectStore, target: Target) -> web.StreamResponse:
    scale = await common.read_object(request)
    replicas = _replicas_of(scale, target.name)
    expected = (scale.get("metadata") or {}).get("resourceVersion") or None
    return await _write_replicas(request, store, target, lambda _current: replicas, expected)


async def patch_scale(request: web.Request, store: ObjectStore, target: Target) -> web.StreamResponse:
    kind_of_patch = patching.patch_type(request.headers.get("Content-Type"))
    if kind_of_patch not in patching.APPLIERS:
        raise errors.ApiError(415, "UnsupportedMediaType", "apply is not supported on the scale subresource")
    body = codec.decode(await common.body(request), kind_of_patch)

    def replicas(current: dict[str, Any]) -> int:
        return _replicas_of(patching.apply(kind_of_patch, to_scale(current), body, "Scale"), target.name)

    return await _write_replicas(request, store, target, replicas, None)


async def _write_replicas(request: web.Request, store: ObjectStore, target: Target,
                          replicas: Callable[[dict[str, Any]], int], expected: str | None) -> web.StreamResponse:
    ctx = common.request_context(request)

    def mutate(current: dict[str, Any]) -> dict[str, Any]:
        current.setdefault("spec", {})["replicas"] = replicas(current)
        return current

    result, _ = await store.update(target.resource, target.namespace, target.name, mutate, ctx,
                                   expected_revision=expected)
    return common.json_response(to_scale(result), ctx=ctx)


# ---- pods -------------------------------------------------------------------------------------

async def bind(request: web.Request, store: ObjectStore, target: Target) -> web.StreamResponse:
    binding = await common.read_object(request)
    node = (binding.get("target") or {}).get("name")
    if not node:
        raise errors.invalid("Binding", target.name, [errors.cause("target.name", "Required value",
                                                                   "FieldValueRequired")])
    ctx = common.request_context(request)

    def assign(pod: dict[str, Any]) -> dict[str, Any]:
        spec = pod.setdefault("spec", {})
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict("pods", target.name, "pod is being deleted, cannot be assigned to a host")
        if spec.get("nodeName"):
            raise errors.conflict("pods", target.name,
                                  f'pod {target.name} is already assigned to node "{spec["nodeName"]}"')
        spec["nodeName"] = node
        conditions = pod.setdefault("status", {}).setdefault("conditions", [])
        conditions[:] = [c for c in conditions if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": meta.now()})
        return pod

    await store.update(target.resource, target.namespace, target.name, assign, ctx, subresource="binding")
    return common.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                 "code": 201}, status=201)


async def node_stream(request: web.Request, store: ObjectStore, target: Target) -> web.StreamResponse:
    """logs, exec, attach and port-forward are served by the kubelet of the pod's node: proxy there."""
    obj = await store.get(target.resource, target.namespace, target.name)
    if target.resource.kind == "Pod" and target.subresource in kubelet_client.KUBELET_PATHS:
        path, query = kubelet_client.kubelet_path(target.subresource, obj, request.query)
        node_name = obj.get("spec", {}).get("nodeName")
        if not node_name:
            raise errors.bad_request(f"pod {target.name} does not have a host assigned")
        nodes = registry.lookup("", "v1", "nodes")
        assert nodes is not None
        host, port = kubelet_client.kubelet_endpoint(await store.get(nodes, None, node_name))
        client = kubelet_client.of(request.app)
        return await client.proxy(request, host=host, port=port, path=path, query=query)
    raise errors.unavailable(f"{target.resource.plural}/{target.subresource} needs a kubelet or proxy")


_STREAMS = {method: node_stream for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")}

#: subresources served by the item verbs (the store limits the write to their fields) -> their methods
ITEM_VIEWS: dict[str, tuple[str, ...]] = {
    "status": ("GET", "PUT", "PATCH"),
    "ephemeralcontainers": ("GET", "PUT", "PATCH"),
    "finalize": ("PUT",),
}

#: subresource -> method -> handler
SUBRESOURCES: dict[str, dict[str, Handler]] = {
    "scale": {"GET": get_scale, "PUT": put_scale, "PATCH": patch_scale},
    "binding": {"POST": bind},
    "eviction": {"POST": eviction.evict},
    "token": {"POST": tokens.create_token},
    "log": _STREAMS, "exec": _STREAMS, "attach": _STREAMS, "portforward": _STREAMS, "proxy": _STREAMS,
}


def handler(subresource: str, method: str) -> Handler | None:
    return SUBRESOURCES.get(subresource, {}).get(method)
