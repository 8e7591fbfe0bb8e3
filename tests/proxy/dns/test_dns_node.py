"""The node side: the DNS IP on its own interface inside a network namespace, and ``pinnace dns``
as a process against a real API server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dns_kit import ask_udp, rdata, service
from fake_upstream import RECORDS, FakeUpstream

from e2e.cluster import REPO, Server, free_port
from machinery.client import ApiClient, Resource
from proxy.dns import wire

SERVICES = Resource("", "v1", "services", True)
CAN_NETNS = os.geteuid() == 0 and all(shutil.which(t) for t in ("unshare", "ip", "busybox"))


@pytest.mark.skipif(not CAN_NETNS, reason="needs root, unshare, ip and busybox")
def test_dns_ip_on_its_interface_in_a_network_namespace() -> None:
    probe = Path(__file__).with_name("netns_probe.py")
    result = subprocess.run(["unshare", "-n", sys.executable, str(probe)], cwd=REPO, capture_output=True,
                            text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["holder"] in ("pinnace-dns", "lo") and seen["again"] == seen["holder"]
    assert seen["had_ip"] and seen["removed"] and not seen["left"] and not seen["removed_again"]
    assert "10.43.5.5" in seen["nslookup"], seen["nslookup"]


@pytest.fixture
def dns_process(api_server: Server, upstream: FakeUpstream,
                tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    log = tmp_path / "dns.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "dns", "--kubeconfig", str(api_server.kubeconfig),
                                 "--address", "127.0.0.1", "--port", str(port), "--no-bind-interface",
                                 "--upstream", f"127.0.0.1:{upstream.port}"], cwd=REPO, stdout=out, stderr=out)
    try:
        for _ in range(200):
            if "serving" in log.read_text():
                break
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def test_pinnace_dns_command(api: ApiClient, ns: str,
                                   dns_process: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, proc = dns_process
    svc = await api.create(SERVICES, service("api", ns, cluster_ip=None), namespace=ns)
    for _ in range(100):
        reply = await asyncio.to_thread(ask_udp, port, f"api.{ns}.svc.cluster.local", qtype=wire.A)
        if rdata(reply, wire.A) == [svc["spec"]["clusterIP"]]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"never resolved: {reply}")
    forwarded = await asyncio.to_thread(ask_udp, port, "www.example.test", qtype=wire.A)
    assert rdata(forwarded, wire.A) == RECORDS["www.example.test"]
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 10) == 0


def test_bad_arguments_are_one_line_errors() -> None:
    result = subprocess.run([sys.executable, "-m", "cli.main", "dns", "--address", "not-an-ip"], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "not-an-ip" in result.stderr
