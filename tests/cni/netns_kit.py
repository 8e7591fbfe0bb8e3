"""Test kit for the CNI plugins: throw-away network namespaces, simulated nodes, plugin calls.

Nothing here touches the host's own network: every test bridge, veth, route and nft table lives in a
namespace a test created (a "node" stands in for the host), and removing the namespaces removes all
of it. Names carry a random token (``pn-t<hex>``) so parallel runs and leftovers never collide.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from cni import install

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("ip", "nsenter", "nft", "busybox")
CAN_NET = os.geteuid() == 0 and all(shutil.which(tool) for tool in TOOLS)
needs_net = pytest.mark.skipif(not CAN_NET, reason=f"needs root and {', '.join(TOOLS)}")
REFERENCE_DIR = Path("/usr/lib/cni")
NETWORK = "pntest"


def run(*argv: str, check: bool = True, timeout: float = 20, stdin: bytes | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.decode(errors='replace')}")
    return result


def in_netns(path: str, *argv: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[bytes]:
    return run("nsenter", f"--net={path}", *argv, check=check, timeout=timeout)


class Namespaces:
    """Named namespaces ``pn-t<token>-<label>``; ``remove_all`` kills what runs in them, then deletes them."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(3)
        self.names: list[str] = []

    def create(self, label: str) -> str:
        name = f"pn-t{self.token}-{label}"
        run("ip", "netns", "add", name)
        self.names.append(name)
        return f"/run/netns/{name}"

    def remove(self, path: str) -> None:
        name = Path(path).name
        pids = run("ip", "netns", "pids", name, check=False).stdout.split()
        for pid in pids:  # only processes a test started inside its own namespace
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        run("ip", "netns", "del", name, check=False)
        if name in self.names:
            self.names.remove(name)

    def remove_all(self) -> None:
        for name in list(reversed(self.names)):
            self.remove(f"/run/netns/{name}")


class Answer(NamedTuple):
    status: int
    result: dict | None
    stderr: str


def _answer(status: int, *, out: bytes, err: bytes) -> Answer:
    text = out.decode().strip()
    return Answer(status, json.loads(text) if text else None, err.decode(errors="replace"))


class Node:
    """A namespace standing in for a node's host: its own bridge name, IPAM dir and plugin bin dir."""

    def __init__(self, namespaces: Namespaces, workdir: Path, *, label: str = "node",
                 subnet: str = "10.77.0.0/24") -> None:
        self.namespaces = namespaces
        self.netns = namespaces.create(label)
        self.bridge = f"pn-t{secrets.token_hex(4)}"
        self.subnet = subnet
        self.workdir = workdir / label
        self.bin_dir = self.workdir / "bin"
        self.data_dir = self.workdir / "ipam"
        install.install(str(self.bin_dir))
        self.exec("ip", "link", "set", "lo", "up")

    def exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return in_netns(self.netns, *argv, check=check)

    def bridge_conf(self, **extra: object) -> dict:
        return {"cniVersion": "1.0.0", "name": NETWORK, "type": "pinnace-bridge", "bridge": self.bridge,
                "isGateway": True, "isDefaultGateway": True,
                "ipam": {"type": "pinnace-host-local", "ranges": [[{"subnet": self.subnet}]],
                         "dataDir": str(self.data_dir)}, **extra}

    def env(self, command: str, *, container_id: str = "", netns: str = "", ifname: str = "eth0") -> dict[str, str]:
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns, "CNI_IFNAME": ifname,
               "CNI_PATH": f"{self.bin_dir}:{REFERENCE_DIR}", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        return {k: v for k, v in env.items() if v}

    def argv(self, plugin: str) -> list[str]:
        executable = self.bin_dir / plugin if plugin.startswith("pinnace-") else REFERENCE_DIR / plugin
        return ["nsenter", f"--net={self.netns}", str(executable)]

    def call(self, plugin: str, command: str, *, config: dict | None = None, raw: bytes | None = None,
             container_id: str = "", netns: str = "", ifname: str = "eth0") -> Answer:
        stdin = raw if raw is not None else json.dumps(config).encode()
        result = subprocess.run(self.argv(plugin), input=stdin, capture_output=True, timeout=30,
                                env=self.env(command, container_id=container_id, netns=netns, ifname=ifname))
        return _answer(result.returncode, out=result.stdout, err=result.stderr)

    def start(self, plugin: str, command: str, *, config: dict, container_id: str, netns: str = "",
              ifname: str = "eth0") -> subprocess.Popen[bytes]:
        """Start a call without waiting (for concurrency tests); finish it with ``finish``."""
        process = subprocess.Popen(self.argv(plugin), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE,
                                   env=self.env(command, container_id=container_id, netns=netns, ifname=ifname))
        assert process.stdin is not None
        process.stdin.write(json.dumps(config).encode())
        process.stdin.close()
        process.stdin = None  # so communicate() does not flush it again
        return process

    @staticmethod
    def finish(process: subprocess.Popen[bytes]) -> Answer:
        out, err = process.communicate(timeout=60)
        return _answer(process.returncode, out=out, err=err)

    def leases(self, network: str = NETWORK) -> list[str]:
        store = self.data_dir / network
        if not store.is_dir():
            return []
        return sorted(p.name for p in store.iterdir()
                      if p.name != "lock" and not p.name.startswith(("last_reserved", "owner:")))

    def store_files(self, network: str = NETWORK) -> list[str]:
        """Everything in the IPAM store but its lock and round-robin marks (leases and owner indexes)."""
        store = self.data_dir / network
        return sorted(p.name for p in store.iterdir() if p.name != "lock" and not p.name.startswith("last_reserved"))

    def links(self) -> list[dict]:
        return json.loads(self.exec("ip", "-d", "-j", "link", "show").stdout or b"[]")

    def link(self, name: str) -> dict | None:
        return next((link for link in self.links() if link["ifname"] == name), None)

    def nft_tables(self) -> list[str]:
        return self.exec("nft", "list", "tables").stdout.decode().split("\n")


def pod_addresses(path: str, ifname: str = "eth0") -> list[str]:
    """The global addresses of an interface in a pod namespace, as "addr/len"."""
    out = in_netns(path, "ip", "-j", "addr", "show", "dev", ifname, check=False).stdout or b"[]"
    return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(out) for a in link.get("addr_info", [])
            if a.get("scope") == "global"]


def ping(path: str, address: str, *, count: int = 1, wait: int = 2) -> bool:
    argv = ["busybox", "ping", "-c", str(count), "-W", str(wait)]
    if ":" in address:
        argv.insert(2, "-6")
    return in_netns(path, *argv, address, check=False, timeout=15).returncode == 0


def tcp_get(path: str, *, host: str, port: int, timeout: float = 3) -> bytes | None:
    """Connect from inside ``path`` and read the answer to an HTTP GET (None when nothing answers)."""
    code = ("import socket,sys\n"
            f"s=socket.create_connection(({host!r},{port}),timeout={timeout})\n"
            "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
            "data=b''\n"
            "while chunk := s.recv(65536): data += chunk\n"
            "sys.stdout.buffer.write(data)\n")
    result = in_netns(path, sys.executable, "-I", "-S", "-c", code, check=False, timeout=timeout + 10)
    return result.stdout if result.returncode == 0 else None
