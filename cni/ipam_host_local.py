"""host-local IPAM: addresses from a node's pod CIDR(s), one file per leased address, under a file lock.

The store is a directory per network (``<dataDir>/<network>/``): a file named after each leased
address holding "<container id>\\n<ifname>\\n" (the truth), an index ``owner:<container id>:<ifname>``
listing that attachment's addresses (so ADD and DEL never scan every lease; ':' cannot occur in an id
or an interface name), ``last_reserved_ip.<set>`` for round-robin (a freed address is not handed out
again at once, so stale ARP/conntrack entries age out first), and ``lock``.
Every change happens under ``flock`` on ``lock`` and creates lease files with O_EXCL, so concurrent
ADDs (separate processes) never share an address. Config fields follow the reference host-local
plugin: ``ranges`` (a list of range sets, one address per set: a v4 set and a v6 set make a
dual-stack pod), ``routes``, ``dataDir``, ``resolvConf`` and the legacy single-range
``subnet``/``rangeStart``/``rangeEnd``/``gateway``.

Runs as its own plugin (type ``pinnace-host-local``) or in-process from the bridge plugin, which
saves a process start per pod; both go through ``allocate``, ``release``, ``verify``, ``release_stale``
and ``ready``.
"""

from __future__ import annotations

import fcntl
import posix  # os costs ~1 ms of start-up (cni/main.py)

from cni import spec
from cni.ipnet import AF_INET, IP, AddressError, Prefix

TYPE_CHECKING = False  # typing costs start-up; annotations are strings (from __future__)
if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_DATA_DIR = "/var/lib/pinnace/cni/networks"
LOCK_FILE = "lock"
LAST_RESERVED = "last_reserved_ip."
OWNER_PREFIX = "owner:"


class Range:
    """One allocatable stretch of a subnet, with its gateway (never handed out)."""

    __slots__ = ("end", "gateway", "start", "subnet")

    def __init__(self, *, subnet: Prefix, start: IP, end: IP, gateway: IP) -> None:
        self.subnet, self.start, self.end, self.gateway = subnet, start, end, gateway

    def usable(self, value: int) -> bool:
        """Not the gateway, the network address or (IPv4) the broadcast address."""
        return value not in (self.gateway.value, self.subnet.network.value) and not (
            self.subnet.family == AF_INET and value == self.subnet.last.value)


class Config:
    """The ``ipam`` section, validated."""

    __slots__ = ("data_dir", "range_sets", "resolv_conf", "routes")

    def __init__(self, *, range_sets: list[list[Range]], routes: list[dict], data_dir: str,
                 resolv_conf: str | None) -> None:
        self.range_sets, self.routes, self.data_dir, self.resolv_conf = range_sets, routes, data_dir, resolv_conf


def _invalid(details: str) -> spec.CniError:
    return spec.CniError(spec.INVALID_CONFIG, f"ipam: {details}")


def _parse_range(item: object) -> Range:
    if not isinstance(item, dict) or "subnet" not in item:
        raise _invalid("each range needs a subnet")
    try:
        subnet = Prefix.parse(item["subnet"]).masked()
        bits = 32 if subnet.family == AF_INET else 128
        if subnet.length > bits - 2:
            raise _invalid(f"subnet {subnet} is too small to allocate from")
        first, last = subnet.network + 1, subnet.last + (-1 if subnet.family == AF_INET else 0)
        start = IP.parse(item["rangeStart"]) if item.get("rangeStart") else first
        end = IP.parse(item["rangeEnd"]) if item.get("rangeEnd") else last
        gateway = IP.parse(item["gateway"]) if item.get("gateway") else subnet.network + 1
    except AddressError as exc:
        raise _invalid(str(exc)) from None
    for label, ip in (("rangeStart", start), ("rangeEnd", end), ("gateway", gateway)):
        if not subnet.contains(ip):
            raise _invalid(f"{label} {ip} is outside subnet {subnet}")
    if end.value < start.value:
        raise _invalid(f"rangeStart {start} is after rangeEnd {end}")
    return Range(subnet=subnet, start=start, end=end, gateway=gateway)


