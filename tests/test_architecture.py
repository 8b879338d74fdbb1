"""The rules of the house, checked on the source: imports point down only, and every package has the skeleton."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from workspace import PACKAGES, ROOT, pyproject


def imported_top_level_modules(folder: Path) -> dict[str, set[str]]:
    """Top-level module names imported by each .py file under ``folder`` (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_workspace_members_are_exactly_the_packages():
    workspace = pyproject(ROOT)["tool"]["uv"]["workspace"]["members"]
    assert workspace == ["shared", "packages/*"]
    assert sorted(p.name for p in (ROOT / "packages").iterdir() if p.is_dir()) == sorted(PACKAGES)


@pytest.mark.parametrize("distribution", sorted(PACKAGES))
def test_a_paper_package_imports_no_other_paper_package(distribution):
    others = set(PACKAGES.values()) - {PACKAGES[distribution]}
    for path, names in imported_top_level_modules(ROOT / "packages" / distribution).items():
        assert not names & others, f"{path} imports {sorted(names & others)}"


def test_repro_shared_knows_no_paper():
    for path, names in imported_top_level_modules(ROOT / "shared" / "src").items():
        assert not names & set(PACKAGES.values()), f"{path} imports {sorted(names & set(PACKAGES.values()))}"
    source = " ".join(p.read_text() for p in (ROOT / "shared" / "src").rglob("*.py")).lower()
    for distribution in PACKAGES:
        assert distribution not in source, f"repro_shared mentions {distribution}"


@pytest.mark.parametrize("distribution", sorted(PACKAGES))
def test_package_metadata_and_skeleton(distribution):
    folder = ROOT / "packages" / distribution
    project = pyproject(folder)["project"]
    assert project["name"] == distribution
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    requirements = [re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0] for req in project["dependencies"]]
    assert "repro-shared" in requirements
    assert not set(requirements) & (set(PACKAGES) - {distribution}), "depends on another paper package"
    entry_points = project["entry-points"]["repro.experiments"]
    assert entry_points == {distribution: f"{PACKAGES[distribution]}.experiments:experiments"}
    for part in ("README.md", f"src/{PACKAGES[distribution]}/__init__.py",
                 f"src/{PACKAGES[distribution]}/experiments.py", "tests", "configs", "scripts", "benchmarks"):
        assert (folder / part).exists(), f"{distribution} lacks {part}"


def test_every_package_has_a_tox_env():
    tox = (ROOT / "tox.ini").read_text()
    for name in [*PACKAGES, "shared", "integration", "lint"]:
        assert f"[testenv:{name}]" in tox
        assert name in tox.split("env_list =", 1)[1].splitlines()[0]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- test-command -->\s*```bash\n(.+?)\n```", readme, re.S)
    assert block, "README has no marked test command"
    assert block.group(1).strip() in (ROOT / ".ci" / "run").read_text()
