"""The REST verbs on resources: one table from (scope, HTTP method) to the handler of a verb.

``/api/v1/namespaces/default/pods`` is a collection (list, watch, create, deletecollection);
``.../pods/web`` an item (get, update, patch, delete); ``.../pods/web/status`` a subresource,
handled by :mod:`apiserver.handlers.subresources`. Every answer is JSON; errors are raised as
:class:`~apiserver.errors.ApiError` and rendered by the error middleware.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from apiserver import codec, context, errors, tables
from apiserver import fieldmanager as fm
from apiserver.handlers import common, listing, patching, reviews, subresources, watching
from apiserver.handlers.paths import Target
from apiserver.store import ObjectStore
from machinery import meta

Handler = Callable[[web.Request, ObjectStore, Target], Awaitable[web.StreamResponse]]


def _render(request: web.Request, target: Target, obj: dict[str, Any]) -> dict[str, Any]:
    if codec.wants_table(request.headers.get("Accept")):
        return tables.row_table(target.resource.printer, obj)
    return obj


# ---- collection verbs -------------------------------------------------------------------------

async def list_or_watch(request: web.Request, store: ObjectStore, target: Target) -> web.StreamResponse:
    rt = target.resource
    selectors = listing.parse_selectors(rt, request.query)
    if request.query.get("watch") in ("true", "1"):
        _require(target, "watch")
        return await watching.serve(request, store, rt, target.namespace, selectors)
    _require(target, "list")
    page = await listing.list_objects(store, rt, target.namespace, selectors,
                                     listing.page_request(request.query))
    if codec.wants_table(request.headers.get("Accept")):
        return common.json_response(tables.table(rt.printer, page.items, resource_version=str(page.revision),
                                          continue_=page.continue_token))
    return common.json_response(listing.list_body(rt, page))


async def create(request: web.Request, store: ObjectStore, target: Target) -> web.StreamResponse:
    _require(target, "create")
    obj = await common.read_object(request)
    if not target.resource.stored:
        return common.json_response(reviews.answer(target.resource, obj, request["user"]), status=201)
    ctx = common.request_context(request)
    created = await store.create(target.resource, target.namespace, obj, ctx)
    return common.json_response(created, status=201, ctx=ctx)


async def delete_collection(request: web.Request, store: ObjectStore, target: Target) -> web.StreamResponse:
    _require(target, "deletecollection")
    rt = target.resource
    ctx = common.request_context(request)
    options = await common.delete_options(request)
    selectors = listing.parse_selectors(rt, request.query)
    page = await listing.list_objects(store, rt, target.namespace, selectors)
    deleted = []
    for obj in page.items:
        md = obj["metadata"]
        try:
            result, _ = await store.delete(rt, md.get("namespace"), md["name"], ctx, options=options)
        except errors.ApiError as exc:
            if exc.code == 404:
                continue
            raise
        deleted.append(result)
    return common.json_response({"kind": rt.list_kind, "apiVersion": rt.api_version,
                          "metadata": {"resourceVersion": str(page.revision)}, "items": deleted})


# ---- item verbs -------------------------------------------------------------------------------

async def get(request: web.Request, store: ObjectStore, target: Target) -> web.StreamResponse:
    _require(target, "get")
    obj = await store.get(target.resource, target.namespace, target.name)
    return common.json_response(_render(request, target, obj))


async def update(request: web.Request, store: ObjectStore, target: Target) -> web.StreamResponse:
    _require(target, "update")
    obj = await common.read_object(request)
    ctx = common.request_context(request)
    expected = obj.get("metadata", {}).get("resourceVersion") if isinstance(obj.get("metadata"), dict) \
        else None
    result, _ = await store.update(target.resource, target.namespace, target.name, lambda _current: obj, ctx,
                                   subresource=target.subresource, expected_revision=expected or None)
    return common.json_response(result, ctx=ctx)


async def patch(request: web.Request, store: ObjectStore, target: Target) -> web.StreamResponse:
    _require(target, "patch")
    kind_of_patch = patching.patch_type(request.headers.get("Content-Type"))
    body = codec.decode(await common.body(request), kind_of_patch)
    ctx = common.request_context(request)
    rt = target.resource
    if kind_of_patch == codec.APPLY_PATCH:
        return await _server_side_apply(request, store, target, body, ctx)
    expected = None
    if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
        expected = body["metadata"].get("resourceVersion")

    def mutate(current: dict[str, Any]) -> dict[str, Any]:
        return patching.apply(kind_of_patch, current, body, rt.kind)

    result, _ = await store.update(rt, target.namespace, target.name, mutate, ctx,
                                   subresource=target.subresource, expected_revision=expected)
    return common.json_response(result, ctx=ctx)


async def _server_side_apply(request: web.Request, store: ObjectStore, target: Target, config: Any,
                             ctx: context.RequestContext) -> web.StreamResponse:
    rt = target.resource
    if not isinstance(config, dict):
        raise errors.bad_request("apply patch must be a YAML or JSON object")
    if not request.query.get("fieldManager"):
        raise errors.bad_request("PATCH, application/apply-patch+yaml requests must specify a fieldManager")
    name = (config.get("metadata") or {}).get("name")
    if name and name != target.name:
        raise errors.bad_request(f"the name of the object ({name}) does not match the name on the URL "
                                 f"({target.name})")
    force = request.query.get("force") in ("true", "1")

    def merge(current: dict[str, Any] | None) -> dict[str, Any]:
        try:
            return fm.apply(current, config, manager=ctx.manager, force=force, kind=rt.kind,
                            api_version=rt.api_version, now=meta.now())
        except fm.ApplyConflict as exc:
            raise errors.ApiError(409, "Conflict", str(exc), details={"causes": exc.causes}) from None
        except fm.FieldManagerError as exc:
            raise errors.bad_request(str(exc)) from None

    ctx.apply = True
    result, created = await store.update(rt, target.namespace, target.name, merge, ctx,
                                         subresource=target.subresource,
                                         create=lambda: _fresh(merge(None), target))
    return common.json_response(result, status=201 if created else 200, ctx=ctx)


def _fresh(obj: dict[str, Any], target: Target) -> dict[str, Any]:
    obj.setdefault("metadata", {})["name"] = target.name
    return obj


async def delete(request: web.Request, store: ObjectStore, target: Target) -> web.StreamResponse:
    _require(target, "delete")
    rt = target.resource
    ctx = common.request_context(request)
    options = await common.delete_options(request)
    obj, deleted_now = await store.delete(rt, target.namespace, target.name, ctx, options=options)
    if deleted_now and rt.kind != "Pod":
        return common.json_response(errors.success_status(name=target.name, kind=rt.plural, group=rt.group,
                                                   uid=obj["metadata"].get("uid", "")))
    return common.json_response(obj)


def _require(target: Target, verb: str) -> None:
    if verb not in target.resource.verbs:
        raise errors.method_not_allowed()


#: (item?, method) -> handler of the main resource
VERBS: dict[tuple[bool, str], Handler] = {
    (False, "GET"): list_or_watch,
    (False, "POST"): create,
    (False, "DELETE"): delete_collection,
    (True, "GET"): get,
    (True, "PUT"): update,
    (True, "PATCH"): patch,
    (True, "DELETE"): delete,
}


async def dispatch(request: web.Request, store: ObjectStore, target: Target) -> web.StreamResponse:
    if request.method in subresources.ITEM_VIEWS.get(target.subresource, ()):
        handler = VERBS.get((True, request.method))
    elif target.subresource:
        handler = subresources.handler(target.subresource, request.method)
    else:
        handler = VERBS.get((bool(target.name), request.method))
    if handler is None:
        raise errors.method_not_allowed()
    return await handler(request, store, target)
