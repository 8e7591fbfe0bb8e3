"""Every engine test may start crun/runc: apply the host's cgroup fix once, as the daemon does."""

from __future__ import annotations

import shutil

import pytest

from engine.runtime import hostsetup


@pytest.fixture(scope="session", autouse=True)
def cgroups_ready() -> None:
    if shutil.which("crun") or shutil.which("runc"):
        hostsetup.ensure_cgroups()