def _parse_routes(routes: object) -> list[dict]:
    if not isinstance(routes, list):
        raise _invalid("routes must be a list")
    parsed = []
    for route in routes:
        if not isinstance(route, dict):
            raise _invalid("each route must be an object with dst (and optionally gw)")
        try:
            dst = Prefix.parse(route.get("dst")).masked()
            gw = IP.parse(route["gw"]) if route.get("gw") else None
        except AddressError as exc:
            raise _invalid(f"route: {exc}") from None
        parsed.append({"dst": str(dst), **({"gw": str(gw)} if gw else {})})
    return parsed


def parse_config(config: dict) -> Config:
    ipam = config.get("ipam")
    if not isinstance(ipam, dict):
        raise _invalid("the network configuration needs an ipam object")
    sets = ipam.get("ranges")
    if sets is None and "subnet" in ipam:
        sets = [[{k: ipam[k] for k in ("subnet", "rangeStart", "rangeEnd", "gateway") if k in ipam}]]
    if not isinstance(sets, list) or not sets or not all(isinstance(s, list) and s for s in sets):
        raise _invalid("ranges must be a non-empty list of non-empty range lists")
    range_sets = [[_parse_range(item) for item in range_set] for range_set in sets]
    seen: list[Range] = []
    for range_set in range_sets:
        if len({r.subnet.family for r in range_set}) > 1:
            raise _invalid("a range set mixes IPv4 and IPv6")
        for r in range_set:
            if any(o.subnet.family == r.subnet.family and o.start.value <= r.end.value and r.start.value <= o.end.value
                   for o in seen):
                raise _invalid(f"range {r.start}-{r.end} overlaps another range")
            seen.append(r)
    data_dir = ipam.get("dataDir") or DEFAULT_DATA_DIR
    resolv_conf = ipam.get("resolvConf")
    if not isinstance(data_dir, str) or (resolv_conf is not None and not isinstance(resolv_conf, str)):
        raise _invalid("dataDir and resolvConf must be strings")
    return Config(range_sets=range_sets, routes=_parse_routes(ipam.get("routes", [])), data_dir=data_dir,
                  resolv_conf=resolv_conf)


def _is_dir(path: str) -> bool:
    try:
        return posix.stat(path).st_mode & 0o170000 == 0o040000
    except OSError:
        return False


def _make_dirs(path: str) -> None:
    """``os.makedirs(path, exist_ok=True)`` on ``posix``."""
    if _is_dir(path):
        return
    parent = path.rstrip("/").rpartition("/")[0]
    if parent:
        _make_dirs(parent)
    try:
        posix.mkdir(path, 0o755)
    except FileExistsError:
        pass


