"""The memory accounting of ``bench.cluster`` (the create/delete runs need root and minutes: e2e covers them)."""

from __future__ import annotations

import os
from pathlib import Path

from bench import cluster as bench


def test_memory_sums_each_nodes_processes_and_the_control_plane(tmp_path: Path) -> None:
    me = os.getpid()
    for node in ("n1", "n2"):
        (tmp_path / node).mkdir()
        (tmp_path / node / "agent.pid").write_text(f"{me}\n")
    (tmp_path / "n2" / "kubelet.pid").write_text(f"{me}\n")
    (tmp_path / "n2" / "gone.pid").write_text("999999999\n")
    (tmp_path / "n2" / "junk.pid").write_text("not a pid\n")
    (tmp_path / "cp0").mkdir()
    (tmp_path / "cp0" / "server.pid").write_text(f"{me}\n")
    (tmp_path / "hostgw.pid").write_text(f"{me}\n")
    one = bench.pss_kib(me)
    assert one > 0 and bench.pss_kib(999999999) == 0
    per_node, per_part, control = bench.memory(tmp_path)
    assert abs(per_node[0] - one) < one * 0.1 and abs(per_node[1] - 2 * one) < one * 0.2
    assert sorted(per_part) == ["agent", "gone", "kubelet"] and per_part["gone"] == [0]
    assert abs(control - 2 * one) < one * 0.2
