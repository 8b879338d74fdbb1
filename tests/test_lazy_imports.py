"""`repro list` and a typo'd experiment answer in seconds: registering experiments imports no heavy library.

Each installed package is one test case (named after it), so a package that imports a heavy library at module level
or in its ``experiments()`` factory is reported by name, with the libraries it pulled in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import pytest
from repro_shared.experiments import ENTRY_POINT_GROUP

HEAVY = ("transformers", "diffusers", "peft", "auto_LiRPA", "datasets", "sklearn", "scipy", "auto_round",
         "llmcompressor", "matplotlib", "pandas")
ENTRY_POINTS = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name)

PROBE = """
import json, sys
from importlib import metadata
point, = [p for p in metadata.entry_points(group={group!r}) if p.name == {name!r}]
experiments = list(point.load()())
print(json.dumps({{"experiments": len(experiments),
                  "heavy": sorted(m for m in {heavy!r} if m in sys.modules)}}))
"""


@pytest.mark.parametrize("entry_point", ENTRY_POINTS, ids=lambda point: point.name)
def test_registering_experiments_imports_no_heavy_library(entry_point):
    code = PROBE.format(group=ENTRY_POINT_GROUP, name=entry_point.name, heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["experiments"] > 0
    assert probe["heavy"] == [], f"{entry_point.name} imports {', '.join(probe['heavy'])} when listing experiments"
