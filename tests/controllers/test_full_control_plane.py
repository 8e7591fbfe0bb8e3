"""The whole control plane as ``pinnace server`` runs it: the API server plus its supervised
scheduler and controller-manager children, with fake Nodes and a fake kubelet (which never binds:
the real scheduler must). A Deployment rolls out with spread, ``kubectl rollout status`` agrees, and
an image change finishes within maxSurge even though both children are SIGKILLed mid-rollout.
Also the supervisor itself: restart with back-off, SIGTERM then SIGKILL, PID files."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from controller_env import NS, eventually
from fake_kubelet import FakeKubelet
from rollout_env import DEPLOYMENTS, Sampler, deployment, image_of, is_ready, live_pods, rolled_out

from cli.supervisor import ChildSpec, Supervisor
from e2e.cluster import Kubectl, Server, kubectl_missing
from machinery.client import ApiClient
from machinery.kubeconfig import load_kubeconfig

CHILDREN = ("scheduler", "controller-manager")


@pytest.fixture(scope="module")
def full_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data: Path = tmp_path_factory.mktemp("fullcp") / "data"
    data.mkdir()
    srv = Server(data).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
async def full_client(full_server: Server) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(full_server.kubeconfig), request_timeout=10) as c:
        yield c


def child_pid(server: Server, name: str) -> int | None:
    try:
        return int((server.data_dir / f"{name}.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


async def test_rollout_with_real_scheduler_survives_killed_children(full_server: Server, full_client: ApiClient,
                                                                    tmp_path: Path) -> None:
    if kubectl_missing():
        pytest.skip("no kubectl")
    client, ns = full_client, f"full-{uuid.uuid4().hex[:6]}"
    await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    home = tmp_path / "home"
    home.mkdir()
    kubectl = Kubectl(kubeconfig=full_server.kubeconfig, home=home)

    async def children_up() -> bool:
        return all(alive(child_pid(full_server, n) or 0) for n in CHILDREN)

    await eventually(children_up, within=10, what="both children running with PID files")

    async with FakeKubelet(client, ns, nodes=3, ready_after=0.8, bind=False) as kubelet:
        await client.create(DEPLOYMENTS, deployment("web", replicas=5, max_surge=1, max_unavailable=0),
                            namespace=ns)

        async def bound_and_ready() -> bool:
            pods = await live_pods(client, ns)
            return len(pods) == 5 and all(p["spec"].get("nodeName") and is_ready(p) for p in pods)

        await eventually(bound_and_ready, within=30, what="5 pods bound by the scheduler and ready")
        spread = kubelet.nodes_of(await live_pods(client, ns))
        assert set(spread) == set(kubelet.node_names) and max(spread.values()) <= 2, spread

        status = await asyncio.to_thread(kubectl.run, "rollout", "status", "deployment/web", "-n", ns,
                                         "--timeout=60s", timeout=90)
        assert "successfully rolled out" in status.stdout

        sampler = Sampler(client, ns)
        async with sampler.during():
            patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}}}
            await client.patch(DEPLOYMENTS, "web", patch, namespace=ns, patch_type="strategic")

            async def rollout_started() -> bool:
                return any(image_of(p) == "nginx:1.26" for p in await live_pods(client, ns))

            await eventually(rollout_started, within=15, what="a pod of the new template")
            old = {name: child_pid(full_server, name) for name in CHILDREN}
            for pid in old.values():
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
            assert not await rolled_out(client, ns, "web"), "the kill should land mid-rollout"

            async def restarted() -> bool:
                now = {name: child_pid(full_server, name) for name in CHILDREN}
                return all(now[n] not in (None, old[n]) and alive(now[n] or 0) for n in CHILDREN)

            await eventually(restarted, within=15, what="the supervisor restarting both children")

            async def done() -> bool:
                pods = await live_pods(client, ns)
                return (await rolled_out(client, ns, "web") and len(pods) == 5
                        and all(image_of(p) == "nginx:1.26" for p in pods))

            await eventually(done, within=60, what="the rollout finishing after the restarts")

        assert sampler.samples, "the sampler never ran"
        assert max(total for total, _ in sampler.samples) <= 6, "more pods than replicas + maxSurge"
        assert min(ready for _, ready in sampler.samples) >= 5, "maxUnavailable=0 was broken"
        final = await asyncio.to_thread(kubectl.run, "rollout", "status", "deployment/web", "-n", ns,
                                        "--timeout=30s", timeout=60)
        assert "successfully rolled out" in final.stdout
        await client.delete(DEPLOYMENTS, "web", namespace=ns)
    await client.delete(NS, ns)


# --- the supervisor on its own, with tiny stand-in children ----------------------------------------


def python_child(name: str, code: str) -> ChildSpec:
    return ChildSpec(name, (sys.executable, "-c", code))


async def test_supervisor_restarts_a_dying_child_with_backoff(tmp_path: Path) -> None:
    sup = Supervisor([python_child("flaky", "raise SystemExit(3)")], run_dir=tmp_path, min_backoff=0.05,
                     max_backoff=0.2)
    await sup.start()
    try:
        async def restarted_thrice() -> bool:
            return sup.children[0].restarts >= 3

        await eventually(restarted_thrice, within=10, what="three restarts")
    finally:
        await sup.stop()
    assert not (tmp_path / "flaky.pid").exists()


async def test_supervisor_stops_children_sigterm_then_sigkill(tmp_path: Path) -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); " \
               "time.sleep(60)"
    polite = "import time; print('up', flush=True); time.sleep(60)"
    sup = Supervisor([python_child("stubborn", stubborn), python_child("polite", polite)], run_dir=tmp_path,
                     grace=0.5)
    await sup.start()

    async def both_up() -> bool:
        return all(sup.pids().values()) and all((tmp_path / f"{n}.pid").exists() for n in ("stubborn", "polite"))

    await eventually(both_up, within=10, what="both children up")
    await asyncio.sleep(1.0)  # let the stubborn one install its handler
    pids = sup.pids()
    assert int((tmp_path / "polite.pid").read_text()) == pids["polite"]
    processes = {c.spec.name: c.process for c in sup.children}
    await sup.stop()
    assert processes["polite"] is not None and processes["polite"].returncode == -signal.SIGTERM
    assert processes["stubborn"] is not None and processes["stubborn"].returncode == -signal.SIGKILL
    assert not any(alive(pid) for pid in pids.values() if pid)
    assert not await asyncio.to_thread(lambda: list(tmp_path.glob("*.pid")))


def test_supervisor_rejects_duplicate_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="distinct"):
        Supervisor([python_child("a", "pass"), python_child("a", "pass")], run_dir=tmp_path)


async def test_supervisor_prefixes_child_output(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    sup = Supervisor([python_child("talker", "import sys; print('hello'); print('oops', file=sys.stderr)")],
                     run_dir=tmp_path, min_backoff=5.0)
    await sup.start()
    try:
        async def said_it() -> bool:
            process = sup.children[0].process
            return process is not None and process.returncode is not None

        await eventually(said_it, within=10, what="the child ran and exited")
        await asyncio.sleep(0.3)  # the pump drains the pipe after the exit
    finally:
        await sup.stop()
    err = capfd.readouterr().err
    assert "[talker] hello\n" in err and "[talker] oops\n" in err


async def test_supervisor_survives_a_missing_program(tmp_path: Path) -> None:
    sup = Supervisor([ChildSpec("ghost", (str(tmp_path / "no-such-program"),))], run_dir=tmp_path,
                     min_backoff=0.05, max_backoff=0.1)
    await sup.start()
    try:
        async def retried() -> bool:
            return sup.children[0].restarts >= 2

        await eventually(retried, within=10, what="retries of a program that cannot start")
        assert sup.pids() == {"ghost": None}
    finally:
        await sup.stop()
