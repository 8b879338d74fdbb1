"""The registered experiments: smoke runs end to end, bad input fails before any model is loaded."""

import json
from dataclasses import replace

import pytest
from dp_opt import experiments as dp_experiments
from dp_opt.experiments import SMOKE, DPOptConfig, check_inputs
from dp_opt.models import tiny_tokenizer
from dp_opt.templates import TaskTemplate
from repro_shared.errors import ConfigError
from repro_shared.experiments import find_experiment
from repro_shared.runs import RunOptions, execute, prepare_context


def run_smoke(name, tmp_path, data_dir, **overrides):
    experiment = find_experiment(f"dp-opt:{name}")
    config = replace(experiment.config("smoke"), max_train=150, **overrides)
    options = RunOptions(scale="smoke", device="cpu", out=tmp_path / "runs", data_dir=data_dir)
    return execute(experiment, config, options)


def test_main_table_smoke_run_records_results_and_ledger(tmp_path, data_dir):
    run_dir = run_smoke("main-table", tmp_path, data_dir)
    results = json.loads((run_dir.path / "results.json").read_text())
    methods = {row["method"] for row in results["tables"]["accuracy"]}
    assert methods == {"0-shot", "icl", "opt", "dp-opt", "dln-1"}
    ledger = [json.loads(line) for line in (run_dir.path / "privacy_ledger_dp-opt.jsonl").read_text().splitlines()]
    assert ledger and all(entry["eps"] <= SMOKE.target_eps for entry in ledger)
    assert [e["query"] for e in ledger] == list(range(1, len(ledger) + 1))
    assert results["metrics"]["eps_spent"] <= SMOKE.target_eps
    claims = {claim["name"]: claim for claim in results["claims"]}
    beats = claims["sst2: DP-OPT (eps=20) beats the 0-shot instruction"]
    accuracy = {row["method"]: row["test_accuracy"] for row in results["tables"]["accuracy"]}
    assert beats["effect"] == pytest.approx(accuracy["dp-opt"] - accuracy["0-shot"], abs=0.01)
    assert beats["interval"][0] <= beats["effect"] <= beats["interval"][1]  # a paired bootstrap over the 8 test items
    budget = claims["reported eps never exceeds the target (generation within it)"]
    assert budget["effect"] == pytest.approx(SMOKE.target_eps - results["metrics"]["generation_eps"])
    prompts = json.loads((run_dir.path / "prompts.json").read_text())
    assert prompts["0-shot"]["selected"] == "Classify the input text as positive or negative."
    assert isinstance(prompts["dln-1"]["selected"], str)
    # the non-private statistics are only in debug/: raw votes, holdout accuracies, DLN-1's steps
    debug = json.loads((run_dir.path / "debug" / "prompts.json").read_text())
    assert debug["dln-1"]["steps"]
    assert len(debug["dp-opt"]["holdout_accuracies"]) == len(prompts["dp-opt"]["candidates"])
    published = (run_dir.path / "prompts.json").read_text() + (run_dir.path / "privacy_ledger_dp-opt.jsonl").read_text()
    published += (run_dir.path / "metrics.jsonl").read_text()
    assert "holdout_accuracies" not in published and "top_votes" not in published and '"steps"' not in published
    assert [p["private"] for p in prompts.values()] == [m == "dp-opt" for m in prompts]
    votes = [json.loads(line) for line in (run_dir.path / "debug" / "votes_dp-opt.jsonl").read_text().splitlines()]
    assert [v["query"] for v in votes] == [e["query"] for e in ledger]
    assert all(1 <= v["top_votes"] <= SMOKE.num_voters for v in votes)
    # both privacy models, side by side; the headline (and the budget stop) is the paper's
    assert results["privacy"]["headline_model"] == "paper"
    for entry in ledger:
        assert entry["eps"] == entry["eps_paper"] < entry["eps_conservative"]
        assert entry["delta"] == entry["delta_paper"] == entry["delta_conservative"]
    assert results["metrics"]["generation_eps_conservative"] == pytest.approx(ledger[-1]["eps_conservative"])
    assert results["metrics"]["generation_eps"] == results["metrics"]["generation_eps_paper"]
    dln_row = next(row for row in results["tables"]["accuracy"] if row["method"] == "dln-1")
    assert 0 <= dln_row["test_accuracy"] <= 100


