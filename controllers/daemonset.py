"""The DaemonSet controller: one pod of the template on every eligible node, rolled like upstream.

Per DaemonSet key, from the caches:

1. which nodes should run the daemon pod: the template's nodeSelector and required node affinity
   match, and its tolerations (plus the defaults every daemon pod gets: not-ready/unreachable
   NoExecute, pressure and unschedulable NoSchedule) cover the node's NoSchedule/NoExecute taints.
   A pod already there may stay as long as the NoExecute taints are tolerated;
2. unless earlier writes are still unseen (expectations), create the missing pods, each pinned to
   its node by a required ``matchFields metadata.name In [node]`` affinity and left to the scheduler
   (as upstream since 1.12) once the node's previous daemon pod has finished terminating, and delete
   pods on nodes that should not run one, failed pods, and duplicates;
3. RollingUpdate: pods whose ``controller-revision-hash`` is not the template's are replaced, at
   most ``maxUnavailable`` nodes down at a time (or, with ``maxSurge``, the new pod first);
4. a ControllerRevision per template (``<name>-<hash>``, data ``{"spec": {"template": ...}}``, the
   revision number one above the newest) so ``kubectl rollout history/undo ds`` work; old ones beyond
   ``revisionHistoryLimit`` are deleted. Skipped when the server does not serve them;
5. ``status``: desired/current/misscheduled/ready/available/updated counts and observedGeneration,
   which ``kubectl rollout status ds`` reads.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controllers.disruption import BudgetError, scaled
from controllers.node_ipam import NODES
from controllers.replicaset import PODS, available_in, is_ready, slow_start_batches
from machinery.client import ApiClient, ApiError, NotFound
from machinery.reconcile import (
    CONTROLLER_UID_INDEX,
    Reconciler,
    SharedInformers,
    controller_ref,
    is_deleting,
    make_controller_ref,
    owner_key_mapper,
    uid_of,
)
from machinery.resources import CONTROLLER_REVISIONS, DAEMONSETS
from scheduler.matching import NodeSelectorTerm, tolerates
from scheduler.podinfo import PodSpecError

log = logging.getLogger(__name__)

Obj = dict[str, Any]

HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
CHANGE_CAUSE = "kubernetes.io/change-cause"
#: what upstream adds to every daemon pod: daemons stay on sick or cordoned nodes
DEFAULT_TOLERATIONS: tuple[Obj, ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
HOST_NETWORK_TOLERATION: Obj = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                                "effect": "NoSchedule"}
HARD_EFFECTS = ("NoSchedule", "NoExecute")
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # upstream's rand.SafeEncodeString alphabet


# --- pure helpers ----------------------------------------------------------------------------------

def template_hash(template: Mapping[str, Any], collisions: int = 0) -> str:
    """A stable short hash of the pod template, in the alphabet upstream's hashes use."""
    raw = json.dumps(template, sort_keys=True, separators=(",", ":")).encode() + str(collisions).encode()
    digest = int.from_bytes(hashlib.sha256(raw).digest()[:8], "big")
    out = []
    for _ in range(10):
        digest, rest = divmod(digest, len(_SAFE))
        out.append(_SAFE[rest])
    return "".join(out)


def with_default_tolerations(spec: Mapping[str, Any]) -> list[Obj]:
    tolerations = [dict(t) for t in spec.get("tolerations") or () if isinstance(t, dict)]
    extra = [*DEFAULT_TOLERATIONS, *((HOST_NETWORK_TOLERATION,) if spec.get("hostNetwork") else ())]
    for tol in extra:
        if not any(t.get("key") == tol["key"] and t.get("effect") == tol["effect"] for t in tolerations):
            tolerations.append(dict(tol))
    return tolerations


