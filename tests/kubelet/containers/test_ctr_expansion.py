"""$(VAR) expansion as upstream's expansion tests define it."""

from __future__ import annotations

import pytest

from kubelet.containers.expansion import expand, mapping_for

CONTEXT = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_EMPTY": "", "VAR_REF": "$(VAR_A)"}


@pytest.mark.parametrize(("text", "expected"), [
    ("$(VAR_A)", "A"),
    ("___$(VAR_B)___", "___B___"),
    ("$(VAR_A)-$(VAR_A)", "A-A"),
    ("$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"),
    ("$(VAR_EMPTY)x", "x"),
    ("$(UNKNOWN)", "$(UNKNOWN)"),
    ("$(VAR_REF)", "$(VAR_A)"),  # values are not expanded again
    ("$$(VAR_A)", "$(VAR_A)"),  # escaped
    ("$$$(VAR_A)", "$A"),
    ("$$$$(VAR_A)", "$$(VAR_A)"),
    ("f000-$$VAR_A", "f000-$VAR_A"),
    ("$(VAR_A", "$(VAR_A"),  # unclosed
    ("$VAR_A", "$VAR_A"),  # no parens: kept
    ("$", "$"),
    ("a$", "a$"),
    ("$()", "$()"),  # empty name maps to itself
    ("$(VAR_A)$", "A$"),
    ("", ""),
])
def test_expand(text: str, expected: str) -> None:
    assert expand(text, mapping_for(CONTEXT)) == expected


def test_later_contexts_only_fill_gaps() -> None:
    lookup = mapping_for({"X": "first"}, {"X": "second", "Y": "y"})
    assert expand("$(X)/$(Y)/$(Z)", lookup) == "first/y/$(Z)"
