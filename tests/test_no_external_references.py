"""READMEs, docstrings, comments and configs never point outside the repository or at one machine's folders.

A newcomer's clone has neither the notes the packages were written from nor anyone's home or work folders: text
must say what the paper or its code does, or what to run (e.g. `repro data fetch`), instead.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from workspace import ROOT

SUFFIXES = (".md", ".py", ".toml", ".yaml", ".yml")
FORBIDDEN = {
    "a machine path": re.compile(r"(?<![\w.~$-])/(?:work|opt|root|home|Users|scratch)/"),
    "a home-folder path": re.compile(r"(?<![\w/])~/"),
    "the paper notes kept outside the repository": re.compile(
        r"shared/papers|library-notes|papers/[\w-]+\.md|\.\./shared/|\bnotes?,? (?:§|section\b)|\bthe notes\b|"
        r"\bnotes'", re.IGNORECASE),
}


def tracked_text_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        paths = [ROOT / name for name in listed.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked archive)
        paths = [p for p in ROOT.rglob("*") if not any(part.startswith(".") for part in p.relative_to(ROOT).parts)]
    return sorted(p for p in paths if p.suffix in SUFFIXES and p.is_file() and p != Path(__file__).resolve())


def external_references(text: str) -> list[str]:
    """``line N: <what> in '<excerpt>'`` for each forbidden reference in ``text``."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for what, pattern in FORBIDDEN.items():
            match = pattern.search(line)
            if match:
                start = max(match.start() - 30, 0)
                found.append(f"line {number}: {what} in {line[start:match.end() + 30].strip()!r}")
    return found


@pytest.mark.parametrize(("text", "flagged"), [
    ("notes on the paper are in the suite's `shared/papers/armin.md`", True),
    ("REPRO_DATA_DIR=/work/shared/data uv run repro run x", True),
    ("see `../shared/data/README.md`", True),
    ("copied to /home/alice/models", True),
    ("put it in ~/.cache/repro", True),
    ("the rule of notes §2.6", True),
    ("typed from the notes, section 2.3", True),
    ("(from the notes' examples)", True),
    ("`repro data fetch --to data`, then REPRO_DATA_DIR=data", False),
    ("https://raw.githubusercontent.com/owner/home/0123/data/x.json", False),
    ("the report's per-dimension notes; paper §2 / Table 1", False),
    ('results["notes"] = []', False),
])
def test_the_checker_flags_references_and_only_those(text: str, flagged: bool) -> None:
    assert bool(external_references(text)) is flagged


def test_no_tracked_text_file_points_outside_the_repository() -> None:
    files = tracked_text_files()
    assert any(p.name == "README.md" for p in files) and any(p.suffix == ".py" for p in files)
    problems = [f"{path.relative_to(ROOT)} {finding}" for path in files
                for finding in external_references(path.read_text(encoding="utf-8", errors="replace"))]
    assert not problems, "references outside the repository:\n" + "\n".join(problems)
