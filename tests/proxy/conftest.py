"""Fixtures: one node namespace with three backend pods and a client pod for the module, and a
Programmer on a table of the test's own."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest
from netkit import CAN_NET, Node
from proxy_env import BACKENDS, CLIENT, config

from proxy.nft import Nft
from proxy.sync import Programmer


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    if not CAN_NET:
        pytest.skip("needs root, ip, nsenter, nft and sysctl")
    n = Node()
    try:
        n.setup()
        for label, index in BACKENDS.items():
            n.add_pod(label, index)
            n.serve(label)
        n.add_pod(*CLIENT)
        yield n
    finally:
        n.close()


@pytest.fixture
async def programmer(node: Node) -> AsyncIterator[Programmer]:
    table = f"pxtest-{secrets.token_hex(3)}"
    p = Programmer(Nft(table, netns=node.netns), config(table=table))
    try:
        yield p
    finally:
        await p.cleanup()