def node_fits(spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """nodeName, nodeSelector and required node affinity of the template allow this node."""
    md = node.get("metadata") or {}
    if spec.get("nodeName") and spec["nodeName"] != md.get("name"):
        return False
    labels = md.get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if not required:
        return True
    try:
        return any(NodeSelectorTerm(t).matches(node) for t in required.get("nodeSelectorTerms") or ())
    except PodSpecError:
        return False


def placement(spec: Mapping[str, Any], node: Mapping[str, Any]) -> tuple[bool, bool]:
    """(should a new daemon pod run here, may an existing one continue), upstream's two answers."""
    if not node_fits(spec, node):
        return False, False
    tolerations = with_default_tolerations(spec)
    taints = [t for t in (node.get("spec") or {}).get("taints") or () if t.get("effect") in HARD_EFFECTS]
    untolerated = [t for t in taints if not tolerates(tolerations, t)]
    return not untolerated, not any(t.get("effect") == "NoExecute" for t in untolerated)


def target_node(pod: Mapping[str, Any]) -> str | None:
    """The node a daemon pod is for: its nodeName, else the matchFields affinity it was made with."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or ():
        for req in term.get("matchFields") or ():
            values = req.get("values") or ()
            if req.get("key") == "metadata.name" and req.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return None


def pin_to_node(spec: Obj, node: str) -> None:
    """Replace the required node affinity by the one term naming ``node`` (upstream's way)."""
    affinity = spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}


def daemon_pod(ds: Mapping[str, Any], *, node: str, revision_hash: str) -> Obj:
    md = ds["metadata"]
    template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
    tmd = template.get("metadata") or {}
    spec = template.get("spec") or {}
    spec["tolerations"] = with_default_tolerations(spec)
    pin_to_node(spec, node)
    labels = {**(tmd.get("labels") or {}), HASH_LABEL: revision_hash,
              GENERATION_LABEL: str(md.get("generation", 1))}
    pod_md: Obj = {"generateName": f"{md['name']}-", "namespace": md["namespace"], "labels": labels,
                   "ownerReferences": [make_controller_ref({**ds, "apiVersion": "apps/v1", "kind": "DaemonSet"})]}
    for key in ("annotations", "finalizers"):
        if tmd.get(key):
            pod_md[key] = tmd[key]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_md, "spec": spec}


def revision_data(ds: Mapping[str, Any]) -> Obj:
    """What a ControllerRevision holds: the patch that restores this template (upstream's shape)."""
    template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def _pod_hash(pod: Mapping[str, Any]) -> str | None:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL)


def _oldest_first(pods: Iterable[Obj]) -> list[Obj]:
    return sorted(pods, key=lambda p: (not is_ready(p), p["metadata"].get("creationTimestamp") or "",
                                       p["metadata"].get("name") or ""))


@dataclass
class Plan:
    """What one pass decided: pods to create (by node) and to delete, and the status counts."""

    create: list[str] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)


def max_unavailable(ds: Mapping[str, Any], desired: int) -> tuple[int, int]:
    """(maxUnavailable, maxSurge) as numbers of nodes; both 0 is read as 1 unavailable."""
    rolling = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    try:
        unavailable = scaled(rolling.get("maxUnavailable", 1), desired, round_up=True)
        surge = scaled(rolling.get("maxSurge", 0), desired, round_up=True)
    except BudgetError:
        return 1, 0
    if unavailable <= 0 and surge <= 0:
        unavailable = 1
    return max(0, unavailable), max(0, surge)


