"""Issue 9's acceptance list: Services, the node's proxy and cluster DNS on a real one-node cluster.

One ``pinnace up`` cluster for the module (``one_node``, e2e/node_cluster.py), driven by the real
kubectl; each test works in a namespace of its own and polls with deadlines. Traffic comes from a
busybox client pod (one ``kubectl exec`` running a shell loop of ``wget``s, each bounded by
``timeout``: busybox 1.35's ``wget -T`` crashes) and from this host (urllib, one connection per
request, so every request is balanced afresh).

The backends are busybox httpd pods that serve their own hostname (the pod's name) at ``/`` and an
empty ``/ready`` that the readiness probe (httpGet, period 1 s, failureThreshold 1) asks for:
removing ``/www/ready`` in a pod makes it unready without stopping it. They stop at once on SIGTERM
and have a 2 s preStop sleep, so the rolling update checks that a terminating pod leaves the
proxy's rules while the hook runs (without the hook a few requests fail, in Kubernetes too).

The proxy-restart test runs first, while the cluster holds nothing but its own objects: it compares
``nft list table ip pinnace-proxy`` before and after, and a namespace of another test being deleted
meanwhile would change the table under it.

Other ``pinnace up`` clusters on this host (in the host network namespace) share the pod bridge, the
pod and service CIDRs, the DNS address and the ``ip pinnace-proxy`` table with this one: while one
runs, answers can come from its pods and its proxy can rewrite our table. Run this module alone,
or whole in a network namespace of its own (with a veth and default route for a node address, and
the host's /sys/fs/cgroup mounts over a fresh sysfs), where nothing else can interfere.
"""

from __future__ import annotations

import collections
import contextlib
import difflib
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from e2e.node_cluster import UNSUPPORTED, UNSUPPORTED_REASON, NodeCluster, alive, wait_for

pytestmark = pytest.mark.skipif(UNSUPPORTED, reason=UNSUPPORTED_REASON)

IMAGE = "pinnace/busybox:1"
PROXY_TABLE = "pinnace-proxy"
DNS_IP = "10.43.0.10"
PROBE_PERIOD = 1  # seconds, the backends' readiness probe period
POLL_SLACK = 1.0  # seconds: one kubectl poll of the EndpointSlices on a busy 2-CPU host
REQUESTS = 60
START = 90.0  # seconds for pods to be Running and Ready (the image is local)
# httpd in the background under a shell that exits at SIGTERM: busybox httpd as PID 1 would ignore
# SIGTERM and serve on until the SIGKILL, which hides whether endpoints leave before containers stop
SERVE = ('mkdir -p /www && echo "$HOSTNAME" > /www/index.html && touch /www/ready '
         '&& httpd -f -p 8080 -h /www & trap "exit 0" TERM; wait')
#: as upstream advises for a server that stops at once on SIGTERM: the preStop hook holds the
#: SIGTERM back while the proxies drop the terminating endpoint
PRE_STOP = {"preStop": {"exec": {"command": ["sleep", "2"]}}}


# ------------------------------------------------------------------------------------- manifests


def backends(namespace: str, *, replicas: int = 3) -> dict[str, Any]:
    """Deployment ``web``: httpd pods answering with their own name, ready while /www/ready exists."""
    container = {"name": "web", "image": IMAGE, "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", SERVE],
                 "ports": [{"name": "http", "containerPort": 8080}], "lifecycle": PRE_STOP,
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": PROBE_PERIOD,
                                    "failureThreshold": 1}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"terminationGracePeriodSeconds": 5, "containers": [container]}}}}


def service(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    """A Service for the ``web`` pods: port 80 → the named port ``http`` unless ``spec`` says otherwise."""
    body = {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": body}


def client_pod(namespace: str, name: str = "client") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "3600"]}]}}


# --------------------------------------------------------------------------------------- helpers


@dataclass
class App:
    """The backends, their Service ``web`` and a client pod, running in ``namespace``."""

    namespace: str
    cluster_ip: str
    pods: dict[str, str]  # pod name → pod IP


def pods_of(node: NodeCluster, namespace: str, selector: str = "app=web") -> list[dict[str, Any]]:
    found = node.get("pods", "-n", namespace, "-l", selector)
    return (found or {}).get("items", [])


