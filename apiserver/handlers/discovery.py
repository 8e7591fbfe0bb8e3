"""Discovery: which groups, versions and resources this server serves, built from the registry.

kubectl 1.32 asks ``/api`` and ``/apis`` for the aggregated format first (one request gives every
resource); it must come back with the aggregated Content-Type or kubectl reads it as the legacy
``APIVersions``/``APIGroupList``. The legacy per-group-version lists are served as well
(``kubectl auth can-i`` reads them even with aggregated discovery).
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from apiserver import codec, errors, registry
from apiserver.handlers.common import json_response
from apiserver.registry import ResourceType

VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0-pinnace", "gitCommit": "", "gitTreeState": "clean",
    "buildDate": "2026-11-29T00:00:00Z", "goVersion": "go1.23.3", "compiler": "gc", "platform": "linux/amd64",
}


def _scope(rt: ResourceType) -> str:
    return "Namespaced" if rt.namespaced else "Cluster"


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": _scope(rt), "singularResource": rt.singular, "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    subresources = []
    for name, kind in rt.subresources.items():
        sub: dict[str, Any] = {"subresource": name, "verbs": _subresource_verbs(name)}
        if kind:
            group = SUBRESOURCE_GROUPS.get(kind, rt.group)
            version = "v1"
            sub["responseKind"] = {"group": group, "version": version, "kind": kind}
        subresources.append(sub)
    if subresources:
        entry["subresources"] = subresources
    return entry


#: subresource kinds served from another group than their resource's (group/v1)
SUBRESOURCE_GROUPS = {"Scale": "autoscaling", "Eviction": "policy", "TokenRequest": "authentication.k8s.io"}


def _subresource_verbs(name: str) -> list[str]:
    return {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"],
            "binding": ["create"], "eviction": ["create"], "finalize": ["update"],
            "ephemeralcontainers": ["get", "patch", "update"]}.get(name, ["create", "get"])


def _groups(core: bool) -> dict[str, list[str]]:
    """group -> versions served, in registry order."""
    groups: dict[str, list[str]] = {}
    for rt in registry.RESOURCES:
        if (rt.group == "") == core:
            versions = groups.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
    return groups


@functools.cache
def aggregated(core: bool, media_type: str) -> bytes:
    items = []
    for group, versions in _groups(core).items():
        items.append({
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [{"version": v, "freshness": "Current",
                          "resources": [_aggregated_resource(rt) for rt in registry.in_group_version(group, v)]}
                         for v in versions],
        })
    version = "v2beta1" if "v=v2beta1" in media_type else "v2"
    return codec.dumps({"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
                        "metadata": {}, "items": items})


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


def _server_address(request: web.Request) -> list[dict[str, str]]:
    return [{"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}]


async def api(request: web.Request) -> web.Response:
    media = codec.aggregated_discovery_type(request.headers.get("Accept"))
    if media:
        return web.Response(body=aggregated(True, media), headers={"Content-Type": media})
    return json_response({"kind": "APIVersions", "versions": ["v1"],
                          "serverAddressByClientCIDRs": _server_address(request)})


async def apis(request: web.Request) -> web.Response:
    media = codec.aggregated_discovery_type(request.headers.get("Accept"))
    if media:
        return web.Response(body=aggregated(False, media), headers={"Content-Type": media})
    groups = [_group_entry(g, v) for g, v in _groups(False).items()]
    return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})


async def api_group(request: web.Request) -> web.Response:
    group = request.match_info["group"]
    versions = _groups(False).get(group)
    if not versions:
        raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
    return json_response({"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)})


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    served = list(registry.in_group_version(group, version))
    if not served:
        return None
    resources = []
    for rt in served:
        entry: dict[str, Any] = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                                 "kind": rt.kind, "verbs": list(rt.verbs)}
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for name, kind in rt.subresources.items():
            sub = {"name": f"{rt.plural}/{name}", "singularName": "", "namespaced": rt.namespaced,
                   "kind": kind or rt.kind, "verbs": _subresource_verbs(name)}
            if kind in SUBRESOURCE_GROUPS:
                sub.update(group=SUBRESOURCE_GROUPS[kind], version="v1")
            resources.append(sub)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources}


async def api_v1(request: web.Request) -> web.Response:
    return json_response(resource_list("", "v1"))


async def group_version(request: web.Request) -> web.Response:
    body = resource_list(request.match_info["group"], request.match_info["version"])
    if body is None:
        raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
    return json_response(body)


async def version(request: web.Request) -> web.Response:
    return json_response(VERSION)
