"""The experiments: configs at every scale, row parsing, and a resumable smoke run of the whole pipeline."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from repro_shared.cli import main
from repro_shared.errors import ConfigError
from shake_to_leak.experiments import (
    S2LConfig,
    auc_change_interval,
    claims_main,
    claims_sweep,
    experiments,
    parse_row,
)


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


@pytest.mark.parametrize(("assignment", "message"), [
    ("finetune.lr_full=-1", r"^finetune\.lr_full=-1\.0: must be a positive float$"),
    ('rows=["pretrained","perturb:std=-1"]', r"^row 'perturb:std=-1': FinetuneConfig\.perturb_std must be a positive"),
    ("extraction.prompt_template=a photo of {name}", r"^extraction\.prompt_template='a photo of \{name\}': the only"),
    ("extraction.prompt_template=a photo of {subject", r"^extraction\.prompt_template=.* is not a format template"),
])
def test_bad_settings_fail_in_one_line_before_any_work(tmp_path, capsys, assignment, message):
    """Rejected while the config is built: exit 2, one stderr line naming the field, no run directory."""
    code = main(["run", "shake-to-leak:main-table", "--scale", "smoke", "--device", "cpu", "--out", str(tmp_path / "o"),
                 "--set", assignment])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert re.search(message, lines[0].removeprefix("repro: error: "))
    assert not (tmp_path / "o").exists()


def test_prior_preservation_applies_to_the_s2l_script_methods_only():
    from shake_to_leak.experiments import finetune_config

    base = experiments()[0].config("smoke")
    on = dataclasses.replace(base, finetune=dataclasses.replace(base.finetune, prior_preservation=True))
    assert not finetune_config(base, "dreambooth", {}, 0).with_prior_preservation
    for method in ("dreambooth", "end-to-end", "lora", "dreambooth+lora", "ood"):
        assert finetune_config(on, method, {}, 0).with_prior_preservation, method
        assert finetune_config(on, method, {}, 0).class_prompt == "a photo of a person"
    for method in ("textual-inversion", "hypernetwork", "perturb"):
        assert not finetune_config(on, method, {}, 0).with_prior_preservation, method


def test_paper_ood_control_fine_tunes_on_the_ood_images():
    paper = experiments()[0].config("paper")
    assert paper.ood_source == "images" and experiments()[0].config("quick").ood_source == "sp"
    with pytest.raises(ConfigError, match="ood_source='real'"):
        dataclasses.replace(paper, ood_source="real")


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
        assert 0.0 < entry["delta"] <= 0.1  # calibrated per domain, never above the paper's δ
    # the pre-trained model's AUC on every corpus domain, the target's taken from its row
    everywhere = results["tables"]["pretrained-auc-all-domains"]
    assert [e["domain"] for e in everywhere] == ["photo:chelsea", "photo:coffee", "digit:7"]
    assert everywhere[0]["auc"] == results["tables"]["perturbation"][0]["auc"] and everywhere[0]["target"]
    assert all(0.0 <= e["auc"] <= 1.0 for e in everywhere)
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


def test_resume_appends_no_duplicate_metric_records(tmp_path):
    assert _run(tmp_path) == 0
    run = tmp_path / "shake-to-leak" / "perturbation" / "smoke-seed0"
    (run / "rows" / "chelsea" / "perturb_std=8e-4" / "result.json").unlink()  # that row is computed again
    assert _run(tmp_path, "--resume") == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [(r["domain"], r["row"]) for r in records if "row" in r]
    assert sorted(rows) == [("photo:chelsea", "perturb:std=8e-4"), ("photo:chelsea", "pretrained")]


def test_metrics_once_skips_what_a_killed_run_already_logged(tmp_path):
    """Pre-training resumes from its last checkpoint (step 200) after a kill at step 350: steps 250-350 are not
    logged twice; a row logged before the kill is not logged again, a new one is."""
    from repro_shared.logging import MetricsLogger
    from shake_to_leak.experiments import MetricsOnce

    path = tmp_path / "metrics.jsonl"

    def ctx(logger):
        return SimpleNamespace(run_dir=SimpleNamespace(metrics_path=path),
                               log_metrics=lambda step=None, **m: logger.log(step=step, **m))

    with MetricsLogger(path) as logger:
        first = MetricsOnce(ctx(logger))
        for step in range(50, 351, 50):
            first.pretrain(step, 1.0)
        first.row({"domain": "d", "row": "pretrained", "auc": 0.6})
    with MetricsLogger(path) as logger:
        resumed = MetricsOnce(ctx(logger))
        for step in range(250, 401, 50):
            resumed.pretrain(step, 1.0)
        resumed.row({"domain": "d", "row": "pretrained", "auc": 0.6})
        resumed.row({"domain": "d", "row": "hypernetwork", "auc": 0.7})
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["step"] for r in records if "pretrain_loss" in r] == list(range(50, 401, 50))
    assert [r["row"] for r in records if "row" in r] == ["pretrained", "hypernetwork"]


# ------------------------------------------------------------------------------------------------------------ tour
def test_tour_config_is_the_headline_claim_at_a_smaller_pretraining():
    experiment = next(e for e in experiments() if e.name == "main-table")
    tour, quick = experiment.config("tour"), experiment.config("quick")
    assert experiment.has_tour and len(experiment.tour_seeds) >= 3
    assert experiment.dtypes == ()  # everything runs in float32/float64 whatever --dtype says
    assert tour.rows == ("pretrained", "hypernetwork") and not tour.extract and quick.extract
    assert set(tour.targets) == set(quick.targets) <= set(tour.data.domains) < set(quick.data.domains)
    assert tour.pretrain.steps < quick.pretrain.steps and tour.pretrain.vae_steps < quick.pretrain.vae_steps
    # the attack and the fine-tuning recipe are the quick ones: only the pre-training and SP set are smaller
    assert tour.secmi == quick.secmi and tour.finetune == quick.finetune and tour.model == quick.model
    assert tour.synth.num_images < quick.synth.num_images
    assert all(not e.has_tour for e in experiments() if e.name != "main-table")


def _scores(member: list[float], nonmember: list[float]) -> dict[str, float]:
    return {**{f"m{i}": s for i, s in enumerate(member)}, **{f"n{i}": s for i, s in enumerate(nonmember)}}


def test_claim_effects_are_oriented_on_hand_computed_aucs():
    # before: member scores (3, 1) vs non-members (2, 4): 3 of 4 pairs have the member lower -> AUC 0.75;
    # after: members (1, 2) all below non-members (3, 4) -> AUC 1.0
    before, after = {"d": _scores([3, 1], [2, 4])}, {"d": _scores([1, 2], [3, 4])}
    table = [{"row": "pretrained", "auc": 0.75}, {"row": "hypernetwork", "auc": 1.0}]
    claims = {c.name: c for c in claims_main(table, {"pretrained": before, "hypernetwork": after})}
    rise = claims["hypernetwork: SecMI AUC rises over the pre-trained model"]
    assert rise.effect == pytest.approx(0.25) and rise.direction_holds and rise.interval is not None
    assert claims["pre-trained: SecMI AUC is above chance (0.5)"].effect == pytest.approx(0.25)
    # the same models the other way round: the effect changes sign
    swapped = [{"row": "pretrained", "auc": 1.0}, {"row": "hypernetwork", "auc": 0.75}]
    fall = {c.name: c for c in claims_main(swapped, {"pretrained": after, "hypernetwork": before})}
    assert fall["hypernetwork: SecMI AUC rises over the pre-trained model"].effect == pytest.approx(-0.25)
    assert not fall["hypernetwork: SecMI AUC rises over the pre-trained model"].direction_holds


def test_rise_interval_excludes_zero_only_for_a_clear_rise():
    rng = np.random.default_rng(0)
    chance = {d: _scores(list(rng.normal(0, 1, 20)), list(rng.normal(0, 1, 20))) for d in ("a", "b")}
    separated = {d: _scores(list(range(20)), list(range(20, 40))) for d in ("a", "b")}  # AUC 1 in both domains
    low, high = auc_change_interval(chance, separated, seed=0)
    assert 0 < low <= high
    low, high = auc_change_interval(separated, chance, seed=0)
    assert low <= high < 0
    low, high = auc_change_interval(chance, chance, seed=0)  # the same model twice: no effect at all
    assert low == high == 0.0


def test_other_claims_carry_oriented_effects():
    table = [{"row": "pretrained", "auc": 0.70, "extracted": 0.0, "nonmember_control": 0.0},
             {"row": "ood", "auc": 0.60, "extracted": 1.0, "nonmember_control": 1.0},
             {"row": "hypernetwork", "auc": 0.80, "extracted": 3.0, "nonmember_control": 1.0},
             {"row": "dreambooth+lora", "auc": 0.75, "extracted": 0.0, "nonmember_control": 2.0}]
    claims = {c.name: c for c in claims_main(table)}
    assert claims["End-to-End on OoD data does not raise AUC"].effect == pytest.approx(0.10)
    assert claims["hypernetwork: extracted members per domain rise (above the non-member control)"].effect == 2.0
    assert claims["dreambooth+lora: extracted members per domain rise (above the non-member control)"].effect == -2.0
    assert claims["DreamBooth+LoRA has the highest AUC"].effect == pytest.approx(-0.05)
    assert all(c.interval is None for c in claims.values())  # no per-image scores, no interval
    sweep = [{"row": "pretrained", "auc": 0.7}, *({"row": f"r{i}", "auc": a} for i, a in enumerate((0.7, 0.8, 0.75)))]
    assert claims_sweep(sweep, "lora-rank")[0].effect == pytest.approx(0.05)  # interior peak 0.8 over ends 0.75
    assert claims_sweep(sweep, "ti-tokens")[0].effect == pytest.approx(0.05)  # last 0.75 over first 0.7


def test_importing_the_experiments_loads_no_heavy_library():
    heavy = ("transformers", "diffusers", "peft", "datasets", "sklearn", "scipy", "skimage", "matplotlib", "pandas")
    code = ("import sys, shake_to_leak.experiments as m; m.experiments(); "
            f"print(','.join(name for name in {heavy!r} if name in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
