"""Reliability: `repro run certified-pruning:verify-dense` killed with SIGKILL mid-verification and restarted with
`--resume` continues at the first undecided image, keeps the images already written, and ends with the verdicts of
an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from repro_shared.cli import main

IMAGES = 8
ARGS = ["run", "certified-pruning:verify-dense", "--scale", "smoke", "--threads", "1", "--set", f"images={IMAGES}",
        "--set", "train_mode=natural"]
# The killed process is the CLI itself with one test-only change: each image's result is held back 0.4 s after it
# is written, so that SIGKILL reliably lands between two images (verdicts and recorded seconds are unaffected).
SLOW_CLI = """
import sys, time
import certified_pruning.verify as verify
original = verify.verify_image
def slow(*args, **kwargs):
    result = original(*args, **kwargs)
    time.sleep(0.4)
    return result
verify.verify_image = slow
from repro_shared.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_killed_verification_resumes_from_the_first_undecided_image(tmp_path):
    assert main([*ARGS, "--out", str(tmp_path), "--name", "straight"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", SLOW_CLI, *ARGS, "--out", str(tmp_path), "--name", "killed"],
                               env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = tmp_path / "certified-pruning" / "verify-dense" / "killed"
    results_path = run / "verification.jsonl"
    deadline = time.time() + 600  # generous: a loaded 2-core CI machine starts Python with torch slowly
    while len(_lines(results_path)) < 3 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = _lines(results_path)
    assert 3 <= len(before) < IMAGES, "the kill must land mid-run"
    assert not (run / "results.json").exists()
    assert json.loads((run / "status.json").read_text())["state"] == "running"

    assert main([*ARGS, "--out", str(tmp_path), "--name", "killed", "--resume"]) == 0
    after = [json.loads(line) for line in _lines(results_path)]
    assert [r["index"] for r in after] == list(range(IMAGES))
    # images decided before the kill are kept byte for byte (not recomputed: their timings are unchanged)
    assert _lines(results_path)[:len(before)] == before
    straight = [json.loads(line) for line in _lines(tmp_path / "certified-pruning" / "verify-dense" / "straight"
                                                     / "verification.jsonl")]
    assert [(r["status"], r["prediction"]) for r in after] == [(r["status"], r["prediction"]) for r in straight]
    assert json.loads((run / "status.json").read_text())["state"] == "complete"
