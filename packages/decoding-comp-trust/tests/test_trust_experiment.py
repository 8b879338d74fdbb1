"""The `trust` experiment end to end on the tiny model and a miniature data tree; bad input; resume."""

import dataclasses
import json
import sys
from pathlib import Path

import pytest
from repro_shared.errors import ConfigError
from repro_shared.experiments import find_experiment
from repro_shared.runs import RunOptions, execute

sys.path.insert(0, str(Path(__file__).parent))  # the tests' own helper module (tests/ is not a package)
from decoding_comp_trust.trust.evaluate import check_data
from decoding_comp_trust.trust_experiments import TrustConfig, compressed_models
from trust_fixtures import make_data_dir


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_data_dir(tmp_path_factory.mktemp("data"))


def smoke_config(**changes):
    return dataclasses.replace(find_experiment("decoding-comp-trust:trust").config("smoke"), **changes)


def run(tmp_path, data_dir, config, name="r", resume=False):
    experiment = find_experiment("decoding-comp-trust:trust")
    options = RunOptions(scale="smoke", out=tmp_path / "runs", name=name, data_dir=data_dir, threads=1, resume=resume)
    return execute(experiment, config, options)


def test_smoke_run_writes_table_figures_and_resumes_without_generating(tmp_path, data_dir):
    # one compressed "setting" (a copy of the tiny model) exercises the compressed-run contract and the heatmap
    config = smoke_config(cache_dir=str(tmp_path / "cache"))
    run_dir = run(tmp_path, data_dir, config, "first")
    results = json.loads(run_dir.results_path.read_text())
    table = results["tables"]["trust_scores"]
    assert [row["setting"] for row in table] == ["dense"]
    row = table[0]
    for column in ("MMLU", "OOD", "AdvDemo", "Ethics", "Fairness", "Toxicity", "Privacy", "Stereotype"):
        top = 200.0 if column == "Toxicity" else 100.0  # empty continuations count −1 (the fork): up to 200
        assert row[column] is not None and 0.0 <= row[column] <= top, column
    assert row["AdvGLUE++"] is None  # absent data → not evaluated, never invented
    assert (run_dir.path / "figures" / "seed_mean_std.png").exists()
    dense = json.loads((run_dir.path / "models" / "dense.json").read_text())
    assert dense["generated_prompts"] > 0
    second = run(tmp_path, data_dir, config, "second")  # same cache, new run: nothing is generated again
    again = json.loads((second.path / "models" / "dense.json").read_text())
    assert again["generated_prompts"] == 0
    assert json.loads(second.results_path.read_text())["tables"]["trust_scores"] == table


def test_compressed_runs_contract_and_heatmap(tmp_path, data_dir):
    from decoding_comp_trust.trust.tiny import build_tiny_model

    setting = tmp_path / "compress" / "models" / "rtn-w8-g64-s0"
    build_tiny_model(setting, seed=1)
    (setting / "compression.json").write_text(json.dumps({
        "method": "rtn", "bits": 8, "group_size": 64, "sparsity": None, "pattern": None, "seed": 0,
        "calibration": None, "base_model": "tiny-random"}))
    other = tmp_path / "compress" / "models" / "other-base--rtn-w8-g64"  # compressed from another base model
    other.mkdir()
    (other / "compression.json").write_text(json.dumps({"method": "rtn", "bits": 8, "base_model": "other"}))
    config = smoke_config(compressed_runs=(str(tmp_path / "compress"),), perspectives=("mmlu", "ethics"),
                          cache_dir=str(tmp_path / "cache"))
    run_dir = run(tmp_path, data_dir, config)
    results = json.loads(run_dir.results_path.read_text())
    assert [r["setting"] for r in results["tables"]["trust_scores"]] == ["dense", "rtn-w8-g64-s0"]
    assert results["tables"]["difference_vs_dense"][0]["setting"] == "rtn-w8-g64-s0"
    assert (run_dir.path / "figures" / "relative_difference.png").exists()
    # both models keep per-item results on the same items, in the same order: what the paired bootstrap resamples
    saved = [json.loads((run_dir.path / "models" / f"{name}.json").read_text()) for name in ("dense", "rtn-w8-g64-s0")]
    for dimension in ("mmlu", "ethics"):
        dense_items, compressed_items = (m["results"][dimension]["components"]["items"] for m in saved)
        assert dense_items["group"] == compressed_items["group"] and len(dense_items["value"]) >= 1
    assert "perspective_claims" in results["tables"]


def test_compressed_folder_that_is_not_a_causal_lm_is_rejected(tmp_path):
    bad = tmp_path / "compress" / "models" / "broken"
    bad.mkdir(parents=True)
    (bad / "compression.json").write_text("{}")
    (bad / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    with pytest.raises(ConfigError, match="not a causal language model"):
        compressed_models(TrustConfig(compressed_runs=(str(tmp_path / "compress"),)))
    with pytest.raises(ConfigError, match="no models/ folder"):
        compressed_models(TrustConfig(compressed_runs=(str(tmp_path),)))
    with pytest.raises(ConfigError, match="compress --scale quick"):
        compressed_models(TrustConfig(compressed_runs=(str(tmp_path / "absent"),)))


def test_missing_perspective_files_are_named(tmp_path, data_dir):
    root = data_dir / "decodingtrust"
    with pytest.raises(ConfigError, match=r"advglue: adv-glue-plus-plus/data/alpaca.json"):
        check_data(root, ("advglue", "ethics"), "error")
    assert list(check_data(root, ("advglue", "ethics"), "skip")) == ["advglue"]
    with pytest.raises(ConfigError, match="unknown perspective"):
        TrustConfig(perspectives=("toxicity", "humour"))


def _drop_ood_dev(dt):
    path = dt / "ood/style.json"
    path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "dev"}))