def test_transfer_smoke_run_evaluates_a_second_model(tmp_path, data_dir):
    run_dir = run_smoke("transfer", tmp_path, data_dir)
    rows = json.loads((run_dir.path / "results.json").read_text())["tables"]["accuracy"]
    assert {row["model"] for row in rows} == {"tiny-random", "tiny-random:1"}


@pytest.mark.parametrize("overrides", [
    {"task": "imdb"}, {"eps0": 0.0}, {"target_eps": -1.0}, {"delta0": 1.5}, {"target_delta": 0.0},
    {"methods": ("dln-2",)}, {"num_voters": 0}, {"selection_eps": 9.0}, {"selection_eps": 0.0},
    {"ld_privacy_model": "tight"},
])
def test_bad_settings_raise_config_error(overrides):
    with pytest.raises(ConfigError):
        DPOptConfig(**overrides)


def preflight(config, data_dir):
    ctx = prepare_context(RunOptions(scale="smoke", device="cpu", data_dir=data_dir))
    check_inputs(config, ctx)


def test_too_many_demos_fail_before_loading_a_model(data_dir, monkeypatch):
    monkeypatch.setattr(dp_experiments, "run_dp_opt", None)  # nothing may get as far as running
    with pytest.raises(ConfigError, match="exceeds"):
        preflight(replace(SMOKE, num_voters=100, demos_per_voter=5), data_dir)


def test_k_bar_as_large_as_the_vocabulary_fails_before_loading_a_model(data_dir, monkeypatch):
    monkeypatch.setattr(dp_experiments, "run_dp_opt", None)
    vocabulary = len(tiny_tokenizer())
    with pytest.raises(ConfigError, match=f"k_bar={vocabulary}: must be smaller than the vocabulary size"):
        preflight(replace(SMOKE, k_bar=vocabulary), data_dir)
    preflight(replace(SMOKE, k_bar=vocabulary - 1), data_dir)  # the largest allowed


def test_selection_eps_above_the_target_names_both(tmp_path):
    with pytest.raises(ConfigError, match=r"selection_eps=9\.0: must be positive and at most target_eps=8\.0"):
        DPOptConfig(selection_eps=9.0)


def test_conservative_model_stops_the_budget_earlier(tmp_path, data_dir):
    run_dir = run_smoke("main-table", tmp_path, data_dir, methods=("dp-opt",), ld_privacy_model="conservative",
                        target_eps=6.0, num_prompts=3, max_new_tokens=2)
    results = json.loads((run_dir.path / "results.json").read_text())
    ledger = [json.loads(line) for line in (run_dir.path / "privacy_ledger_dp-opt.jsonl").read_text().splitlines()]
    assert results["privacy"]["headline_model"] == "conservative"
    assert all(entry["eps"] == entry["eps_conservative"] <= 6.0 for entry in ledger)
    assert ledger[-1]["eps_paper"] < ledger[-1]["eps_conservative"]
    assert results["metrics"]["generation_eps"] == results["metrics"]["generation_eps_conservative"]
    # q = 12/149, eps0 = 3: one query costs 3.56 conservatively (two: 7.08 > 6), 0.97 in the paper's model
    assert len(ledger) == 1 and results["metrics"]["max_queries_at_target"] == 1
    prompts = json.loads((run_dir.path / "prompts.json").read_text())
    assert "budget" in prompts["dp-opt"]["stop_reasons"]


def test_label_word_that_tokenises_to_nothing(data_dir, monkeypatch):
    monkeypatch.setitem(dp_experiments.TASKS, "sst2", TaskTemplate("Classify.", ("", "positive")))
    with pytest.raises(ConfigError, match="tokenises to nothing"):
        preflight(SMOKE, data_dir)


def test_missing_data_fails_at_once(tmp_path):
    with pytest.raises(Exception, match="dpopt/sst2"):
        preflight(SMOKE, tmp_path)
