"""Pieces of the container engine that need no runtime: config parsing, spec rules, logs, cgroups."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
from pathlib import Path

import pytest

from engine.containers import exec as exec_mod
from engine.containers import logs, specgen, top
from engine.containers.config import BindMount, ContainerConfig, PortMapping
from engine.containers.errors import Conflict, InvalidArgument, NotFound, NotRunning
from engine.containers.names import check_name, generate_name, parse_signal
from engine.containers.record import State, Status
from engine.runtime import capabilities, cgroups, seccomp
from engine.runtime.errors import SpecError
from engine.runtime.idmap import IdMapping
from engine.runtime.resources import Resources
from engine.runtime.spec import ContainerOptions, make_spec

# --------------------------------------------------------------------------------- config


def test_bind_mount_parsing() -> None:
    assert BindMount.parse("/data:/srv") == BindMount(source="/data", destination="/srv")
    assert BindMount.parse("/data:/srv:ro").readonly
    assert BindMount.parse("/data:/srv:ro,rshared").propagation == "rshared"
    for bad, why in [
        ("data:/srv", "absolute"),
        ("/data:srv", "absolute"),
        ("/data:/", "can't be '/'"),
        ("/data:/a/../b", "'..'"),
        ("/data:/srv:rx", "unknown option"),
        ("/data", "want /host:/container"),
    ]:
        with pytest.raises(InvalidArgument, match=why):
            BindMount.parse(bad)


def test_port_mapping_parsing() -> None:
    assert PortMapping.parse("8080:80") == PortMapping(container_port=80, host_port=8080)
    assert PortMapping.parse("127.0.0.1:53:53/udp") == PortMapping(53, 53, "udp", "127.0.0.1")
    assert PortMapping.parse("80").host_port == 0
    for bad in ("x:80", "70000:80", "80/icmp"):
        with pytest.raises(InvalidArgument):
            PortMapping.parse(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image": ""}, "no image"),
        ({"name": "bad name"}, "invalid container name"),
        ({"command": "echo hi"}, "list of strings"),
        ({"env": ["NOEQUALS"]}, "KEY=value"),
        ({"workdir": "rel"}, "absolute path"),
        ({"network": "bridge"}, "network must be"),
        ({"userns": "0:65536"}, "unprivileged"),
        ({"userns": "x"}, "HOSTID"),
        ({"stop_signal": "SIGNOPE"}, "invalid signal"),
        ({"restart_policy": "sometimes"}, "restart policy"),
        ({"resources": Resources(memory=1024)}, "minimum memory"),
        ({"resources": Resources(cpus=-1)}, "range of CPUs"),
        ({"resources": Resources(cpu_shares=1)}, "cpu shares"),
        ({"log_size_max": 0}, "log size"),
        ({"tmpfs": {"run": ""}}, "absolute"),
    ],
)
def test_config_validation(change: dict, message: str) -> None:
    fields = {"image": "busybox", **change}
    with pytest.raises(InvalidArgument, match=message):
        ContainerConfig(**fields).validate()


def test_config_round_trip() -> None:
    config = ContainerConfig(
        image="busybox",
        name="web",
        command=["sh", "-c", "echo"],
        env=["A=1"],
        mounts=[BindMount.parse("/tmp:/data:ro")],
        ports=[PortMapping.parse("8080:80")],
        resources=Resources(memory=64 << 20, cpus=0.5, pids_limit=20),
        ulimits={"nofile": (100, 200)},
        extra={"pod": {"uid": "abc"}},
    )
    config.validate()
    again = ContainerConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()
    assert again.mounts[0].readonly and again.resources.pids_limit == 20 and again.ulimits["nofile"] == (100, 200)


def test_names_and_signals() -> None:
    assert check_name("/web") == "web"
    with pytest.raises(InvalidArgument):
        check_name("-web")
    taken = {"a"}
    name = generate_name(taken)
    assert name not in taken and "_" in name
    assert parse_signal("KILL") == parse_signal("sigkill") == parse_signal(9) == signal.SIGKILL
    assert parse_signal("15") == signal.SIGTERM
    for bad in ("NOPE", 0, "99999"):
        with pytest.raises(InvalidArgument):
            parse_signal(bad)


def test_error_statuses() -> None:
    assert (NotFound("x").status, Conflict("x").status, InvalidArgument("x").status) == (404, 409, 400)
    assert isinstance(NotRunning("x"), Conflict)
    assert str(InvalidArgument("two\nlines")) == "two lines"


def test_state_round_trip() -> None:
    state = State(status=Status.EXITED, exit_code=137, oom_killed=True)
    assert State.from_dict(state.to_dict()) == state


# ---------------------------------------------------------------------------- spec rules


@pytest.mark.parametrize(
    ("entrypoint", "command", "image", "expected"),
    [
        (None, None, {"Entrypoint": ["/init"], "Cmd": ["--x"]}, ["/init", "--x"]),
        (None, ["a"], {"Entrypoint": ["/init"], "Cmd": ["--x"]}, ["/init", "a"]),
        (["/other"], None, {"Entrypoint": ["/init"], "Cmd": ["--x"]}, ["/other"]),
        ([], ["ls"], {"Entrypoint": ["/init"], "Cmd": ["--x"]}, ["ls"]),
        (None, None, {"Cmd": ["sh"]}, ["sh"]),
    ],
)
def test_command_merge(entrypoint: list | None, command: list | None, image: dict, expected: list) -> None:
    config = ContainerConfig(image="x", entrypoint=entrypoint, command=command)
    assert specgen.command(config, image) == expected


def test_command_missing_and_env_merge() -> None:
    with pytest.raises(InvalidArgument, match="no command"):
        specgen.command(ContainerConfig(image="x"), {})
    assert specgen.merge_env(["PATH=/bin", "A=1"], ["A=2", "B=3"]) == ["PATH=/bin", "A=2", "B=3"]
    image = {"StopSignal": "SIGUSR1"}
    assert specgen.stop_signal(ContainerConfig(image="x"), image) == signal.SIGUSR1
    assert specgen.stop_signal(ContainerConfig(image="x", stop_signal="SIGINT"), image) == signal.SIGINT
    assert specgen.stop_signal(ContainerConfig(image="x"), {"StopSignal": "bogus"}) == signal.SIGTERM


def test_capabilities_resolution() -> None:
    base = ["CAP_CHOWN", "CAP_KILL"]
    assert capabilities.resolve(base=base, add=["net_admin"], drop=["KILL"]) == ["CAP_CHOWN", "CAP_NET_ADMIN"]
    assert capabilities.resolve(base=base, drop=["ALL"], add=["chown"]) == ["CAP_CHOWN"]
    everything = capabilities.resolve(base=base, privileged=True)
    assert set(everything) == set(capabilities.host_capabilities())  # never more than we hold
    with pytest.raises(SpecError, match="unknown capability"):
        capabilities.resolve(base=base, add=["CAP_FLY"])


def test_seccomp_profile_follows_capabilities() -> None:
    plain = seccomp.default_profile(["CAP_CHOWN"], machine="x86_64")
    denied = plain["syscalls"][0]["names"]
    assert {"unshare", "mount", "keyctl", "ptrace", "setns"} <= set(denied)
    assert plain["defaultAction"] == "SCMP_ACT_ALLOW" and plain["architectures"][0] == "SCMP_ARCH_X86_64"
    assert any(rule["names"] == ["clone"] for rule in plain["syscalls"])
    admin = seccomp.default_profile(["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"], machine="x86_64")
    admin_denied = admin["syscalls"][0]["names"]
    assert "mount" not in admin_denied and "ptrace" not in admin_denied and "keyctl" in admin_denied
    assert not any(rule["names"] == ["clone"] for rule in admin["syscalls"])


def test_resources_to_oci() -> None:
    oci = Resources(memory=32 << 20, cpus=1.5, cpu_shares=512, pids_limit=20).to_oci()
    assert oci["memory"] == {"limit": 32 << 20, "swap": 32 << 20}
    assert oci["cpu"] == {"shares": 512, "quota": 150000, "period": 100000}
    assert oci["pids"] == {"limit": 20}
    assert Resources(pids_limit=0).to_oci()["pids"] == {"limit": -1}
    with pytest.raises(SpecError, match="cannot be set together"):
        Resources(cpus=1, cpu_quota=5000).validate()
    with pytest.raises(SpecError, match="cpuset"):
        Resources(cpuset_cpus="0-99999").validate()


def test_spec_options(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    mapping = IdMapping(host_id=200000)
    spec = make_spec(
        ContainerOptions(
            rootfs=str(tmp_path), args=["true"], userns=mapping, resources=Resources(memory=64 << 20),
            namespace_paths={"ipc": "/run/ns/ipc", "uts": "host"}, network="/run/netns/x", rlimits={"nofile": (10, 10)},
        )
    )  # fmt: skip
    linux = spec["linux"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": 200000, "size": 65536}]
    kinds = {n["type"]: n.get("path", "") for n in linux["namespaces"]}
    assert kinds == {"mount": "", "pid": "", "ipc": "/run/ns/ipc", "network": "/run/netns/x", "user": ""}
    assert linux["resources"]["memory"]["limit"] == 64 << 20
    assert "seccomp" in linux and linux["maskedPaths"]
    sys_mount = next(m for m in spec["mounts"] if m["destination"] == "/sys")
    assert sys_mount["type"] == "bind"  # sysfs cannot be mounted by a userns that does not own the netns
    assert {"type": "RLIMIT_NOFILE", "soft": 10, "hard": 10} in spec["process"]["rlimits"]
    privileged = make_spec(ContainerOptions(rootfs=str(tmp_path), args=["true"], privileged=True))
    assert "seccomp" not in privileged["linux"] and "maskedPaths" not in privileged["linux"]
    assert privileged["process"]["noNewPrivileges"] is False
    assert privileged["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]


def test_spec_rejects_limits_above_the_host(tmp_path: Path) -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard nofile limit here")
    with pytest.raises(SpecError, match="exceeds the host's limit"):
        make_spec(ContainerOptions(rootfs=str(tmp_path), args=["true"], rlimits={"nofile": (hard + 1, hard + 1)}))
    with pytest.raises(SpecError, match="unknown ulimit"):
        make_spec(ContainerOptions(rootfs=str(tmp_path), args=["true"], rlimits={"bogus": (1, 1)}))
    with pytest.raises(SpecError, match="namespace"):
        make_spec(ContainerOptions(rootfs=str(tmp_path), args=["true"], namespace_paths={"mount": "/x"}))


def test_exec_failures_explained() -> None:
    message = b"executable file `nosuch` not found in $PATH: No such file or directory\n"
    assert exec_mod.runtime_failure(255, message) == (127, 'exec: "nosuch": executable file not found in $PATH')
    assert exec_mod.runtime_failure(1, message) is None  # the process itself said so: not ours
    assert exec_mod.runtime_failure(255, b"open executable: Operation not permitted")[0] == 126
    assert exec_mod.runtime_failure(255, b"some other output") is None


def test_top_filters_ps_output() -> None:
    output = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init splash\n" \
             "root 42 1 0 10:00 ? 00:00:00 sleep 100 now\n"  # fmt: skip
    titles, rows = top.filter_ps(output, [42])
    assert titles[1] == "PID" and rows == [["root", "42", "1", "0", "10:00", "?", "00:00:00", "sleep 100 now"]]
    with pytest.raises(InvalidArgument, match="PID"):
        top.filter_ps("USER COMMAND\n", [1])


# ------------------------------------------------------------------------------------ logs


def _entry(ts: str, stream: str, tag: str, text: str) -> str:
    return f"{ts} {stream} {tag} {text}\n"


def test_log_parsing_and_rendering() -> None:
    line = logs.parse_line(b"2026-11-29T08:28:57.635833702+01:00 stderr F oops")
    assert line is not None and line.stream == "stderr" and line.data == b"oops\n" and not line.partial
    assert line.time_ns == logs.parse_time("2026-11-29T07:28:57.635833702Z")
    assert line.render(timestamps=True) == b"2026-11-29T07:28:57.635833702Z oops\n"
    partial = logs.parse_line(b"2026-11-29T08:28:57Z stdout P abc")
    assert partial is not None and partial.partial and partial.data == b"abc"
    assert logs.parse_line(b"garbage line") is None
    assert logs.parse_line(b"2026-11-29T08:28:57Z stdin F x") is None


async def _collect(it) -> list[logs.LogLine]:  # type: ignore[no-untyped-def]
    return [line async for line in it]


async def test_log_tail_since_and_streams(tmp_path: Path) -> None:
    path = tmp_path / "ctr.log"
    text = "".join(_entry(f"2026-01-01T00:00:0{i}.5Z", "stdout" if i % 2 else "stderr", "F", f"l{i}") for i in range(8))
    path.write_text(text + "2026-01-01T00:00:09Z stdout F half-writ")  # no newline yet: not an entry
    every = await _collect(logs.read(path))
    assert [x.data for x in every] == [f"l{i}\n".encode() for i in range(8)]
    tail = await _collect(logs.read(path, tail=3))
    assert [x.data for x in tail] == [b"l5\n", b"l6\n", b"l7\n"]
    assert await _collect(logs.read(path, tail=0)) == []
    since = logs.parse_time("2026-01-01T00:00:06Z")
    late = await _collect(logs.read(path, flt=logs.LogFilter(since_ns=since, streams=logs.streams(stderr=False))))
    assert [x.data for x in late] == [b"l7\n"]


async def test_log_follow_across_rotation(tmp_path: Path) -> None:
    path = tmp_path / "ctr.log"
    path.write_text(_entry("2026-01-01T00:00:00Z", "stdout", "F", "first"))
    alive = True
    seen: list[bytes] = []

    async def follow() -> None:
        async for line in logs.read(path, follow=True, running=lambda: alive):
            seen.append(line.data)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.15)
    path.write_text(path.read_text() + _entry("2026-01-01T00:00:01Z", "stdout", "F", "second"))
    await asyncio.sleep(0.15)
    fresh = tmp_path / "ctr.log.tmp"  # conmon's rotation: a new file renamed over the old one
    fresh.write_text(
        _entry("2026-01-01T00:00:02Z", "stdout", "P", "thi") + _entry("2026-01-01T00:00:02Z", "stdout", "F", "rd")
    )
    os.replace(fresh, path)
    await asyncio.sleep(0.15)
    alive = False
    await asyncio.wait_for(task, 2)
    assert seen == [b"first\n", b"second\n", b"thi", b"rd\n"]


# ---------------------------------------------------------------------------------- cgroups


def test_cgroup_layout_and_stats_v1(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        f"30 1 0:1 / {tmp_path}/memory rw - cgroup cgroup rw,memory\n"
        f"31 1 0:2 / {tmp_path}/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        f"32 1 0:3 / {tmp_path}/pids rw - cgroup cgroup rw,pids\n"
        f"33 1 0:4 / {tmp_path}/unified rw - cgroup2 cgroup2 rw\n"
        f"34 1 0:5 / {tmp_path}/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
    )
    layout = cgroups.read_layout(mountinfo)
    assert layout.v1["cpuacct"] == layout.v1["cpu"] == tmp_path / "cpu,cpuacct" and not layout.pure_v2
    assert layout.v1["name=systemd"] == tmp_path / "systemd"  # the runtime makes dirs there too
    files = {
        "memory/p/c/memory.usage_in_bytes": "1000",
        "memory/p/c/memory.limit_in_bytes": str(2**63 - 4096),
        "memory/p/c/memory.stat": "cache 10\ntotal_inactive_file 300\n",
        "memory/p/c/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        "cpu,cpuacct/p/c/cpuacct.usage": "5000",
        "pids/p/c/pids.current": "3",
        "pids/p/c/pids.max": "20",
        "pids/p/c/cgroup.procs": "7\n8\n",
    }
    for rel, content in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content)
    group = cgroups.ContainerCgroup("/p/c", layout=layout)
    stats = group.stats()
    assert (stats.memory_usage, stats.memory_limit, stats.working_set) == (1000, 0, 700)
    assert (stats.cpu_usage_ns, stats.pids_current, stats.pids_limit, stats.oom_kills) == (5000, 3, 20, 2)
    assert group.pids() == [7, 8]


def test_cgroup_stats_v2(tmp_path: Path) -> None:
    layout = cgroups.Layout(v1={}, unified=tmp_path)
    base = tmp_path / "p/c"
    base.mkdir(parents=True)
    for name, content in {
        "cpu.stat": "usage_usec 7\nuser_usec 5\nsystem_usec 2\n",
        "memory.current": "4096",
        "memory.max": "max",
        "memory.events": "low 0\noom 1\noom_kill 1\n",
        "memory.stat": "inactive_file 96\n",
        "pids.current": "1",
        "pids.max": "max",
    }.items():
        (base / name).write_text(content)
    stats = cgroups.ContainerCgroup("p/c", layout=layout).stats()
    assert (stats.cpu_usage_ns, stats.memory_usage, stats.memory_limit, stats.oom_kills) == (7000, 4096, 0, 1)
    assert stats.working_set == 4000 and stats.pids_limit == 0


def test_idmapping_parse() -> None:
    assert IdMapping.parse("200000") == IdMapping(host_id=200000, size=65536)
    assert IdMapping.parse("300000:1000").to_host(5) == 300005
    with pytest.raises(SpecError):
        IdMapping.parse("0")
    assert errno.EPERM == 1  # the errno the seccomp profile answers with
