"""pip and uv install the same library versions: constraints.txt (pip) and [tool.uv] constraint-dependencies agree."""

from __future__ import annotations

import importlib.util

import pytest
from workspace import ROOT, pyproject

spec = importlib.util.spec_from_file_location("update_constraints", ROOT / "scripts" / "update_constraints.py")
update_constraints = importlib.util.module_from_spec(spec)
spec.loader.exec_module(update_constraints)


def constraints_file() -> list[str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_pip_constraints_and_uv_constraints_are_the_same_pins():
    assert constraints_file() == pyproject(ROOT)["tool"]["uv"]["constraint-dependencies"]


def test_every_library_the_workspace_names_is_pinned():
    pinned = {update_constraints.requirement_name(pin) for pin in constraints_file()}
    assert update_constraints.named_libraries() - pinned == set()
    assert all("==" in pin for pin in constraints_file())


@pytest.mark.skipif(not (ROOT / "uv.lock").exists(), reason="uv.lock is written by the first uv sync")
def test_the_pins_are_the_uv_resolution():
    locked = update_constraints.locked_pins()
    expected = [pin for name in sorted(update_constraints.named_libraries()) for pin in locked.get(name, [])]
    # the lock's environment markers are spelled differently from one resolution to the next: compare the versions
    versions = lambda pins: sorted({pin.split(";")[0].strip() for pin in pins})  # noqa: E731
    assert versions(constraints_file()) == versions(expected), "run scripts/update_constraints.py after uv lock"