def is_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    return (status.get("phase") == "Running" and bool(status.get("podIP"))
            and any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions))


def ready_web_pods(node: NodeCluster, namespace: str) -> dict[str, str]:
    return {p["metadata"]["name"]: p["status"]["podIP"] for p in pods_of(node, namespace)
            if is_ready(p) and not p["metadata"].get("deletionTimestamp")}


def endpoint_ips(node: NodeCluster, namespace: str, svc: str = "web") -> dict[str, set[str]]:
    """The Service's EndpointSlice addresses by condition: ``ready``, ``not-ready``, ``terminating``."""
    found: dict[str, set[str]] = {"ready": set(), "not-ready": set(), "terminating": set()}
    slices = node.get("endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={svc}") or {}
    for piece in slices.get("items", []):
        for endpoint in piece.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            key = "ready" if conditions.get("ready") else "not-ready"
            found[key] |= set(endpoint.get("addresses") or [])
            if conditions.get("terminating"):
                found["terminating"] |= set(endpoint.get("addresses") or [])
    return found


def wait_ready_endpoints(node: NodeCluster, namespace: str, count: int, *, svc: str = "web") -> dict[str, str]:
    """Until ``count`` web pods are Ready and exactly their IPs are the Service's ready endpoints."""
    def settled() -> dict[str, str] | None:
        pods = ready_web_pods(node, namespace)
        ready = endpoint_ips(node, namespace, svc)["ready"]
        return pods if len(pods) == count and ready == set(pods.values()) else None

    try:
        return wait_for(settled, within=START, what=f"{namespace}: {count} ready endpoints of {svc}", every=1.0)
    except AssertionError as exc:
        pods = {p["metadata"]["name"]: (p.get("status") or {}).get("conditions") for p in pods_of(node, namespace)}
        raise AssertionError(f"{exc}\nendpoints: {endpoint_ips(node, namespace, svc)}\npods: {pods}\n"
                             f"{_foreign_clusters()}") from None


def wait_programmed(ips: Iterable[str], *, cluster_ip: str | None = None) -> None:
    """Until the proxy's rules DNAT to every one of ``ips`` (and send ``cluster_ip`` to its service
    chain): the proxy follows the EndpointSlices a moment later, and requests sent in that moment
    would miss the newest backends."""
    wanted = {f"dnat to {ip}:8080" for ip in ips}
    if cluster_ip:
        wanted.add(f"{cluster_ip} . tcp . 80 : goto service-")

    def programmed() -> bool:
        table = nft_table()
        return all(rule in table for rule in wanted)

    wait_for(programmed, within=15, what=f"table ip {PROXY_TABLE} holding {sorted(wanted)}", every=0.2)


def wait_client(node: NodeCluster, namespace: str, name: str = "client") -> None:
    wait_for(lambda: is_ready(node.get("pod", name, "-n", namespace) or {}), within=START,
             what=f"{namespace}/{name} Running and Ready", every=1.0)


def deploy(node: NodeCluster, namespace: str, *extra: dict[str, Any], replicas: int = 3) -> App:
    node.apply(backends(namespace, replicas=replicas), service(namespace, "web", type="NodePort"),
               client_pod(namespace), *extra)
    pods = wait_ready_endpoints(node, namespace, replicas)
    svc = node.get("service", "web", "-n", namespace) or {}
    wait_programmed(pods.values(), cluster_ip=svc["spec"]["clusterIP"])
    wait_client(node, namespace)
    return App(namespace=namespace, cluster_ip=svc["spec"]["clusterIP"], pods=pods)


