"""The disruption controller: keeps each PodDisruptionBudget's status true to its pods.

The eviction subresource (apiserver/eviction.py) only *spends* ``status.disruptionsAllowed``; this
controller computes it, as upstream's pkg/controller/disruption does:

- ``expectedPods`` and ``desiredHealthy`` from the spec: an integer ``minAvailable`` wants that many
  of the selected pods; a percentage ``minAvailable`` or any ``maxUnavailable`` is relative to the
  scale of the pods' controllers (Deployment through its ReplicaSet, ReplicaSet, StatefulSet), and
  when a pod has no such controller the budget fails safe with no disruption allowed;
- ``currentHealthy``: selected pods that are Ready, not terminating and not recorded in
  ``disruptedPods`` (an eviction in flight); records older than two minutes, or of pods that are
  gone or terminating, are dropped;
- ``disruptionsAllowed = max(0, currentHealthy - desiredHealthy)`` and the DisruptionAllowed
  condition, with ``observedGeneration`` so the eviction API knows the status is current.

Budgets are reconciled by ``namespace/name``; pod events enqueue the budgets selecting the pod, and
workload scale changes every budget of their namespace.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from apiserver.eviction import is_ready, selects, set_disruption_condition
from controllers.replicaset import PODS, REPLICASETS
from machinery import meta
from machinery.client import ApiClient, ApiError, NotFound
from machinery.informer import object_key
from machinery.reconcile import Reconciler, SharedInformers, controller_ref, is_deleting
from machinery.resources import DEPLOYMENTS, PDBS, STATEFULSETS

log = logging.getLogger(__name__)

Obj = dict[str, Any]

#: seconds an eviction recorded in disruptedPods counts before the pod must have gone (upstream)
DELETION_TIMEOUT = 120.0


class BudgetError(ValueError):
    """The budget's expected scale cannot be known (a pod without a scalable controller)."""


def scaled(value: Any, total: int, *, round_up: bool) -> int:
    """An IntOrString against ``total``: ``"50%"`` of 5 is 3 rounding up, 2 rounding down."""
    if isinstance(value, bool):
        raise BudgetError(f"invalid value {value!r}")
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        try:
            return int(text)
        except ValueError:
            raise BudgetError(f"invalid value for IntOrString: {text!r}") from None
    try:
        percent = int(text[:-1])
    except ValueError:
        raise BudgetError(f"invalid value for IntOrString: {text!r}") from None
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def desired_and_expected(spec: Mapping[str, Any], pods: list[Obj], *,
                         scale_of: Any) -> tuple[int, int]:
    """(desiredHealthy, expectedPods) for a spec; ``scale_of(pods)`` sums the controllers' replicas."""
    max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
    if max_unavailable is not None:
        expected = scale_of(pods)
        return max(0, expected - scaled(max_unavailable, expected, round_up=True)), expected
    if min_available is None:
        return 0, 0
    if isinstance(min_available, int) and not isinstance(min_available, bool):
        return min_available, len(pods)
    if isinstance(min_available, str) and not min_available.endswith("%"):
        return scaled(min_available, 0, round_up=True), len(pods)
    expected = scale_of(pods)
    return scaled(min_available, expected, round_up=True), expected


def live_disruptions(recorded: Mapping[str, Any], pods: Mapping[str, Obj], *,
                     now: float) -> tuple[dict[str, str], float | None]:
    """The disruptedPods entries still pending, and in how many seconds the first one expires."""
    kept: dict[str, str] = {}
    first: float | None = None
    for name, stamp in recorded.items():
        pod = pods.get(name)
        if pod is None or is_deleting(pod):
            continue
        try:
            expires = meta.parse_time(str(stamp)) + DELETION_TIMEOUT
        except ValueError:
            continue
        if expires <= now:
            log.info("disruption: pod %s was expected to be deleted but it was not", name)
            continue
        kept[name] = stamp
        first = expires - now if first is None else min(first, expires - now)
    return kept, first


