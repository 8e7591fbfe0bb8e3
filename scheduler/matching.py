"""Matching rules shared by several plugins: tolerations, node selector terms, pod affinity terms.

Kept apart from the plugins because the same rule is asked from more than one place (the
unschedulable filter and the taint filter both match tolerations; node affinity and topology spread
both ask whether a node is eligible for a pod).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from machinery import selectors
from scheduler.podinfo import PodInfo, PodSpecError

#: node selector operators -> machinery.selectors' string-syntax operators
_NODE_OPERATORS = {**selectors.API_OPERATORS, "Gt": ">", "Lt": "<"}


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Whether any toleration matches the taint (key, value, effect; empty key + Exists matches all)."""
    for tol in tolerations:
        effect = tol.get("effect")
        if effect and effect != taint.get("effect"):
            continue
        key = tol.get("key") or ""
        operator = tol.get("operator") or "Equal"
        if key and key != taint.get("key"):
            continue
        if operator == "Exists":
            return True
        if operator == "Equal" and key and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _requirements(expressions: Sequence[Mapping[str, Any]] | None) -> list[selectors.Requirement]:
    out = []
    for expr in expressions or ():
        operator = _NODE_OPERATORS.get(expr.get("operator"))
        if operator is None:
            raise PodSpecError(f"unknown node selector operator {expr.get('operator')!r}")
        try:
            out.append(selectors.Requirement.make(expr.get("key") or "", operator, expr.get("values") or ()))
        except selectors.SelectorError as e:
            raise PodSpecError(str(e)) from e
    return out


class NodeSelectorTerm:
    """One nodeSelectorTerm: all its label expressions and field expressions must hold."""

    def __init__(self, term: Mapping[str, Any]) -> None:
        self._labels = [r.predicate() for r in _requirements(term.get("matchExpressions"))]
        self._fields = [r.predicate() for r in _requirements(term.get("matchFields"))]
        # a term with no requirements matches no node (upstream)
        self.empty = not self._labels and not self._fields

    def matches(self, node: Mapping[str, Any]) -> bool:
        if self.empty:
            return False
        md = node.get("metadata") or {}
        labels = md.get("labels") or {}
        fields = {"metadata.name": md.get("name") or ""}
        return all(p(labels) for p in self._labels) and all(p(fields) for p in self._fields)


class NodeEligibility:
    """A pod's nodeSelector plus its required node affinity, compiled once per attempt."""

    def __init__(self, pod: PodInfo) -> None:
        self.selector = dict(pod.spec.get("nodeSelector") or {})
        required = ((pod.affinity.get("nodeAffinity") or {})
                    .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
        self.terms = [NodeSelectorTerm(t) for t in required.get("nodeSelectorTerms") or ()]
        self.has_required = "nodeSelectorTerms" in required

    @property
    def trivial(self) -> bool:
        return not self.selector and not self.has_required

    def matches(self, node: Mapping[str, Any]) -> bool:
        labels = (node.get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in self.selector.items()):
            return False
        return not self.has_required or any(t.matches(node) for t in self.terms)


def label_selector(raw: Mapping[str, Any] | None) -> selectors.LabelSelector:
    try:
        return selectors.LabelSelector.from_dict(raw)
    except selectors.SelectorError as e:
        raise PodSpecError(f"label selector: {e}") from e


def term_namespaces(term: Mapping[str, Any], pod_namespace: str) -> frozenset[str] | None:
    """The namespaces a pod affinity term looks at; None means all (an empty namespaceSelector)."""
    if term.get("namespaceSelector") == {}:
        return None
    names = term.get("namespaces") or ()
    return frozenset(names) if names else frozenset({pod_namespace})


def node_label(node: Mapping[str, Any], key: str) -> str | None:
    return ((node.get("metadata") or {}).get("labels") or {}).get(key)
