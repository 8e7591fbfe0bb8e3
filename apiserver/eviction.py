"""The pods/eviction subresource: a pod deletion that a PodDisruptionBudget may refuse.

As upstream's eviction REST (pkg/registry/core/pod/storage/eviction.go): a pod that is terminal,
Pending or already terminating is deleted without looking at budgets; otherwise the one
PodDisruptionBudget selecting it (more than one is a 500) must allow a disruption. Allowing one
means decrementing ``status.disruptionsAllowed`` and recording the pod in ``status.disruptedPods``
with a compare-and-swap write, *before* the pod is deleted, so two concurrent evictions can never
both spend the last allowed disruption. The disruption controller later re-computes the budget.
A budget with no disruption left answers 429 TooManyRequests with a ``DisruptionBudget`` cause, which
``kubectl drain`` retries every 5 s. An unready pod of an already healthy budget (the default
``IfHealthyBudget`` policy), or any unready pod under ``AlwaysAllow``, goes without spending one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from apiserver import errors, registry
from apiserver.context import RequestContext
from apiserver.handlers import common
from apiserver.handlers.paths import Target
from apiserver.store import ObjectStore
from machinery import meta
from machinery.selectors import LabelSelector, SelectorError

#: phases whose pods are evicted without asking any budget
IGNORE_BUDGET_PHASES = ("Succeeded", "Failed", "Pending")
#: upstream's cap on evictions the disruption controller has not confirmed yet
MAX_DISRUPTED_PODS = 2000
#: rounds of read-check-write on a budget before giving up (each loses only to another eviction)
BUDGET_ATTEMPTS = 16
TOO_MANY_REQUESTS = "Cannot evict pod as it would violate the pod's disruption budget."
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"


def pdb_resource() -> registry.ResourceType | None:
    """policy/v1 poddisruptionbudgets, when the registry serves it."""
    return registry.lookup("policy", "v1", "poddisruptionbudgets")


def too_many_requests(cause: str) -> errors.ApiError:
    return errors.ApiError(429, "TooManyRequests", TOO_MANY_REQUESTS, details={
        "causes": [{"reason": DISRUPTION_BUDGET_CAUSE, "message": cause}]})


def is_ready(pod: Mapping[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def ignores_budgets(pod: Mapping[str, Any]) -> bool:
    """Terminal, Pending (or not yet phased) and terminating pods are not counted by any budget."""
    phase = (pod.get("status") or {}).get("phase") or "Pending"
    return phase in IGNORE_BUDGET_PHASES or bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def selects(pdb: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """policy/v1: a null selector selects nothing, an empty one every pod of the namespace."""
    try:
        selector = LabelSelector.from_dict((pdb.get("spec") or {}).get("selector"))
    except SelectorError:
        return False  # an invalid selector matches no pod, as upstream
    return selector.matches((pod.get("metadata") or {}).get("labels") or {})


def spend_disruption(pdb: dict[str, Any], pod_name: str, *, now: str) -> dict[str, Any]:
    """The budget with one disruption spent on ``pod_name``; raises the error refusing it."""
    md, status = pdb["metadata"], pdb.setdefault("status", {})
    name = md["name"]
    if int(status.get("observedGeneration") or 0) < int(md.get("generation") or 0):
        raise too_many_requests(f"The disruption budget {name} is still being processed by the server.")
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise errors.forbidden("pdb disruptions allowed is negative", resource="poddisruptionbudgets",
                               name=name, group="policy")
    disrupted = status.setdefault("disruptedPods", {})
    if len(disrupted) > MAX_DISRUPTED_PODS:
        raise errors.forbidden("DisruptedPods map too big - too many evictions not confirmed by PDB "
                               "controller", resource="poddisruptionbudgets", name=name, group="policy")
    if allowed == 0:
        raise too_many_requests(f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} "
                                f"healthy pods and has {int(status.get('currentHealthy') or 0)} currently")
    status["disruptionsAllowed"] = allowed - 1
    disrupted[pod_name] = now
    if allowed - 1 == 0:
        set_disruption_condition(status, allowed=False, now=now)
    return pdb


def set_disruption_condition(status: dict[str, Any], *, allowed: bool, now: str) -> None:
    """The DisruptionAllowed condition as upstream's pdb helper words it."""
    if allowed:
        wanted = {"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": ""}
    else:
        wanted = {"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods", "message": ""}
    conditions = [c for c in status.get("conditions") or () if isinstance(c, dict)]
    old = next((c for c in conditions if c.get("type") == "DisruptionAllowed"), None)
    if old is not None and all(old.get(k) == v for k, v in wanted.items()):
        return
    wanted["lastTransitionTime"] = (old or {}).get("lastTransitionTime", now) \
        if old is not None and old.get("status") == wanted["status"] else now
    wanted["observedGeneration"] = status.get("observedGeneration", 0)
    status["conditions"] = [c for c in conditions if c.get("type") != "DisruptionAllowed"] + [wanted]


async def budgets_of(store: ObjectStore, pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    rt = pdb_resource()
    if rt is None:
        return []
    namespace = pod["metadata"]["namespace"]
    page = await store.list_page(rt, namespace)
    return [p for p in page.items if selects(p, pod)]


async def _charge_budget(store: ObjectStore, *, pod: Mapping[str, Any], ctx: RequestContext) -> None:
    """Spend a disruption of the pod's budget (if any), or raise the error refusing the eviction."""
    rt = pdb_resource()
    for _ in range(BUDGET_ATTEMPTS):
        pdbs = await budgets_of(store, pod)
        if not pdbs or rt is None:
            return
        if len(pdbs) > 1:
            raise errors.internal("This pod has more than one PodDisruptionBudget, which the eviction "
                                  "subresource does not support.")
        pdb = pdbs[0]
        spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
        if not is_ready(pod):
            if spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
                return
            desired = int(status.get("desiredHealthy") or 0)
            if desired > 0 and int(status.get("currentHealthy") or 0) >= desired:
                return
        spent = spend_disruption(pdb, pod["metadata"]["name"], now=meta.now())
        if ctx.dry_run:
            return
        revision = pdb["metadata"]["resourceVersion"]
        try:
            await store.update(rt, pdb["metadata"]["namespace"], pdb["metadata"]["name"],
                               lambda _current, s=spent: s, ctx, subresource="status", expected_revision=revision)
        except errors.ApiError as exc:
            if exc.code == 409:
                continue  # another eviction spent one meanwhile: decide again on the newest budget
            raise
        return
    raise errors.conflict("poddisruptionbudgets", "", "too many concurrent evictions", group="policy")


async def evict(request: web.Request, store: ObjectStore, target: Target) -> web.StreamResponse:
    """POST pods/<name>/eviction."""
    eviction = await common.read_object(request)
    if not isinstance(eviction, dict):
        raise errors.bad_request("the body of an eviction must be an Eviction object")
    named = (eviction.get("metadata") or {}).get("name")
    if named and named != target.name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    options = eviction.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise errors.bad_request("deleteOptions must be an object")
    ctx = common.request_context(request)
    if options.get("dryRun"):
        ctx.dry_run = True
    pod = await store.get(target.resource, target.namespace, target.name)
    if not ignores_budgets(pod):
        await _charge_budget(store, pod=pod, ctx=ctx)
    await store.delete(target.resource, target.namespace, target.name, ctx, options=options)
    return common.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                 "code": 201}, status=201)