class Store:
    """The lease directory of one network; use as a context manager to hold its lock."""

    def __init__(self, data_dir: str, network: str) -> None:
        self.path = f"{data_dir.rstrip('/')}/{network}"
        self._lock_fd = -1

    def __enter__(self) -> Store:
        try:
            _make_dirs(self.path)
            self._lock_fd = posix.open(f"{self.path}/{LOCK_FILE}", posix.O_RDWR | posix.O_CREAT | posix.O_CLOEXEC,
                                       0o644)
        except OSError as exc:
            raise spec.CniError(spec.IO_FAILURE, f"ipam store {self.path}: {exc.strerror}") from None
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        posix.close(self._lock_fd)  # closing drops the flock

    def names(self) -> set[str]:
        """Every file name in the store: a candidate address is free when its text is not among them."""
        return set(posix.listdir(self.path))

    def leases(self) -> dict[str, tuple[str, str]]:
        """Leased address text → (container id, ifname), read from every lease file (GC's full scan)."""
        found = {}
        for name in posix.listdir(self.path):
            if name == LOCK_FILE or name.startswith((LAST_RESERVED, OWNER_PREFIX, ".")):
                continue
            owner = self.owner_of(name)
            if owner is not None:
                found[name] = owner
        return found

    def owner_of(self, name: str) -> tuple[str, str] | None:
        try:
            with open(f"{self.path}/{name}", encoding="utf-8") as f:
                container_id, _, ifname = f.read().partition("\n")
        except (OSError, UnicodeDecodeError):
            return None
        return container_id.strip(), ifname.strip()

    def _index(self, owner: tuple[str, str]) -> str:
        return f"{self.path}/{self._index_name(owner)}"

    @staticmethod
    def _index_name(owner: tuple[str, str]) -> str:
        return f"{OWNER_PREFIX}{owner[0]}:{owner[1]}"

    def owned(self, owner: tuple[str, str]) -> list[str] | None:
        """The addresses ``owner`` holds, from its index (each confirmed by its lease file); None: no index."""
        try:
            with open(self._index(owner), encoding="utf-8") as f:
                listed = f.read().split()
        except FileNotFoundError:
            return None
        return [name for name in dict.fromkeys(listed) if self.owner_of(name) == owner]

    def reserve(self, ip: IP, owner: tuple[str, str]) -> bool:
        try:
            fd = posix.open(f"{self.path}/{ip}", posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_CLOEXEC,
                            0o644)
        except FileExistsError:
            return False
        try:
            posix.write(fd, f"{owner[0]}\n{owner[1]}\n".encode())
        finally:
            posix.close(fd)
        with open(self._index(owner), "a", encoding="utf-8") as f:
            f.write(f"{ip}\n")
        return True

    def release(self, names: list[str]) -> None:
        for name in names:
            try:
                posix.unlink(f"{self.path}/{name}")
            except FileNotFoundError:
                pass

    def give_back(self, owner: tuple[str, str], names: list[str]) -> None:
        """Undo part of an ADD: free ``names`` and drop them from the owner's index."""
        self.release(names)
        remaining = self.owned(owner) or []
        if not remaining:
            self.release([self._index_name(owner)])
            return
        with open(f"{self._index(owner)}.tmp", "w", encoding="utf-8") as f:
            f.write("".join(f"{name}\n" for name in remaining))
        posix.replace(f"{self._index(owner)}.tmp", self._index(owner))

    def release_owner(self, owner: tuple[str, str]) -> None:
        """Free the owner's leases and its index; without an index (a crash between the two writes, or
        nothing held) fall back to scanning every lease."""
        names = self.owned(owner)
        if names is None:
            names = [name for name, who in self.leases().items() if who == owner]
        self.release(names)
        self.release([self._index_name(owner)])

    def last_reserved(self, index: int) -> str:
        try:
            with open(f"{self.path}/{LAST_RESERVED}{index}", encoding="utf-8") as f:
                return f.read().strip()
        except OSError:
            return ""

    def set_last_reserved(self, index: int, ip: IP) -> None:
        with open(f"{self.path}/{LAST_RESERVED}{index}", "w", encoding="utf-8") as f:
            f.write(str(ip))  # in place, under the lock: a torn write only moves where round-robin resumes


def _ordered(range_set: list[Range], after: str) -> Iterator[tuple[Range, int]]:
    """Every (range, address value) of the set once, starting just after ``after`` and wrapping around."""
    index, first = 0, range_set[0].start.value
    try:
        last = IP.parse(after) if after else None
    except AddressError:
        last = None
    if last is not None:
        for i, r in enumerate(range_set):
            if r.subnet.family == last.family and r.start.value <= last.value <= r.end.value:
                index, first = i, last.value + 1
    count = len(range_set)
    for k in range(count + 1):
        r = range_set[(index + k) % count]
        low = first if k == 0 else r.start.value
        high = r.end.value if k < count else first - 1
        for value in range(low, high + 1):
            yield r, value


def _pick(range_set: list[Range], *, used: set[str], after: str) -> IP | None:
    """The first free usable address after ``after`` (round-robin through the set's ranges), or None."""
    for r, value in _ordered(range_set, after):
        ip = IP(r.subnet.family, value)
        if r.usable(value) and str(ip) not in used:
            return ip
    return None


def _range_of(range_set: list[Range], ip: IP) -> Range | None:
    return next((r for r in range_set if r.subnet.contains(ip) and r.start.value <= ip.value <= r.end.value), None)


