"""Resource quantities ("500m", "1Gi") as exact numbers for the kubelet's arithmetic.

Parsing is the API server's (one grammar in the project); a bad value becomes a ``ConfigError``
since the kubelet meets it only while building a container.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from apiserver.validation import parse_quantity
from kubelet.containers.errors import ConfigError


def quantity(value: Any, *, ceil: bool = False) -> Fraction:
    """``value`` exactly; ``ceil`` rounds up to a whole number as Quantity.Value() does."""
    if value is None:
        return Fraction(0)
    try:
        number = parse_quantity(value)
    except ValueError as exc:
        raise ConfigError(f"invalid quantity {value!r}: {exc}") from None
    return Fraction(math.ceil(number)) if ceil else number


def milli_value(value: Any) -> int:
    """Quantity.MilliValue(): thousandths, rounded up."""
    return math.ceil(quantity(value) * 1000)


def value(value: Any) -> int:
    """Quantity.Value(): rounded up to a whole unit."""
    return math.ceil(quantity(value))