def plan_rollout(ds: Mapping[str, Any], by_node: Mapping[str, list[Obj]], *, should_run: set[str],
                 current: str, now: float) -> Plan:
    """The RollingUpdate step: which old pods to delete, which nodes get a surge pod."""
    plan = Plan()
    strategy = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type") or "RollingUpdate"
    if strategy != "RollingUpdate":
        return plan
    min_ready = float((ds.get("spec") or {}).get("minReadySeconds") or 0)

    def available(pod: Obj) -> bool:
        return available_in(pod, min_ready=min_ready, now=now) == 0

    max_down, max_surge = max_unavailable(ds, len(should_run))
    nodes = sorted(should_run)
    if max_surge == 0:
        down = sum(1 for n in nodes if not any(available(p) for p in by_node.get(n, ())))
        for node in nodes:
            pods = by_node.get(node, [])
            old = [p for p in pods if _pod_hash(p) != current]
            if not old:
                continue
            if not any(available(p) for p in old):
                plan.delete += old  # already down: replacing it costs nothing
            elif down < max_down:
                plan.delete += old
                down += 1
        return plan
    surging = sum(1 for n in nodes if len(by_node.get(n, ())) > 1)
    for node in nodes:
        pods = by_node.get(node, [])
        old = [p for p in pods if _pod_hash(p) != current]
        new = [p for p in pods if _pod_hash(p) == current]
        if not old:
            continue
        if new and any(available(p) for p in new):
            plan.delete += old
        elif not new and not any(available(p) for p in old):
            plan.delete += old  # nothing to protect: replace in place
        elif not new and surging < max_surge:
            plan.create.append(node)
            surging += 1
    return plan


def daemon_status(ds: Mapping[str, Any], by_node: Mapping[str, list[Obj]], *, should_run: set[str],
                  current: str, now: float) -> tuple[Obj, float | None]:
    """The DaemonSet's status, and when a pending availability matures."""
    spec, md = ds.get("spec") or {}, ds.get("metadata") or {}
    min_ready = float(spec.get("minReadySeconds") or 0)
    counts = dict.fromkeys(("currentNumberScheduled", "numberMisscheduled", "numberReady", "numberAvailable",
                            "updatedNumberScheduled"), 0)
    recheck: float | None = None
    for node, pods in by_node.items():
        if not pods:
            continue
        if node not in should_run:
            counts["numberMisscheduled"] += 1
            continue
        counts["currentNumberScheduled"] += 1
        newest = sorted(pods, key=lambda p: _pod_hash(p) != current)[0]
        if _pod_hash(newest) == current:
            counts["updatedNumberScheduled"] += 1
        wait = available_in(newest, min_ready=min_ready, now=now)
        if wait is None:
            continue
        counts["numberReady"] += 1
        if wait == 0:
            counts["numberAvailable"] += 1
        else:
            recheck = wait if recheck is None else min(recheck, wait)
    desired = len(should_run)
    status: Obj = {"desiredNumberScheduled": desired, **counts, "observedGeneration": md.get("generation", 0)}
    if desired - counts["numberAvailable"] > 0:
        status["numberUnavailable"] = desired - counts["numberAvailable"]
    old = ds.get("status") or {}
    for key in ("collisionCount", "conditions"):
        if key in old:
            status[key] = old[key]
    return status, (recheck + 0.05 if recheck is not None else None)


# --- the controller --------------------------------------------------------------------------------

