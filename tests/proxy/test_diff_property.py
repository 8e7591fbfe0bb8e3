"""Property: applying ``diff_script(old, new)`` to a table holding ``old``, or (a restart)
``full_script(new)`` over it, gives exactly the table ``full_script(new)`` builds from nothing
(chains, rules, sets and map elements), for random models."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy import rules
from proxy.model import Endpoint, ServicePort
from proxy.nft import Nft

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    name = f"pxprop-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def service_port(index: int, *, eps: list[int], affinity: int | None, node_port: bool, local: bool) -> ServicePort:
    return ServicePort(namespace="ns", name=f"s{index}", port_name="", protocol="tcp",
                       cluster_ip=f"10.96.0.{index + 1}", port=80, node_port=30000 + index if node_port else None,
                       affinity_timeout=affinity, external_local=local,
                       endpoints=tuple(Endpoint(f"10.244.{e % 2}.{e + 2}", 8080, f"n{e % 2 + 1}") for e in eps))


models = st.lists(
    st.builds(lambda i, eps, aff, np, loc: (i, eps, aff, np, loc), st.integers(0, 5),
              st.lists(st.integers(0, 6), max_size=4, unique=True), st.sampled_from([None, 60, 120]),
              st.booleans(), st.booleans()),
    max_size=5, unique_by=lambda t: t[0],
).map(lambda specs: [service_port(i, eps=eps, affinity=aff, node_port=np, local=loc)
                     for i, eps, aff, np, loc in specs])


def _blocks(text: str) -> dict[str, str]:
    """Each set, map and chain of a listing by its heading; nft prints them in creation order, which
    differs between a diff and a full build without meaning anything."""
    blocks: dict[str, str] = {}
    heading = None
    for line in text.splitlines():
        if line.startswith("\t") and not line.startswith("\t\t") and line.rstrip().endswith("{"):
            heading = line.strip()
            blocks[heading] = ""
        elif heading is not None and line.strip() not in ("}", ""):
            blocks[heading] += line.strip() + "\n"
    return blocks


async def _snapshot(nft: Nft) -> tuple[dict[str, str], dict[str, list[str]]]:
    text = _blocks((await nft.list_table(terse=True) or "").replace(nft.table, "T"))
    elements = {}
    for name in [*rules.MAPS, "nodeport-ips"]:
        kind = "set" if name == "nodeport-ips" else "map"
        _status, out, _err = await nft._run("-j", "list", kind, "ip", nft.table, name)
        body = next(item[kind] for item in orjson.loads(out)["nftables"] if kind in item)
        elements[name] = sorted(orjson.dumps(e).decode().replace(nft.table, "T") for e in body.get("elem", []))
    return text, elements


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=models, new=models)
def test_diff_reaches_the_same_table_as_a_full_build(netns: str, old: list[ServicePort],
                                                      new: list[ServicePort]) -> None:
    config = rules.Config(table="pxprop-a", node_name="n1", node_ips=("192.168.7.1",), cluster_cidr="10.244.0.0/16")

    async def check() -> None:
        a, b, c = (Nft(f"pxprop-{x}", netns=netns) for x in "abc")
        try:
            before, after = rules.ruleset(sorted(old), config), rules.ruleset(sorted(new), config)
            await a.apply(rules.full_script(before))
            script = rules.diff_script(before, after)
            if script:
                await a.apply(script)
            after.table = "pxprop-b"
            await b.apply(rules.full_script(after))
            assert await _snapshot(a) == await _snapshot(b)
            # a restart: a full rewrite over a table holding ``old`` (stale chains and sets deleted)
            before.table = after.table = "pxprop-c"
            await c.apply(rules.full_script(before))
            chains, sets = await c.objects()
            await c.apply(rules.full_script(after, existing_chains=chains, existing_sets=sets))
            assert await _snapshot(c) == await _snapshot(b)
        finally:
            for nft in (a, b, c):
                await nft.delete_table()

    asyncio.run(check())
