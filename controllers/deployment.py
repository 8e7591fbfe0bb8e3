"""The Deployment controller: rolls a Deployment's pod template out through ReplicaSets.

Per Deployment key, from the caches (Kubernetes' syncDeployment, simplified where noted):

1. its ReplicaSets (controller ownerReference; orphans its selector matches, e.g. left by
   ``kubectl delete --cascade=orphan``, are adopted); the *new* one is the ReplicaSet whose template
   equals the Deployment's once both are normalised (no ``pod-template-hash`` label, no null or empty
   values, as ``kubectl rollout undo`` sends them), so an undo reuses the old ReplicaSet;
2. while any of them has not yet observed its latest spec, only the status is written: decisions are
   taken on counts the ReplicaSet controller has confirmed, never on stale ones;
3. paused: scale the new ReplicaSet only (no new one is created); Recreate: scale every old
   ReplicaSet to 0, wait until their pods are gone, then create/scale the new one; RollingUpdate:
   scale the new one up while the total stays within ``replicas + maxSurge``, and the old ones down
   (unhealthy pods first) while availability stays at or above ``replicas - maxUnavailable``;
4. the new ReplicaSet carries revision ``max(old revisions) + 1`` (also copied onto the Deployment);
   old ReplicaSets scaled to 0 beyond ``revisionHistoryLimit`` are deleted once the rollout completes;
5. status as ``kubectl rollout status`` reads it (observedGeneration, replicas, updatedReplicas,
   readyReplicas, availableReplicas, unavailableReplicas) and the Available and Progressing
   conditions; without progress for ``progressDeadlineSeconds`` Progressing turns False with reason
   ProgressDeadlineExceeded (the key is looked at again when the deadline falls due).

Not done: proportional scaling of several live ReplicaSets on a mid-rollout scale change (the new
one is capped at ``replicas`` and old ones drain as availability allows).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from controllers.replicaset import PODS, REPLICASETS
from machinery import meta
from machinery.client import AlreadyExists, ApiClient, Conflict, NotFound
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
from machinery.resources import DEPLOYMENTS
from machinery.selectors import LabelSelector, SelectorError

log = logging.getLogger(__name__)

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
#: Deployment annotations not copied onto its ReplicaSets
NOT_COPIED = frozenset({REVISION, DESIRED, MAX_REPLICAS, "deployment.kubernetes.io/revision-history",
                        "kubectl.kubernetes.io/last-applied-configuration"})
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class BadSpec(ValueError):
    """A Deployment field the controller cannot act on (e.g. maxSurge "abc")."""


# --- templates and hashing -------------------------------------------------------------------------

def _pruned(value: Any) -> Any:
    """``value`` without None, empty dicts and empty lists, at any depth."""
    if isinstance(value, dict):
        out = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def normalized_template(template: Mapping[str, Any] | None) -> Obj:
    """The template as compared and hashed: no pod-template-hash label, no creationTimestamp,
    nothing null or empty (``kubectl rollout undo`` sends ``creationTimestamp: null``)."""
    tmpl = copy.deepcopy(dict(template or {}))
    md = tmpl.get("metadata") or {}
    md.pop("creationTimestamp", None)
    if isinstance(md.get("labels"), dict):
        md["labels"].pop(HASH_LABEL, None)
    tmpl["metadata"] = md
    return _pruned(tmpl)


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template: Mapping[str, Any] | None, collision_count: int = 0) -> str:
    """pod-template-hash: FNV-32a of the normalised template (plus the collision count), spelt in
    Kubernetes' vowel-free alphabet as its SafeEncodeString does."""
    data = orjson.dumps(normalized_template(template), option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += collision_count.to_bytes(4, "little")
    return "".join(_SAFE_ALPHABET[int(d) % len(_SAFE_ALPHABET)] for d in str(fnv32a(data)))


def same_template(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    return normalized_template(a) == normalized_template(b)


# --- numbers ---------------------------------------------------------------------------------------

def scaled_value(value: Any, total: int, *, round_up: bool, what: str) -> int:
    """An int-or-percent field (``1`` or ``"25%"``) as a pod count of ``total``."""
    if isinstance(value, bool):
        raise BadSpec(f"{what}: {value!r} is neither an integer nor a percentage")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    raise BadSpec(f"{what}: {value!r} is neither an integer nor a percentage like \"25%\"")


def surge_and_unavailable(d: Mapping[str, Any]) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts; both 0 would deadlock, so unavailable becomes 1."""
    spec = d.get("spec") or {}
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    replicas = replicas_of(d)
    surge = scaled_value(rolling.get("maxSurge", "25%"), replicas, round_up=True, what="maxSurge")
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), replicas, round_up=False,
                               what="maxUnavailable")
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def replicas_of(obj: Mapping[str, Any]) -> int:
    value = (obj.get("spec") or {}).get("replicas", 1)
    return int(value) if isinstance(value, int) else 1


def status_int(obj: Mapping[str, Any] | None, name: str) -> int:
    return int(((obj or {}).get("status") or {}).get(name) or 0)


def available_of(rs: Mapping[str, Any]) -> int:
    """Available pods of a ReplicaSet, never more than it is scaled to (a just-scaled-down one may
    still report pods its controller is deleting)."""
    return min(status_int(rs, "availableReplicas"), replicas_of(rs))


def revision_of(rs: Mapping[str, Any] | None) -> int:
    text = ((rs or {}).get("metadata") or {}).get("annotations", {}).get(REVISION, "")
    return int(text) if str(text).isdigit() else 0


def has_observed(rs: Mapping[str, Any]) -> bool:
    md, status = rs.get("metadata") or {}, rs.get("status") or {}
    return int(status.get("observedGeneration") or 0) >= int(md.get("generation") or 1)


def created_order(rs: Mapping[str, Any]) -> tuple[str, str]:
    md = rs.get("metadata") or {}
    return (md.get("creationTimestamp") or "", md.get("name") or "")


# --- status ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cond:
    type: str
    status: str
    reason: str
    message: str


def set_condition(conditions: list[Obj], cond: Cond, *, now: str, touch: bool = False) -> list[Obj]:
    """``conditions`` with ``cond`` put in: the transition time is kept while the status stays, and
    the update time while nothing changes, unless ``touch`` (progress) says to renew it."""
    old = next((c for c in conditions if c.get("type") == cond.type), None)
    entry = {"type": cond.type, "status": cond.status, "lastUpdateTime": now, "lastTransitionTime": now,
             "reason": cond.reason, "message": cond.message}
    if old is not None and old.get("status") == cond.status:
        entry["lastTransitionTime"] = old.get("lastTransitionTime") or now
        if not touch and old.get("reason") == cond.reason and old.get("message") == cond.message:
            entry["lastUpdateTime"] = old.get("lastUpdateTime") or now
    if old is None:
        return [*conditions, entry]
    return [entry if c is old else c for c in conditions]


def condition(status: Mapping[str, Any], kind: str) -> Obj | None:
    return next((c for c in status.get("conditions") or () if c.get("type") == kind), None)


def counts(d: Mapping[str, Any], rss: list[Obj], new: Obj | None) -> Obj:
    """The replica counts of the status, summed over the ReplicaSets."""
    available = sum(status_int(rs, "availableReplicas") for rs in rss)
    return {"observedGeneration": (d.get("metadata") or {}).get("generation", 0),
            "replicas": sum(status_int(rs, "replicas") for rs in rss),
            "updatedReplicas": status_int(new, "replicas") if new else 0,
            "readyReplicas": sum(status_int(rs, "readyReplicas") for rs in rss),
            "availableReplicas": available,
            # as Kubernetes: pods asked for (spec) minus available, never negative
            "unavailableReplicas": max(sum(replicas_of(rs) for rs in rss) - available, 0)}


def is_complete(d: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    want = replicas_of(d)
    return (status["updatedReplicas"] == want and status["replicas"] == want
            and status["availableReplicas"] == want
            and status["observedGeneration"] >= (d.get("metadata") or {}).get("generation", 0))


def made_progress(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    def old_pods(s: Mapping[str, Any]) -> int:
        return int(s.get("replicas") or 0) - int(s.get("updatedReplicas") or 0)
    return (new["updatedReplicas"] > int(old.get("updatedReplicas") or 0) or old_pods(new) < old_pods(old)
            or new["readyReplicas"] > int(old.get("readyReplicas") or 0)
            or new["availableReplicas"] > int(old.get("availableReplicas") or 0))


def next_status(d: Mapping[str, Any], rss: list[Obj], new: Obj | None, *, now: float,
                event: Cond | None = None) -> tuple[Obj, float | None]:
    """The Deployment's next status and, while a deadline runs, when to look again."""
    spec, old = d.get("spec") or {}, d.get("status") or {}
    status = counts(d, rss, new)
    if old.get("collisionCount"):
        status["collisionCount"] = old["collisionCount"]
    stamp = meta.now()
    _, unavailable = surge_and_unavailable(d) if _strategy(d) == "RollingUpdate" else (0, 0)
    conds = list(old.get("conditions") or [])
    ok = status["availableReplicas"] >= replicas_of(d) - unavailable
    conds = set_condition(conds, Cond("Available", "True", "MinimumReplicasAvailable",
                                      "Deployment has minimum availability.") if ok else
                          Cond("Available", "False", "MinimumReplicasUnavailable",
                               "Deployment does not have minimum availability."), now=stamp)
    deadline = spec.get("progressDeadlineSeconds")
    name = (new or {}).get("metadata", {}).get("name", "")
    progressing = condition({"conditions": conds}, "Progressing")
    complete = new is not None and is_complete(d, status)
    if spec.get("paused"):
        conds = set_condition(conds, Cond("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused"),
                              now=stamp)
    elif progressing is not None and progressing.get("reason") == "DeploymentPaused":
        conds = set_condition(conds, Cond("Progressing", "Unknown", "DeploymentResumed",
                                          "Deployment is resumed"), now=stamp)
    elif complete:
        conds = set_condition(conds, Cond("Progressing", "True", "NewReplicaSetAvailable",
                                          f'ReplicaSet "{name}" has successfully progressed.'), now=stamp)
    elif event is not None:
        conds = set_condition(conds, event, now=stamp, touch=True)
    elif new is not None and (made_progress(old, status) or progressing is None):
        conds = set_condition(conds, Cond("Progressing", "True", "ReplicaSetUpdated",
                                          f'ReplicaSet "{name}" is progressing.'), now=stamp, touch=True)
    recheck: float | None = None
    progressing = condition({"conditions": conds}, "Progressing")
    if (deadline is not None and not spec.get("paused") and not complete and progressing is not None
            and progressing.get("status") != "False"):
        left = meta.parse_time(progressing.get("lastUpdateTime") or stamp) + int(deadline) - now
        if left < 0:
            conds = set_condition(conds, Cond("Progressing", "False", "ProgressDeadlineExceeded",
                                              f'ReplicaSet "{name}" has timed out progressing.'), now=stamp)
        else:
            recheck = left + 1.0  # timestamps have whole seconds
    status["conditions"] = conds
    return status, recheck


def _strategy(d: Mapping[str, Any]) -> str:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type") or "RollingUpdate"


# --- the controller --------------------------------------------------------------------------------

class DeploymentController(Reconciler):
    name = "deployment"
    primary_resource = DEPLOYMENTS
    workers = 4

    def __init__(self, client: ApiClient, *, informers: SharedInformers | None = None, **kwargs: Any) -> None:
        super().__init__(client, informers=informers, **kwargs)
        self.replicasets = self.watch(REPLICASETS, owner_kind="Deployment")
        self.pods = self.watch(PODS, keys=self._recreate_keys)

    def _recreate_keys(self, pod: Obj) -> list[str]:
        """A pod event concerns a Recreate Deployment (waiting for old pods to go) through its RS."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return []
        rs = self.replicasets.get(f"{pod['metadata'].get('namespace')}/{ref.get('name')}")
        keys = owner_key_mapper("Deployment")(rs) if rs else []
        return [k for k in keys if _strategy(self.primary.get(k) or {}) == "Recreate"]

    async def reconcile(self, key: str) -> float | None:
        d = self.primary.get(key)
        if d is None:
            return None
        rss = self.replicasets.by_index(CONTROLLER_UID_INDEX, uid_of(d))
        if not is_deleting(d):
            rss += await self._adopt(d)
        rss.sort(key=created_order)
        template = (d.get("spec") or {}).get("template")
        new = next((rs for rs in rss if same_template((rs.get("spec") or {}).get("template"), template)), None)
        olds = [rs for rs in rss if rs is not new]
        if is_deleting(d) or not all(has_observed(rs) for rs in rss):
            return await self._write_status(d, rss, new)
        run = _Rollout(self, d, new, olds)
        event = await run.step()
        return await self._write_status(d, run.all(), run.new, event=event)

    async def _adopt(self, d: Obj) -> list[Obj]:
        """Orphan ReplicaSets of the namespace that the selector matches become this Deployment's."""
        try:
            selector = LabelSelector.from_dict((d.get("spec") or {}).get("selector"))
        except SelectorError:
            return []
        if selector.empty:
            return []
        adopted = []
        for rs in self.replicasets.by_index("namespace", d["metadata"]["namespace"]):
            md = rs["metadata"]
            if controller_ref(rs) or is_deleting(rs) or not selector.matches(md.get("labels")):
                continue
            refs = [*(md.get("ownerReferences") or []), make_controller_ref({"apiVersion": "apps/v1",
                                                                             "kind": "Deployment", **d})]
            body = {"metadata": {"ownerReferences": refs, "resourceVersion": md["resourceVersion"]}}
            adopted.append(await self.client.patch(REPLICASETS, md["name"], body, namespace=md["namespace"]))
        return adopted

    async def _write_status(self, d: Obj, rss: list[Obj], new: Obj | None, *,
                            event: Cond | None = None) -> float | None:
        status, recheck = next_status(d, rss, new, now=time.time(), event=event)
        if status != (d.get("status") or {}):
            md = d["metadata"]
            try:
                await self.client.patch(DEPLOYMENTS, md["name"], {"status": status}, namespace=md["namespace"],
                                        subresource="status")
            except NotFound:
                return None
        return recheck


class _Rollout:
    """One reconcile pass over a Deployment and its ReplicaSets (kept up to date as they are written)."""

    def __init__(self, ctl: DeploymentController, d: Obj, new: Obj | None, olds: list[Obj]) -> None:
        self.ctl, self.client = ctl, ctl.client
        self.d, self.new, self.olds = d, new, olds
        self.ns = d["metadata"]["namespace"]
        self.want = replicas_of(d)
        self.event: Cond | None = None

    def all(self) -> list[Obj]:
        return [*self.olds, *([self.new] if self.new else [])]

    async def step(self) -> Cond | None:
        spec = self.d.get("spec") or {}
        if spec.get("paused"):
            if self.new is not None and not any(replicas_of(rs) for rs in self.olds):
                await self.scale(self.new, self.want)
        elif _strategy(self.d) == "Recreate":
            await self.recreate()
        else:
            await self.rolling()
        await self.sync_revision()
        status = counts(self.d, self.all(), self.new)
        if self.new is not None and is_complete(self.d, status):
            await self.cleanup()
        return self.event

    # -- strategies ---------------------------------------------------------------------------------

    async def rolling(self) -> None:
        surge, unavailable = surge_and_unavailable(self.d)
        if self.new is None:
            total = sum(replicas_of(rs) for rs in self.olds)
            await self.create_new(max(0, min(self.want + surge - total, self.want)) if self.olds else self.want)
            return
        if await self.scale_up_new(surge):
            return
        await self.scale_down_old(unavailable)

    async def scale_up_new(self, surge: int) -> bool:
        assert self.new is not None
        current = replicas_of(self.new)
        if current == self.want:
            return False
        if current > self.want:
            return await self.scale(self.new, self.want)
        room = self.want + surge - sum(replicas_of(rs) for rs in self.all())
        if room <= 0:
            return False
        return await self.scale(self.new, current + min(room, self.want - current))

    async def scale_down_old(self, max_unavailable: int) -> bool:
        assert self.new is not None
        if not any(replicas_of(rs) for rs in self.olds):
            return False
        min_available = self.want - max_unavailable
        new_unavailable = replicas_of(self.new) - available_of(self.new)
        budget = sum(replicas_of(rs) for rs in self.all()) - min_available - new_unavailable
        if budget <= 0:
            return False
        changed = False
        for rs in list(self.olds):  # unhealthy old pods go first: they serve nobody
            unhealthy = replicas_of(rs) - available_of(rs)
            cut = min(unhealthy, budget)
            if cut > 0:
                changed |= await self.scale(rs, replicas_of(rs) - cut)
                budget -= cut
        surplus = sum(available_of(rs) for rs in self.all()) - min_available
        for rs in list(self.olds):
            cut = min(replicas_of(rs), surplus)
            if cut > 0:
                changed |= await self.scale(rs, replicas_of(rs) - cut)
                surplus -= cut
        return changed

    async def recreate(self) -> None:
        if any(replicas_of(rs) for rs in self.olds):
            for rs in self.olds:
                await self.scale(rs, 0)
            return
        old_uids = {uid_of(rs) for rs in self.olds}
        if any(p for uid in old_uids for p in self.ctl.pods.by_index(CONTROLLER_UID_INDEX, uid)
               if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")):
            return  # Recreate: no new pod while an old one may still run
        if self.new is None:
            await self.create_new(self.want)
        else:
            await self.scale(self.new, self.want)

    # -- writes -------------------------------------------------------------------------------------

    async def scale(self, rs: Obj, replicas: int) -> bool:
        """Set a ReplicaSet's replicas (compare-and-swap against the cached version)."""
        replicas = max(replicas, 0)
        annotations = (rs["metadata"].get("annotations") or {})
        surge = surge_and_unavailable(self.d)[0] if _strategy(self.d) == "RollingUpdate" else 0
        marks = {DESIRED: str(self.want), MAX_REPLICAS: str(self.want + surge)}
        if replicas_of(rs) == replicas and all(annotations.get(k) == v for k, v in marks.items()):
            return False
        body = {"metadata": {"annotations": marks, "resourceVersion": rs["metadata"]["resourceVersion"]},
                "spec": {"replicas": replicas}}
        updated = await self.client.patch(REPLICASETS, rs["metadata"]["name"], body, namespace=self.ns)
        self._replace(rs, updated)
        return replicas_of(rs) != replicas

    def _replace(self, old: Obj, updated: Obj) -> None:
        if self.new is old:
            self.new = updated
        self.olds = [updated if rs is old else rs for rs in self.olds]

    async def create_new(self, replicas: int) -> None:
        """Create the ReplicaSet of the current template (reusing it if a stale cache missed it)."""
        collisions = int((self.d.get("status") or {}).get("collisionCount") or 0)
        rs = new_replicaset(self.d, replicas=replicas, revision=self.max_old_revision() + 1,
                            collision_count=collisions)
        try:
            self.new = await self.client.create(REPLICASETS, rs, namespace=self.ns)
        except AlreadyExists:
            existing = await self.client.get(REPLICASETS, rs["metadata"]["name"], namespace=self.ns)
            ref = controller_ref(existing)
            if ref and ref.get("uid") == uid_of(self.d) and same_template(
                    existing["spec"].get("template"), self.d["spec"].get("template")):
                self.new = existing
                return
            # a hash collision: count it, so the next pass hashes differently
            status = {"collisionCount": collisions + 1}
            await self.client.patch(DEPLOYMENTS, self.d["metadata"]["name"], {"status": status},
                                    namespace=self.ns, subresource="status")
            raise
        self.new.setdefault("kind", "ReplicaSet")
        self.new.setdefault("apiVersion", "apps/v1")
        self.event = Cond("Progressing", "True", "NewReplicaSetCreated",
                          f'Created new replica set "{self.new["metadata"]["name"]}"')

    def max_old_revision(self) -> int:
        return max((revision_of(rs) for rs in self.olds), default=0)

    async def sync_revision(self) -> None:
        """The new ReplicaSet carries the highest revision (an undo moves an old one to the top), and
        the Deployment repeats it, which is what ``kubectl rollout history`` lists."""
        if self.new is None:
            return
        revision = max(revision_of(self.new), self.max_old_revision() + 1)
        if revision != revision_of(self.new):
            body = {"metadata": {"annotations": {REVISION: str(revision)},
                                 "resourceVersion": self.new["metadata"]["resourceVersion"]}}
            self._replace(self.new, await self.client.patch(REPLICASETS, self.new["metadata"]["name"], body,
                                                            namespace=self.ns))
        if revision_of(self.d) != revision:
            body = {"metadata": {"annotations": {REVISION: str(revision)}}}
            try:
                await self.client.patch(DEPLOYMENTS, self.d["metadata"]["name"], body, namespace=self.ns)
            except (NotFound, Conflict):
                return

    async def cleanup(self) -> None:
        """Delete old ReplicaSets at 0 replicas beyond revisionHistoryLimit, lowest revision first."""
        limit = (self.d.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None:
            return
        idle = sorted((rs for rs in self.olds if not replicas_of(rs) and not status_int(rs, "replicas")
                       and not is_deleting(rs)), key=revision_of)
        for rs in idle[:max(len(idle) - int(limit), 0)]:
            try:
                await self.client.delete(REPLICASETS, rs["metadata"]["name"], namespace=self.ns,
                                         preconditions={"uid": uid_of(rs)})
            except NotFound:
                continue


def new_replicaset(d: Mapping[str, Any], *, replicas: int, revision: int, collision_count: int) -> Obj:
    """The ReplicaSet of a Deployment's current template, named and labelled by its hash."""
    md, spec = d["metadata"], d.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    digest = template_hash(template, collision_count)
    tmd = template.setdefault("metadata", {})
    tmd.pop("creationTimestamp", None)
    tmd["labels"] = {**(tmd.get("labels") or {}), HASH_LABEL: digest}
    selector = copy.deepcopy(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: digest}
    annotations = {k: v for k, v in (md.get("annotations") or {}).items() if k not in NOT_COPIED}
    surge = surge_and_unavailable(d)[0] if _strategy(d) == "RollingUpdate" else 0
    annotations.update({REVISION: str(revision), DESIRED: str(replicas_of(d)),
                        MAX_REPLICAS: str(replicas_of(d) + surge)})
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", **d}
    rs_spec: Obj = {"replicas": replicas, "selector": selector, "template": template}
    if spec.get("minReadySeconds"):
        rs_spec["minReadySeconds"] = spec["minReadySeconds"]
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{md['name']}-{digest}", "namespace": md.get("namespace"),
                         "labels": dict(tmd["labels"]), "annotations": annotations,
                         "ownerReferences": [make_controller_ref(owner)]},
            "spec": rs_spec}
