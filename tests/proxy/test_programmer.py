"""Programmer bookkeeping with a fake nft: first sync full, then diffs, no-ops, and a full rewrite after
a failed transaction (the kernel state is then unknown)."""

from __future__ import annotations

from proxy import rules
from proxy.model import Endpoint, ServicePort
from proxy.nft import NftError
from proxy.sync import Programmer


class FakeNft:
    """Records scripts; fails the next apply when told to; reports a leftover chain from a past run."""

    def __init__(self) -> None:
        self.scripts: list[str] = []
        self.fail_next = False

    async def objects(self) -> tuple[set[str], set[str]]:
        return {"service-OLD-gone/x/tcp/p"}, set()

    async def apply(self, script: str, *, check_only: bool = False) -> None:
        if self.fail_next:
            self.fail_next = False
            raise NftError("nft: boom")
        self.scripts.append(script)


def port(*ips: str) -> ServicePort:
    return ServicePort(namespace="ns", name="s", port_name="", protocol="tcp", cluster_ip="10.96.0.1", port=80,
                       endpoints=tuple(Endpoint(ip, 80) for ip in ips))


async def test_full_then_diff_then_noop_and_recovery_after_failure() -> None:
    nft = FakeNft()
    prog = Programmer(nft, rules.Config(table="t"))  # type: ignore[arg-type]
    assert await prog.sync([port("10.0.0.1")]) == "full"
    assert "delete chain ip t service-OLD-gone/x/tcp/p" in nft.scripts[-1]
    assert await prog.sync([port("10.0.0.1", "10.0.0.2")]) == "diff"
    assert "flush table" not in nft.scripts[-1] and "10.0.0.2" in nft.scripts[-1]
    assert await prog.sync([port("10.0.0.1", "10.0.0.2")]) == "noop"
    nft.fail_next = True
    try:
        await prog.sync([port("10.0.0.3")])
    except NftError:
        pass
    else:
        raise AssertionError("the failure was swallowed")
    assert prog.applied is None
    assert await prog.sync([port("10.0.0.3")]) == "full"
