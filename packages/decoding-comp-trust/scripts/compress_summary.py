"""Table and figure of a (possibly still running or interrupted) compress run, from its models/*/compression.json.

    uv run python packages/decoding-comp-trust/scripts/compress_summary.py runs/decoding-comp-trust/compress/quick-seed0

Prints the per-setting Markdown table (seed mean ± std, change vs dense) and writes
<run>/figures/perplexity_per_setting_partial.png; the finished experiment writes the same into results.json itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

from decoding_comp_trust.compress_experiments import _figure, _markdown, _row, summarize
from repro_shared import io


def main(run: Path) -> None:
    dense = {}
    for record in sorted((run / "dense").glob("*.json")):
        data = io.read_json(record)
        dense[data["base_model"]] = data
    manifests = [io.read_json(p) for p in sorted((run / "models").glob("[!.]*/compression.json"))]
    rows = [_row(m, m["base_model"]) for m in manifests]
    summary = summarize(rows, dense)
    print(_markdown(summary, dense))
    total = sum(r["compress_seconds"] for r in rows)
    print(f"{len(rows)} models, compression time {total:.0f} s in all "
          f"({total / max(len(rows), 1):.0f} s per setting on average)")
    (run / "figures").mkdir(exist_ok=True)
    _figure(summary, dense, run / "figures" / "perplexity_per_setting_partial.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