def in_pod(node: NodeCluster, namespace: str, script: str, *, pod: str = "client",
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return node.kubectl("exec", "-n", namespace, pod, "--", "sh", "-c", script, timeout=timeout)


def fetch_from_pod(node: NodeCluster, namespace: str, url: str, *, count: int = REQUESTS) -> list[str]:
    """``count`` requests from the client pod in one exec: each answer (a hostname) or FAIL."""
    script = f"for i in $(seq {count}); do timeout 3 wget -qO- {url} 2>/dev/null || echo FAIL; done"
    done = in_pod(node, namespace, script, timeout=count * 3 + 30)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def fetch_from_host(url: str, *, count: int = REQUESTS) -> list[str]:
    answers = []
    for _ in range(count):
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                answers.append(response.read().decode().strip())
        except OSError as exc:
            answers.append(f"FAIL({exc})")
    return answers


def assert_spread(answers: list[str], pods: dict[str, str], *, each: int = 10) -> None:
    """Every answer came from one of ``pods`` and every pod answered at least ``each`` times."""
    counts = collections.Counter(answers)
    assert set(counts) <= set(pods), f"answers from elsewhere: {counts}"
    assert all(counts[name] >= each for name in pods), f"uneven spread over {sorted(pods)}: {counts}"


def node_ip(node: NodeCluster) -> str:
    nodes = (node.get("nodes") or {}).get("items", [])
    assert len(nodes) == 1, nodes
    return next(a["address"] for a in nodes[0]["status"]["addresses"] if a["type"] == "InternalIP")


class ClientLoop:
    """A client pod requesting ``url`` back to back (each result a line in a file in the pod) until stopped.

    The log stays in the pod so a long loop never fills a pipe; ``stop`` ends it and reads it."""

    def __init__(self, node: NodeCluster, namespace: str, url: str) -> None:
        self.node, self.namespace = node, namespace
        tag = uuid.uuid4().hex[:6]
        self.log, self.stop_file = f"/tmp/loop-{tag}.log", f"/tmp/loop-{tag}.stop"
        script = (f"while [ ! -e {self.stop_file} ]; do "
                  f"if out=$(timeout 3 wget -qO- {url} 2>/dev/null); then echo \"$out\" >> {self.log}; "
                  f"else echo FAIL >> {self.log}; fi; done")
        self.process = node.kubectl_popen("exec", "-n", namespace, "client", "--", "sh", "-c", script)

    def results(self) -> list[str]:
        done = in_pod(self.node, self.namespace, f"cat {self.log} 2>/dev/null", timeout=30)
        return done.stdout.split()

    def wait_running(self, *, answers: int = 5) -> None:
        wait_for(lambda: len(self.results()) >= answers, within=30, what="the client loop answering")

    def stop(self) -> list[str]:
        in_pod(self.node, self.namespace, f"touch {self.stop_file}", timeout=30)
        try:
            self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
        return self.results()


@contextlib.contextmanager
def client_loop(node: NodeCluster, namespace: str, url: str) -> Iterator[ClientLoop]:
    loop = ClientLoop(node, namespace, url)
    try:
        loop.wait_running()
        yield loop
    finally:
        if loop.process.poll() is None:
            loop.stop()


def nft_table(*, handles: bool = False) -> str:
    done = subprocess.run(["nft", *(["-a"] if handles else []), "list", "table", "ip", PROXY_TABLE],
                          capture_output=True, text=True, check=False, timeout=30)
    return done.stdout if done.returncode == 0 else ""


def rule_handles(listing: str) -> set[str]:
    """The handles of the rules (not chains or sets) in an ``nft -a`` listing."""
    return {m.group(1) for line in listing.splitlines()
            if not line.lstrip().startswith(("chain ", "set ", "map ", "table "))
            for m in [re.search(r"# handle (\d+)$", line)] if m}


def proxy_pid(node: NodeCluster) -> int | None:
    try:
        pid = int((node.agent_dir / "proxy.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def nslookup(node: NodeCluster, namespace: str, name: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """busybox nslookup in the client pod, and the seconds it took there (busybox ``time``)."""
    done = in_pod(node, namespace, f"time nslookup {name}", timeout=60)
    took = re.search(r"real\s+(\d+)m\s*([\d.]+)s", done.stderr)
    assert took, done.stderr
    return done, int(took.group(1)) * 60 + float(took.group(2))


def resolved(output: str) -> set[str]:
    """Addresses in busybox nslookup's answers (the lines after the server's own)."""
    answers = output.split("\n\n", 1)[1] if "\n\n" in output else ""
    return set(re.findall(r"Address:\s*(\d+\.\d+\.\d+\.\d+)\s*$", answers, flags=re.M))


@pytest.fixture
def ns(one_node: NodeCluster) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    name = f"s-{uuid.uuid4().hex[:8]}"
    one_node.kubectl_ok("create", "namespace", name)
    yield name
    one_node.kubectl("delete", "namespace", name, "--wait=false")


# ----------------------------------------------------------------------------------------- tests


def test_proxy_restart_keeps_traffic_and_rewrites_an_identical_table(one_node: NodeCluster, ns: str) -> None:
    app = deploy(one_node, ns)
    before = nft_table()  # deploy waited for the proxy to program the service
    old_handles = rule_handles(nft_table(handles=True))
    assert old_handles, f"no rules in table ip {PROXY_TABLE}: {before!r}"
    old_pid = proxy_pid(one_node)
    assert old_pid is not None, "no live proxy recorded in the agent's proxy.pid"
    def restarted() -> int | None:
        pid = proxy_pid(one_node)
        return pid if pid not in (None, old_pid) else None

    def rewritten() -> bool:  # the new process's first sync flushes every chain and adds the rules again
        handles = rule_handles(nft_table(handles=True))
        return bool(handles) and handles.isdisjoint(old_handles)

    with client_loop(one_node, ns, f"http://{app.cluster_ip}") as loop:
        os.kill(old_pid, signal.SIGKILL)
        new_pid = wait_for(restarted, within=30, what="the supervisor restarting the proxy")
        wait_for(rewritten, within=30, what=f"proxy {new_pid} rewriting the table")
        time.sleep(1)  # keep the loop running a little past the rewrite
        answers = loop.stop()
    failures = [a for a in answers if a == "FAIL"]
    print(f"proxy restart: {len(answers)} requests, {len(failures)} failed")
    assert not failures and len(answers) >= 10, f"{len(failures)} of {len(answers)} requests failed"
    assert set(answers) <= set(app.pods)
    after = nft_table()
    diff = "\n".join(difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after", lineterm=""))
    assert after == before, f"the restarted proxy's table differs from the one before:\n{diff}"


def test_requests_spread_over_all_backends_from_a_pod_the_host_and_a_node_port(one_node: NodeCluster,
                                                                               ns: str) -> None:
    numeric = service(ns, "web-numeric", ports=[{"port": 80, "targetPort": 8080}])
    app = deploy(one_node, ns, numeric)
    svc = one_node.get("service", "web", "-n", ns) or {}
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767, svc["spec"]

    assert_spread(fetch_from_pod(one_node, ns, "http://web"), app.pods)  # DNS name, named targetPort
    assert_spread(fetch_from_pod(one_node, ns, "http://web-numeric"), app.pods)  # numeric targetPort
    assert_spread(fetch_from_host(f"http://{app.cluster_ip}/"), app.pods)
    assert_spread(fetch_from_host(f"http://{node_ip(one_node)}:{node_port}/"), app.pods)


def test_readiness_scaling_and_a_rolling_update(one_node: NodeCluster, ns: str) -> None:
    app = deploy(one_node, ns)
    url = f"http://{app.cluster_ip}"
    victim, victim_ip = sorted(app.pods.items())[0]

    # an unready pod leaves the endpoints within two probe periods and gets no traffic
    removed = in_pod(one_node, ns, "rm /www/ready", pod=victim)
    assert removed.returncode == 0, removed.stderr
    started = time.monotonic()
    wait_for(lambda: victim_ip in endpoint_ips(one_node, ns)["not-ready"], within=30,
             what=f"{victim} ({victim_ip}) leaving the ready endpoints", every=0.1)
    took = time.monotonic() - started
    assert took <= 2 * PROBE_PERIOD + POLL_SLACK, f"{victim} left the endpoints after {took:.1f}s"
    wait_for(lambda: f"{victim_ip}:8080" not in nft_table(), within=10, what=f"the proxy dropping {victim_ip}",
             every=0.1)
    print(f"unready {victim}: out of the EndpointSlice after {took:.2f}s, "
          f"out of the proxy's rules after {time.monotonic() - started:.2f}s")
    serving = {name: ip for name, ip in app.pods.items() if name != victim}
    assert_spread(fetch_from_pod(one_node, ns, url, count=30), serving, each=5)

    # ready again: back in the endpoints and in the rotation
    restored = in_pod(one_node, ns, "touch /www/ready", pod=victim)
    assert restored.returncode == 0, restored.stderr
    wait_for(lambda: victim_ip in endpoint_ips(one_node, ns)["ready"], within=30,
             what=f"{victim} back in the ready endpoints", every=0.2)
    wait_programmed([victim_ip])
    assert_spread(fetch_from_pod(one_node, ns, url), app.pods)

    # scaling to 5 adds endpoints, and all five answer
    one_node.kubectl_ok("scale", "deployment", "web", "-n", ns, "--replicas=5")
    five = wait_ready_endpoints(one_node, ns, 5)
    wait_programmed(five.values())
    assert_spread(fetch_from_pod(one_node, ns, url, count=100), five, each=5)

    # a rolling update: a client loop sees no failed request, and the new pods end up answering
    with client_loop(one_node, ns, url) as loop:
        one_node.kubectl_ok("set", "env", "deployment/web", "-n", ns, "ROLLOUT=2")
        one_node.kubectl_ok("rollout", "status", "deployment/web", "-n", ns, "--timeout=120s", timeout=130)
        wait_for(lambda: len(pods_of(one_node, ns)) == 5, within=60, what="the old pods gone", every=1.0)
        answers = loop.stop()
    new = ready_web_pods(one_node, ns)
    assert not set(new) & set(five), "no pod was replaced"
    failures = answers.count("FAIL")
    print(f"rollout: {len(answers)} requests, {failures} failed, by pod: {dict(collections.Counter(answers))}")
    assert failures == 0, f"{failures} of {len(answers)} requests failed during the rollout"
    assert set(answers) <= set(five) | set(new) and set(answers) & set(new), collections.Counter(answers)


def test_client_ip_affinity_pins_and_a_headless_service_resolves_to_the_pods(one_node: NodeCluster,
                                                                            ns: str) -> None:
    sticky = service(ns, "sticky", sessionAffinity="ClientIP")
    headless = service(ns, "direct", clusterIP="None")
    app = deploy(one_node, ns, sticky, headless)
    wait_ready_endpoints(one_node, ns, 3, svc="sticky")
    sticky_ip = (one_node.get("service", "sticky", "-n", ns) or {})["spec"]["clusterIP"]
    wait_programmed(app.pods.values(), cluster_ip=sticky_ip)

    answers = fetch_from_pod(one_node, ns, "http://sticky", count=30)
    assert len(set(answers)) == 1 and answers[0] in app.pods, collections.Counter(answers)
    assert set(fetch_from_pod(one_node, ns, "http://web", count=30)) == set(app.pods)  # the plain one spreads

    wait_ready_endpoints(one_node, ns, 3, svc="direct")
    done, _ = nslookup(one_node, ns, "direct")
    assert resolved(done.stdout) == set(app.pods.values()), done.stdout


def test_cluster_dns_inside_pods(one_node: NodeCluster, ns: str) -> None:
    one_node.apply(service(ns, "web"), client_pod(ns))
    wait_client(one_node, ns)
    cluster_ip = (one_node.get("service", "web", "-n", ns) or {})["spec"]["clusterIP"]

    resolv = in_pod(one_node, ns, "cat /etc/resolv.conf")
    lines = [line.split() for line in resolv.stdout.splitlines() if line.strip()]
    assert ["nameserver", DNS_IP] in lines, resolv.stdout
    assert ["search", f"{ns}.svc.cluster.local", "svc.cluster.local", "cluster.local"] in lines, resolv.stdout
    assert ["options", "ndots:5"] in lines, resolv.stdout

    # busybox nslookup exits 1 when any search-list name fails, so only the answers are checked. A name
    # with a dot (web.<ns>) is also asked as it stands, which goes to the node's upstream resolvers:
    # where there are none (an isolated network namespace) that query times out, so it is not used here
    for name, address in (("web", cluster_ip), (f"web.{ns}.svc.cluster.local", cluster_ip),
                          ("kubernetes.default.svc.cluster.local", "10.43.0.1")):
        done, _ = nslookup(one_node, ns, name)
        assert resolved(done.stdout) == {address}, (name, done.stdout, done.stderr)

    missing = f"nosuch-{uuid.uuid4().hex[:6]}.{ns}.svc.cluster.local"
    done, took = nslookup(one_node, ns, missing)
    assert done.returncode != 0 and "NXDOMAIN" in done.stdout + done.stderr, done.stdout + done.stderr
    assert took < 2.0, f"NXDOMAIN for {missing} took {took:.2f}s"


def test_a_pod_reaches_the_api_server_with_its_service_account_token(one_node: NodeCluster, ns: str) -> None:
    """The in-cluster route to the API: ``kubernetes.default.svc`` → ClusterIP → the API server, the
    projected token and CA, and the environment in-cluster clients read (KUBERNETES_SERVICE_HOST/PORT).

    busybox 1.35's built-in TLS client cannot finish a handshake with an OpenSSL 3 server at its
    default security level (``openssl s_server`` says "no shared cipher" unless SECLEVEL=0; ours is
    Python's ssl), so inside the pod only TCP is tried (``nc``); the TLS request with the pod's token
    and CA is made from this node to the same ClusterIP."""
    one_node.apply(client_pod(ns))
    wait_client(one_node, ns)
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    files = in_pod(one_node, ns, f"cat {sa}/token; echo @@; cat {sa}/namespace; echo @@; cat {sa}/ca.crt")
    assert files.returncode == 0, files.stderr
    token, namespace, ca = (part.strip() for part in files.stdout.split("@@\n"))
    assert namespace == ns and token.count(".") == 2 and "BEGIN CERTIFICATE" in ca, files.stdout

    problems = []  # every step is tried, so one run names every broken link
    env = in_pod(one_node, ns, "env")
    variables = dict(line.split("=", 1) for line in env.stdout.splitlines() if "=" in line)
    service_env = (variables.get("KUBERNETES_SERVICE_HOST"), variables.get("KUBERNETES_SERVICE_PORT"))
    if service_env != ("10.43.0.1", "443"):
        problems.append(f"KUBERNETES_SERVICE_HOST/PORT in the pod: {service_env}")
    connect = in_pod(one_node, ns, "nc -w 3 kubernetes.default.svc 443 </dev/null && echo CONNECTED")
    if "CONNECTED" not in connect.stdout:
        problems.append(f"pod → kubernetes.default.svc:443: {connect.stdout}{connect.stderr}".strip())
    for server_name in ("kubernetes.default.svc", "10.43.0.1"):  # in-cluster clients verify the ClusterIP
        try:
            status, body = _api_request(ca=ca, token=token, server_name=server_name)
        except OSError as exc:
            problems.append(f"node → https://10.43.0.1/api as {server_name}: {exc}")
            continue
        if status != 200 or b'"APIVersions"' not in body:
            problems.append(f"node → https://10.43.0.1/api as {server_name}: {status} {body[:200]!r}")
    assert not problems, "\n".join(problems)


def _api_request(*, ca: str, token: str, server_name: str) -> tuple[int, bytes]:
    """GET /api on the kubernetes ClusterIP with a bearer token, verifying the server as ``server_name``."""
    context = ssl.create_default_context(cadata=ca)
    with socket.create_connection(("10.43.0.1", 443), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=server_name) as tls:
        tls.sendall(f"GET /api HTTP/1.1\r\nHost: kubernetes.default.svc\r\nAuthorization: Bearer {token}\r\n"
                    "Connection: close\r\n\r\n".encode())
        reply = b"".join(iter(lambda: tls.recv(65536), b""))
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_down_removes_the_proxy_table_and_the_dns_address(one_node: NodeCluster) -> None:
    others = [pid for pid in _proxies_in_this_netns() if pid != proxy_pid(one_node)]
    if others:
        pytest.skip(f"another cluster's proxy ({others}) shares table ip {PROXY_TABLE} in this network namespace")
    assert nft_table(), f"table ip {PROXY_TABLE} is missing before down"
    down = one_node.pinnace("down", "--data-dir", str(one_node.data_dir))
    assert down.returncode == 0, down.stdout + down.stderr
    assert nft_table() == "", f"table ip {PROXY_TABLE} left behind"
    addresses = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    assert f" {DNS_IP}/" not in addresses, addresses


def _foreign_clusters() -> str:
    """A hint for failure messages: other clusters' proxies here share our bridge, CIDRs and table."""
    count = len(_proxies_in_this_netns())
    return f"({count - 1} other cluster(s) in this network namespace)" if count > 1 else ""


def _proxies_in_this_netns() -> list[int]:
    """PIDs of every ``pinnace proxy`` in our network namespace (other clusters' included)."""
    ours = os.readlink("/proc/self/ns/net")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"cli.main" in argv and b"proxy" in argv and os.readlink(entry / "ns" / "net") == ours:
                found.append(int(entry.name))
        except OSError:
            continue
    return found