def merge_map(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A JSON merge patch turning map ``old`` into ``new`` (removed keys become null)."""
    if not new:
        return None
    return {**{k: None for k in old or {} if k not in new}, **new}


class DisruptionController(Reconciler):
    name = "disruption"
    primary_resource = PDBS
    workers = 2

    def __init__(self, client: ApiClient, *, informers: SharedInformers | None = None, **kwargs: Any) -> None:
        super().__init__(client, informers=informers, **kwargs)
        self.pods = self.watch(PODS, keys=self._budgets_selecting)
        self.replicasets = self.watch(REPLICASETS, keys=self._budgets_in_namespace)
        self.deployments = self.watch(DEPLOYMENTS, keys=self._budgets_in_namespace)
        self.statefulsets = self.watch(STATEFULSETS, keys=self._budgets_in_namespace)
        self.served = True

    async def start(self) -> None:
        """Idle (but synced) when the API server does not serve policy/v1 budgets."""
        try:
            await self.client.list(PDBS, limit=1)
        except NotFound:
            log.warning("disruption: the API server does not serve policy/v1 poddisruptionbudgets; idle")
            self.served = False
            self._used = True
            self._synced.set()
            return
        await super().start()

    def _budgets_selecting(self, pod: Obj) -> list[str]:
        ns = (pod.get("metadata") or {}).get("namespace")
        return [object_key(p) for p in self.primary.by_index("namespace", ns) if selects(p, pod)]

    def _budgets_in_namespace(self, obj: Obj) -> list[str]:
        ns = (obj.get("metadata") or {}).get("namespace")
        return [object_key(p) for p in self.primary.by_index("namespace", ns)]

    # -- scale of the pods' controllers -------------------------------------------------------------

    def _controller_scale(self, pod: Obj) -> tuple[str, int]:
        """(uid of the scaled controller, its replicas) for a pod."""
        ref = controller_ref(pod)
        ns = pod["metadata"]["namespace"]
        if ref is None:
            raise BudgetError(f"found no controller ref for pod {pod['metadata']['name']!r}")
        if ref.get("kind") == "ReplicaSet":
            rs = self.replicasets.get(f"{ns}/{ref['name']}")
            if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
                raise BudgetError(f"replicaset {ref['name']!r} of pod {pod['metadata']['name']!r} not found")
            owner = controller_ref(rs)
            if owner is not None and owner.get("kind") == "Deployment":
                dep = self.deployments.get(f"{ns}/{owner['name']}")
                if dep is not None and dep["metadata"].get("uid") == owner.get("uid"):
                    return str(owner["uid"]), int((dep.get("spec") or {}).get("replicas", 1))
            return str(ref["uid"]), int((rs.get("spec") or {}).get("replicas", 1))
        if ref.get("kind") == "StatefulSet":
            sts = self.statefulsets.get(f"{ns}/{ref['name']}")
            if sts is not None and sts["metadata"].get("uid") == ref.get("uid"):
                return str(ref["uid"]), int((sts.get("spec") or {}).get("replicas", 1))
        raise BudgetError(f"controller {ref.get('kind')}/{ref.get('name')} of pod "
                          f"{pod['metadata']['name']!r} has no known scale")

    def _expected_scale(self, pods: Iterable[Obj]) -> int:
        scales = dict(self._controller_scale(p) for p in pods)
        return sum(scales.values())

    # -- reconcile ----------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        pdb = self.primary.get(key)
        if pdb is None or is_deleting(pdb):
            return None
        ns = pdb["metadata"]["namespace"]
        pods = [p for p in self.pods.by_index("namespace", ns) if selects(pdb, p)]
        status, recheck = self.status_for(pdb, pods, now=time.time())
        old = pdb.get("status") or {}
        if status != old:
            body = {**status, "disruptedPods": merge_map(old.get("disruptedPods"), status.get("disruptedPods"))}
            try:
                await self.client.patch(PDBS, pdb["metadata"]["name"], {"status": body}, namespace=ns,
                                        subresource="status", patch_type="merge")
            except NotFound:
                return None
            except ApiError as e:
                log.info("disruption: updating %s: %s", key, e)
                raise
        return recheck

    def status_for(self, pdb: Obj, pods: list[Obj], *, now: float) -> tuple[Obj, float | None]:
        """The budget's status given its selected pods, and when to look again."""
        old = pdb.get("status") or {}
        by_name = {p["metadata"]["name"]: p for p in pods}
        disrupted, recheck = live_disruptions(old.get("disruptedPods") or {}, by_name, now=now)
        generation = int(pdb["metadata"].get("generation") or 0)
        try:
            desired, expected = desired_and_expected(pdb.get("spec") or {}, pods, scale_of=self._expected_scale)
        except BudgetError as e:
            log.info("disruption: %s/%s: %s", pdb["metadata"]["namespace"], pdb["metadata"]["name"], e)
            desired, expected, failed = 0, len(pods), True
        else:
            failed = False
        healthy = sum(1 for p in pods if is_ready(p) and not is_deleting(p) and p["metadata"]["name"]
                      not in disrupted)
        allowed = 0 if failed else max(0, healthy - desired)
        status: Obj = {"currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
                       "disruptionsAllowed": allowed, "observedGeneration": generation}
        if disrupted:
            status["disruptedPods"] = disrupted
        if old.get("conditions"):
            status["conditions"] = [dict(c) for c in old["conditions"]]
        set_disruption_condition(status, allowed=allowed > 0, now=meta.now())
        return status, (recheck + 0.1 if recheck is not None else None)
