"""The proxy's only contact with nftables: run ``nft`` as an async subprocess, never blocking the loop.

A script goes to ``nft -f -`` and is one kernel transaction: all of it applies or none does. With
``netns`` set, nft runs through ``nsenter --net=<path>``, so tests and benchmarks program a network
namespace of their own while the proxy process stays where the API server is reachable.
"""

from __future__ import annotations

import asyncio

import orjson

NFT = "nft"


class NftError(RuntimeError):
    """nft refused a script or could not run; carries nft's own message."""


class Nft:
    """nft for one table (family ``ip``), optionally inside another network namespace."""

    def __init__(self, table: str, *, netns: str | None = None) -> None:
        self.table = table
        self.netns = netns

    async def _run(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        argv = [NFT, *args]
        if self.netns:
            argv = ["nsenter", f"--net={self.netns}", *argv]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise NftError(f"cannot run {argv[0]}: {exc}") from exc
        out, err = await proc.communicate(stdin.encode())
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    async def apply(self, script: str, *, check_only: bool = False) -> None:
        """Apply ``script`` as one transaction (``check_only``: let the kernel validate it, commit nothing)."""
        status, _out, err = await self._run(*(["-c"] if check_only else []), "-f", "-", stdin=script)
        if status != 0:
            raise NftError(f"nft: {_first_lines(err)}")

    async def list_table(self, *, terse: bool = False) -> str | None:
        """The table as ``nft list`` prints it (``terse``: without set elements), or None if absent."""
        status, out, err = await self._run(*(["-t"] if terse else []), "list", "table", "ip", self.table)
        if status != 0:
            if "No such file or directory" in err:
                return None
            raise NftError(f"nft: {_first_lines(err)}")
        return out

    async def objects(self) -> tuple[set[str], set[str]]:
        """Names of our table's chains and sets (maps excluded), to delete leftovers after a restart."""
        chains: set[str] = set()
        sets: set[str] = set()
        for what, into in (("chains", chains), ("sets", sets)):
            status, out, err = await self._run("-j", "-t", "list", what, "ip")
            if status != 0:
                raise NftError(f"nft: {_first_lines(err)}")
            for item in orjson.loads(out).get("nftables", []):
                body = item.get(what[:-1])
                if body and body.get("table") == self.table:
                    into.add(body["name"])
        return chains, sets

    async def delete_table(self) -> bool:
        """Remove our table (and only it); False when it was not there."""
        status, _out, err = await self._run("delete", "table", "ip", self.table)
        if status != 0:
            if "No such file or directory" in err:
                return False
            raise NftError(f"nft: {_first_lines(err)}")
        return True


def _first_lines(err: str, limit: int = 6) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return " | ".join(lines[:limit]) or "failed without a message"
