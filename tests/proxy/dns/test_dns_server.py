"""The server end to end: a real API server feeding the zone, queried over UDP and TCP by busybox
nslookup and a raw-socket client; forwarding to a fake upstream; FORMERR for garbage."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from dns_kit import aask, ask_tcp, endpoint, endpoint_slice, query, rdata, service
from fake_upstream import RECORDS, FakeUpstream
from hypothesis import given, settings
from hypothesis import strategies as st

from machinery.client import ApiClient, Resource
from proxy.dns import server as server_module
from proxy.dns import wire
from proxy.dns.forward import Forwarder, parse_upstream, read_resolv_conf
from proxy.dns.server import DnsServer
from proxy.dns.watch import ZoneFeeder
from proxy.dns.zone import Zone

SERVICES = Resource("", "v1", "services", True)
SLICES = Resource("discovery.k8s.io", "v1", "endpointslices", True)
BUSYBOX = shutil.which("busybox")


@pytest.fixture
async def dns(api: ApiClient, upstream: FakeUpstream) -> AsyncIterator[DnsServer]:
    zone = Zone(domain="cluster.local", dns_ip="127.0.0.1")
    feeder = ZoneFeeder(api, zone)
    feeder.start()
    server = DnsServer(zone, Forwarder([("127.0.0.1", upstream.port)], timeout=1.0), address="127.0.0.1", port=0)
    try:
        async with asyncio.timeout(10):
            await feeder.wait_synced()
        await server.start()
        yield server
    finally:
        await server.stop()
        await feeder.stop()


async def until(check: Callable[[], object], *, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():  # type: ignore[misc]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def nslookup(port: int, name: str, *, qtype: str = "a") -> subprocess.CompletedProcess[str]:
    return subprocess.run([BUSYBOX or "busybox", "nslookup", f"-type={qtype}", name, f"127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=10)


async def test_services_resolve_through_busybox_and_raw_client(api: ApiClient, ns: str, dns: DnsServer) -> None:
    svc = await api.create(SERVICES, service("web", ns, cluster_ip=None), namespace=ns)
    ip = svc["spec"]["clusterIP"]
    fqdn = f"web.{ns}.svc.cluster.local"

    async def resolved() -> bool:
        return rdata(await aask(dns.port, fqdn, qtype=wire.A), wire.A) == [ip]
    await until(resolved)
    srv = await aask(dns.port, f"_http._tcp.{fqdn}", qtype=wire.SRV)
    assert [(s.port, s.target) for s in rdata(srv, wire.SRV)] == [(80, fqdn)]
    assert [r.data for r in srv.additional if r.rtype == wire.A] == [ip]
    ptr = await aask(dns.port, wire_reverse(ip), qtype=wire.PTR)
    assert rdata(ptr, wire.PTR) == [fqdn]
    if BUSYBOX:
        out = await asyncio.to_thread(nslookup, dns.port, fqdn)
        assert out.returncode == 0 and ip in out.stdout, out.stdout + out.stderr
        out = await asyncio.to_thread(nslookup, dns.port, f"_http._tcp.{fqdn}", qtype="srv")
        assert f"80 {fqdn}" in out.stdout, out.stdout + out.stderr


def wire_reverse(ip: str) -> str:
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


async def test_headless_and_pod_names(api: ApiClient, ns: str, dns: DnsServer) -> None:
    await api.create(SERVICES, service("db", ns, cluster_ip="None"), namespace=ns)
    endpoints = [endpoint("10.244.3.4", hostname="db-0"), endpoint("10.244.3.5"), endpoint("10.244.3.6", ready=False)]
    await api.create(SLICES, endpoint_slice("db-a", ns, svc="db", endpoints=endpoints), namespace=ns)
    fqdn = f"db.{ns}.svc.cluster.local"

    async def both() -> bool:
        return rdata(await aask(dns.port, fqdn, qtype=wire.A), wire.A) == ["10.244.3.4", "10.244.3.5"]
    await until(both)
    assert rdata(await aask(dns.port, f"db-0.{fqdn}", qtype=wire.A), wire.A) == ["10.244.3.4"]
    pod = await aask(dns.port, f"10-244-3-9.{ns}.pod.cluster.local", qtype=wire.A)
    assert rdata(pod, wire.A) == ["10.244.3.9"]
    if BUSYBOX:
        out = await asyncio.to_thread(nslookup, dns.port, fqdn)
        assert "10.244.3.4" in out.stdout and "10.244.3.5" in out.stdout and "10.244.3.6" not in out.stdout


async def test_unknown_cluster_name_is_a_fast_nxdomain(ns: str, dns: DnsServer, upstream: FakeUpstream) -> None:
    started = time.monotonic()
    reply = await aask(dns.port, f"nothing.{ns}.svc.cluster.local", qtype=wire.A)
    assert time.monotonic() - started < 0.5
    assert reply.rcode == wire.NXDOMAIN and reply.authority[0].rtype == wire.SOA
    assert reply.flags & wire.AA and not upstream.seen  # answered here, never forwarded
    if BUSYBOX:
        out = await asyncio.to_thread(nslookup, dns.port, f"nothing.{ns}.svc.cluster.local")
        assert out.returncode != 0 and "NXDOMAIN" in out.stdout + out.stderr


async def test_large_answer_truncates_over_udp_and_is_whole_over_tcp(api: ApiClient, ns: str,
                                                                    dns: DnsServer) -> None:
    ips = [f"10.244.9.{i}" for i in range(1, 81)]
    await api.create(SERVICES, service("many", ns, cluster_ip="None"), namespace=ns)
    slice_ = endpoint_slice("many-a", ns, svc="many", endpoints=[endpoint(ip) for ip in ips])
    await api.create(SLICES, slice_, namespace=ns)
    fqdn = f"many.{ns}.svc.cluster.local"

    async def loaded() -> bool:
        return len(rdata(await asyncio.to_thread(ask_tcp, dns.port, fqdn, qtype=wire.A), wire.A)) == 80
    await until(loaded)
    udp = await aask(dns.port, fqdn, qtype=wire.A)
    assert udp.flags & wire.TC and not udp.answers
    whole = await aask(dns.port, fqdn, qtype=wire.A, edns=4096)  # EDNS0 lets it fit in one datagram
    assert not whole.flags & wire.TC and len(whole.answers) == 80 and whole.opt is not None
    if BUSYBOX:  # busybox's nslookup speaks UDP only: it gets the truncated answer, with no partial list
        out = await asyncio.to_thread(nslookup, dns.port, fqdn)
        assert out.returncode == 0 and "10.244.9." not in out.stdout, out.stdout


async def test_forwarding_udp_tcp_retry_and_servfail(dns: DnsServer, upstream: FakeUpstream) -> None:
    small = await aask(dns.port, "www.example.test", qtype=wire.A)
    assert rdata(small, wire.A) == RECORDS["www.example.test"] and not small.flags & wire.AA
    missing = await aask(dns.port, "missing.example.test", qtype=wire.A)
    assert missing.rcode == wire.NXDOMAIN
    # the upstream truncates over UDP; we retry over TCP, then truncate again for our UDP client
    big = await asyncio.to_thread(ask_tcp, dns.port, "big.example.test", qtype=wire.A)
    assert sorted(rdata(big, wire.A)) == sorted(RECORDS["big.example.test"])
    assert ("udp", "big.example.test") in upstream.seen and ("tcp", "big.example.test") in upstream.seen
    truncated = await aask(dns.port, "big.example.test", qtype=wire.A)
    assert truncated.flags & wire.TC
    await upstream.stop()
    started = time.monotonic()
    failed = await aask(dns.port, "www.example.test", qtype=wire.A)
    assert failed.rcode == wire.SERVFAIL and time.monotonic() - started < 1.5


async def test_silent_upstream_gives_servfail_within_the_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        zone = Zone()
        zone.ready = True
        fwd = Forwarder([blackhole.getsockname()], timeout=0.3)
        reply = wire.decode(await fwd.forward(query("example.org", wire.A, ident=77)))
        assert reply.id == 77 and reply.rcode == wire.SERVFAIL


def test_never_forwards_to_itself() -> None:
    fwd = Forwarder([("10.43.0.10", 53), ("192.0.2.1", 53), ("127.0.0.1", 5353)],
                    exclude=[("10.43.0.10", 53), ("127.0.0.1", 5353)])
    assert fwd.upstreams == [("192.0.2.1", 53)]


def exchange_garbage(port: int) -> list[int | None]:
    """Send malformed and unsupported queries from a plain socket; the rcodes that came back."""
    header_with_loop = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"
    two = wire.encode(wire.Message(9, 0, [wire.Question("a.test", wire.A), wire.Question("b.test", wire.A)]))
    notify = wire.encode(wire.Message(10, 4 << 11, [wire.Question("cluster.local", wire.SOA)]))
    rcodes: list[int | None] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for data in (header_with_loop, b"\x00", two, notify):
            s.settimeout(0.5 if data == b"\x00" else 3)  # the dropped one: waiting proves nothing more
            s.sendto(data, ("127.0.0.1", port))
            try:
                reply = wire.decode(s.recv(512))
                assert reply.id == wire.peek_id(data)
                rcodes.append(reply.rcode)
            except TimeoutError:
                rcodes.append(None)
    return rcodes


async def test_garbage_gets_formerr_and_the_server_keeps_serving(dns: DnsServer) -> None:
    rcodes = await asyncio.to_thread(exchange_garbage, dns.port)
    # too short to carry a header: dropped (None); two questions: FORMERR; NOTIFY: NOTIMP
    assert rcodes == [wire.FORMERR, None, wire.FORMERR, wire.NOTIMP]
    apex = await aask(dns.port, "cluster.local", qtype=wire.SOA)
    assert apex.rcode == wire.NOERROR and apex.answers[0].rtype == wire.SOA


@given(st.binary(min_size=12, max_size=200))
@settings(max_examples=300, deadline=None)
def test_answer_local_never_raises(data: bytes) -> None:
    zone = Zone()
    zone.ready = True
    server = DnsServer(zone, None)
    reply, _ = server.answer_local(data, tcp=False)
    if reply is not None:
        wire.decode(reply)


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.1", ("10.0.0.1", 53)), ("10.0.0.1:5353", ("10.0.0.1", 5353)), ("::1", ("::1", 53)),
    ("[fd00::1]:54", ("fd00::1", 54)), ("[fd00::1]", ("fd00::1", 53))])
def test_upstream_syntax(text: str, expected: tuple[str, int]) -> None:
    assert parse_upstream(text) == expected


@pytest.mark.parametrize("text", ["dns.google", "10.0.0.1:0", "10.0.0.1:x", "[::1]:99999"])
def test_bad_upstreams_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError, match="upstream"):
        parse_upstream(text)


def test_resolv_conf_nameservers(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch example.org\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\n"
                    "nameserver not-an-ip\noptions ndots:2\n")
    assert read_resolv_conf(conf) == [("192.0.2.53", 53), ("fe80::1", 53)]


def test_unknown_edns_version_gets_badvers_and_a_forward_flood_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    zone = Zone()
    zone.ready = True
    server = DnsServer(zone, Forwarder([("192.0.2.1", 53)]))
    msg = wire.Message(5, wire.RD, [wire.Question("web.a.svc.cluster.local", wire.A)],
                       additional=[wire.Record("", wire.OPT, 1 << 16, b"", 1232)])  # EDNS version 1
    reply, _ = server.answer_local(wire.encode(msg), tcp=False)
    assert reply is not None
    decoded = wire.decode(reply)
    opt = decoded.opt
    assert opt is not None and (opt.ttl >> 24) << 4 | decoded.rcode == wire.BADVERS
    external = query("example.org", wire.A)
    assert server.answer_local(external, tcp=False)[1] is not None  # to be forwarded
    monkeypatch.setattr(server_module, "MAX_FORWARDS", 0)
    reply, to_forward = server.answer_local(external, tcp=False)
    assert to_forward is None and reply is not None and wire.decode(reply).rcode == wire.SERVFAIL
