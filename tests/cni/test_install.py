"""``pinnace cni install`` and the launchers it writes: executable, minimal start-up, a usable conflist."""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

import pytest

from cli import main as cli_main
from cni import install, main

REPO = Path(__file__).resolve().parents[2]
# modules the plugin path must not load: each costs several ms of a ~20 ms budget (see cni/main.py)
HEAVY = ("json", "re", "typing", "subprocess", "ctypes", "asyncio", "pyroute2", "ipaddress", "hashlib",
         "dataclasses", "enum", "socket", "logging", "orjson", "argparse", "pathlib", "os", "posixpath",
         "_collections_abc", "functools", "collections")


def test_install_writes_an_executable_launcher_per_type(tmp_path: Path) -> None:
    written = install.install(str(tmp_path / "bin"))
    assert sorted(p.name for p in written) == sorted(main.PLUGINS)
    for path in written:
        assert os.access(path, os.X_OK)
        text = path.read_text()
        assert text.startswith(f"#!{install.default_python()} -IS\n")
        ast.parse(text)
        out = subprocess.run([str(path)], env={"CNI_COMMAND": "VERSION"}, input=b"", capture_output=True,
                             timeout=30)
        assert out.returncode == 0 and json.loads(out.stdout)["supportedVersions"][-1] == "1.1.0"
    assert not [p for p in (tmp_path / "bin").iterdir() if p.name.startswith(".")], "no temp files left"


def test_the_plugin_path_imports_only_light_modules() -> None:
    code = ("import sys\n"
            f"sys.path.insert(0, {str(REPO)!r})\n"
            "import cni.main, cni.bridge, cni.portmap, cni.ipam_host_local, cni.delegate, cni.naming\n"
            "from cni import netns, naming\n"
            "netns._setns_function(); naming.digest('x')\n"
            "status, out = cni.main.run('pinnace-bridge', environ={'CNI_COMMAND': 'VERSION'}, stdin=b'')\n"
            "cni.main.run('pinnace-bridge', environ={'CNI_COMMAND': 'ADD'}, stdin=b'{bad')\n"
            "print(' '.join(sorted(sys.modules)))\n")
    loaded = set(subprocess.run([install.default_python(), "-I", "-S", "-c", code], capture_output=True,
                                check=True, timeout=30).stdout.decode().split())
    assert "cni.bridge" in loaded
    heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY)
    assert heavy == [], f"the plugin loads {heavy}"


def test_cli_install_with_a_conflist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bin_dir, conf_dir = tmp_path / "bin", tmp_path / "net.d"
    assert cli_main.main(["cni", "install", "--bin-dir", str(bin_dir), "--conf-dir", str(conf_dir),
                          "--subnet", "10.42.1.0/24", "--cluster-cidr", "10.42.0.0/16"]) == 0
    assert "installed" in capsys.readouterr().out
    conflist = json.loads((conf_dir / install.CONFLIST_NAME).read_text())
    bridge, portmap = conflist["plugins"]
    assert bridge["type"] == "pinnace-bridge" and bridge["ipMasqExclude"] == ["10.42.0.0/16"]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.42.1.0/24"}]] and portmap["type"] == "pinnace-portmap"
    assert (bin_dir / "pinnace-portmap").exists()
    assert cli_main.main(["cni", "install", "--bin-dir", str(bin_dir), "--conf-dir", str(conf_dir)]) == 1
    assert cli_main.main(["cni", "install", "--bin-dir", str(bin_dir), "--conf-dir", str(conf_dir),
                          "--subnet", "10.42.1.1/24"]) == 1
    assert "host bits" in capsys.readouterr().err
