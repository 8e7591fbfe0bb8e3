"""The kubelet against a real API server and a real engine: pods run, fail, restart, get adopted, end.

Each test gets a fresh node (tests/kubelet/core/conftest.py): a CRI server with our CNI plugins and
a Kubelet in the test's event loop; the crash back-off starts at 1 s instead of 10 s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import urllib.request

from conftest import NodeEnv, wait_for

from apiserver.tables import POD
from kubelet.containers import sandbox_config
from kubelet.cri import pb
from kubelet.events import EVENTS
from kubelet.node import LEASES, NODES
from kubelet.pod_worker import PODS as PODS_RES
from kubelet.sources import RESOURCES
from machinery.client import NotFound

CONFIGMAPS = RESOURCES["configmaps"]
HTTPD = ["sh", "-c", "echo hello-from-pod > /index.html && exec httpd -f -p 8080 -h /"]


def kubectl_status(pod: dict) -> tuple[str, str, str]:
    """READY, STATUS and RESTARTS as ``kubectl get pods`` prints them."""
    cells = POD.cells(pod, time.time())
    return cells[1], cells[2], str(cells[3]).split(" ")[0]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as answer:
        return answer.read().decode()


async def container_ids(env: NodeEnv, uid: str) -> dict[str, str]:
    assert env.cri is not None
    listed = await env.cri.runtime.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(
        label_selector={"io.kubernetes.pod.uid": uid}, state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING))))
    return {c.metadata.name: c.id for c in listed.containers}


async def test_node_registered_ready_with_lease(node: NodeEnv) -> None:
    name = node.config.node_name

    async def ready() -> dict | None:
        try:
            obj = await node.client.get(NODES, name)
        except NotFound:
            return None
        conds = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}
        return obj if conds.get("Ready", {}).get("status") == "True" else None

    obj = await wait_for(ready, what="node Ready")
    status = obj["status"]
    assert obj["metadata"]["labels"]["kubernetes.io/hostname"] == name
    assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
    assert status["nodeInfo"]["containerRuntimeVersion"].startswith("pinnace://")
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
    assert int(status["capacity"]["pods"]) == 110
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"]["reason"] == "KubeletReady" and conds["MemoryPressure"]["status"] == "False"
    assert (node.engine.conf_dir / "10-pinnace.conflist").exists()
    lease = await node.client.get(LEASES, name, namespace="kube-node-lease")
    assert lease["spec"]["holderIdentity"] == name
    assert lease["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]

    # a deleted Node is registered again by the next heartbeats
    await node.client.delete(NODES, name)
    again = await wait_for(ready, what="node registered again")
    assert again["metadata"]["uid"] != obj["metadata"]["uid"]


async def test_pod_runs_is_adopted_and_deleted(node: NodeEnv) -> None:
    created = await node.create_pod("web", [{"name": "web", "command": HTTPD,
                                             "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}])
    uid = created["metadata"]["uid"]

    async def running_ready() -> dict | None:
        pod = await node.pod("web")
        return pod if pod and kubectl_status(pod)[:2] == ("1/1", "Running") else None

    pod = await wait_for(running_ready, within=30, what="web Running and 1/1")
    status = pod["status"]
    assert status["phase"] == "Running" and status["podIP"] and status["hostIP"] == "127.0.0.1"
    assert status["containerStatuses"][0]["containerID"].startswith("pinnace://")
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    page = await asyncio.to_thread(fetch, f"http://{status['podIP']}:8080/index.html")
    assert page.strip() == "hello-from-pod"
    before = await container_ids(node, uid)

    # the kubelet stops and a new one starts: the running container is adopted, not restarted
    await node.stop_kubelet()
    await node.start_kubelet()
    await asyncio.sleep(2 * node.config.sync_interval + 1)
    assert await container_ids(node, uid) == before
    pod = await node.pod("web")
    assert pod is not None and kubectl_status(pod) == ("1/1", "Running", "0")

    # deletion: graceful stop, sandbox removed, then the kubelet removes the API object
    await node.client.delete(PODS_RES, "web", namespace=node.namespace)
    await wait_for(lambda: _gone(node, "web"), within=20, what="pod object removed")
    assert node.cri is not None
    left = await node.cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest(
        filter=pb.PodSandboxFilter(label_selector={"io.kubernetes.pod.uid": uid})))
    assert not left.items
    assert not (node.config.pod_dir(uid)).exists()


async def _gone(node: NodeEnv, name: str) -> bool:
    return await node.pod(name) is None


async def test_crash_loop_completed_and_oom(node: NodeEnv) -> None:
    await node.create_pod("crash", [{"name": "c", "command": ["sh", "-c", "exit 1"]}])
    await node.create_pod("done", [{"name": "d", "command": ["sh", "-c", "echo ok"]}], restartPolicy="Never")
    await node.create_pod("fail", [{"name": "f", "command": ["sh", "-c", "exit 3"]}], restartPolicy="Never")
    await node.create_pod("pull", [{"name": "p", "image": "127.0.0.1:1/absent:1"}])
    await node.create_pod("never", [{"name": "n", "image": "absent.invalid/x:1", "imagePullPolicy": "Never"}])
    await node.create_pod("init", [{"name": "main", "command": ["busybox", "sleep", "1000"]}],
                          initContainers=[{"name": "first", "command": ["sh", "-c", "exit 0"]},
                                          {"name": "second", "command": ["sh", "-c", "exit 0"]}])
    await node.create_pod("live", [{"name": "l", "command": ["busybox", "sleep", "1000"],
                                    "livenessProbe": {"exec": {"command": ["cat", "/nonexistent"]},
                                                      "periodSeconds": 1, "failureThreshold": 1}}])
    await node.create_pod("oom", [{"name": "o", "command": ["sh", "-c", "x=aaaaaaaa; while :; do x=$x$x; done"],
                                   "resources": {"limits": {"memory": "16Mi"}}}], restartPolicy="Never")

    async def shows(name: str, status: str) -> dict | None:
        pod = await node.pod(name)
        return pod if pod and kubectl_status(pod)[1] == status else None

    crash = await wait_for(lambda: shows("crash", "CrashLoopBackOff"), within=30, what="CrashLoopBackOff")
    delays: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(delays) < 2:
        crash = await node.pod("crash")
        assert crash is not None
        waiting = crash["status"]["containerStatuses"][0]["state"].get("waiting", {})
        if waiting.get("reason") == "CrashLoopBackOff":
            assert waiting["message"].endswith(f"restarting failed container=c pod=crash_{node.namespace}"
                                               f"({crash['metadata']['uid']})")
            delay = int(waiting["message"].split(" ")[1].rstrip("s"))
            if not delays or delays[-1] != delay:
                delays.append(delay)
        await asyncio.sleep(0.2)
    assert len(delays) == 2 and delays[1] == 2 * delays[0], delays  # the back-off doubles

    async def kept() -> bool:  # dead containers beyond the current and the previous are removed
        assert node.cri is not None
        listed = await node.cri.runtime.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(
            label_selector={"io.kubernetes.pod.uid": crash["metadata"]["uid"]})))
        return len(listed.containers) <= 2

    await wait_for(kept, within=10, what="crash-looping containers collected")
    done = await wait_for(lambda: shows("done", "Completed"), within=30, what="done Completed")
    assert done["status"]["phase"] == "Succeeded"
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    fail = await wait_for(lambda: shows("fail", "Error"), within=30, what="fail Error")
    assert fail["status"]["phase"] == "Failed"
    oom = await wait_for(lambda: shows("oom", "OOMKilled"), within=30, what="oom OOMKilled")
    assert oom["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "OOMKilled"

    never = await wait_for(lambda: shows("never", "ErrImageNeverPull"), within=30, what="ErrImageNeverPull")
    assert never["status"]["phase"] == "Pending"
    # ErrImagePull lasts only until the next sync, which finds the pull backing off
    await wait_for(lambda: shows("pull", "ImagePullBackOff"), within=30, what="ImagePullBackOff")
    init = await wait_for(lambda: shows("init", "Running"), within=30, what="init pod Running")
    assert [s["state"]["terminated"]["exitCode"] for s in init["status"]["initContainerStatuses"]] == [0, 0]
    assert {c["type"]: c["status"] for c in init["status"]["conditions"]}["Initialized"] == "True"

    async def restarted_by_liveness() -> dict | None:
        pod = await node.pod("live")
        statuses = (pod or {}).get("status", {}).get("containerStatuses") or [{}]
        return pod if statuses[0].get("restartCount", 0) >= 1 else None

    await wait_for(restarted_by_liveness, within=30, what="liveness restart")
    events = await node.client.list(EVENTS, namespace=node.namespace)
    reasons = {(e["involvedObject"]["name"], e["reason"]) for e in events["items"]}
    assert {("live", "Killing"), ("live", "Unhealthy"), ("init", "Started"), ("init", "Created"),
            ("crash", "BackOff"), ("never", "ErrImageNeverPull"), ("pull", "Failed"), ("pull", "BackOff")} <= reasons
    failed = [e["message"] for e in events["items"]
              if e["reason"] == "Failed" and e["involvedObject"]["name"] == "pull"]
    assert failed[0].startswith('Failed to pull image "127.0.0.1:1/absent:1": ')
    assert all(e["source"]["component"] == "kubelet" for e in events["items"])

    cs = crash["status"]["containerStatuses"][0]
    assert cs["restartCount"] >= 2 and cs["lastState"]["terminated"]["exitCode"] == 1
    assert crash["status"]["phase"] == "Running"
    # finished pods stay stopped: no restart of the completed one
    await asyncio.sleep(1)
    done_again = await node.pod("done")
    assert done_again is not None and done_again["status"]["containerStatuses"][0]["restartCount"] == 0





async def test_orphans_are_removed(node: NodeEnv) -> None:
    """Sandboxes and volume dirs of pod uids the API does not know are torn down."""
    assert node.cri is not None
    ghost = {"metadata": {"name": "ghost", "namespace": node.namespace, "uid": "0000-ghost"},
             "spec": {"containers": [{"name": "g", "image": "busybox:latest"}]}}
    config = sandbox_config(ghost, config=node.config, attempt=0)
    (node.config.log_dir / "ghost").mkdir(parents=True, exist_ok=True)
    config.log_directory = str(node.config.log_dir / "ghost")
    made = await node.cri.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config))
    stale = node.config.volumes_dir("0000-stale") / "kubernetes.io~empty-dir" / "data"
    stale.mkdir(parents=True)

    async def sandbox_gone() -> bool:
        listed = await node.cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest())
        return made.pod_sandbox_id not in {s.id for s in listed.items}

    await wait_for(sandbox_gone, within=15, what="orphan sandbox removed")
    await wait_for(lambda: not node.config.pod_dir("0000-stale").exists(), within=15, what="stale pod dir removed")


async def test_configmap_volume_env_and_update(node: NodeEnv) -> None:
    """Volumes and env reach the container through the worker; a ConfigMap edit reaches the file."""
    assert node.cri is not None
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": node.namespace},
          "data": {"greeting": "one"}}
    await node.client.create(CONFIGMAPS, cm, namespace=node.namespace)
    created = await node.create_pod(
        "reader", [{"name": "r", "command": ["busybox", "sleep", "1000"],
                    "env": [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}}],
                    "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}],
        volumes=[{"name": "cfg", "configMap": {"name": "cfg"}}])
    uid = created["metadata"]["uid"]

    async def read(*cmd: str) -> str:
        ids = await container_ids(node, uid)
        if "r" not in ids:
            return ""
        answer = await node.cri.runtime.ExecSync(pb.ExecSyncRequest(container_id=ids["r"], cmd=list(cmd), timeout=5))
        return answer.stdout.decode().strip()

    assert await wait_for(lambda: read("cat", "/cfg/greeting"), within=30, what="mounted file") == "one"
    assert await read("sh", "-c", "echo $GREETING") == "one"
    await node.client.patch(CONFIGMAPS, "cfg", {"data": {"greeting": "two"}}, namespace=node.namespace)

    async def updated() -> bool:
        return await read("cat", "/cfg/greeting") == "two"

    await wait_for(updated, within=20, what="ConfigMap update in the mounted file")


async def test_grace_period_and_dead_sandbox(node: NodeEnv) -> None:
    """A container ignoring SIGTERM is killed when the grace period ends; a dead sandbox is replaced."""
    assert node.cri is not None
    stubborn = ["sh", "-c", "trap '' TERM; while :; do busybox sleep 1; done"]
    await node.create_pod("stubborn", [{"name": "s", "command": stubborn}], terminationGracePeriodSeconds=2)
    heal = await node.create_pod("heal", [{"name": "h", "command": ["busybox", "sleep", "1000"]}])

    async def running(name: str) -> dict | None:
        pod = await node.pod(name)
        return pod if pod and kubectl_status(pod)[:2] == ("1/1", "Running") else None

    await wait_for(lambda: running("stubborn"), within=30, what="stubborn Running")
    await wait_for(lambda: running("heal"), within=30, what="heal Running")

    # the sandbox dies under the pod: a new one (attempt 1) and a restarted container
    uid = heal["metadata"]["uid"]
    first = await node.cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest(
        filter=pb.PodSandboxFilter(label_selector={"io.kubernetes.pod.uid": uid})))
    await node.cri.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=first.items[0].id))

    async def healed() -> bool:
        pod = await node.pod("heal")
        listed = await node.cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(
            label_selector={"io.kubernetes.pod.uid": uid}, state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY))))
        return bool(pod) and [s.metadata.attempt for s in listed.items] == [1] and \
            kubectl_status(pod)[:3] == ("1/1", "Running", "1")

    await wait_for(healed, within=30, what="a new sandbox and a restarted container")
    events = await node.client.list(EVENTS, namespace=node.namespace)
    assert ("heal", "SandboxChanged") in {(e["involvedObject"]["name"], e["reason"]) for e in events["items"]}

    started = time.monotonic()
    await node.client.delete(PODS_RES, "stubborn", namespace=node.namespace)
    await wait_for(lambda: _gone(node, "stubborn"), within=20, what="stubborn removed")
    assert 1.5 <= time.monotonic() - started < 10


async def test_max_pods_admission(node: NodeEnv) -> None:
    await node.stop_kubelet()
    node.config = dataclasses.replace(node.config, max_pods=1)
    await node.start_kubelet()
    await node.create_pod("first", [{"name": "a", "command": ["busybox", "sleep", "1000"]}])

    async def phase(name: str, wanted: str) -> dict | None:
        pod = await node.pod(name)
        return pod if pod and pod.get("status", {}).get("phase") == wanted else None

    await wait_for(lambda: phase("first", "Running"), within=30, what="first Running")
    await node.create_pod("second", [{"name": "b", "command": ["busybox", "sleep", "1000"]}])
    second = await wait_for(lambda: phase("second", "Failed"), within=10, what="second rejected")
    assert second["status"]["reason"] == "OutOfpods"
    assert second["status"]["message"] == ("Pod was rejected: Node didn't have enough resource: pods, "
                                           "requested: 1, used: 1, capacity: 1")
    assert kubectl_status(second)[1] == "OutOfpods"


async def test_spec_change_restarts_and_missing_volume(node: NodeEnv) -> None:
    """A new image in the spec restarts that container; a missing ConfigMap is a FailedMount."""
    created = await node.create_pod("changing", [{"name": "c", "command": ["busybox", "sleep", "1000"]}])
    await node.create_pod("unmountable", [{"name": "u", "command": ["busybox", "sleep", "1000"],
                                           "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
                          volumes=[{"name": "v", "configMap": {"name": "absent"}}])

    async def restarts(name: str, count: int) -> dict | None:
        pod = await node.pod(name)
        return pod if pod and kubectl_status(pod)[:3] == ("1/1", "Running", str(count)) else None

    await wait_for(lambda: restarts("changing", 0), within=30, what="changing Running")
    before = await container_ids(node, created["metadata"]["uid"])
    await node.client.patch(PODS_RES, "changing", {"spec": {"containers": [{"name": "c", "image": "busybox:v2"}]}},
                            namespace=node.namespace, patch_type="strategic")
    pod = await wait_for(lambda: restarts("changing", 1), within=30, what="restart after the spec change")
    assert pod["status"]["containerStatuses"][0]["image"] == "busybox:v2"
    assert await container_ids(node, created["metadata"]["uid"]) != before

    events = await node.client.list(EVENTS, namespace=node.namespace)
    reasons = [(e["involvedObject"]["name"], e["reason"], e["message"]) for e in events["items"]]
    assert ("changing", "Killing", "Container c definition changed, will be restarted") in reasons
    mount = [m for n, r, m in reasons if (n, r) == ("unmountable", "FailedMount")]
    assert mount == ['MountVolume.SetUp failed for volume "v" : configmap "absent" not found']
    stuck = await node.pod("unmountable")
    assert stuck is not None and kubectl_status(stuck)[1] == "ContainerCreating"