class DaemonSetController(Reconciler):
    name = "daemonset"
    primary_resource = DAEMONSETS
    workers = 2

    def __init__(self, client: ApiClient, *, informers: SharedInformers | None = None, **kwargs: Any) -> None:
        super().__init__(client, informers=informers, **kwargs)
        self.pods = self.watch(PODS, owner_kind="DaemonSet")
        self.nodes = self.watch(NODES, keys=self._all_daemonsets)
        self.revisions = self.watch(CONTROLLER_REVISIONS, keys=owner_key_mapper("DaemonSet"))
        self.revisions_served = True

    async def start(self) -> None:
        """Without served ControllerRevisions the controller still runs, keeping no history."""
        try:
            await self.client.list(CONTROLLER_REVISIONS, limit=1)
        except NotFound:
            log.warning("daemonset: the API server does not serve controllerrevisions; no rollout history")
            self.revisions_served = False
            self._watches = [w for w in self._watches if w.res != CONTROLLER_REVISIONS]
        await super().start()

    def _all_daemonsets(self, node: Obj) -> list[str]:
        return [f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in self.primary.list()]

    async def reconcile(self, key: str) -> float | None:
        ds = self.primary.get(key)
        if ds is None:
            self.expectations.forget(key)
            return None
        template_spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
        current = template_hash((ds.get("spec") or {}).get("template") or {},
                                int((ds.get("status") or {}).get("collisionCount") or 0))
        if not is_deleting(ds) and self.revisions_served:
            await self._sync_revisions(ds, current)
        owned = self.pods.by_index(CONTROLLER_UID_INDEX, uid_of(ds))
        pods = [p for p in owned if not is_deleting(p)]
        # a node whose old daemon pod is still terminating gets its new one only after (host ports...)
        terminating = {target_node(p) for p in owned if is_deleting(p)}
        nodes = {n["metadata"]["name"]: n for n in self.nodes.list()}
        should_run, may_stay = set(), set()
        for name, node in nodes.items():
            run, stay = placement(template_spec, node)
            if run:
                should_run.add(name)
            if stay:
                may_stay.add(name)
        by_node: dict[str, list[Obj]] = {}
        for pod in pods:
            by_node.setdefault(target_node(pod) or "", []).append(pod)
        now = time.time()
        if not is_deleting(ds) and self.expectations.satisfied(key):
            plan = self._plan(ds, by_node, should_run=should_run, may_stay=may_stay, current=current, now=now)
            plan.create = [n for n in plan.create if n not in terminating]
            gone = await self._apply(ds, key, plan, current)
            by_node = {n: [p for p in ps if uid_of(p) not in gone] for n, ps in by_node.items()}
        status, recheck = daemon_status(ds, {n: ps for n, ps in by_node.items() if n in nodes},
                                        should_run=should_run, current=current, now=now)
        old = ds.get("status") or {}
        if status != old:
            md = ds["metadata"]
            body = {**dict.fromkeys(old), **status}  # a merge patch: fields now omitted become null
            try:
                await self.client.patch(DAEMONSETS, md["name"], {"status": body}, namespace=md["namespace"],
                                        subresource="status")
            except NotFound:
                return None
        return recheck

    def _plan(self, ds: Obj, by_node: dict[str, list[Obj]], *, should_run: set[str], may_stay: set[str],
              current: str, now: float) -> Plan:
        plan = Plan()
        for node, pods in by_node.items():
            failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
            plan.delete += failed
            alive = [p for p in pods if p not in failed]
            if node not in may_stay:
                plan.delete += alive
                continue
            by_hash: dict[str | None, list[Obj]] = {}
            for pod in alive:
                by_hash.setdefault(_pod_hash(pod), []).append(pod)
            for same in by_hash.values():
                plan.delete += _oldest_first(same)[1:]  # duplicates of one revision: keep the oldest
        for node in sorted(should_run):
            if not [p for p in by_node.get(node, ()) if (p.get("status") or {}).get("phase") != "Failed"]:
                plan.create.append(node)
        deleting = {uid_of(p) for p in plan.delete}
        remaining = {n: [p for p in ps if uid_of(p) not in deleting] for n, ps in by_node.items()}
        rollout = plan_rollout(ds, remaining, should_run=should_run, current=current, now=now)
        plan.create += [n for n in rollout.create if n not in plan.create]
        plan.delete += rollout.delete
        return plan

    async def _apply(self, ds: Obj, key: str, plan: Plan, current: str) -> set[str]:
        """Create and delete what the plan says; returns the uids deleted."""
        ns = ds["metadata"]["namespace"]
        gone: set[str] = set()
        victims = list({uid_of(p): p for p in plan.delete}.values())
        if victims:
            self.expectations.expect_deletions(key, [uid_of(p) for p in victims])
            results = await asyncio.gather(*(self.client.delete(PODS, p["metadata"]["name"], namespace=ns,
                                                                preconditions={"uid": uid_of(p)})
                                             for p in victims), return_exceptions=True)
            for pod, result in zip(victims, results, strict=True):
                if isinstance(result, BaseException):
                    self.expectations.deletion_observed(key, uid_of(pod))
                    if not isinstance(result, NotFound):
                        log.info("daemonset %s: deleting pod %s: %s", key, pod["metadata"]["name"], result)
                        continue
                gone.add(uid_of(pod))
        if plan.create:
            await self._create(ds, key, plan.create, current)
        return gone

    async def _create(self, ds: Obj, key: str, nodes: list[str], current: str) -> None:
        ns = ds["metadata"]["namespace"]
        self.expectations.expect_creations(key, len(nodes))
        queue = list(nodes)
        for size in slow_start_batches(len(nodes)):
            batch, queue = queue[:size], queue[size:]
            results = await asyncio.gather(*(self.client.create(PODS, daemon_pod(ds, node=n, revision_hash=current),
                                                                namespace=ns) for n in batch),
                                           return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            for _ in errors:
                self.expectations.creation_observed(key)
            if errors:
                for _ in queue:
                    self.expectations.creation_observed(key)
                raise errors[0]
        self.metrics.inc("pinnace_daemonset_pods_created_total", len(nodes), controller=self.name)

    # -- history ------------------------------------------------------------------------------------

    async def _sync_revisions(self, ds: Obj, current: str) -> None:
        """The current template's ControllerRevision exists and is the newest; old ones are pruned."""
        md = ds["metadata"]
        mine = [r for r in self.revisions.by_index(CONTROLLER_UID_INDEX, md["uid"])]
        newest = max((int(r.get("revision") or 0) for r in mine), default=0)
        name = f"{md['name']}-{current}"
        existing = next((r for r in mine if r["metadata"]["name"] == name), None)
        try:
            if existing is None:
                await self._create_revision(ds, name=name, revision=newest + 1)
            elif int(existing.get("revision") or 0) < newest:
                # a rollback to this template: it becomes the newest revision again
                body = {"revision": newest + 1,
                        "metadata": {"annotations": _change_cause(ds) or None}}
                await self.client.patch(CONTROLLER_REVISIONS, name, body, namespace=md["namespace"])
            await self._prune(ds, mine, keep=name)
        except ApiError as e:
            log.info("daemonset %s/%s: revisions: %s", md["namespace"], md["name"], e)

    async def _create_revision(self, ds: Obj, *, name: str, revision: int) -> None:
        md = ds["metadata"]
        labels = {**(((ds.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels", {}),
                  HASH_LABEL: name.rsplit("-", 1)[-1]}
        body: Obj = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                     "metadata": {"name": name, "namespace": md["namespace"], "labels": labels,
                                  "ownerReferences": [make_controller_ref(
                                      {**ds, "apiVersion": "apps/v1", "kind": "DaemonSet"})]},
                     "data": revision_data(ds), "revision": revision}
        cause = _change_cause(ds)
        if cause:
            body["metadata"]["annotations"] = cause
        try:
            await self.client.create(CONTROLLER_REVISIONS, body, namespace=md["namespace"])
        except ApiError as e:
            if e.code != 409:
                raise

    async def _prune(self, ds: Obj, revisions: list[Obj], *, keep: str) -> None:
        limit = int((ds.get("spec") or {}).get("revisionHistoryLimit", 10))
        old = sorted((r for r in revisions if r["metadata"]["name"] != keep), key=lambda r: int(r.get("revision") or 0))
        hashes_in_use = {_pod_hash(p) for p in self.pods.by_index(CONTROLLER_UID_INDEX, uid_of(ds))}
        removable = [r for r in old if r["metadata"]["name"].rsplit("-", 1)[-1] not in hashes_in_use]
        for rev in removable[:max(0, len(removable) - limit)]:
            try:
                await self.client.delete(CONTROLLER_REVISIONS, rev["metadata"]["name"],
                                         namespace=rev["metadata"]["namespace"])
            except NotFound:
                continue


def _change_cause(ds: Mapping[str, Any]) -> dict[str, str]:
    cause = ((ds.get("metadata") or {}).get("annotations") or {}).get(CHANGE_CAUSE)
    return {CHANGE_CAUSE: cause} if cause else {}


def is_daemon_pod(pod: Mapping[str, Any]) -> bool:
    ref = controller_ref(pod)
    return bool(ref and ref.get("kind") == "DaemonSet")
