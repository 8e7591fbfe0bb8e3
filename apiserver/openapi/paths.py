"""The ``paths`` part of a group-version document: the operations of each registry resource.

kubectl reads these to decide how to validate and patch: an operation tagged with
``x-kubernetes-group-version-kind`` whose PATCH takes a ``fieldValidation`` query parameter makes
``kubectl apply`` hand validation to the server, and a PATCH ``requestBody`` accepting
``application/strategic-merge-patch+json`` makes it compute the apply patch from the schemas
(which therefore carry the merge-key extensions, see :mod:`apiserver.openapi.extensions`).
Operations are generated from tables: which actions a verb gives, which query parameters and
status codes each action has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apiserver.openapi import catalog
from apiserver.openapi.catalog import Kind
from apiserver.openapi.names import upstream_name
from apiserver.openapi.schemas import PATCH, Schema, ref
from apiserver.registry import ResourceType

#: query parameters: name -> (JSON type, description)
PARAMETERS: dict[str, tuple[str, str]] = {
    "allowWatchBookmarks": ("boolean", "Ask for BOOKMARK events on a watch; the server may send them."),
    "continue": ("string", "The continue token of the previous page of a paginated list."),
    "dryRun": ("string", "With 'All', every stage runs but nothing is persisted."),
    "fieldManager": ("string", "Name of the actor making the change, recorded in managedFields."),
    "fieldSelector": ("string", "Select objects by field values, e.g. metadata.name=web."),
    "fieldValidation": ("string", "How to treat unknown or duplicate fields in the body: Ignore, Warn "
                                  "(the default) or Strict (reject the request)."),
    "force": ("boolean", "Server-side apply only: take ownership of fields other managers own."),
    "gracePeriodSeconds": ("integer", "Seconds before the object is deleted; 0 deletes at once."),
    "ignoreStoreReadErrorWithClusterBreakingPotential": (
        "boolean", "Delete an object even when it cannot be read from storage."),
    "labelSelector": ("string", "Select objects by labels, e.g. app=web,tier in (fe,be)."),
    "limit": ("integer", "Largest number of items to return; the rest come with a continue token."),
    "orphanDependents": ("boolean", "Deprecated: use propagationPolicy=Orphan."),
    "pretty": ("string", "Pretty-print the response."),
    "propagationPolicy": ("string", "What happens to dependents: Orphan, Background or Foreground."),
    "resourceVersion": ("string", "Constrains which resource versions the answer may come from; a "
                                  "watch starts after it."),
    "resourceVersionMatch": ("string", "How resourceVersion applies to a list: Exact or NotOlderThan."),
    "sendInitialEvents": ("boolean", "Start a watch with synthetic ADDED events for existing objects."),
    "timeoutSeconds": ("integer", "Time limit of a list or watch call."),
    "watch": ("boolean", "Stream changes instead of answering a list."),
}

_LIST_QUERY = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
               "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
_WRITE_QUERY = ("dryRun", "fieldManager", "fieldValidation")
_DELETE_QUERY = ("dryRun", "gracePeriodSeconds", "ignoreStoreReadErrorWithClusterBreakingPotential",
                 "orphanDependents", "propagationPolicy")

PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
               "application/merge-patch+json", "application/strategic-merge-patch+json")
_MEDIA = ("application/json", "application/vnd.kubernetes.protobuf", "application/yaml")
_WATCH_MEDIA = ("application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch")
_CODE_TEXT = {"200": "OK", "201": "Created", "202": "Accepted"}


@dataclass(frozen=True)
class Action:
    """One ``x-kubernetes-action``: its HTTP method, operationId verb and what it takes."""

    method: str
    op_verb: str
    query: tuple[str, ...]
    codes: tuple[str, ...]
    on_item: bool


ACTIONS: dict[str, Action] = {
    "list": Action("get", "list", _LIST_QUERY, ("200",), on_item=False),
    "post": Action("post", "create", _WRITE_QUERY, ("200", "201", "202"), on_item=False),
    "deletecollection": Action("delete", "deletecollection", _DELETE_QUERY + _LIST_QUERY, ("200",),
                               on_item=False),
    "get": Action("get", "read", (), ("200",), on_item=True),
    "put": Action("put", "replace", _WRITE_QUERY, ("200", "201"), on_item=True),
    "patch": Action("patch", "patch", (*_WRITE_QUERY, "force"), ("200", "201"), on_item=True),
    "delete": Action("delete", "delete", _DELETE_QUERY, ("200", "202"), on_item=True),
}

#: registry verb -> action on the resource's collection or item paths
VERB_ACTIONS = {"list": "list", "create": "post", "deletecollection": "deletecollection", "get": "get",
                "update": "put", "patch": "patch", "delete": "delete"}

_DESCRIBE = {
    "list": "list or watch objects of kind {kind}", "post": "create {of}{a} {kind}",
    "deletecollection": "delete collection of {kind}", "get": "read {of}the specified {kind}",
    "put": "replace {of}the specified {kind}", "patch": "partially update {of}the specified {kind}",
    "delete": "delete {a} {kind}",
}


def _query(name: str) -> Schema:
    kind, description = PARAMETERS[name]
    return {"description": description, "in": "query", "name": name,
            "schema": {"type": kind, "uniqueItems": True}}


def _path_param(name: str, description: str) -> Schema:
    return {"description": description, "in": "path", "name": name, "required": True,
            "schema": {"type": "string", "uniqueItems": True}}


def _content(component: str, media: tuple[str, ...]) -> dict[str, Any]:
    return {m: {"schema": ref(component)} for m in media}


def _title(text: str) -> str:
    return text[:1].upper() + text[1:]


def _op_id(rt: ResourceType, action: Action, *, sub: str, everywhere: bool) -> str:
    group = _title(rt.group.split(".", 1)[0]) if rt.group else "Core"
    scope = "Namespaced" if rt.namespaced and not everywhere else ""
    suffix = "ForAllNamespaces" if everywhere else ""
    return f"{action.op_verb}{group}{_title(rt.version)}{scope}{rt.kind}{_title(sub)}{suffix}"


def _request_body(action: str, kind: Kind) -> Schema | None:
    if action == "patch":
        return {"content": _content(PATCH, PATCH_TYPES), "required": True}
    if action in ("post", "put"):
        return {"content": {"*/*": {"schema": ref(upstream_name(kind.model))}}, "required": True}
    if action in ("delete", "deletecollection"):
        return {"content": {"*/*": {"schema": ref(upstream_name(catalog.DELETE_OPTIONS.model))}}}
    return None


def _responses(action: str, answer: str, *, listing: bool) -> Schema:
    media = _MEDIA + _WATCH_MEDIA if listing else _MEDIA
    out: Schema = {code: {"content": _content(answer, media), "description": _CODE_TEXT[code]}
                   for code in ACTIONS[action].codes}
    out["401"] = {"description": "Unauthorized"}
    return out


def operation(rt: ResourceType, action: str, *, kind: Kind, sub: str = "",
              everywhere: bool = False) -> Schema:
    """One operation object; ``kind`` is what it answers with, ``sub`` the subresource name."""
    spec = ACTIONS[action]
    listing = action == "list"
    if listing and (lk := catalog.list_kind(rt)):
        answer = upstream_name(lk.model)
    elif action in ("delete", "deletecollection"):
        answer = upstream_name(catalog.STATUS.model)
    else:
        answer = upstream_name(kind.model)
    subject = rt.kind if sub else kind.kind
    article = "an" if subject[:1] in "AEIOU" else "a"
    described = _DESCRIBE[action].format(kind=subject, a=article, of=f"{sub} of " if sub else "")
    op: Schema = {
        "description": described,
        "operationId": _op_id(rt, spec, sub=sub, everywhere=everywhere),
    }
    if spec.query and not everywhere:
        op["parameters"] = [_query(name) for name in spec.query]
    body = _request_body(action, kind)
    if body is not None:
        op["requestBody"] = body
    op["responses"] = _responses(action, answer, listing=listing)
    op["tags"] = [f"{(rt.group.split('.', 1)[0] if rt.group else 'core')}_{rt.version}"]
    op["x-kubernetes-action"] = action
    op["x-kubernetes-group-version-kind"] = kind.gvk
    return op


def _prefix(rt: ResourceType) -> str:
    return f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"


def resource_paths(rt: ResourceType) -> dict[str, Schema]:
    """Every path of one resource with its operations and shared path parameters."""
    own = catalog.resource_kind(rt)
    base = _prefix(rt)
    scope = [_path_param("namespace", "object name and auth scope, such as for teams and projects")]
    collection = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    pretty = [_query("pretty")]
    coll_params = (scope if rt.namespaced else []) + pretty
    item_params = [_path_param("name", f"name of the {rt.kind}"), *coll_params]
    out: dict[str, Schema] = {}
    actions = [VERB_ACTIONS[v] for v in rt.verbs if v in VERB_ACTIONS]
    coll_ops = {ACTIONS[a].method: operation(rt, a, kind=own) for a in actions if not ACTIONS[a].on_item}
    item_ops = {ACTIONS[a].method: operation(rt, a, kind=own) for a in actions if ACTIONS[a].on_item}
    if coll_ops:
        out[collection] = {**coll_ops, "parameters": coll_params}
    if item_ops:
        out[f"{collection}/{{name}}"] = {**item_ops, "parameters": item_params}
    if rt.namespaced and "list" in actions:
        out[f"{base}/{rt.plural}"] = {"get": operation(rt, "list", kind=own, everywhere=True),
                                      "parameters": [_query(n) for n in ("pretty", *_LIST_QUERY)]}
    for name, sub in catalog.subresources(rt):
        kind = sub.kind or own
        ops = {ACTIONS[a].method: operation(rt, a, kind=kind, sub=name) for a in sub.actions}
        out[f"{collection}/{{name}}/{name}"] = {**ops, "parameters": item_params}
    return out
