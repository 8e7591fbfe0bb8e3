"""``docker top``: the host's ``ps`` output restricted to one container's processes.

Like Docker, we run ``ps`` on the host with the caller's options (``-ef`` by default), find the PID
column in its header, and keep the rows whose pid is in the container's cgroup. Pids are therefore
host pids, and users are host users (a user-namespaced root shows as its unprivileged uid).
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Iterable

from engine.containers.errors import InvalidArgument, RuntimeFailure

DEFAULT_PS_ARGS = "-ef"


def filter_ps(output: str, pids: Iterable[int]) -> tuple[list[str], list[list[str]]]:
    """(titles, rows) of ``ps`` output, keeping only ``pids``."""
    lines = output.splitlines()
    if not lines:
        raise RuntimeFailure("ps printed nothing")
    titles = lines[0].split()
    if "PID" not in titles:
        raise InvalidArgument(f"couldn't find PID field in ps output (ps options: {titles})")
    column = titles.index("PID")
    wanted = {str(p) for p in pids}
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > column and fields[column] in wanted:
            rows.append(fields)
    return titles, rows


async def top(pids: Iterable[int], *, ps_args: str = DEFAULT_PS_ARGS) -> tuple[list[str], list[list[str]]]:
    proc = await asyncio.create_subprocess_exec(
        "ps", *shlex.split(ps_args), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise InvalidArgument(f"ps {ps_args} failed: {' '.join(err.decode(errors='replace').split())}")
    return filter_ps(out.decode(errors="replace"), pids)
