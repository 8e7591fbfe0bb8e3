"""The ReplicaSet controller: keeps ``spec.replicas`` pods of the template alive, and reports them.

Per ReplicaSet key, from the caches:

1. the pods it controls (ownerReferences index), adopting orphan pods its selector matches;
2. unless earlier creates/deletes are still unseen (expectations), create the missing pods
   (in slow-start batches of 1, 2, 4, ... so a failing template costs one error, not hundreds), or
   delete the surplus, least valuable first: unscheduled, pending, not ready, ready for the shortest
   time, most restarted, newest;
3. write ``status`` (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
   observedGeneration); a pod becomes available ``minReadySeconds`` after it turned Ready, so the
   key is looked at again then.

Pod readiness helpers live here because the Deployment controller judges pods the same way.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from machinery import meta
from machinery.client import ApiClient, ApiError, NotFound
from machinery.reconcile import (
    CONTROLLER_UID_INDEX,
    Reconciler,
    SharedInformers,
    controller_ref,
    is_deleting,
    uid_of,
)
from machinery.resources import PODS, REPLICASETS
from machinery.selectors import LabelSelector, SelectorError

log = logging.getLogger(__name__)

Obj = dict[str, Any]

#: pods a reconcile creates at most (the rest come on the next pass, as in Kubernetes)
BURST = 500
#: pod phases, in the order a surplus pod is deleted (earlier first)
PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


# --- judging pods ----------------------------------------------------------------------------------

def is_active(pod: Mapping[str, Any]) -> bool:
    """Counts towards replicas: not terminating and not finished."""
    phase = (pod.get("status") or {}).get("phase")
    return not is_deleting(pod) and phase not in ("Succeeded", "Failed")


def ready_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond
    return None


def is_ready(pod: Mapping[str, Any]) -> bool:
    cond = ready_condition(pod)
    return bool(cond and cond.get("status") == "True")


def ready_since(pod: Mapping[str, Any]) -> float | None:
    """Epoch seconds since which the pod has been Ready (None when it is not)."""
    cond = ready_condition(pod)
    if not cond or cond.get("status") != "True":
        return None
    stamp = cond.get("lastTransitionTime")
    try:
        return meta.parse_time(stamp) if stamp else 0.0
    except ValueError:
        return 0.0


def available_in(pod: Mapping[str, Any], *, min_ready: float, now: float) -> float | None:
    """Seconds until the pod counts as available: 0 when it is, None when it is not even Ready."""
    since = ready_since(pod)
    if since is None:
        return None
    return max(0.0, since + min_ready - now) if min_ready > 0 else 0.0


def deletion_rank(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    """Sort key: the pod to delete first sorts first (Kubernetes' ActivePods ordering)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    since = ready_since(pod)
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or ())
    created = (pod.get("metadata") or {}).get("creationTimestamp") or ""
    return (bool(spec.get("nodeName")), PHASE_RANK.get(status.get("phase") or "Pending", 0),
            since is not None, -(since or 0.0), -restarts, _negated(created))


def _negated(text: str) -> tuple[int, ...]:
    """Sorts newer timestamps first."""
    return tuple(-ord(c) for c in text)


# --- status ----------------------------------------------------------------------------------------

def replica_status(rs: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], *,
                   now: float) -> tuple[dict[str, Any], float | None]:
    """The status of ``rs`` given its active pods, and when a pending availability matures."""
    spec = rs.get("spec") or {}
    min_ready = float(spec.get("minReadySeconds") or 0)
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    counts = {"replicas": 0, "fullyLabeledReplicas": 0, "readyReplicas": 0, "availableReplicas": 0}
    recheck: float | None = None
    for pod in pods:
        counts["replicas"] += 1
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if all(labels.get(k) == v for k, v in template_labels.items()):
            counts["fullyLabeledReplicas"] += 1
        wait = available_in(pod, min_ready=min_ready, now=now)
        if wait is None:
            continue
        counts["readyReplicas"] += 1
        if wait == 0:
            counts["availableReplicas"] += 1
        else:
            recheck = wait if recheck is None else min(recheck, wait)
    old = rs.get("status") or {}
    status = {**counts, "observedGeneration": (rs.get("metadata") or {}).get("generation", 0)}
    if old.get("conditions"):
        status["conditions"] = old["conditions"]
    return status, (recheck + 0.05 if recheck is not None else None)


def pod_from_template(rs: Mapping[str, Any]) -> Obj:
    md = rs["metadata"]
    template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    tmd = template.get("metadata") or {}
    pod_md: Obj = {"generateName": f"{md['name']}-", "namespace": md.get("namespace"),
                   "labels": tmd.get("labels") or {},
                   "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": md["name"],
                                        "uid": md["uid"], "controller": True, "blockOwnerDeletion": True}]}
    for key in ("annotations", "finalizers"):
        if tmd.get(key):
            pod_md[key] = tmd[key]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_md, "spec": template.get("spec") or {}}


