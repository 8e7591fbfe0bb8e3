"""Test kit for the proxy: a throw-away "node" network namespace with a bridge and pods, HTTP servers
in the pods (``/`` answers the pod's label, ``/peer`` the client address it sees), and a client that
reports the answers.

Nothing touches the host's network: the node namespace holds the bridge, an uplink veth carrying the
node IP (and the default route, so unmatched service traffic has somewhere to go), and the nft table.
Names carry a random token so parallel runs never collide; ``close`` kills the servers it started (by
PID) and deletes every namespace it made, and runs even when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

TOOLS = ("ip", "nsenter", "nft", "sysctl")
CAN_NET = os.geteuid() == 0 and all(shutil.which(t) for t in TOOLS)
needs_net = pytest.mark.skipif(not CAN_NET, reason=f"needs root and {', '.join(TOOLS)}")

SUBNET = "10.244.0"
GATEWAY = f"{SUBNET}.1"
NODE_IP = "192.168.77.10"
SERVER_PORT = 8080

SERVER = """
import sys, http.server, socketserver
label = sys.argv[1].encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.client_address[0].encode() if self.path == "/peer" else label
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True; allow_reuse_address = True
srv = S(("0.0.0.0", int(sys.argv[2])), H)
print("ready", flush=True)
srv.serve_forever()
"""

CLIENT = """
import sys, json, time, urllib.request
url, count, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
out = []
for _ in range(count):
    t = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            out.append([r.read().decode(), time.monotonic() - t])
    except Exception as e:
        reason = getattr(e, "reason", e)
        out.append(["ERR:" + type(reason).__name__, time.monotonic() - t])
print(json.dumps(out))
"""


def run(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr}")
    return result


@dataclass
class Node:
    """The node namespace, its pods (label -> IP) and the servers running in them."""

    token: str = field(default_factory=lambda: secrets.token_hex(3))
    namespaces: list[str] = field(default_factory=list)
    pods: dict[str, str] = field(default_factory=dict)
    servers: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def netns(self) -> str:
        return f"/run/netns/pxt{self.token}-node"

    def _ns(self, label: str) -> str:
        name = f"pxt{self.token}-{label}"
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def node_exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", f"pxt{self.token}-node", *argv, check=check)

    def setup(self) -> Node:
        node = self._ns("node")
        uplink = self._ns("uplink")  # the far end of the node's uplink: a sink for unmatched traffic
        bridge = f"pxbr{self.token}"
        for argv in (["link", "add", bridge, "type", "bridge"], ["addr", "add", f"{GATEWAY}/24", "dev", bridge],
                     ["link", "set", bridge, "up"],
                     ["link", "add", "up0", "type", "veth", "peer", "name", "up1", "netns", uplink],
                     ["addr", "add", f"{NODE_IP}/24", "dev", "up0"], ["link", "set", "up0", "up"],
                     ["route", "add", "default", "dev", "up0"]):
            run("ip", "-n", node, *argv)
        self.node_exec("sysctl", "-qw", "net.ipv4.ip_forward=1")
        return self

    def add_pod(self, label: str, index: int) -> str:
        pod = self._ns(label)
        ip = f"{SUBNET}.{index}"
        host_if = f"pxv{self.token}{index}"
        node = f"pxt{self.token}-node"
        run("ip", "-n", node, "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", pod)
        run("ip", "-n", node, "link", "set", host_if, "master", f"pxbr{self.token}", "up")
        # as our CNI bridge does (hairpinMode defaults to true): with br_netfilter, a pod's packet DNATed
        # back to itself is bridged out of the port it came in on
        run("ip", "-n", node, "link", "set", host_if, "type", "bridge_slave", "hairpin", "on")
        run("ip", "-n", pod, "addr", "add", f"{ip}/24", "dev", "eth0")
        run("ip", "-n", pod, "link", "set", "eth0", "up")
        run("ip", "-n", pod, "route", "add", "default", "via", GATEWAY)
        self.pods[label] = ip
        return ip

    def serve(self, label: str, port: int = SERVER_PORT) -> None:
        proc = subprocess.Popen(["ip", "netns", "exec", f"pxt{self.token}-{label}", sys.executable, "-c", SERVER,
                                 label, str(port)], stdout=subprocess.PIPE, text=True)
        self.servers.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def get(self, where: str, url: str, *, count: int = 1, timeout: float = 3.0) -> list[tuple[str, float]]:
        """``count`` GETs from namespace ``where`` ("node" or a pod label), each on a new connection."""
        result = run("ip", "netns", "exec", f"pxt{self.token}-{where}", sys.executable, "-c", CLIENT,
                     url, str(count), str(timeout), timeout=count * timeout + 30)
        return [(body, seconds) for body, seconds in json.loads(result.stdout)]

    def close(self) -> None:
        for proc in self.servers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        for name in reversed(self.namespaces):
            run("ip", "netns", "del", name, check=False)

