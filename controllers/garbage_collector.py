"""The garbage collector: deletes objects whose owners are gone, and carries out cascading deletion.

Objects name their owners in ``metadata.ownerReferences`` (apiVersion, kind, name, uid). The API
server deletes an owner at once under Background propagation, or marks it with the
``foregroundDeletion`` / ``orphan`` finalizer; everything else happens here, as in Kubernetes:

- a dependent none of whose owners exists any more (matched by uid: a same-named object with another
  uid is a different owner) is deleted; one that still has a live owner only loses the references to
  the gone ones;
- an owner marked ``foregroundDeletion`` has its dependents deleted (in the foreground too) and loses
  the finalizer once none is left, which lets the server remove it;
- an owner marked ``orphan`` has its reference removed from every dependent, then loses the finalizer.

The collector follows every stored resource type with an informer whose index maps an owner uid to
its dependents, so "who depends on X" is a dict lookup. The caches may lag the server, so before an
owner is declared gone it is read from the server, and before a foreground owner is released its
dependents are listed from the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from enum import Enum
from functools import partial
from typing import Any

from apiserver import registry
from apiserver.registry import ResourceType
from controllers.base import (
    Controller,
    MetadataEdit,
    Obj,
    WorkLoop,
    finalizers_of,
    is_deleting,
    list_all,
    patch_metadata,
    resource_for,
    resource_id,
)
from machinery import meta
from machinery.client import ApiClient, NotFound
from machinery.informer import Informer, object_key

log = logging.getLogger(__name__)

OWNER_INDEX = "owner-uid"
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
#: (group, plural) of resources not followed; like Kubernetes, events are too many and own nothing
IGNORED: frozenset[tuple[str, str]] = frozenset({("", "events"), ("events.k8s.io", "events")})
#: verbs the collector needs on a resource to follow it
NEEDED_VERBS = ("list", "watch", "delete", "patch")

#: a work item: (resource id such as "replicasets.apps", cache key "namespace/name")
Item = tuple[str, str]


class OwnerState(Enum):
    SOLID = "solid"        # exists (or cannot be checked): the dependent stays
    DANGLING = "dangling"  # gone, or replaced by another object of the same name
    WAITING = "waiting"    # being deleted in the foreground: its dependents must go first


def owner_refs(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [r for r in refs if isinstance(r, dict)]


def owner_uids(obj: Mapping[str, Any]) -> list[str]:
    """The informer index function: an object is filed under each of its owners' uids."""
    return [str(r["uid"]) for r in owner_refs(obj) if r.get("uid")]


def uid_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def collected_types(resources: Iterable[ResourceType] = registry.RESOURCES) -> list[ResourceType]:
    """The resource types the collector follows."""
    return [rt for rt in resources if rt.stored and (rt.group, rt.plural) not in IGNORED
            and all(v in rt.verbs for v in NEEDED_VERBS)]


def deletion_policy(obj: Mapping[str, Any], *, owner_waiting: bool) -> str:
    """How to delete an orphaned dependent: its own pending policy, else Foreground while an owner
    waits on it (so its dependents go first), else Background."""
    fins = finalizers_of(obj)
    if ORPHAN in fins:
        return "Orphan"
    if FOREGROUND in fins or owner_waiting:
        return "Foreground"
    return "Background"


def without_owners(uids: set[str]) -> MetadataEdit:
    """A metadata edit dropping the ownerReferences to ``uids`` (None when none is there)."""
    def edit(md: Mapping[str, Any]) -> dict[str, Any] | None:
        refs = [r for r in md.get("ownerReferences") or () if isinstance(r, dict)]
        keep = [r for r in refs if r.get("uid") not in uids]
        if len(keep) == len(refs):
            return None
        return {"ownerReferences": keep or None}
    return edit


def without_finalizer(name: str) -> MetadataEdit:
    """A metadata edit dropping one finalizer (None when it is not there)."""
    def edit(md: Mapping[str, Any]) -> dict[str, Any] | None:
        fins = list(md.get("finalizers") or ())
        if name not in fins:
            return None
        rest = [f for f in fins if f != name]
        return {"finalizers": rest or None}
    return edit


def _gc_finalizing(obj: Mapping[str, Any]) -> bool:
    """Marked for deletion with a finalizer this collector owns."""
    return is_deleting(obj) and any(f in (FOREGROUND, ORPHAN) for f in finalizers_of(obj))


