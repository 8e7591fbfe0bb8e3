"""Run inside a fresh network namespace (``unshare -n``) by test_dns_node: puts the cluster DNS IP on
the pinnace-dns interface, serves a one-Service zone there on port 53, asks busybox nslookup, removes
the address, and prints what it saw as JSON. The namespace dies with this process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from proxy.dns import address
from proxy.dns.forward import Forwarder
from proxy.dns.server import DnsServer
from proxy.dns.zone import Zone

DNS_IP = "10.43.0.10"


def addresses() -> str:
    return subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout


async def main() -> dict[str, object]:
    holder = await address.ensure(DNS_IP)
    again = await address.ensure(DNS_IP)  # idempotent
    zone = Zone(dns_ip=DNS_IP)
    zone.set_service({"metadata": {"name": "web", "namespace": "shop"}, "spec": {"clusterIP": "10.43.5.5"}})
    zone.ready = True
    server = DnsServer(zone, Forwarder([(DNS_IP, 53)], exclude=[(DNS_IP, 53)]), address=DNS_IP, port=53)
    await server.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            "busybox", "nslookup", "-type=a", "web.shop.svc.cluster.local", DNS_IP,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
    finally:
        await server.stop()
    with_ip = addresses()
    removed = await address.remove(DNS_IP)
    return {"holder": holder, "again": again, "nslookup": out.decode(), "had_ip": DNS_IP in with_ip,
            "removed": removed, "left": DNS_IP in addresses(), "removed_again": await address.remove(DNS_IP)}


if __name__ == "__main__":
    json.dump(asyncio.run(main()), sys.stdout)
