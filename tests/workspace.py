"""Facts about the workspace that the cross-package tests check against."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {  # distribution name -> import name
    "decoding-comp-trust": "decoding_comp_trust",
    "shake-to-leak": "shake_to_leak",
    "dp-opt": "dp_opt",
    "certified-pruning": "certified_pruning",
    "armin": "armin",
}


def pyproject(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text())

