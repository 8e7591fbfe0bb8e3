"""Shared pools the API server hands out from: Service cluster IPs and node ports.

The stored Services are the allocator's state. Every allocation scans them (served from the watch
cache, so cheap), so there is nothing to repair after a restart: a restarted API server sees every
value in use the moment its cache has listed, and a deleted Service (or one whose type no longer
needs a node port) frees its values by no longer showing them.

What a scan cannot see is a value picked by a create still in flight. Two guards cover that:

* in this process, values picked are held in memory (``_reserved``) from the pick until the create
  has been stored or has failed; the pick itself has no ``await`` between scan and hold, so many
  concurrent creates on one API server never pick the same value;
* across API servers on one storage, each picked value is also *claimed* by creating a storage key
  ``/registry/pinnace.io/allocations/<pool>/<value>`` (create fails when the key exists: the
  storage's compare-and-swap settles the race). The claim is deleted once the create is over
  (stored: the scan shows the value from then on; failed or dry run: the value is free again). If
  that delete is lost (a crash), the claim expires by TTL after :data:`CLAIM_TTL` seconds, and one
  older than :data:`IN_FLIGHT` whose value the scan does not show is taken over anyway. Because a
  claim is only dropped after its Service is stored, the allocator scans once more after winning a
  claim: a value another server stored between our first scan and our claim is seen then.

:func:`allocate_update` does the same for updates whose new type needs a cluster IP or node ports.

Ranges follow upstream: the service CIDR 10.43.0.0/16 (k3s' default) without its network and
broadcast addresses; .1 is the ``kubernetes`` Service's and .10 the cluster DNS server's (bound on
every node, not a Service, so never handed out nor accepted). Dynamic picks prefer the upper part of
each range, leaving the lower "static" band to explicit requests (ServiceIPStaticSubrange,
ServiceNodePortStaticSubrange). Errors are worded as kube-apiserver words them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from apiserver import errors
from apiserver.storage import interface as st

SERVICE_CIDR = ipaddress.ip_network("10.43.0.0/16")
#: the first address belongs to the ``kubernetes`` Service in ``default``
KUBERNETES_SERVICE_IP = str(SERVICE_CIDR.network_address + 1)
#: the cluster DNS address: bound by the DNS server on every node, never a Service's
DNS_SERVICE_IP = str(SERVICE_CIDR.network_address + 10)
NODE_PORTS = range(30000, 32768)
#: seconds a claim key lives; far longer than any create takes
CLAIM_TTL = 60
#: a claim younger than this may belong to a create still in flight
IN_FLIGHT = 15.0

_SERVICES_PREFIX = "/registry/core/services/"
_CLAIMS_PREFIX = "/registry/pinnace.io/allocations/"
_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


@dataclass(frozen=True)
class Pool:
    """One range of values: its name (for claim keys and errors), bounds and reserved values."""

    name: str
    first: int
    last: int
    #: values below this are the static band, handed out dynamically only when the rest is full
    static_end: int
    #: values never handed out (and refused when asked for)
    reserved: frozenset[int]
    full_message: str


def _static_band(size: int, *, divisor: int, cap: int) -> int:
    """How many low values upstream keeps for explicit requests: min(max(16, size/divisor), cap)."""
    return min(max(16, size // divisor), cap)


def _ip_pool() -> Pool:
    first, last = int(SERVICE_CIDR.network_address) + 1, int(SERVICE_CIDR.broadcast_address) - 1
    return Pool("serviceips", first, last, first + _static_band(last - first + 1, divisor=16, cap=256),
                frozenset({int(ipaddress.ip_address(KUBERNETES_SERVICE_IP)),
                           int(ipaddress.ip_address(DNS_SERVICE_IP))}),
                "Internal error occurred: failed to allocate a serviceIP: range is full")


def _port_pool() -> Pool:
    first, last = NODE_PORTS.start, NODE_PORTS.stop - 1
    return Pool("nodeports", first, last, first + _static_band(last - first + 1, divisor=32, cap=128),
                frozenset(), "Internal error occurred: failed to allocate a nodePort: range is full")


IP_POOL = _ip_pool()
PORT_POOL = _port_pool()

#: pool name -> value -> uid of the Service whose create holds it (in flight in this process)
_reserved: dict[str, dict[int, str]] = {IP_POOL.name: {}, PORT_POOL.name: {}}
#: Service uid -> the claim keys its create made, deleted once the create is over
_claims: dict[str, list[tuple[st.Storage, str]]] = {}
_dropping: set[asyncio.Task[None]] = set()


# --- reading what is in use -----------------------------------------------------------------------

def _ip_number(text: Any) -> int | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return int(ip) if ip.version == 4 else None


def service_values(svc: dict[str, Any]) -> tuple[set[int], set[int]]:
    """(cluster IPs as numbers, node ports) a stored Service holds."""
    spec = svc.get("spec") or {}
    ips = {n for n in map(_ip_number, spec.get("clusterIPs") or [spec.get("clusterIP")]) if n is not None}
    ports = {p["nodePort"] for p in spec.get("ports") or () if isinstance(p, dict) and isinstance(
        p.get("nodePort"), int) and p["nodePort"]}
    return ips, ports


async def in_use(storage: st.Storage, *, skip_uid: str | None = None) -> tuple[set[int], set[int]]:
    """Values held by stored Services (but ``skip_uid``'s) or by creates in flight here."""
    ips, ports = await stored_values(storage, skip_uid=skip_uid)
    return ips | set(_reserved[IP_POOL.name]), ports | set(_reserved[PORT_POOL.name])


async def stored_values(storage: st.Storage, *, skip_uid: str | None = None) -> tuple[set[int], set[int]]:
    """Values held by stored Services (but ``skip_uid``'s)."""
    ips: set[int] = set()
    ports: set[int] = set()
    for svc in (await storage.list(_SERVICES_PREFIX)).items:
        if skip_uid and (svc.get("metadata") or {}).get("uid") == skip_uid:
            continue
        svc_ips, svc_ports = service_values(svc)
        ips |= svc_ips
        ports |= svc_ports
    return ips, ports


# --- picking and claiming ---------------------------------------------------------------------------

def pick(pool: Pool, used: set[int], *, rng: random.Random | None = None) -> int:
    """A free value at random, from the dynamic band first, then the static band."""
    rng = rng or random.Random()
    taken = used | pool.reserved
    for low, high in ((pool.static_end, pool.last), (pool.first, pool.static_end - 1)):
        for _ in range(64):
            value = rng.randint(low, high)
            if value not in taken:
                return value
        start = rng.randint(low, high)
        for value in (*range(start, high + 1), *range(low, start)):
            if value not in taken:
                return value
    raise errors.ApiError(500, "InternalError", pool.full_message)


def _claim_key(pool: Pool, value: int) -> str:
    return f"{_CLAIMS_PREFIX}{pool.name}/{value}"


async def claim(storage: st.Storage, pool: Pool, value: int, *, owner: str,
                clock: Callable[[], float] = time.time) -> bool:
    """Claim ``value`` for ``owner`` in the storage (see the module docstring); False if taken."""
    key = _claim_key(pool, value)
    body = {"metadata": {"name": str(value)}, "owner": owner, "at": clock()}
    try:
        await storage.create(key, body, ttl=CLAIM_TTL)
        return True
    except st.KeyExists:
        pass
    try:
        current = await storage.get(key)
    except st.KeyNotFound:
        return await _create_claim(storage, key, body)
    if current.get("owner") == owner:
        return True
    if clock() - float(current.get("at") or 0) < IN_FLIGHT:
        return False
    try:
        await storage.update(key, body, expected_revision=int(current["metadata"]["resourceVersion"]),
                             ttl=CLAIM_TTL)
    except (st.RevisionConflict, st.KeyNotFound):
        return False
    return True


async def _create_claim(storage: st.Storage, key: str, body: dict[str, Any]) -> bool:
    try:
        await storage.create(key, body, ttl=CLAIM_TTL)
    except st.KeyExists:
        return False
    return True


# --- the Service hooks ----------------------------------------------------------------------------

def _invalid(svc: dict[str, Any], field: str, message: str) -> errors.ApiError:
    name = (svc.get("metadata") or {}).get("name", "")
    return errors.invalid("Service", name, [errors.cause(field, message)], kind="Service")


def _uid(svc: dict[str, Any]) -> str:
    return str((svc.get("metadata") or {}).get("uid") or "")


def _go_strings(values: Iterable[str]) -> str:
    return "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"


def _check_requested_ip(svc: dict[str, Any], requested: str, used: set[int]) -> int:
    prefix = f"Invalid value: {_go_strings([requested])}: failed to allocate IP {requested}: "
    number = _ip_number(requested)
    if number is None or not IP_POOL.first <= number <= IP_POOL.last:
        raise _invalid(svc, "spec.clusterIPs", f"{prefix}the provided IP ({requested}) is not in the valid "
                       f"range. The range of valid IPs is {SERVICE_CIDR}")
    is_kubernetes = number == int(ipaddress.ip_address(KUBERNETES_SERVICE_IP)) and \
        (svc.get("metadata") or {}).get("name") == "kubernetes" and \
        (svc.get("metadata") or {}).get("namespace") == "default"
    if number in used or (number in IP_POOL.reserved and not is_kubernetes):
        raise _invalid(svc, "spec.clusterIPs", f"{prefix}provided IP is already allocated")
    return number


async def _take(storage: st.Storage, pool: Pool, svc: dict[str, Any], used: set[int], *,
                requested: int | None, on_taken: Callable[[], errors.ApiError], skip_uid: str | None) -> int:
    """Hold and claim ``requested`` (or a free value); the hold is made before any await."""
    owner = _uid(svc)
    while True:
        value = requested if requested is not None else pick(pool, used)
        used.add(value)
        _reserved[pool.name][value] = owner
        if await claim(storage, pool, value, owner=owner):
            _claims.setdefault(owner, []).append((storage, _claim_key(pool, value)))
            # a create elsewhere may have stored this value and dropped its claim since our scan
            stored = (await stored_values(storage, skip_uid=skip_uid))[pool is PORT_POOL]
            if value not in stored:
                return value
        del _reserved[pool.name][value]
        if requested is not None:
            raise on_taken()


async def _allocate_ip(storage: st.Storage, svc: dict[str, Any], used: set[int], *,
                       skip_uid: str | None = None) -> None:
    spec = svc["spec"]
    requested = spec.get("clusterIP") or ""
    if requested == "None":
        spec["clusterIPs"] = ["None"]
        return
    wanted = _check_requested_ip(svc, requested, used) if requested else None
    value = await _take(storage, IP_POOL, svc, used, requested=wanted, skip_uid=skip_uid, on_taken=lambda: _invalid(
        svc, "spec.clusterIPs", f"Invalid value: {_go_strings([requested])}: failed to allocate IP "
        f"{requested}: provided IP is already allocated"))
    ip = str(ipaddress.ip_address(value))
    spec["clusterIP"] = ip
    spec["clusterIPs"] = [ip]


async def _allocate_ports(storage: st.Storage, svc: dict[str, Any], used: set[int], *,
                          skip_uid: str | None = None, owned: frozenset[int] = frozenset()) -> None:
    """Node ports for every port of a type that needs them; ``owned`` ones (the Service's own
    before an update) are kept as they are."""
    spec = svc["spec"]
    if spec.get("type") not in _NODE_PORT_TYPES:
        return
    if spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is False:
        return
    for index, port in enumerate(spec.get("ports") or ()):
        wanted = port.get("nodePort") or None
        if wanted in owned:
            continue
        field = f"spec.ports[{index}].nodePort"
        message = f"Invalid value: {wanted}: provided port is already allocated"
        if wanted is not None and wanted in used:
            raise _invalid(svc, field, message)
        port["nodePort"] = await _take(storage, PORT_POOL, svc, used, requested=wanted, skip_uid=skip_uid,
                                       on_taken=lambda f=field, m=message: _invalid(svc, f, m))


async def allocate_service(storage: st.Storage, svc: dict[str, Any]) -> None:
    """Fill in spec.clusterIP(s) and node ports of a new Service; reject taken explicit values."""
    spec = svc.setdefault("spec", {})
    if spec.get("type", "ClusterIP") == "ExternalName":
        return
    ips, ports = await in_use(storage)
    try:
        await _allocate_ip(storage, svc, ips)
        await _allocate_ports(storage, svc, ports)
    except BaseException:
        release_reservations(svc)
        raise


async def allocate_update(storage: st.Storage, old: dict[str, Any], new: dict[str, Any]) -> None:
    """On an update: a type change that now needs a cluster IP or node ports gets them (and taken
    explicit values are refused); values the old object held stay its own. Like a create, the
    caller calls :func:`release_reservations` once the write is over."""
    spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
    if spec.get("type", "ClusterIP") == "ExternalName":
        return
    uid = (new.get("metadata") or {}).get("uid")
    ips, ports = await in_use(storage, skip_uid=uid)
    try:
        if old_spec.get("type", "ClusterIP") == "ExternalName" or not old_spec.get("clusterIP"):
            await _allocate_ip(storage, new, ips, skip_uid=uid)
        owned = frozenset(p["nodePort"] for p in old_spec.get("ports") or ()
                          if isinstance(p, dict) and isinstance(p.get("nodePort"), int) and p["nodePort"])
        await _allocate_ports(storage, new, ports, skip_uid=uid, owned=owned)
    except BaseException:
        release_reservations(new)
        raise


def release_reservations(svc: dict[str, Any]) -> None:
    """Forget in-memory holds once the Service is stored (the store then shows the values)."""
    owner = _uid(svc)
    for holds in _reserved.values():
        for value in [v for v, holder in holds.items() if holder == owner]:
            del holds[value]
    for storage, key in _claims.pop(owner, ()):
        task = asyncio.get_running_loop().create_task(_drop_claim(storage, key))
        _dropping.add(task)
        task.add_done_callback(_dropping.discard)


async def _drop_claim(storage: st.Storage, key: str) -> None:
    """Delete a claim whose create is over (stored: the scan shows the value; failed: it is free)."""
    try:
        await storage.delete(key)
    except (st.KeyNotFound, st.Unavailable):
        pass  # expired already, or the TTL will see to it


def keep_allocations(old: dict[str, Any], new: dict[str, Any]) -> None:
    """An update keeps allocated values it leaves out, and drops those its new type cannot have
    when the client did not change them (patchAllocatedValues, dropTypeDependentFields)."""
    old_spec, spec = old.get("spec") or {}, new.setdefault("spec", {})
    new_type, old_type = spec.get("type", "ClusterIP"), old_spec.get("type", "ClusterIP")
    if new_type == "ExternalName":
        if old_type != "ExternalName" and spec.get("clusterIPs") == old_spec.get("clusterIPs"):
            for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                spec.pop(key, None)
    elif not spec.get("clusterIP") and old_spec.get("clusterIP"):
        spec["clusterIP"] = old_spec["clusterIP"]
        spec["clusterIPs"] = list(old_spec.get("clusterIPs") or [old_spec["clusterIP"]])
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                 for p in old_spec.get("ports") or () if isinstance(p, dict)}
    for port in spec.get("ports") or ():
        if not isinstance(port, dict):
            continue
        previous = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
        if new_type in _NODE_PORT_TYPES:
            if not port.get("nodePort") and previous:
                port["nodePort"] = previous
        elif old_type in _NODE_PORT_TYPES and port.get("nodePort") and port.get("nodePort") == previous:
            del port["nodePort"]  # a type that needs no node port releases the unchanged ones