def _empty_five_shot_supports(dt):
    path = dt / "privacy/enron_data/five_shot.json"
    path.write_text(json.dumps({email: [] for email in json.loads(path.read_text())}))


def _drop_mmlu_dev(dt):
    import shutil

    shutil.rmtree(dt.parent / "mmlu" / "dev")


def _flip_fairness_labels(dt):
    import numpy as np

    path = dt / "fairness/fairness_data/gt_labels_adult_0_200_test_base_rate_0.0.npy"
    np.save(path, 1 - np.load(path))


@pytest.mark.parametrize(("corrupt", "message"), [
    (_drop_ood_dev, r"ood/style.json has no 'dev' section"),
    (_empty_five_shot_supports, r"five_shot.json: the supports of 'p0@corp.com' are \[\]"),
    (_drop_mmlu_dev, r"lacks 1 dev file\(s\), e.g. dev/anatomy_dev.csv"),
    (_flip_fairness_labels, r"gt_labels_adult_0_200_test_base_rate_0.0.npy disagrees with the rows' \"label\""),
])
def test_malformed_data_fails_in_preflight_without_a_run_directory(tmp_path, corrupt, message):
    data = make_data_dir(tmp_path / "data")
    corrupt(data / "decodingtrust")
    with pytest.raises(ConfigError, match=message):
        run(tmp_path, data, smoke_config(cache_dir=str(tmp_path / "cache")))
    assert not (tmp_path / "runs").exists()


def test_advglue_scored_when_its_data_is_present(tmp_path):
    from decoding_comp_trust.trust import advglue
    from decoding_comp_trust.trust.common import Limits

    root = make_data_dir(tmp_path, with_advglue=True) / "decodingtrust"
    assert check_data(root, ("advglue",), "error") == {}
    requests = advglue.build(root, Limits(), lambda m: m[-1]["content"])
    assert len(requests) == 9
    for r in requests:
        r.outputs = [{"sst2": "positive", "qqp": "no", "mnli": "no"}[r.meta["task"]]]
    assert advglue.score(requests).score == pytest.approx(100.0)


def test_item_overrides_are_parsed_and_checked():
    from decoding_comp_trust.trust_experiments import eval_options

    config = TrustConfig(max_items=2, item_overrides=("fairness=12",))
    options = eval_options(config, seed=0)
    assert options.limits_for("fairness").max_items == 12 and options.limits_for("ethics").max_items == 2
    with pytest.raises(ConfigError, match="item_overrides"):
        TrustConfig(item_overrides=("fairness=many",))


def test_resume_logs_each_model_once(tmp_path, data_dir):
    """A run stopped after its models were scored and resumed logs no second metrics record for them."""
    from decoding_comp_trust.trust.tiny import build_tiny_model

    setting = tmp_path / "compress" / "models" / "rtn-w8-g64"
    build_tiny_model(setting, seed=1)
    (setting / "compression.json").write_text(json.dumps({"method": "rtn", "bits": 8, "base_model": "tiny-random"}))
    config = smoke_config(compressed_runs=(str(tmp_path / "compress"),), perspectives=("mmlu",),
                          cache_dir=str(tmp_path / "cache"))
    run_dir = run(tmp_path, data_dir, config, "stopped")
    run_dir.results_path.unlink()  # as if killed after the last model, before the results were written
    run(tmp_path, data_dir, config, "stopped", resume=True)
    steps = [json.loads(line)["step"] for line in run_dir.metrics_path.read_text().splitlines()]
    assert steps == [0, 1]


class EchoEngine:
    """Stands in for HFEngine: every output is "B" passed through the engine's post-processing."""

    generated_prompts = 0
    postprocess = None

    def generate(self, requests, progress=None):
        for request in requests:
            request.outputs = [self.postprocess("B")] * request.sampling.n


def test_mmlu_outputs_skip_the_chat_stop_string_cut_and_other_perspectives_keep_it(data_dir):
    from decoding_comp_trust.trust.common import Limits
    from decoding_comp_trust.trust.evaluate import EvalOptions, evaluate_model, locate_data
    from decoding_comp_trust.trust.toxicity_scorers import make_scorer

    root, mmlu_root = locate_data(data_dir)
    options = EvalOptions(perspectives=("mmlu", "ethics"), limits=Limits(1, 1, 4, 1), mmlu_limits=Limits(1),
                          conv_template="redpajama-incite-instruct")  # the template with a stop string
    engine = EchoEngine()
    results = evaluate_model(engine, root, mmlu_root, options, make_scorer("keyword"), {})
    # the chat post-processing would drop the last character of "B" (no "sentence" stop string in it)
    assert results["mmlu"]["refusal"] == 0.0 and results["mmlu"]["unreadable"] == 0.0
    assert engine.postprocess("wrong") == "wron"  # the last perspective (ethics) keeps the authors' quirk
