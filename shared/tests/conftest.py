from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from repro_shared import sources

TESTS = Path(__file__).parent
DEMO = "demo=demo_experiments:experiments"


@pytest.fixture
def demo_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Register the demo experiments (in this process and for subprocesses).

    In this process the demo plugins are the only experiments: `--all` must not start the paper packages that a
    development environment installs beside repro-shared.
    """
    from repro_shared import experiments

    monkeypatch.setattr(experiments, "registered_entry_points", lambda: [])
    monkeypatch.setenv("REPRO_EXPERIMENTS", DEMO)
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.delenv("REPRO_DATA_DIR", raising=False)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def run_cli():
    """``run_cli(args, env, cwd)``: ``repro ARGS`` in a subprocess, as a user runs it."""

    def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "repro_shared.cli", *args], env=env, cwd=cwd,
                              capture_output=True, text=True, timeout=120)

    return run


@pytest.fixture(params=[True, False], ids=["HF_HUB_OFFLINE=1", "HF_HUB_OFFLINE-unset"])
def hub_unavailable(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Hub declared offline, or merely unreachable (where the Hub client alone would retry for ~50 s)."""
    if not request.param:
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            monkeypatch.delenv(var, raising=False)
        sources._tcp_connects.cache_clear()
    if sources.hub_reachable():
        pytest.skip("the Hub is reachable here; this test is about the offline path")