class GarbageCollector(Controller):
    """Owner-reference based cascading deletion over every stored resource type."""

    name = "garbagecollector"

    def __init__(self, client: ApiClient, *, workers: int = 8, recheck: float = 2.0,
                 live_recheck: float = 0.2) -> None:
        super().__init__(client)
        self.recheck = recheck
        self.live_recheck = live_recheck
        self.types: dict[str, ResourceType] = {resource_id(rt): rt for rt in collected_types()}
        self.caches: dict[str, Informer] = {}
        for rid, rt in self.types.items():
            informer = Informer(client, resource_for(rt), indexers={OWNER_INDEX: owner_uids})
            informer.add_handler(on_add=partial(self._added, rid), on_update=partial(self._updated, rid),
                                 on_delete=partial(self._deleted, rid))
            self.caches[rid] = informer
        self.informers.extend(self.caches.values())
        self.orphans: WorkLoop[Item] = WorkLoop("gc-dependents", self.attempt_to_delete, workers=workers)
        self.finishing: WorkLoop[Item] = WorkLoop("gc-owners", self.process_deleting_owner,
                                                  workers=max(1, workers // 2))
        self.loops += [self.orphans, self.finishing]

    # -- events -----------------------------------------------------------------------------------

    def _added(self, rid: str, obj: Obj) -> None:
        if owner_refs(obj):
            self.orphans.add((rid, object_key(obj)))
        if _gc_finalizing(obj):
            self.finishing.add((rid, object_key(obj)))

    def _updated(self, rid: str, old: Obj, new: Obj) -> None:
        if owner_refs(new) != owner_refs(old):
            if owner_refs(new):
                self.orphans.add((rid, object_key(new)))
            self._poke_owners(old)  # a foreground owner may just have lost this dependent
        if _gc_finalizing(new):
            self.finishing.add((rid, object_key(new)))

    def _deleted(self, rid: str, obj: Obj) -> None:
        for dep_rid, dep in self.dependents_of(uid_of(obj)):
            self.orphans.add((dep_rid, object_key(dep)))
        self._poke_owners(obj)

    def _poke_owners(self, obj: Obj) -> None:
        """Wake the foreground-deleting owners of ``obj``: one of their dependents changed."""
        for ref in owner_refs(obj):
            found = self._locate(ref, meta.namespace_of(obj))
            if found is None:
                continue
            rid, key = found
            owner = self.caches[rid].get(key)
            if owner is not None and uid_of(owner) == ref.get("uid") and _gc_finalizing(owner):
                self.finishing.add((rid, key))

    # -- lookups ----------------------------------------------------------------------------------

    def dependents_of(self, uid: str) -> list[tuple[str, Obj]]:
        """Cached objects naming ``uid`` as an owner, with their resource ids."""
        if not uid:
            return []
        return [(rid, dep) for rid, informer in self.caches.items()
                for dep in informer.by_index(OWNER_INDEX, uid)]

    def _locate(self, ref: Mapping[str, Any], namespace: str) -> Item | None:
        """Where the owner a reference names would be cached; None if it cannot exist or is not followed."""
        rt = registry.by_kind(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
        if rt is None or resource_id(rt) not in self.types or not ref.get("name"):
            return None
        if rt.namespaced and not namespace:
            return None
        return resource_id(rt), f"{namespace}/{ref['name']}" if rt.namespaced else str(ref["name"])

    async def owner_state(self, ref: Mapping[str, Any], dependent: Obj) -> OwnerState:
        """Whether the owner a reference names still exists, confirmed with the server before "gone"."""
        what = f"{ref.get('kind')} {ref.get('name')} ({ref.get('apiVersion')})"
        rt = registry.by_kind(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
        if rt is None or resource_id(rt) not in self.types or not ref.get("uid") or not ref.get("name"):
            log.warning("%s %s: cannot check owner %s; keeping it", dependent.get("kind", "object"),
                        object_key(dependent), what)
            return OwnerState.SOLID
        namespace = meta.namespace_of(dependent)
        if rt.namespaced and not namespace:
            return OwnerState.DANGLING  # a cluster-scoped object cannot have a namespaced owner
        found = self._locate(ref, namespace)
        owner = self.caches[found[0]].get(found[1]) if found else None
        if owner is None or uid_of(owner) != ref["uid"]:
            try:
                owner = await self.client.get(resource_for(rt), str(ref["name"]),
                                              namespace=namespace if rt.namespaced else None)
            except NotFound:
                return OwnerState.DANGLING
            if uid_of(owner) != ref["uid"]:
                return OwnerState.DANGLING
        if is_deleting(owner) and FOREGROUND in finalizers_of(owner):
            return OwnerState.WAITING
        return OwnerState.SOLID

    async def live_dependents(self, rid: str, owner: Obj) -> list[tuple[str, Obj]]:
        """Dependents of ``owner`` as the server has them (the caches may not have seen them yet)."""
        owner_rt, uid = self.types[rid], uid_of(owner)
        namespace = meta.namespace_of(owner) if owner_rt.namespaced else None

        async def scan(dep_rid: str, rt: ResourceType) -> list[tuple[str, Obj]]:
            if owner_rt.namespaced and not rt.namespaced:
                return []
            items = await list_all(self.client, resource_for(rt), namespace=namespace if rt.namespaced else None)
            return [(dep_rid, obj) for obj in items if uid in owner_uids(obj)]

        found = await asyncio.gather(*(scan(r, rt) for r, rt in self.types.items()))
        return [pair for pairs in found for pair in pairs]

    # -- reconcilers ------------------------------------------------------------------------------

    async def attempt_to_delete(self, item: Item) -> float | None:
        """Delete a dependent whose owners are all gone, or drop its references to gone owners."""
        rid, key = item
        obj = self.caches[rid].get(key)
        if obj is None or is_deleting(obj):
            return None  # gone, or already being deleted (a foreground one is handled as an owner)
        refs = owner_refs(obj)
        if not refs:
            return None
        states = await asyncio.gather(*(self.owner_state(ref, obj) for ref in refs))
        res = resource_for(self.types[rid])
        if OwnerState.SOLID in states:
            stale = {str(ref.get("uid")) for ref, state in zip(refs, states, strict=True)
                     if state is not OwnerState.SOLID}
            if stale and await patch_metadata(self.client, res, obj, without_owners(stale)) is not None:
                log.info("gc: %s %s keeps a live owner; removed references to owners %s",
                         rid, key, sorted(stale))
            return None
        policy = deletion_policy(obj, owner_waiting=OwnerState.WAITING in states)
        log.info("gc: deleting %s %s (%s): its owners %s are gone or going", rid, key, policy,
                 ", ".join(f"{r.get('kind')}/{r.get('name')}" for r in refs))
        try:
            await self.client.delete(res, meta.name_of(obj), namespace=meta.namespace_of(obj) or None,
                                     propagation_policy=policy, preconditions={"uid": uid_of(obj)})
        except NotFound:
            pass
        return None

    async def process_deleting_owner(self, item: Item) -> float | None:
        """Carry out the orphan or foreground finalizer of an owner being deleted."""
        rid, key = item
        owner = self.caches[rid].get(key)
        if owner is None or not is_deleting(owner):
            return None
        fins = finalizers_of(owner)
        res = resource_for(self.types[rid])
        if ORPHAN in fins:
            await self._orphan_dependents(rid, owner)
            if await patch_metadata(self.client, res, owner, without_finalizer(ORPHAN)) is not None:
                log.info("gc: %s %s: dependents orphaned; removed the %r finalizer", rid, key, ORPHAN)
            return None
        if FOREGROUND not in fins:
            return None
        pending = self.dependents_of(uid_of(owner))
        if pending:
            for dep_rid, dep in pending:
                self.orphans.add((dep_rid, object_key(dep)))
            log.debug("gc: %s %s waits for %d dependents", rid, key, len(pending))
            return self.recheck
        if await self.live_dependents(rid, owner):
            return self.live_recheck  # the caches will get them, and the events bring us back
        if await patch_metadata(self.client, res, owner, without_finalizer(FOREGROUND)) is not None:
            log.info("gc: %s %s: no dependents left; removed the %r finalizer", rid, key, FOREGROUND)
        return None

    async def _orphan_dependents(self, rid: str, owner: Obj) -> None:
        uid = uid_of(owner)
        targets = {(dep_rid, object_key(dep)): dep for dep_rid, dep in self.dependents_of(uid)}
        for dep_rid, dep in await self.live_dependents(rid, owner):
            targets.setdefault((dep_rid, object_key(dep)), dep)
        await asyncio.gather(*(patch_metadata(self.client, resource_for(self.types[dep_rid]), dep,
                                              without_owners({uid}))
                               for (dep_rid, _), dep in targets.items()))
