"""Resource quantities and a pod's effective requests, as the scheduler counts them.

Node state is kept in numpy columns (``RESOURCES``), so a request becomes a vector in the same
order: cpu in millicores, memory in bytes, and one pod slot. The effective request follows
Kubernetes: the larger of the sum over containers and the largest init container, plus overhead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

#: column order of every resource array in the scheduler
RESOURCES: tuple[str, ...] = ("cpu", "memory", "pods")
CPU, MEMORY, PODS = range(3)

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1), "m": Decimal("0.001"), "k": Decimal(10) ** 3, "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)")
#: a column's unit: cpu is counted in millicores, the rest in whole units
_SCALE: dict[str, Decimal] = {"cpu": Decimal(1000)}


class QuantityError(ValueError):
    """A resource quantity is not in Kubernetes' quantity syntax."""


def parse_quantity(value: Any, *, resource: str = "") -> float:
    """A quantity in the column's unit (millicores for cpu); numbers are taken as whole units."""
    if isinstance(value, bool):
        raise QuantityError(f"{resource or 'quantity'}: {value!r} is not a quantity")
    if isinstance(value, int | float):
        amount = Decimal(str(value))
    elif isinstance(value, str):
        match = _QUANTITY.fullmatch(value.strip())
        if not match or match.group(2) not in _SUFFIXES:
            raise QuantityError(f"{resource or 'quantity'}: {value!r} is not a quantity (e.g. 500m, 2, 128Mi)")
        try:
            amount = Decimal(match.group(1)) * _SUFFIXES[match.group(2)]
        except InvalidOperation as e:
            raise QuantityError(f"{resource or 'quantity'}: {value!r} is not a quantity") from e
    else:
        raise QuantityError(f"{resource or 'quantity'}: {value!r} is not a quantity")
    if amount < 0:
        raise QuantityError(f"{resource or 'quantity'}: {value!r} is negative")
    return float(amount * _SCALE.get(resource, Decimal(1)))


def resource_vector(amounts: Mapping[str, Any] | None) -> np.ndarray:
    """A ``{"cpu": "2", "memory": "1Gi", ...}`` map as a vector over RESOURCES (others ignored)."""
    out = np.zeros(len(RESOURCES))
    if not amounts:
        return out
    if not isinstance(amounts, Mapping):
        raise QuantityError(f"resource list must be an object, not {type(amounts).__name__}")
    for column, name in enumerate(RESOURCES):
        if name in amounts:
            out[column] = parse_quantity(amounts[name], resource=name)
    return out


def _container_requests(container: Mapping[str, Any]) -> np.ndarray:
    resources = container.get("resources") or {}
    # a limit without a request means request == limit (Kubernetes defaulting)
    limits = resource_vector(resources.get("limits"))
    requests = resource_vector(resources.get("requests"))
    named = set((resources.get("requests") or {}).keys())
    for column, name in enumerate(RESOURCES):
        if name not in named:
            requests[column] = limits[column]
    return requests


def pod_requests(spec: Mapping[str, Any]) -> np.ndarray:
    """What one pod takes from a node: cpu, memory and one pod slot."""
    total = np.zeros(len(RESOURCES))
    for container in spec.get("containers") or ():
        total += _container_requests(container)
    for container in spec.get("initContainers") or ():
        total = np.maximum(total, _container_requests(container))
    total += resource_vector(spec.get("overhead"))
    total[PODS] = 1
    return total
