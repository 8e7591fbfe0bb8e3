"""The namespace controller: empties a terminating namespace, then releases its "kubernetes" finalizer.

Deleting a Namespace only marks it (deletionTimestamp, phase Terminating); the API server keeps it
while ``spec.finalizers`` holds "kubernetes". This controller deletes every namespaced object in it
(each stored namespaced resource of the registry), waits until nothing is left (objects held by
finalizers or grace periods are waited for, re-checking with a growing delay), reports progress in
the same status conditions Kubernetes uses, and finally PUTs ``/finalize`` without "kubernetes" so the
server can remove the namespace.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apiserver import registry
from apiserver.registry import ResourceType
from controllers.base import Controller, Obj, WorkLoop, is_deleting, list_all, resource_for, resource_of_kind
from machinery import meta
from machinery.client import ApiClient, ApiError, NotFound
from machinery.informer import Informer

log = logging.getLogger(__name__)

FINALIZER = "kubernetes"
NAMESPACES = resource_of_kind("v1", "Namespace")
BACKGROUND = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}


@dataclass
class Tally:
    """What one namespace still holds after a deletion pass."""

    remaining: Counter[str] = field(default_factory=Counter)    # "pods." -> objects left
    finalizers: Counter[str] = field(default_factory=Counter)   # finalizer -> objects it holds
    failures: list[str] = field(default_factory=list)           # why a resource could not be purged

    @property
    def empty(self) -> bool:
        return not self.remaining and not self.failures


@dataclass(frozen=True)
class ConditionRule:
    """One status condition: its healthy (False) form and how to word a problem (True)."""

    type: str
    ok_reason: str
    ok_message: str
    bad_reason: str


#: the conditions Kubernetes' namespace deleter maintains, in its order
CONDITIONS: tuple[ConditionRule, ...] = (
    ConditionRule("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered",
                  "All resources successfully discovered", "DiscoveryFailed"),
    ConditionRule("NamespaceDeletionGroupVersionParsingFailure", "ParsedGroupVersions",
                  "All legacy kube types successfully parsed", "GroupVersionParsingFailed"),
    ConditionRule("NamespaceDeletionContentFailure", "ContentDeleted",
                  "All content successfully deleted, may be waiting on finalization", "ContentDeletionFailed"),
    ConditionRule("NamespaceContentRemaining", "ContentRemoved", "All content successfully removed",
                  "SomeResourcesRemain"),
    ConditionRule("NamespaceFinalizersRemaining", "ContentHasNoFinalizers",
                  "All content-preserving finalizers finished", "SomeFinalizersRemain"),
)


def problems(tally: Tally) -> dict[str, str]:
    """Condition type -> message, for the conditions that are True (something is wrong or pending)."""
    found: dict[str, str] = {}
    if tally.failures:
        found["NamespaceDeletionContentFailure"] = (
            f"Failed to delete all resource types, {len(tally.failures)} remaining: "
            + ", ".join(sorted(tally.failures)))
    if tally.remaining:
        found["NamespaceContentRemaining"] = "Some resources are remaining: " + ", ".join(
            f"{res} has {n} resource instances" for res, n in sorted(tally.remaining.items()))
    if tally.finalizers:
        found["NamespaceFinalizersRemaining"] = "Some content in the namespace has finalizers remaining: " + \
            ", ".join(f"{fin} in {n} resource instances" for fin, n in sorted(tally.finalizers.items()))
    return found


def conditions_for(tally: Tally, current: Iterable[Mapping[str, Any]], *, now: str) -> list[dict[str, Any]]:
    """The status.conditions to store; a condition keeps its lastTransitionTime unless its status flips."""
    old = {c.get("type"): c for c in current if isinstance(c, Mapping)}
    wrong = problems(tally)
    out = []
    for rule in CONDITIONS:
        status = "True" if rule.type in wrong else "False"
        cond = {"type": rule.type, "status": status,
                "reason": rule.bad_reason if status == "True" else rule.ok_reason,
                "message": wrong.get(rule.type, rule.ok_message)}
        before = old.get(rule.type) or {}
        cond["lastTransitionTime"] = before.get("lastTransitionTime", now) \
            if before.get("status") == status else now
        out.append(cond)
    known = {rule.type for rule in CONDITIONS}
    out += [dict(c) for t, c in old.items() if t not in known]  # someone else's conditions stay
    return out


def _group_resource(rt: ResourceType) -> str:
    """How Kubernetes names a resource in these messages: ``pods.`` and ``deployments.apps``."""
    return f"{rt.plural}.{rt.group}"


class NamespaceController(Controller):
    """Finalizes terminating namespaces once their content is gone."""

    name = "namespace"

    def __init__(self, client: ApiClient, *, workers: int = 4, first_recheck: float = 0.25,
                 max_recheck: float = 5.0) -> None:
        super().__init__(client)
        self.first_recheck, self.max_recheck = first_recheck, max_recheck
        self._waits: dict[str, int] = {}  # namespace -> passes that found content left
        self.informer = Informer(client, NAMESPACES)
        self.informer.add_handler(on_add=self._seen, on_update=lambda _old, new: self._seen(new))
        self.loop: WorkLoop[str] = WorkLoop("namespace", self.reconcile, workers=workers)
        self.informers.append(self.informer)
        self.loops.append(self.loop)

    def _seen(self, ns: Obj) -> None:
        if is_deleting(ns):
            self.loop.add(meta.name_of(ns))

    async def reconcile(self, name: str) -> float | None:
        """One deletion pass; a delay to look again while content remains."""
        try:
            ns = await self.client.get(NAMESPACES, name)
        except NotFound:
            self._waits.pop(name, None)
            return None
        if not is_deleting(ns) or FINALIZER not in (ns.get("spec") or {}).get("finalizers", ()):
            self._waits.pop(name, None)
            return None
        tally = await self.purge(name)
        ns = await self._report(ns, tally)
        if not tally.empty:
            passes = self._waits.get(name, 0)
            self._waits[name] = passes + 1
            delay = min(self.first_recheck * 2 ** min(passes, 20), self.max_recheck)
            log.debug("namespace %s: waiting %.2fs for %s", name, delay, dict(tally.remaining))
            return delay
        await self._finalize(ns)
        self._waits.pop(name, None)
        return None

    async def purge(self, namespace: str) -> Tally:
        """Delete every object in the namespace (all resource types at once) and count what is left."""
        kinds = list(registry.namespaced_stored())
        results = await asyncio.gather(*(self._purge_one(rt, namespace) for rt in kinds))
        tally = Tally()
        for rt, (left, error) in zip(kinds, results, strict=True):
            if left:
                tally.remaining[_group_resource(rt)] = len(left)
                tally.finalizers.update(f for obj in left for f in (obj.get("metadata") or {}).get("finalizers")
                                        or ())
            if error:
                tally.failures.append(error)
        return tally

    async def _purge_one(self, rt: ResourceType, namespace: str) -> tuple[list[Obj], str | None]:
        """The objects of one type still present after deleting them, and any server refusal."""
        res = resource_for(rt)
        try:
            items = await list_all(self.client, res, namespace=namespace)
            if not any(not is_deleting(obj) for obj in items):
                return items, None
            log.info("namespace %s: deleting %d %s", namespace, len(items), rt.qualified_name)
            if "deletecollection" in rt.verbs:
                await self.client.request("DELETE", res.path(namespace=namespace), body=BACKGROUND)
            else:
                for obj in items:
                    if not is_deleting(obj):
                        await self._delete(rt, obj)
            return await list_all(self.client, res, namespace=namespace), None
        except ApiError as e:
            log.warning("namespace %s: deleting %s failed: %s", namespace, rt.qualified_name, e)
            return [], f"{rt.qualified_name}: {e}"

    async def _delete(self, rt: ResourceType, obj: Obj) -> None:
        try:
            await self.client.delete(resource_for(rt), meta.name_of(obj), namespace=meta.namespace_of(obj),
                                      propagation_policy="Background")
        except NotFound:
            pass

    async def _report(self, ns: Obj, tally: Tally) -> Obj:
        """Write the deletion conditions when they changed; returns the newest namespace."""
        status = ns.get("status") or {}
        current = status.get("conditions") or []
        wanted = conditions_for(tally, current, now=meta.now())
        if wanted == current:
            return ns
        body = {**ns, "status": {**status, "conditions": wanted}}
        body["metadata"] = {k: v for k, v in ns["metadata"].items() if k != "resourceVersion"}
        return await self.client.update_status(NAMESPACES, body)

    async def _finalize(self, ns: Obj) -> None:
        spec = ns.get("spec") or {}
        body = {**ns, "spec": {**spec, "finalizers": [f for f in spec.get("finalizers", ()) if f != FINALIZER]}}
        log.info("namespace %s: empty; removing the %r finalizer", meta.name_of(ns), FINALIZER)
        await self.client.request("PUT", NAMESPACES.path(name=meta.name_of(ns), subresource="finalize"),
                                  body=body)
