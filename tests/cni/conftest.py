"""Fixtures of the CNI tests: namespaces that are always removed, and simulated nodes inside them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from netns_kit import Namespaces, Node


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    created = Namespaces()
    try:
        yield created
    finally:
        created.remove_all()


@pytest.fixture
def node(namespaces: Namespaces, tmp_path: Path) -> Node:
    return Node(namespaces, tmp_path)
