"""Kubernetes resource quantities ("500m", "128Mi", "1e3") as exact fractions, for sizes and divisors."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from kubelet.volumes.errors import VolumeError

_SUFFIX: dict[str, Fraction] = {
    "": Fraction(1), "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40),
    "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}
_SYNTAX = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:[eE]([+-]?\d+))?([a-zA-Z]*)")


def parse(value: Any) -> Fraction:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Fraction(str(value))
    match = _SYNTAX.fullmatch(str(value).strip())
    if not match or match.group(3) not in _SUFFIX or (match.group(2) and match.group(3)):
        raise VolumeError(f"quantities must match the regular expression "
                          f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {value!r}")
    amount = Fraction(match.group(1)) * _SUFFIX[match.group(3)]
    if match.group(2):
        amount *= Fraction(10) ** int(match.group(2))
    return amount
