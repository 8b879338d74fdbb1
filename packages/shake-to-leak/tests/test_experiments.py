"""The experiments: configs at every scale, row parsing, and a resumable smoke run of the whole pipeline."""

from __future__ import annotations

import dataclasses
import json

import pytest
from repro_shared.cli import main
from repro_shared.errors import ConfigError
from shake_to_leak.experiments import S2LConfig, experiments, parse_row


def test_registered_experiments():
    assert {e.name for e in experiments()} == {"main-table", "lora-rank", "ti-tokens", "perturbation"}


def test_rows_parse_and_bad_rows_are_rejected():
    assert parse_row("dreambooth+lora:rank=4") == ("dreambooth+lora", {"lora_rank": 4})
    assert parse_row("perturb:std=8e-4") == ("perturb", {"perturb_std": 8e-4})
    with pytest.raises(ConfigError, match="unknown row"):
        parse_row("full-finetune")
    with pytest.raises(ConfigError, match="key=value"):
        parse_row("lora:alpha=3")


def test_target_must_be_a_corpus_domain():
    base = experiments()[0].config("smoke")
    with pytest.raises(ConfigError, match=r"not in data\.domains"):
        dataclasses.replace(base, targets=("photo:rocket",))
    assert isinstance(base, S2LConfig)


def _run(tmp_path, *extra):
    return main(["run", "shake-to-leak:perturbation", "--scale", "smoke", "--device", "cpu", "--threads", "1",
                 "--out", str(tmp_path), *extra])


def test_smoke_run_writes_table_and_resumes(tmp_path):
    assert _run(tmp_path) == 0
    run = tmp_path / "shake-to-leak" / "perturbation" / "smoke-seed0"
    results = json.loads((run / "results.json").read_text())
    rows = [r["row"] for r in results["tables"]["perturbation"]]
    assert rows == ["pretrained", "perturb:std=8e-4"]
    for entry in results["tables"]["perturbation"]:
        assert 0.0 <= entry["auc"] <= 1.0 and entry["extracted"] >= 0
    # SecMI scores were written per image; a resumed run reuses finished rows and rebuilds the same table
    scores = (run / "rows" / "chelsea" / "pretrained" / "secmi_scores.jsonl").read_text().splitlines()
    assert len(scores) == 8
    (run / "results.json").unlink()
    (run / "rows" / "chelsea" / "perturb_std=8e-4" / "result.json").unlink()
    assert _run(tmp_path, "--resume") == 0
    again = json.loads((run / "results.json").read_text())

    def untimed(table):
        return [{k: v for k, v in row.items() if not k.endswith("_s")} for row in table]

    assert untimed(again["tables"]["perturbation"]) == untimed(results["tables"]["perturbation"])
