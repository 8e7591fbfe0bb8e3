"""Object lifecycle on top of a storage backend: what create, update and delete *mean*.

The storage only knows keys, revisions and compare-and-swap. This layer adds the Kubernetes
semantics every resource shares (Kubernetes calls it the generic registry store): uid and
creationTimestamp, generateName, generation bumps on spec changes, status kept apart from spec,
defaulting and validation from the registry, immutable fields, managedFields, dry runs, graceful
deletion with finalizers, and namespaces that must exist and not be terminating. Per-kind hooks
(service IP allocation, job selectors) are looked up in one table, :data:`HOOKS`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from apiserver import admission, allocators, defaults, errors, validation
from apiserver import fieldmanager as fm
from apiserver.context import RequestContext
from apiserver.openapi import strict
from apiserver.registry import ResourceType, lookup
from apiserver.storage import interface as st
from machinery import meta

log = logging.getLogger(__name__)

NAMESPACES = lookup("", "v1", "namespaces")
EVENT_TTL = 3600  # seconds, Kubernetes' --event-ttl default
MAX_RETRIES = 16
ENSURE_ATTEMPTS = 50  # x 0.2 s: how long a starting API server waits for a racing one's bootstrap write

#: metadata fields a client never sets: the server owns them
SERVER_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                   "generation", "resourceVersion", "selfLink")

#: subresources that write only some fields of the object: name -> the field paths they own
FIELD_SUBRESOURCES: dict[str, tuple[tuple[str, ...], ...]] = {
    "status": (("status",),),
    "finalize": (("spec", "finalizers"),),
    "ephemeralcontainers": (("spec", "ephemeralContainers"),),
    "binding": (("spec", "nodeName"), ("status", "conditions")),
}

Mutation = Callable[[dict[str, Any]], Awaitable[dict[str, Any]] | dict[str, Any]]


def clone(obj: dict[str, Any]) -> dict[str, Any]:
    """Deep copy of a JSON-shaped dict (stored dicts are shared and must never be mutated)."""
    return orjson.loads(orjson.dumps(obj))


def _status_reset(rt: ResourceType) -> bool:
    """Kubernetes clears client-sent status on create for kinds with a status subresource,
    except nodes (the kubelet registers a node with its status)."""
    return rt.has_status and rt.kind != "Node"


def _spec_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    skip = ("metadata", "status")
    keys = (set(old) | set(new)) - set(skip)
    return any(old.get(k) != new.get(k) for k in keys)


class ObjectStore:
    """The resource-aware layer between HTTP handlers and a :class:`~apiserver.storage.interface.Storage`."""

    def __init__(self, storage: st.Storage) -> None:
        self.storage = storage
        #: a watch cache's stale-but-cheap read, when the storage is one
        self._peek: Callable[[str], dict[str, Any] | None] | None = getattr(storage, "peek", None)

    # ---- reads ---------------------------------------------------------------------------------

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        try:
            return await self.storage.get(rt.key(namespace, name))
        except st.KeyNotFound:
            raise errors.not_found(rt.plural, name, group=rt.group) from None
        except st.Unavailable as exc:
            raise errors.unavailable(str(exc)) from None

    async def list_page(self, rt: ResourceType, namespace: str | None, *, limit: int = 0,
                        start_after: str | None = None, revision: int | None = None) -> st.ListResult:
        try:
            return await self.storage.list(rt.key(namespace), limit=limit, start_after=start_after,
                                           revision=revision)
        except st.Compacted as exc:
            raise errors.gone(f"too old resource version: {exc.revision} ({exc.compacted})") from None
        except st.FutureRevision as exc:
            raise errors.timeout(f"Too large resource version: {exc.revision}, current: {exc.current}") \
                from None
        except st.Unavailable as exc:
            raise errors.unavailable(str(exc)) from None

    async def watch(self, rt: ResourceType, namespace: str | None, revision: int) -> AsyncIterator[st.Event]:
        """Raw storage events after ``revision``; Compacted surfaces to the caller (410 in-stream)."""
        async for event in self.storage.watch(rt.key(namespace), revision=revision):
            yield event

    async def current_revision(self) -> int:
        return await self.storage.current_revision()

    # ---- create --------------------------------------------------------------------------------

    async def create(self, rt: ResourceType, namespace: str | None, obj: dict[str, Any],
                     ctx: RequestContext) -> dict[str, Any]:
        obj = self._admit_new(rt, namespace, obj, ctx)
        if rt.namespaced:
            await self._require_active_namespace(namespace or "")
        hooks = HOOKS.get(rt.kind, NO_HOOKS)
        if hooks.allocate is not None:
            await hooks.allocate(self.storage, obj)
        try:
            if ctx.dry_run:
                return obj
            ttl = EVENT_TTL if rt.kind == "Event" else None
            return await self.storage.create(rt.key(namespace, obj["metadata"]["name"]), obj, ttl=ttl)
        except st.KeyExists:
            raise errors.already_exists(rt.plural, obj["metadata"]["name"], group=rt.group) from None
        except st.Unavailable as exc:
            raise errors.unavailable(str(exc)) from None
        finally:
            if hooks.release is not None:
                hooks.release(obj)

    def _admit_new(self, rt: ResourceType, namespace: str | None, obj: dict[str, Any],
                   ctx: RequestContext) -> dict[str, Any]:
        """Turn a client's object into the one to store: identity, defaults, validation."""
        self._check_type(rt, obj)
        self._check_fields(rt, obj, ctx)
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise errors.bad_request("metadata must be an object")
        self._check_namespace(rt, namespace, md)
        for field in SERVER_METADATA:
            md.pop(field, None)
        if not md.get("name") and md.get("generateName"):
            md["name"] = meta.generate_name(md["generateName"])
        md["uid"] = meta.new_uid()
        md["creationTimestamp"] = meta.now()
        if rt.has_generation:
            md["generation"] = 1
        if _status_reset(rt):
            obj.pop("status", None)
        rt.default(obj)
        hooks = HOOKS.get(rt.kind, NO_HOOKS)
        if hooks.prepare_create is not None:
            hooks.prepare_create(obj)
        self._validate(rt, obj, None)
        if not ctx.apply:
            _record(None, obj, ctx, rt, md["creationTimestamp"], "")
        return obj

    @staticmethod
    def _check_type(rt: ResourceType, obj: dict[str, Any]) -> None:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version and api_version != rt.api_version:
            raise errors.bad_request(f"the API version in the data ({api_version}) does not match the "
                                     f"expected API version ({rt.api_version})")
        if kind and kind != rt.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind "
                                     f"({rt.kind})")
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind

    @staticmethod
    def _check_fields(rt: ResourceType, obj: dict[str, Any], ctx: RequestContext) -> None:
        if ctx.field_validation == "Ignore":
            return
        unknown = strict.unknown_fields(rt.model, obj)
        if not unknown:
            return
        if ctx.field_validation == "Strict":
            listed = ", ".join(f'unknown field "{path}"' for path in unknown)
            raise errors.bad_request(f"strict decoding error: {listed}")
        ctx.warnings.extend(f'unknown field "{path}"' for path in unknown)

    @staticmethod
    def _check_namespace(rt: ResourceType, namespace: str | None, md: dict[str, Any]) -> None:
        if rt.namespaced:
            given = md.get("namespace")
            if given and given != namespace:
                raise errors.bad_request("the namespace of the provided object does not match the "
                                         "namespace sent on the request")
            md["namespace"] = namespace
        else:
            md.pop("namespace", None)

    @staticmethod
    def _validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        causes = validation.object_meta(obj, namespaced=rt.namespaced,
                                        name_rule=validation.name_rule(rt.kind))
        causes += rt.validate(obj, old)
        if old is not None:
            causes += _immutable_causes(rt, obj, old)
        if causes:
            name = obj.get("metadata", {}).get("name") or obj.get("metadata", {}).get("generateName", "")
            raise errors.invalid(rt.qualified_kind, name, causes, group=rt.group, kind=rt.kind)

    async def _require_active_namespace(self, namespace: str) -> None:
        key = NAMESPACES.key(None, namespace)
        # a cached namespace is good enough (as upstream admission's informer); a miss is confirmed
        ns = self._peek(key) if self._peek is not None else None
        if ns is None:
            try:
                ns = await self.storage.get(key)
            except st.KeyNotFound:
                raise errors.not_found("namespaces", namespace) from None
            except st.Unavailable as exc:
                raise errors.unavailable(str(exc)) from None
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(f"unable to create new content in namespace {namespace} because it "
                                   f"is being terminated", resource="namespaces", name=namespace)

    # ---- update --------------------------------------------------------------------------------

    async def update(self, rt: ResourceType, namespace: str | None, name: str, mutate: Mutation,
                     ctx: RequestContext, *, subresource: str = "",
                     expected_revision: str | None = None,
                     create: Callable[[], Awaitable[dict[str, Any]] | dict[str, Any]] | None = None,
                     ) -> tuple[dict[str, Any], bool]:
        """Read-modify-write with compare-and-swap, retried on conflict.

        ``mutate`` gets a private copy of the current object and returns the desired one. With
        ``expected_revision`` (a client's resourceVersion) a mismatch is the client's 409; without
        it the write retries against the newest state, as Kubernetes' GuaranteedUpdate does.
        ``create`` makes the object when it does not exist (server-side apply's upsert).
        Returns (object, created).
        """
        key = rt.key(namespace, name)
        for _ in range(MAX_RETRIES):
            try:
                current = await self.storage.get(key)
            except st.KeyNotFound:
                if create is None:
                    raise errors.not_found(rt.plural, name, group=rt.group) from None
                desired = create()
                if not isinstance(desired, dict):
                    desired = await desired
                return await self.create(rt, namespace, desired, ctx), True
            except st.Unavailable as exc:
                raise errors.unavailable(str(exc)) from None
            if expected_revision and current["metadata"]["resourceVersion"] != expected_revision:
                raise errors.conflict(rt.plural, name, "the object has been modified; please apply your "
                                      "changes to the latest version and try again", group=rt.group)
            desired = mutate(clone(current))
            if not isinstance(desired, dict):
                desired = await desired
            new = self._admit_update(rt, current, desired, ctx, subresource=subresource)
            if new is current:
                return current, False
            if ctx.dry_run:
                return new, False
            hooks = HOOKS.get(rt.kind, NO_HOOKS)
            if hooks.allocate_update is not None and not subresource:
                await hooks.allocate_update(self.storage, current, new)
            try:
                if _finished_deleting(rt, new):
                    return await self.storage.delete(key, expected_revision=_revision(current)), False
                ttl = EVENT_TTL if rt.kind == "Event" else None
                return await self.storage.update(key, new, expected_revision=_revision(current), ttl=ttl), \
                    False
            except st.RevisionConflict:
                if expected_revision:
                    raise errors.conflict(rt.plural, name, "the object has been modified; please apply "
                                          "your changes to the latest version and try again",
                                          group=rt.group) from None
                continue
            except st.KeyNotFound:
                continue
            except st.Unavailable as exc:
                raise errors.unavailable(str(exc)) from None
            finally:
                if hooks.release is not None:
                    hooks.release(new)
        raise errors.conflict(rt.plural, name, "too many concurrent updates", group=rt.group)

    def _admit_update(self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any],
                      ctx: RequestContext, *, subresource: str) -> dict[str, Any]:
        """The object to store for an update, or ``old`` itself when nothing changes."""
        self._check_type(rt, new)
        md = new.get("metadata")
        if not isinstance(md, dict):
            raise errors.bad_request("metadata must be an object")
        old_md = old["metadata"]
        if md.get("name", old_md["name"]) != old_md["name"]:
            raise errors.bad_request(f"the name of the object ({md.get('name')}) does not match the name "
                                     f"on the URL ({old_md['name']})")
        if subresource in FIELD_SUBRESOURCES:
            new = _with_fields_of(old, new, FIELD_SUBRESOURCES[subresource])
        else:
            self._check_fields(rt, new, ctx)
            if rt.has_status:
                if "status" in old:
                    new["status"] = clone(old["status"])
                else:
                    new.pop("status", None)
        md = new["metadata"]
        for field in SERVER_METADATA:
            if field in old_md:
                md[field] = old_md[field]
            else:
                md.pop(field, None)
        if rt.namespaced:
            md["namespace"] = old_md.get("namespace")
        rt.default(new)
        hooks = HOOKS.get(rt.kind, NO_HOOKS)
        if hooks.prepare_update is not None:
            hooks.prepare_update(old, new)
        if rt.has_generation and subresource not in FIELD_SUBRESOURCES and _spec_changed(old, new):
            md["generation"] = old_md.get("generation", 0) + 1
        if old_md.get("deletionTimestamp") and _added_finalizers(old_md, md):
            raise errors.forbidden("no new finalizers can be added if the object is being deleted, "
                                   f"found new finalizers {sorted(_added_finalizers(old_md, md))}")
        self._validate(rt, new, old)
        if "managedFields" not in md and "managedFields" in old_md:
            md["managedFields"] = orjson.loads(orjson.dumps(old_md["managedFields"]))
        if not ctx.apply:
            _record(old, new, ctx, rt, meta.now(), subresource)
        if new == old:
            return old
        return new

    # ---- delete --------------------------------------------------------------------------------

    async def delete(self, rt: ResourceType, namespace: str | None, name: str, ctx: RequestContext,
                     *, options: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Delete now, or mark for deletion when finalizers or a grace period hold it.

        Returns (object, deleted_now). Dependents are the garbage collector's job: Foreground and
        Orphan propagation leave a finalizer it acts on; Background deletes at once.
        """
        key = rt.key(namespace, name)
        policy = _propagation(options)
        for _ in range(MAX_RETRIES):
            current = await self.get(rt, namespace, name)
            _check_preconditions(rt, current, options.get("preconditions") or {})
            md = current["metadata"]
            finalizers = list(md.get("finalizers") or [])
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            elif policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            grace = _grace_period(rt, current, options)
            holds = bool(finalizers) or grace > 0 or (rt.kind == "Namespace"
                                                      and current.get("spec", {}).get("finalizers"))
            if not holds:
                if ctx.dry_run:
                    return current, True
                try:
                    return await self.storage.delete(key, expected_revision=_revision(current)), True
                except (st.RevisionConflict, st.KeyNotFound):
                    continue
                except st.Unavailable as exc:
                    raise errors.unavailable(str(exc)) from None
            if md.get("deletionTimestamp") and finalizers == list(md.get("finalizers") or []) \
                    and grace >= md.get("deletionGracePeriodSeconds", 0):
                return current, False
            marked = clone(current)
            mmd = marked["metadata"]
            mmd["finalizers"] = finalizers
            mmd.setdefault("deletionTimestamp", meta.now())
            mmd["deletionGracePeriodSeconds"] = min(grace, mmd.get("deletionGracePeriodSeconds", grace))
            if rt.has_generation:
                mmd["generation"] = mmd.get("generation", 0) + 1
            if rt.kind == "Namespace":
                marked.setdefault("status", {})["phase"] = "Terminating"
            if not finalizers:
                mmd.pop("finalizers")
            if ctx.dry_run:
                return marked, False
            try:
                return await self.storage.update(key, marked, expected_revision=_revision(current)), False
            except (st.RevisionConflict, st.KeyNotFound):
                continue
            except st.Unavailable as exc:
                raise errors.unavailable(str(exc)) from None
        raise errors.conflict(rt.plural, name, "too many concurrent updates", group=rt.group)

    # ---- start-up ------------------------------------------------------------------------------

    async def ensure(self, rt: ResourceType, obj: dict[str, Any], ctx: RequestContext) -> None:
        """Create an object unless it exists (bootstrap namespaces and services).

        Several API servers may start at once on one datastore: losing the race is fine, whether
        it shows as 409 or as a value the winner's create holds (422 "already allocated") until
        its write lands, so a refused create is retried until the object is there."""
        md = obj["metadata"]
        key = rt.key(md.get("namespace"), md["name"])
        for attempt in range(ENSURE_ATTEMPTS):
            try:
                await self.storage.get(key)
                return
            except st.KeyNotFound:
                pass
            try:
                await self.create(rt, md.get("namespace"), obj, ctx)
                return
            except errors.ApiError as exc:
                if exc.code == 409:
                    return
                if exc.code != 422 or attempt == ENSURE_ATTEMPTS - 1:
                    raise
            await asyncio.sleep(0.2)


def _record(old: dict[str, Any] | None, new: dict[str, Any], ctx: RequestContext, rt: ResourceType, now: str,
            subresource: str) -> None:
    try:
        fm.record_update(old, new, manager=ctx.manager, kind=rt.kind, api_version=rt.api_version, now=now,
                         subresource=subresource)
    except fm.FieldManagerError as exc:
        raise errors.bad_request(str(exc)) from None


def _revision(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def _with_fields_of(old: dict[str, Any], new: dict[str, Any], paths: tuple[tuple[str, ...], ...]
                    ) -> dict[str, Any]:
    """A subresource write changes its own fields and nothing else."""
    result = clone(old)
    for path in paths:
        source: Any = new
        for part in path:
            source = source.get(part) if isinstance(source, dict) else None
        parent = result
        for part in path[:-1]:
            parent = parent.setdefault(part, {})
        if source is None:
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = source
    return result


def _added_finalizers(old_md: dict[str, Any], new_md: dict[str, Any]) -> set[str]:
    return set(new_md.get("finalizers") or ()) - set(old_md.get("finalizers") or ())


def _immutable_causes(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> list[dict[str, str]]:
    causes = []
    for path in rt.immutable:
        before, after = meta.lookup(old, path), meta.lookup(new, path)
        if before is not None and before != after:
            causes.append(errors.cause(path, f"Invalid value: {orjson.dumps(after).decode()}: "
                                       f"field is immutable"))
    return causes


def _propagation(options: dict[str, Any]) -> str:
    policy = options.get("propagationPolicy")
    if policy is None and options.get("orphanDependents") is not None:
        policy = "Orphan" if options["orphanDependents"] else "Background"
    policy = policy or "Background"
    if policy not in ("Background", "Foreground", "Orphan"):
        raise errors.invalid("DeleteOptions", "", [errors.cause(
            "propagationPolicy", f'Unsupported value: "{policy}": supported values: "Foreground", '
            f'"Background", "Orphan", "nil"', "FieldValueNotSupported")])
    return policy


def _grace_period(rt: ResourceType, obj: dict[str, Any], options: dict[str, Any]) -> int:
    """Only scheduled pods wait for their kubelet; everything else goes at once."""
    if rt.kind != "Pod" or not obj.get("spec", {}).get("nodeName"):
        return 0
    if obj.get("status", {}).get("phase") in ("Succeeded", "Failed"):
        return 0
    grace = options.get("gracePeriodSeconds")
    if grace is None:
        grace = obj.get("spec", {}).get("terminationGracePeriodSeconds", 30)
    if not isinstance(grace, int) or grace < 0:
        raise errors.bad_request("gracePeriodSeconds must be a non-negative integer")
    return grace


def _finished_deleting(rt: ResourceType, obj: dict[str, Any]) -> bool:
    """A deleting object whose last finalizer (and grace period) is gone is removed by this write."""
    md = obj["metadata"]
    if not md.get("deletionTimestamp") or md.get("finalizers"):
        return False
    if rt.kind == "Pod" and md.get("deletionGracePeriodSeconds", 0) > 0:
        return False
    return not (rt.kind == "Namespace" and obj.get("spec", {}).get("finalizers"))


def _check_preconditions(rt: ResourceType, obj: dict[str, Any], pre: dict[str, Any]) -> None:
    md = obj["metadata"]
    if pre.get("uid") and pre["uid"] != md.get("uid"):
        raise errors.conflict(rt.plural, md["name"], f"Precondition failed: UID in precondition: "
                              f"{pre['uid']}, UID in object meta: {md.get('uid')}", group=rt.group)
    if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
        raise errors.conflict(rt.plural, md["name"], f"Precondition failed: ResourceVersion in "
                              f"precondition: {pre['resourceVersion']}, ResourceVersion in object meta: "
                              f"{md.get('resourceVersion')}", group=rt.group)


@dataclass(frozen=True)
class KindHooks:
    """Per-kind steps beyond the registry's defaulting and validation."""

    #: after defaulting, before validation, on create (the object has its uid)
    prepare_create: Callable[[dict[str, Any]], None] | None = None
    #: after defaulting, before validation, on update: (old, new)
    prepare_update: Callable[[dict[str, Any], dict[str, Any]], None] | None = None
    #: hand out values from shared pools just before storing a new object
    allocate: Callable[[st.Storage, dict[str, Any]], Awaitable[None]] | None = None
    #: the same on an update that changes what the object needs from the pools: (storage, old, new)
    allocate_update: Callable[[st.Storage, dict[str, Any], dict[str, Any]], Awaitable[None]] | None = None
    #: after the create or update went through (or failed): drop in-memory holds
    release: Callable[[dict[str, Any]], None] | None = None


NO_HOOKS = KindHooks()

HOOKS: dict[str, KindHooks] = {
    "Service": KindHooks(prepare_update=allocators.keep_allocations, allocate=allocators.allocate_service,
                         allocate_update=allocators.allocate_update, release=allocators.release_reservations),
    "Job": KindHooks(prepare_create=defaults.job_selector),
    "Pod": KindHooks(prepare_create=admission.service_account_token),
}
