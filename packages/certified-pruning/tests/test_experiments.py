"""The registered experiment runs end to end at smoke scale and resumes verification without redoing images."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from certified_pruning.experiments import VerifyDenseConfig, check_verify_dense, experiments
from repro_shared.errors import ConfigError, NotFoundError
from repro_shared.runs import RunOptions, execute


def test_verify_dense_smoke_runs_and_records_every_image(tmp_path):
    experiment = replace(next(e for e in experiments() if e.name == "verify-dense"), package="certified-pruning")
    config = replace(experiment.configs["smoke"], images=2, timeout=3.0, train_mode="natural")  # keep the test short
    run_dir = execute(experiment, config, RunOptions(scale="smoke", out=tmp_path, threads=1))
    lines = (run_dir.path / "verification.jsonl").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == [0, 1]
    results = json.loads((run_dir.path / "results.json").read_text())
    assert results["metrics"]["images"] == 2
    assert 0 <= results["metrics"]["verified_accuracy"] <= results["metrics"]["clean_accuracy"]


def test_paper_scale_fails_fast_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    verify_dense = next(e for e in experiments() if e.name == "verify-dense")
    with pytest.raises(NotFoundError, match=r"cifar10.*Hub"):
        check_verify_dense(verify_dense.configs["paper"], None)
    with pytest.raises(ConfigError, match="verify_eps"):
        VerifyDenseConfig(verify_eps=0)


@pytest.mark.parametrize(("change", "message"), [
    ({"train_mode": "pgd"}, r"^train_mode='pgd': choose one of natural, fgsm, crown-ibp$"),
    ({"timeout": -1.0}, r"^timeout=-1.0: must be > 0$"),
    ({"pgd_restarts": 0}, r"^pgd_restarts=0: must be an integer >= 1$"),
    ({"learning_rate": -0.05}, r"^learning_rate=-0.05: must be > 0$"),
    ({"train_eps": 0.0}, r"^train_eps=0.0"),
])
def test_bad_verify_dense_settings_name_the_field(change, message):
    with pytest.raises(ConfigError, match=message):
        VerifyDenseConfig(**change)
