"""The pod benchmark: a 1-replica smoke run on a real cluster, and its arithmetic on known inputs.

The smoke run checks the script works end to end (every table printed, every figure measured, the
cluster and its temp dir gone afterwards); no timing is asserted. The other tests check what would
make a benchmark print confident wrong figures: the pod timelines folded from watch events, stale
statuses taken for fresh ones, memory attributed to the wrong processes, targets judged wrongly.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bench.pods import latency, memory, report, time_to_app, timeline
from bench.pods.main import parse_args
from e2e.cluster import KUBECTL, REPO

NEEDS = [t for t in ("crun", "conmon", "ip", "nft", KUBECTL) if shutil.which(t) is None]


def _pod(name: str, *, node: str = "", phase: str = "Pending", ip: str = "", ready: str | None = None,
         created: str = "2026-01-01T00:00:00Z", turned: str = "2026-01-01T00:00:02Z",
         container_id: str = "") -> dict:
    status: dict = {"phase": phase}
    if ip:
        status["podIP"] = ip
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready, "lastTransitionTime": turned}]
    if container_id:
        status["containerStatuses"] = [{"name": "web", "containerID": container_id, "ready": ready == "True"}]
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": {"nodeName": node} if node else {},
            "status": status}


# --- the timelines ------------------------------------------------------------------------------

def test_tracker_records_each_milestone_once_at_first_sight() -> None:
    tracker = timeline.PodTracker()
    tracker.observe({"type": "ADDED", "object": _pod("a")}, 10.0)
    tracker.observe({"type": "MODIFIED", "object": _pod("a", node="n")}, 10.5)
    tracker.observe({"type": "MODIFIED", "object": _pod("a", node="n", phase="Running", ip="10.0.0.2",
                                                         ready="False")}, 11.0)
    tracker.observe({"type": "MODIFIED", "object": _pod("a", node="n", phase="Running", ip="10.0.0.2",
                                                         ready="True")}, 11.25)
    tracker.observe({"type": "MODIFIED", "object": _pod("a", node="n", phase="Running", ip="10.0.0.2",
                                                         ready="True")}, 20.0)  # a later echo changes nothing
    line = tracker.pods["a"]
    assert (line.added, line.scheduled, line.running, line.ready) == (10.0, 10.5, 11.0, 11.25)
    assert (line.api_created, line.api_ready) == (1767225600.0, 1767225602.0)
    assert tracker.ready_count == 1 and tracker.pending() == []


def test_one_event_carrying_several_milestones_sets_them_all_and_bookmarks_are_ignored() -> None:
    tracker = timeline.PodTracker()
    tracker.observe({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}, 1.0)
    tracker.observe({"type": "ADDED", "object": _pod("b", node="n", phase="Running", ip="10.0.0.3",
                                                      ready="True")}, 5.0)
    tracker.observe({"type": "ADDED", "object": _pod("c")}, 6.0)
    line = tracker.pods["b"]
    assert (line.added, line.scheduled, line.running, line.ready) == (5.0, 5.0, 5.0, 5.0)
    assert set(tracker.pods) == {"b", "c"} and tracker.pending() == ["c"]
    tracker.observe({"type": "DELETED", "object": _pod("b")}, 7.0)
    assert tracker.ready_count == 0  # a deleted pod no longer counts as started


def test_summary_and_steps_skip_missing_values() -> None:
    summary = timeline.Summary.of([0.3, math.nan, 0.1, 0.2])
    assert (summary.count, summary.p50, summary.p99, summary.max) == (3, 0.2, 0.3, 0.3)
    assert math.isnan(timeline.Summary.of([]).p50)
    pods = [timeline.PodTimeline("x", added=1.0, scheduled=1.5, running=2.5, ready=3.0, sandbox_ready=2.0,
                                 container_created=2.25),
            timeline.PodTimeline("y", added=2.0, scheduled=2.25, running=3.0, ready=4.0)]  # no log marks
    steps = dict(timeline.step_medians(pods, applied_at=0.5))
    labels = [label for _, _, label in timeline.STEPS]
    assert [steps[label].max for label in labels] == [1.5, 0.5, 1.0, 0.5, 0.25, 0.25, 1.0]
    assert [steps[label].p50 for label in labels] == [0.5, 0.25, 0.75, 0.5, 0.25, 0.25, 0.5]
    assert [steps[label].count for label in labels] == [2, 2, 2, 1, 1, 1, 2]


def test_size_total_runs_from_the_apply_to_the_last_ready_pod() -> None:
    size = latency.SizeResult(3, apply_started=100.0, apply_returned=100.2,
                              pods=[timeline.PodTimeline("a", ready=101.0), timeline.PodTimeline("b", ready=103.5)])
    assert size.total == 3.5


def test_the_deployment_is_the_issue_s() -> None:
    deployment = yaml.safe_load(latency.deployment_manifest(replicas=7))
    spec = deployment["spec"]
    container = spec["template"]["spec"]["containers"][0]
    assert (deployment["kind"], spec["replicas"], deployment["metadata"]["namespace"]) == (
        "Deployment", 7, latency.NAMESPACE)
    assert (container["image"], container["imagePullPolicy"]) == ("pinnace/busybox:1", "IfNotPresent")
    assert container["readinessProbe"] == {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    assert "httpd" in container["command"][-1]


# --- time-to-app: stale statuses are not fresh ones --------------------------------------------

def test_a_status_left_from_the_previous_run_is_not_fresh() -> None:
    old = _pod("w", phase="Running", ip="10.0.0.2", ready="True", container_id="pinnace://old")
    assert not time_to_app.fresh(old, {"pinnace://old"})
    new = _pod("w", phase="Running", ip="10.0.0.9", ready="False", container_id="pinnace://new")
    assert time_to_app.fresh(new, {"pinnace://old"})
    no_ip = _pod("w", phase="Pending", ready="False", container_id="pinnace://new")
    assert not time_to_app.fresh(no_ip, {"pinnace://old"})
    assert not time_to_app.fresh(_pod("w"), set())  # no container yet


# --- memory -------------------------------------------------------------------------------------

ROLLUP = """55d0c0de0000-7ffd00000000 ---p 00000000 00:00 0  [rollup]
Rss:               10240 kB
Pss:                4096 kB
Pss_Anon:           2048 kB
Shared_Clean:       6000 kB
Private_Clean:       100 kB
Private_Dirty:      2000 kB
Swap:                  0 kB
"""


def test_smaps_rollup_is_parsed_and_summed() -> None:
    usage = memory.parse_smaps_rollup(ROLLUP)
    assert usage == memory.Usage(rss_kb=10240, pss_kb=4096, private_kb=2100)
    with pytest.raises(ValueError, match="no Rss/Pss"):
        memory.parse_smaps_rollup("Swap: 0 kB\n")
    sample = memory.summarise([("kubelet", usage), ("conmon", memory.Usage(100, 50, 40)),
                               ("conmon", memory.Usage(100, 50, 40)), (memory.WORKLOAD, memory.Usage(900, 800, 700))])
    assert sample.by_name["conmon"] == (2, memory.Usage(200, 100, 80))
    assert sample.cluster == memory.Usage(10440, 4196, 2180)  # the pods' own processes are not the cluster's
    assert sample.workload == memory.Usage(900, 800, 700)


def test_process_names() -> None:
    assert memory.process_name(["/v/bin/python", "-m", "cli.main", "kubelet", "--kubeconfig", "k"]) == "kubelet"
    assert memory.process_name(["/usr/bin/conmon", "--api-version", "1"]) == "conmon"
    assert memory.process_name(["/v/bin/python", "-m", "cli.main"]) == "pinnace"


@pytest.fixture
def fake_cluster_tree() -> Iterator[tuple[Path, list[subprocess.Popen]]]:
    """A 'daemon' and a 'conmon' naming a data dir, each with a child: the shapes memory must tell apart."""
    data_dir = Path(tempfile.mkdtemp(prefix="pinnace-bench-pods-test-"))
    spawn_child = ("import subprocess, sys, time; "
                   "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)")
    conmon = data_dir / "conmon"  # a Python under conmon's name, as /proc shows it
    conmon.symlink_to(os.path.realpath(sys.executable))
    started = [subprocess.Popen([sys.executable, "-c", spawn_child, "-m", "cli.main", "engine", "--root",
                                 str(data_dir)]),
               subprocess.Popen([str(conmon), "-c", spawn_child, "-b", f"{data_dir}/bundle"])]
    try:
        yield data_dir, started
    finally:
        for process in started:
            for child in memory.children(process.pid):
                os.kill(child, 9)
            process.kill()
            process.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_cluster_processes_are_found_by_data_dir_and_pods_kept_apart(
        fake_cluster_tree: tuple[Path, list[subprocess.Popen]]) -> None:
    data_dir, (engine, conmon) = fake_cluster_tree
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(memory.children(p.pid) for p in (engine, conmon)):
        time.sleep(0.05)
    found = memory.cluster_processes(data_dir)
    engine_child, conmon_child = memory.children(engine.pid)[0], memory.children(conmon.pid)[0]
    assert found == {engine.pid: "engine", engine_child: Path(sys.executable).name, conmon.pid: "conmon",
                     conmon_child: memory.WORKLOAD}
    sample = memory.sample(data_dir)
    assert sample.by_name["engine"][0] == 1 and sample.by_name["conmon"][0] == 1
    assert sample.workload.pss_kb > 0 and sample.cluster.rss_kb >= sample.cluster.pss_kb > 0
    assert memory.cluster_processes(data_dir / "elsewhere") == {}


# --- the report ---------------------------------------------------------------------------------

def _size(replicas: int, per_pod: float, *, spread: float = 0.0) -> latency.SizeResult:
    pods = [timeline.PodTimeline(f"p{i}", added=100.1, scheduled=100.2, running=100.3,
                                 ready=100.1 + per_pod + spread * i / max(1, replicas - 1),
                                 api_created=100.0, api_ready=101.0) for i in range(replicas)]
    cpu_spent = {"kubelet": replicas * 0.05, "engine": replicas * 0.04, "whole host (all processes)": replicas * 0.2}
    return latency.SizeResult(replicas, apply_started=100.0, apply_returned=100.05, pods=pods, cleanup_seconds=2.0,
                              cpu=cpu_spent)


def test_report_judges_each_target() -> None:
    sample = memory.summarise([("server", memory.Usage(400 * 1024, 310 * 1024, 300 * 1024))])
    idle = memory.summarise([("server", memory.Usage(200 * 1024, 150 * 1024, 140 * 1024))])
    phases = time_to_app.Phases(started=0.0, up_lines=[(1.5, "✓ control plane ready")], node_ready=3.0,
                                pods_ready={"a": 3.5, "b": 3.6, "c": 3.7}, http={"a": 3.6, "b": 3.7, "c": 6.5},
                                up_exited=2.0, log_marks=[("kubelet process started", 1.8), ("engine x", math.nan)])
    results = report.Results(sizes=[_size(10, 0.5, spread=1.0), _size(100, 5.0, spread=17.0)],
                             memory={0: idle, 100: sample}, time_to_app=phases, problems=["x: went wrong"])
    text = report.render(results, preamble="header", cpus=2)
    rows = {line.split()[0]: line for line in text.splitlines() if line[:4].strip().isdigit()}
    assert "p99 <= 1s: NO" in rows["10"]  # 10 pods: 0.5 s .. 1.5 s
    assert "total <= 20s: NO" in rows["100"] and "SLO p99 <= 5s: NO" in rows["100"]  # last Ready at 22.1 s
    assert rows["10"].split()[1:3] == ["0.94", "1.50"]  # nearest rank: 5th and 10th of 0.5 + i/9
    cpu_rows = {line.split("  ")[0]: line.split()[-2:] for line in text.splitlines()}
    assert cpu_rows["kubelet"] == ["0.5", "5.0"] and cpu_rows["all cluster processes and pods"] == ["0.9", "9.0"]
    assert cpu_rows["other work on the host"] == ["1.1", "11.0"]  # the host's busy time less ours
    assert cpu_rows["available (2 CPUs x wall seconds)"] == ["3.2", "44.2"]  # 2 x (1.6 s, 22.1 s)
    memory_row = next(line for line in text.splitlines() if line.startswith("target PSS"))
    assert memory_row.split()[-2:] == ["yes", "NO"]
    app = next(line for line in text.splitlines() if "time-to-app" in line)
    assert app.split()[-1] == "6.50"
    timeline_rows = text.split("s from start")[1].splitlines()[2:]
    assert [row.split()[-1] for row in timeline_rows[:7]] == ["1.50", "1.80", "2.00", "3.00", "3.50", "3.70", "-"]
    assert next(line for line in text.splitlines() if line.startswith("target <= 5s")).split()[-1] == "NO"
    assert text.rstrip().endswith("problem: x: went wrong")


@pytest.mark.parametrize("argv, message", [(["--replicas", "0"], "positive"), (["--replicas", "a"], "integers"),
                                           (["--parts", "speed"], "unknown part"), (["--settle", "-1"], "negative")])
def test_bad_options_are_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    result = subprocess.run([sys.executable, "-m", "bench.pods", *argv], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


# --- the real thing, small ----------------------------------------------------------------------

def _our_processes() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "pinnace-bench-pods-" in cmdline and "test_bench_pods" not in cmdline:
                found.append(f"{entry.name}: {cmdline[:120]}")
    return found


@pytest.mark.skipif(os.geteuid() != 0 or bool(NEEDS), reason=f"needs root and {', '.join(NEEDS) or 'nothing more'}")
def test_smoke_one_replica_prints_every_figure_and_leaves_nothing() -> None:
    before = set(Path(tempfile.gettempdir()).glob("pinnace-bench-pods-*"))
    result = subprocess.run([sys.executable, "-m", "bench.pods", "--replicas", "1", "--settle", "0.2",
                             "--timeout", "90"], cwd=REPO, capture_output=True, text=True, timeout=400)
    out = result.stdout
    assert result.returncode == 0, f"stdout:\n{out}\nstderr:\n{result.stderr}"
    row = next(line for line in out.splitlines() if line.startswith("1 "))
    cells = row.split()
    assert all(c != "-" for c in cells[1:9]), row
    assert 0 < float(cells[1]) <= float(cells[7]) + 0.01  # created→Ready within apply→last Ready
    for header in ("pinnace up from nothing", "Pod start latency", "step (seconds, per pod)",
                   "Memory of all cluster processes", "pinnace up on a used data dir"):
        assert header in out
    for process in ("server", "kubelet", "engine", "conmon", "pod processes"):
        assert any(line.startswith(process) for line in out.splitlines()), process
    total = next(line for line in out.splitlines() if line.startswith("cluster total"))
    assert len(total.split("/")) == 3 and "-" not in total.split(")")[1]
    app = next(line for line in out.splitlines() if "time-to-app" in line)
    assert float(app.split()[-1]) > 0
    assert set(Path(tempfile.gettempdir()).glob("pinnace-bench-pods-*")) <= before, "temp dir left behind"
    assert _our_processes() == []


# --- the splits: engine log and CPU -------------------------------------------------------------

DAY = "[engine] 2026-11-29 "
SANDBOX = " INFO engine.cri.runtime_service: pod sandbox "
CREATED = " INFO engine.containers.manager: created container "
ENGINE_LOG = "\n".join([
    f"{DAY}10:20:02,500{SANDBOX}1a2b3c ready for bench-pods/start-abc-x1 (ip 10.42.0.5)",
    f"{DAY}10:20:02,600{SANDBOX}4d5e6f ready for other/start-abc-x1 (ip 10.42.0.6)",
    f"{DAY}10:20:02,857{CREATED}126c7e (k8s_web_start-abc-x1_bench-pods_dc83-0883_0) from sha256:35b3",
    f"{DAY}10:20:03,100{CREATED}99aa (k8s_web_start-abc-x1_bench-pods_dc83-0883_1) from sha256:35b3",
    "[kubelet] 2026-11-29 10:20:03,200 INFO kubelet.node: something else entirely",
    f"{DAY}10:19:00,000{SANDBOX}777 ready for bench-pods/old-pod (ip 10.42.0.2)",
])


def test_engine_log_marks_each_pod_s_sandbox_and_first_container() -> None:
    from datetime import datetime

    from bench.pods import logs

    since = datetime(2026, 11, 29, 10, 20, 0).timestamp()
    marks = logs.pod_marks(ENGINE_LOG, namespace="bench-pods", since=since)
    assert set(marks) == {"start-abc-x1"}  # other namespaces and lines before the run left out
    mark = marks["start-abc-x1"]
    assert mark.sandbox_ready == datetime(2026, 11, 29, 10, 20, 2, 500000).timestamp()
    assert mark.container_created - mark.sandbox_ready == pytest.approx(0.357)
    assert logs.pod_marks("garbage\n", namespace="bench-pods") == {}


def test_cpu_seconds_from_proc_stat_texts() -> None:
    from bench.pods import cpu

    line = "42 (python -m x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 30 20 20 0 3 0 100 1000 10"
    assert cpu.process_seconds(line, tick=100) == (3.0, 0.5)  # own 250 + 50 ticks, reaped children 30 + 20
    host = "cpu  1000 10 500 9000 100 5 5 0 40 0\ncpu0 500 5 250 4500 50 2 2 0 20 0\n"
    assert cpu.host_busy_seconds(host, tick=100) == 15.2  # 1520 ticks: user + nice + system + irq + softirq
    with pytest.raises(ValueError):
        cpu.host_busy_seconds("intr 0\n", tick=100)
    assert cpu.spent({"kubelet": 1.0, "gone": 5.0}, {"kubelet": 3.5, "new": 0.5}) == {"kubelet": 2.5, "new": 0.5}
    mine = cpu.snapshot(Path(tempfile.gettempdir()) / "no-such-cluster")
    assert set(mine) == {cpu.HOST} and mine[cpu.HOST] > 0


def test_up_marks_are_the_first_matching_line_after_the_start() -> None:
    from datetime import datetime

    from bench.pods import logs

    agent = "\n".join([
        "2026-11-29 10:00:01,000 INFO pinnace.supervisor: started kubelet (pid 1)",  # an earlier run
        "2026-11-29 10:05:01,250 INFO pinnace.supervisor: started kubelet (pid 2)",
        "[kubelet] 2026-11-29 10:05:02,750 INFO kubelet.node: adopted existing node vm",
        "[kubelet] 2026-11-29 10:05:03,000 INFO kubelet.node: registered node vm",
    ])
    since = datetime(2026, 11, 29, 10, 5, 0).timestamp()
    marks = dict(logs.first_marks({"agent": agent}, since=since))
    assert marks["kubelet process started"] - since == pytest.approx(1.25)
    assert marks["kubelet registered/adopted the Node"] - since == pytest.approx(2.75)
    assert math.isnan(marks["API server listening"])  # no server log given
    assert [label for label, _ in logs.first_marks({}, since=since)] == [m[1] for m in logs.UP_MARKS]
