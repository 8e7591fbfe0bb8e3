"""engine.runtime: paths inside a rootfs, user resolution, the OCI spec, host cgroup set-up."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from engine.runtime import hostsetup
from engine.runtime.errors import SpecError, UnsafePath
from engine.runtime.rootpath import clean, secure_join
from engine.runtime.spec import DEFAULT_CAPABILITIES, ContainerOptions, Mount, make_spec
from engine.runtime.users import resolve_user

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n# comment\nbad:x:notanumber:0::/:/bin/sh\n"
)
GROUP = "root:x:0:\napp:x:1001:\nstaff:x:50:app,other\nwheel:x:10:other\n"


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(PASSWD)
    (tmp_path / "etc/group").write_text(GROUP)
    return tmp_path


def test_secure_join_stays_inside(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a/up").symlink_to("../../../..")
    (tmp_path / "abs").symlink_to("/etc")
    (tmp_path / "loop").symlink_to("loop")
    assert secure_join(tmp_path, "/a/up/etc/passwd") == tmp_path / "etc/passwd"
    assert secure_join(tmp_path, "abs/shadow") == tmp_path / "etc/shadow"
    assert secure_join(tmp_path, "../../x") == tmp_path / "x"
    assert secure_join(tmp_path, "/") == tmp_path
    assert secure_join(tmp_path, "missing/../../y") == tmp_path / "y"
    with pytest.raises(UnsafePath, match="too many levels"):
        secure_join(tmp_path, "loop/x")


def test_clean() -> None:
    assert clean("b/../c", cwd="/a") == "/a/c"
    assert clean("/x//y/") == "/x/y"
    assert clean("../../..", cwd="/a") == "/"


@pytest.mark.parametrize(
    ("spec", "uid", "gid", "extra", "home"),
    [
        ("", 0, 0, (), "/root"),
        ("app", 1000, 1001, (50,), "/home/app"),
        ("1000", 1000, 1001, (50,), "/home/app"),
        ("app:staff", 1000, 50, (), "/home/app"),
        ("app:7", 1000, 7, (50,), "/home/app"),
        ("4242", 4242, 0, (), "/"),
        ("4242:4343", 4242, 4343, (), "/"),
    ],
)
def test_resolve_user(rootfs: Path, spec: str, uid: int, gid: int, extra: tuple[int, ...], home: str) -> None:
    user = resolve_user(rootfs, spec)
    assert (user.uid, user.gid, user.additional_gids, user.home) == (uid, gid, extra, home)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ghost", "unable to find user ghost"),
        ("app:ghosts", "unable to find group ghosts"),
        (":50", "user part is empty"),
        ("99999999999", "out of range"),
    ],
)
def test_resolve_user_errors(rootfs: Path, spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        resolve_user(rootfs, spec)


def test_resolve_user_without_passwd_and_through_hostile_symlink(tmp_path: Path) -> None:
    assert resolve_user(tmp_path, "123:456").uid == 123
    with pytest.raises(SpecError):
        resolve_user(tmp_path, "root")  # no passwd: names cannot resolve
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").symlink_to("/etc/passwd")  # re-rooted: points at itself, not the host
    with pytest.raises(SpecError):
        resolve_user(tmp_path, "root")


def test_make_spec_defaults(rootfs: Path) -> None:
    spec = make_spec(ContainerOptions(rootfs=str(rootfs), args=["echo", "hi"], env=["A=1"], user="app", cwd="/srv"))
    process = spec["process"]
    assert process["args"] == ["echo", "hi"]
    assert process["user"] == {"uid": 1000, "gid": 1001, "additionalGids": [50]}
    assert process["cwd"] == "/srv"
    assert process["env"][0] == "A=1"
    assert "HOME=/home/app" in process["env"] and any(e.startswith("PATH=") for e in process["env"])
    assert process["noNewPrivileges"] is True
    assert process["capabilities"]["bounding"] == list(DEFAULT_CAPABILITIES)
    assert "CAP_SYS_ADMIN" not in process["capabilities"]["effective"]
    assert spec["root"] == {"path": str(rootfs), "readonly": False}
    destinations = {m["destination"] for m in spec["mounts"]}
    assert destinations >= {"/proc", "/dev", "/dev/pts", "/sys", "/dev/shm", "/dev/mqueue"}
    sys_mount = next(m for m in spec["mounts"] if m["destination"] == "/sys")
    assert "ro" in sys_mount["options"]
    types = [n["type"] for n in spec["linux"]["namespaces"]]
    assert sorted(types) == ["ipc", "mount", "network", "pid", "uts"]
    assert "/proc/kcore" in spec["linux"]["maskedPaths"]
    assert "/proc/sys" in spec["linux"]["readonlyPaths"]


def test_rlimits_never_exceed_our_own(rootfs: Path) -> None:
    spec = make_spec(ContainerOptions(rootfs=str(rootfs), args=["true"]))
    limits = {r["type"]: r for r in spec["process"]["rlimits"]}
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert limits["RLIMIT_NOFILE"]["hard"] == hard
    assert limits["RLIMIT_NOFILE"]["soft"] == soft


def test_network_modes(rootfs: Path) -> None:
    def netns(network: str) -> list[dict[str, str]]:
        spec = make_spec(ContainerOptions(rootfs=str(rootfs), args=["true"], network=network))
        return [n for n in spec["linux"]["namespaces"] if n["type"] == "network"]

    assert netns("none") == [{"type": "network"}]
    assert netns("host") == []
    assert netns("/var/run/netns/x") == [{"type": "network", "path": "/var/run/netns/x"}]
    with pytest.raises(SpecError, match="network must be"):
        netns("bridge")


def test_make_spec_rejects_bad_options(rootfs: Path) -> None:
    with pytest.raises(SpecError, match="args is empty"):
        make_spec(ContainerOptions(rootfs=str(rootfs), args=[]))
    with pytest.raises(SpecError, match="rootfs"):
        make_spec(ContainerOptions(rootfs="relative/path", args=["true"]))
    with pytest.raises(SpecError, match="working directory"):
        make_spec(ContainerOptions(rootfs=str(rootfs), args=["true"], cwd="srv"))
    with pytest.raises(SpecError, match="mount destination"):
        make_spec(ContainerOptions(rootfs=str(rootfs), args=["true"], mounts=[Mount(destination="x", source="/x")]))


def _mountinfo(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "mountinfo"
    path.write_text("".join(f"{i} 1 0:{i} / {line}\n" for i, line in enumerate(lines, start=30)))
    return path


def test_leftover_controllers_on_hybrid_layouts(tmp_path: Path) -> None:
    unified = tmp_path / "unified"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("hugetlb misc\n")
    v1 = f"{tmp_path}/memory rw - cgroup cgroup rw,memory"
    v2 = f"{unified} rw - cgroup2 cgroup2 rw"
    assert hostsetup.leftover_controllers(mountinfo=_mountinfo(tmp_path, [v1, v2]), unified=unified) == [
        "hugetlb",
        "misc",
    ]
    hugetlb = f"{tmp_path}/hugetlb rw - cgroup cgroup rw,hugetlb"
    assert hostsetup.leftover_controllers(mountinfo=_mountinfo(tmp_path, [v1, v2, hugetlb]), unified=unified) == [
        "misc"
    ]
    pure_v2 = f"{tmp_path} rw - cgroup2 cgroup2 rw"
    assert hostsetup.leftover_controllers(mountinfo=_mountinfo(tmp_path, [pure_v2]), unified=unified) == []


def test_ensure_cgroups_is_idempotent_on_this_host() -> None:
    hostsetup.ensure_cgroups()
    assert hostsetup.leftover_controllers() == []
    assert hostsetup.ensure_cgroups() == []
