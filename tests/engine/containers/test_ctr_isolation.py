"""What a container can and cannot see or do: the issue's isolation list, on real containers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.containers.config import ContainerConfig
from engine.containers.manager import ContainerManager
from engine.runtime.resources import Resources
from tests.engine.containers.test_ctr_lifecycle import run, wait_for_log

CAP_SYS_ADMIN = 21


async def test_own_pid1_hostname_mounts_and_network(manager: ContainerManager) -> None:
    script = (
        "echo self=$$; echo host=$(hostname); echo procs=$(ls /proc | grep -c '^[0-9]'); "
        "echo nets=$(ls /sys/class/net); echo root=$(grep -c ' / / ' /proc/self/mountinfo)"
    )
    code, out = await run(manager, "sh", "-c", script, hostname="inside")
    values = dict(line.split("=", 1) for line in out.decode().splitlines())
    assert code == 0
    assert values["self"] == "1"  # our shell is PID 1 of its own namespace
    assert values["host"] == "inside"
    assert int(values["procs"]) <= 4  # sh, ls, grep and the subshell: no host processes visible
    assert values["nets"] == "lo"  # a fresh network namespace has only loopback
    assert values["root"] == "1"  # its own root mount


async def test_host_processes_and_files_are_invisible(manager: ContainerManager, tmp_path: Path) -> None:
    marker = tmp_path / "host-only-file"
    marker.write_text("secret")
    _, out = await run(manager, "sh", "-c", f"ls {marker} 2>&1; ps -o pid,comm")
    lines = out.decode().splitlines()
    assert "No such file" in lines[0]
    commands = {line.split()[1] for line in lines[2:]}
    assert "ps" in commands and commands <= {"ps", "sh"}  # not the host's init, not this test's python


async def test_memory_limit_oom_kills(manager: ContainerManager) -> None:
    c = await manager.create(
        ContainerConfig(image="busybox", command=["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"],
                        resources=Resources(memory=32 << 20))
    )  # fmt: skip
    await manager.start(c.id)
    assert await asyncio.wait_for(manager.wait(c.id), 20) == 137
    assert manager.get(c.id).state.oom_killed


async def test_pids_limit_stops_a_fork_bomb(manager: ContainerManager) -> None:
    # the inner shell dies when fork fails; the outer one then reads the counters with builtins only
    bomb = (
        "sh -c 'for i in $(seq 1 200); do sleep 5 & done' 2>/dev/null; echo inner=$?; "
        "read cur < /sys/fs/cgroup/pids/pids.current || read cur < /sys/fs/cgroup/pids.current; echo current=$cur; "
        "read ev < /sys/fs/cgroup/pids/pids.events || read ev < /sys/fs/cgroup/pids.events; echo events=$ev"
    )
    code, out = await run(manager, "sh", "-c", bomb, resources=Resources(pids_limit=20))
    values = dict(line.split("=", 1) for line in out.decode().splitlines() if "=" in line)
    assert code == 0 and values["inner"] != "0"  # the bomb failed to fork
    assert int(values["current"]) <= 20
    assert values["events"].startswith("max ") and int(values["events"].split()[1]) >= 1


async def test_default_capabilities_exclude_sys_admin(manager: ContainerManager) -> None:
    code, out = await run(manager, "sh", "-c", "grep CapEff /proc/self/status")
    effective = int(out.split()[1], 16)
    assert code == 0 and not effective >> CAP_SYS_ADMIN & 1 and effective != 0
    code, out = await run(
        manager, "sh", "-c", "grep CapEff /proc/self/status", cap_add=["SYS_ADMIN"], cap_drop=["CHOWN"]
    )
    effective = int(out.split()[1], 16)
    assert effective >> CAP_SYS_ADMIN & 1 and not effective & 1


async def test_seccomp_blocks_unshare_and_mount(manager: ContainerManager) -> None:
    script = "unshare -U true 2>&1; echo unshare=$?; mkdir -p /mnt/t; mount -t tmpfs t /mnt/t 2>&1; echo mount=$?"
    _, out = await run(manager, "sh", "-c", script)
    text = out.decode()
    assert "unshare=1" in text and "Operation not permitted" in text and "mount=1" in text
    _, out = await run(manager, "sh", "-c", script, privileged=True)
    assert "unshare=0" in out.decode() and "mount=0" in out.decode()


async def test_readonly_rootfs(manager: ContainerManager) -> None:
    _, out = await run(
        manager, "sh", "-c", "touch /x 2>&1; echo root=$?; touch /scratch/y && echo tmpfs-ok",
        readonly_rootfs=True, tmpfs={"/scratch": "size=1m"},
    )
    text = out.decode()
    assert "Read-only file system" in text and "root=1" in text and "tmpfs-ok" in text


async def test_user_namespace_root_is_unprivileged_on_host(manager: ContainerManager) -> None:
    c = await manager.create(
        ContainerConfig(image="busybox", userns="auto",
                        command=["sh", "-c", "id -u; echo x > /etc/written && echo etc-ok; echo ready; sleep 30"])
    )  # fmt: skip
    await manager.start(c.id)
    await wait_for_log(manager, c.id, b"ready")
    pid = manager.get(c.id).state.pid
    status = await asyncio.to_thread(Path(f"/proc/{pid}/status").read_text)
    host_uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    assert host_uid == manager.get(c.id).state.userns_host_id >= 100000  # root inside, nobody special outside
    out = b"".join([line.data async for line in manager.logs(c.id)])
    assert out.startswith(b"0\n") and b"etc-ok" in out  # image files belong to container root
    written = c.paths.upper / "etc" / "written"
    assert (await asyncio.to_thread(written.stat)).st_uid == host_uid  # and its writes land as the unprivileged uid
    other = await manager.create(ContainerConfig(image="busybox", userns="auto", command=["true"]))
    assert manager.get(other.id).state.userns_host_id != host_uid  # "auto" ranges do not overlap
    await manager.stop(c.id, timeout=0)