def slow_start_batches(total: int, *, first: int = 1) -> list[int]:
    """Batch sizes 1, 2, 4, ... summing to ``total``."""
    sizes, size = [], first
    while total > 0:
        sizes.append(min(size, total))
        total -= sizes[-1]
        size *= 2
    return sizes


# --- the controller --------------------------------------------------------------------------------

class ReplicaSetController(Reconciler):
    name = "replicaset"
    primary_resource = REPLICASETS
    workers = 4

    def __init__(self, client: ApiClient, *, informers: SharedInformers | None = None, **kwargs: Any) -> None:
        super().__init__(client, informers=informers, **kwargs)
        self.pods = self.watch(PODS, owner_kind="ReplicaSet")

    async def reconcile(self, key: str) -> float | None:
        rs = self.primary.get(key)
        if rs is None:
            self.expectations.forget(key)
            return None
        pods = [p for p in self.pods.by_index(CONTROLLER_UID_INDEX, uid_of(rs))]
        if not is_deleting(rs):
            pods += await self._adopt(rs)
        active = [p for p in pods if is_active(p)]
        gone: set[str] = set()
        if not is_deleting(rs) and self.expectations.satisfied(key):
            gone = await self._manage(rs, key, active)
        remaining = [p for p in active if uid_of(p) not in gone]
        status, recheck = replica_status(rs, remaining, now=time.time())
        if status != (rs.get("status") or {}):
            md = rs["metadata"]
            try:
                await self.client.patch(REPLICASETS, md["name"], {"status": status}, namespace=md["namespace"],
                                        subresource="status")
            except NotFound:
                return None
        return recheck

    async def _adopt(self, rs: Obj) -> list[Obj]:
        """Take over orphan pods the selector matches (as after ``--cascade=orphan`` and re-create)."""
        md = rs["metadata"]
        try:
            selector = LabelSelector.from_dict((rs.get("spec") or {}).get("selector"))
        except SelectorError:
            return []
        if selector.empty:
            return []
        adopted = []
        for pod in self.pods.by_index("namespace", md["namespace"]):
            if controller_ref(pod) or is_deleting(pod) or not selector.matches(pod["metadata"].get("labels")):
                continue
            mine = pod_from_template(rs)["metadata"]["ownerReferences"][0]
            refs = [*(pod["metadata"].get("ownerReferences") or []), mine]
            body = {"metadata": {"ownerReferences": refs, "resourceVersion": pod["metadata"]["resourceVersion"]}}
            try:
                adopted.append(await self.client.patch(PODS, pod["metadata"]["name"], body,
                                                       namespace=md["namespace"]))
            except ApiError as e:
                log.info("replicaset %s: adopting pod %s: %s", md["name"], pod["metadata"]["name"], e)
        return adopted

    async def _manage(self, rs: Obj, key: str, active: list[Obj]) -> set[str]:
        """Create or delete pods towards spec.replicas; returns the uids deleted."""
        want = int((rs.get("spec") or {}).get("replicas", 1))
        diff = len(active) - want
        if diff < 0:
            await self._create(rs, key, min(-diff, BURST))
            return set()
        if diff > 0:
            victims = sorted(active, key=deletion_rank)[:diff]
            return await self._delete(key, victims)
        return set()

    async def _create(self, rs: Obj, key: str, count: int) -> None:
        self.expectations.expect_creations(key, count)
        ns = rs["metadata"]["namespace"]
        left = count
        for size in slow_start_batches(count):
            results = await asyncio.gather(*(self.client.create(PODS, pod_from_template(rs), namespace=ns)
                                             for _ in range(size)), return_exceptions=True)
            left -= size
            errors = [r for r in results if isinstance(r, BaseException)]
            for _ in errors:
                self.expectations.creation_observed(key)  # no event will come for a failed create
            if errors:
                for _ in range(left):
                    self.expectations.creation_observed(key)  # the skipped batches
                raise errors[0]
        self.metrics.inc("pinnace_replicaset_pods_created_total", count, controller=self.name)

    async def _delete(self, key: str, victims: list[Obj]) -> set[str]:
        uids = [uid_of(p) for p in victims]
        self.expectations.expect_deletions(key, uids)
        results = await asyncio.gather(*(self.client.delete(PODS, p["metadata"]["name"],
                                                            namespace=p["metadata"]["namespace"],
                                                            preconditions={"uid": uid_of(p)})
                                         for p in victims), return_exceptions=True)
        deleted: set[str] = set()
        failure: BaseException | None = None
        for uid, result in zip(uids, results, strict=True):
            if isinstance(result, NotFound):
                self.expectations.deletion_observed(key, uid)
                deleted.add(uid)
            elif isinstance(result, BaseException):
                self.expectations.deletion_observed(key, uid)
                failure = failure or result
            else:
                deleted.add(uid)
        self.metrics.inc("pinnace_replicaset_pods_deleted_total", len(deleted), controller=self.name)
        if failure is not None:
            raise failure
        return deleted