def allocate(inv: spec.Invocation) -> dict:
    """Lease one address per range set for (container id, ifname); the IPAM result (without interfaces)."""
    config = parse_config(inv.config)
    owner = (inv.container_id, inv.ifname)
    ips = []
    with Store(config.data_dir, inv.network) as store:
        used = store.names()
        mine = [IP.parse(name) for name in store.owned(owner) or []]
        taken: list[str] = []
        for index, range_set in enumerate(config.range_sets):
            ip = next((m for m in mine if _range_of(range_set, m)), None)
            while ip is None:
                ip = _pick(range_set, used=used, after=store.last_reserved(index))
                if ip is None:
                    store.give_back(owner, taken)
                    subnets = ", ".join(str(r.subnet) for r in range_set)
                    raise spec.CniError(spec.TRY_AGAIN_LATER, f"no free address left in range set {subnets}",
                                        msg="IP range exhausted")
                used.add(str(ip))
                if not store.reserve(ip, owner):  # written outside our lock: skip it
                    ip = None
                    continue
                taken.append(str(ip))
                store.set_last_reserved(index, ip)
            r = _range_of(range_set, ip)
            ips.append({"address": f"{ip}/{r.subnet.length}", "gateway": str(r.gateway)})
    return {"cniVersion": inv.version, "ips": ips, "routes": config.routes, "dns": _dns(config.resolv_conf)}


def release(inv: spec.Invocation) -> None:
    """Free every address (container id, ifname) holds; nothing held is fine (DEL is idempotent)."""
    config = parse_config(inv.config)
    owner = (inv.container_id, inv.ifname)
    if not _is_dir(Store(config.data_dir, inv.network).path):
        return
    with Store(config.data_dir, inv.network) as store:
        store.release_owner(owner)


def verify(inv: spec.Invocation, prev: dict) -> None:
    """Every address of the previous result is still leased to this container."""
    config = parse_config(inv.config)
    owner = (inv.container_id, inv.ifname)
    try:
        addresses = [str(Prefix.parse(item.get("address")).ip) for item in prev.get("ips", [])]
    except AddressError as exc:
        raise spec.CniError(spec.INVALID_CONFIG, f"prevResult: {exc}") from None
    with Store(config.data_dir, inv.network) as store:
        for address in addresses:
            if store.owner_of(address) != owner:
                raise spec.CniError(spec.CHECK_FAILED, f"ipam: {address} is not leased to {owner[0]}/{owner[1]}")


def release_stale(inv: spec.Invocation) -> None:
    """Free leases of attachments the runtime no longer knows (CNI 1.1 GC)."""
    config = parse_config(inv.config)
    keep = inv.valid_attachments()
    if not _is_dir(Store(config.data_dir, inv.network).path):
        return
    with Store(config.data_dir, inv.network) as store:
        store.release([name for name, who in store.leases().items() if who not in keep])
        stale_indexes = [name for name in store.names() if name.startswith(OWNER_PREFIX)
                         and tuple(name[len(OWNER_PREFIX):].split(":", 1)) not in keep]
        store.release(stale_indexes)


def ready(inv: spec.Invocation) -> None:
    """Ready when the store is writable and every range set still has a free address."""
    config = parse_config(inv.config)
    with Store(config.data_dir, inv.network) as store:
        used = store.names()
        for range_set in config.range_sets:
            if _pick(range_set, used=used, after="") is None:
                raise spec.CniError(spec.NOT_AVAILABLE, f"range set {range_set[0].subnet} is exhausted")


def _dns(resolv_conf: str | None) -> dict:
    """DNS settings from a resolv.conf file, in the CNI result's shape (reference plugin behaviour)."""
    if not resolv_conf:
        return {}
    try:
        with open(resolv_conf, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise spec.CniError(spec.IO_FAILURE, f"ipam: cannot read resolvConf {resolv_conf}: {exc.strerror}") from None
    dns: dict = {}
    for line in lines:
        words = line.split()
        if not words or words[0].startswith(("#", ";")):
            continue
        key, values = words[0], words[1:]
        if key == "nameserver" and values:
            dns.setdefault("nameservers", []).append(values[0])
        elif key == "domain" and values:
            dns["domain"] = values[0]
        elif key in ("search", "options"):
            dns.setdefault(key, []).extend(values)
    return dns


# -- the pinnace-host-local plugin entry points (cni.main dispatches here) --------------------------

def add(inv: spec.Invocation) -> dict:
    return spec.format_result(allocate(inv), inv.version)


def delete(inv: spec.Invocation) -> None:
    release(inv)


def check(inv: spec.Invocation) -> None:
    prev = inv.prev_result
    if prev is None:
        raise spec.CniError(spec.INVALID_CONFIG, "CHECK needs prevResult")
    verify(inv, prev)


def gc(inv: spec.Invocation) -> None:
    release_stale(inv)


def status(inv: spec.Invocation) -> None:
    ready(inv)
