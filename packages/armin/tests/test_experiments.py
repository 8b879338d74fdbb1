import json

import pytest
import torch
from armin import training
from armin.experiments import experiments
from repro_shared.cli import main

TIMING = ("seconds_per_iteration", "ms_per_time_step", "sequences_per_s")


def _run(tmp_path, experiment: str, *extra: str) -> int:
    return main(["run", f"armin:{experiment}", "--scale", "smoke", "--device", "cpu", "--threads", "1",
                 "--out", str(tmp_path), *extra])


def _results(tmp_path, experiment: str, name: str) -> dict:
    return json.loads((tmp_path / "armin" / experiment / name / "results.json").read_text())


def _untimed(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if not key.endswith(TIMING)}


def test_every_experiment_has_three_scales_with_valid_configs():
    names = {experiment.name for experiment in experiments()}
    assert names == {"copy", "repeat", "recall", "sort", "pixel-seq", "pixel-perm", "charlm", "efficiency"}


@pytest.mark.parametrize("experiment", ["copy", "repeat", "recall", "sort", "pixel-perm", "charlm", "efficiency"])
def test_smoke_run_writes_results_with_claims(tmp_path, experiment):
    assert _run(tmp_path, experiment) == 0
    results = _results(tmp_path, experiment, "smoke-seed0")
    assert results["claims"] and results["metrics"]
    assert (tmp_path / "armin" / experiment / "smoke-seed0" / "figures").is_dir()


def test_same_seed_gives_identical_metrics(tmp_path):
    assert _run(tmp_path, "copy", "--name", "a") == 0
    assert _run(tmp_path, "copy", "--name", "b") == 0
    first, second = _results(tmp_path, "copy", "a"), _results(tmp_path, "copy", "b")
    assert _untimed(first["metrics"]) == _untimed(second["metrics"])
    assert first["histories"] == second["histories"]
    assert _run(tmp_path, "copy", "--name", "c", "--seed", "1") == 0
    assert _results(tmp_path, "copy", "c")["histories"] != first["histories"]


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    settings = ["--set", "train.iterations=6", "--set", "models=[armin,lstm,ntm]"]
    assert _run(tmp_path, "copy", "--name", "whole", *settings) == 0
    calls = {"count": 0}
    original = training.AlgorithmicRunner.train_loss

    def interrupt_mid_second_model(self, *args, **kwargs):
        calls["count"] += 1
        if calls["count"] == 6 + 4:  # lstm has checkpointed after step 2 and is at its step 4
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(training.AlgorithmicRunner, "train_loss", interrupt_mid_second_model)
    assert _run(tmp_path, "copy", "--name", "cut", *settings) == 130
    monkeypatch.setattr(training.AlgorithmicRunner, "train_loss", original)
    assert not (tmp_path / "armin" / "copy" / "cut" / "results.json").exists()
    assert _run(tmp_path, "copy", "--name", "cut", "--resume", *settings) == 0
    whole, resumed = _results(tmp_path, "copy", "whole"), _results(tmp_path, "copy", "cut")
    assert _untimed(whole["metrics"]) == _untimed(resumed["metrics"])
    assert whole["histories"] == resumed["histories"]
    metrics = [(tmp_path / "armin" / "copy" / name / "metrics.jsonl").read_text().splitlines() for name in
               ("whole", "cut")]
    strip = lambda lines: [{k: v for k, v in json.loads(line).items() if k not in ("time", "t")} for line in lines]  # noqa: E731
    assert strip(metrics[0]) == strip(metrics[1])


@pytest.mark.parametrize("setting", ["sizes.armin_width=64", "sizes.armin_slots=0", "task.name=reverse",
                                     "models=[armin,gru]"])
def test_bad_configs_fail_before_running(tmp_path, setting, capsys):
    assert _run(tmp_path, "copy", "--set", setting) == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "armin").exists()


@pytest.mark.parametrize("field, value", [("learning_rate", float("nan")), ("learning_rate", -1e-3),
                                          ("tau_increment", -1.0), ("tau_max", -5.0), ("tau_max", float("inf")),
                                          ("clip_value", -10.0), ("clip_norm", -1.0), ("select", "last")])
def test_bad_training_settings_are_rejected_naming_the_field(field, value):
    from repro_shared.errors import ConfigError

    with pytest.raises(ConfigError, match=field):
        training.TrainConfig(**{field: value})


def test_nan_learning_rate_fails_before_running_with_one_line(tmp_path, capsys):
    assert _run(tmp_path, "copy", "--set", "train.learning_rate=nan") == 2
    error = capsys.readouterr().err.strip()
    assert "learning_rate" in error and len(error.splitlines()) <= 2
    assert not (tmp_path / "armin").exists()


def test_dtype_flag_runs_pixel_models_in_float64_and_is_refused_elsewhere(tmp_path, capsys):
    import yaml

    assert _run(tmp_path, "copy", "--dtype", "fp64") == 2  # algorithmic models are float32: never recorded ignored
    assert "does not honour" in capsys.readouterr().err
    assert _run(tmp_path, "pixel-seq", "--dtype", "bf16") == 2
    assert _run(tmp_path, "pixel-seq", "--dtype", "fp64", "--set", "models=[armin]") == 0
    run = tmp_path / "armin" / "pixel-seq" / "smoke-seed0"
    model = training.load_weights(run / "weights" / "armin.final.pt")
    assert next(model.parameters()).dtype == torch.float64
    assert yaml.safe_load((run / "config.yaml").read_text())["device"]["dtype"] == "float64"
    # under auto the config's own dtype rules, and config.yaml says so instead of the runner's policy dtype
    assert _run(tmp_path, "pixel-seq", "--set", "dtype=float64", "--set", "models=[armin]", "--name", "own") == 0
    own = tmp_path / "armin" / "pixel-seq" / "own"
    assert next(training.load_weights(own / "weights" / "armin.final.pt").parameters()).dtype == torch.float64
    assert yaml.safe_load((own / "config.yaml").read_text())["device"]["dtype"] == "experiment's own"
    assert _run(tmp_path, "pixel-seq", "--set", "dtype=float16", "--name", "bad") == 2


def test_saved_final_and_best_weights_reload_and_evaluate_identically(tmp_path):
    from armin.tasks import TaskConfig

    settings = ["--set", "train.iterations=6", "--set", "models=[armin,tardis]", "--set", "eval_sequences=40"]
    assert _run(tmp_path, "copy", *settings) == 0
    run = tmp_path / "armin" / "copy" / "smoke-seed0"
    results = _results(tmp_path, "copy", "smoke-seed0")["metrics"]
    task = TaskConfig("copy", max_length=4)  # the smoke task
    runner = training.AlgorithmicRunner(task, 2, 40, 0, torch.device("cpu"))
    for model_name in ("armin", "tardis"):
        for iterate in ("final", "best"):
            model = training.load_weights(run / "weights" / f"{model_name}.{iterate}.pt")
            scores = training.held_out(lambda m: runner.evaluate(m, 2.0), model, torch.device("cpu"))
            assert scores["eval_bits_per_sequence"] == pytest.approx(
                results[f"{model_name}.{iterate}_eval_bits_per_sequence"], abs=1e-9)
        assert results[f"{model_name}.eval_bits_per_sequence"] == results[f"{model_name}.best_eval_bits_per_sequence"]


def test_evaluation_uses_at_least_256_sequences_whatever_the_batch_size(monkeypatch):
    from armin.experiments import experiments
    from armin.tasks import TaskConfig

    sizes = []
    original = training.algorithmic_batch
    monkeypatch.setattr(training, "algorithmic_batch", lambda task, batch, generator: sizes.append(batch) or
                        original(task, batch, generator))
    copy = next(experiment for experiment in experiments() if experiment.name == "copy")
    for scale in ("quick", "paper"):
        assert copy.configs[scale].eval_sequences >= 256
    runner = training.AlgorithmicRunner(TaskConfig("copy", max_length=3), 1, 256, 0, torch.device("cpu"))
    from armin.models import ModelConfig, build_model

    runner.evaluate(build_model(ModelConfig(kind="lstm", hidden=4), 10, 8), 1.0)
    assert sum(sizes) == 256 and max(sizes) == 32


def test_tau_must_start_positive():
    from repro_shared.errors import ConfigError

    with pytest.raises(ConfigError, match="tau_start"):
        training.TrainConfig(tau_start=0.0)


def test_interrupted_language_model_resumes_with_its_carried_state(tmp_path, monkeypatch):
    """The LM carries state and memory across TBPTT segments; a resume must restore that state, not restart it."""
    settings = ["--set", "train.iterations=6", "--set", "models=[armin]"]
    assert _run(tmp_path, "charlm", "--name", "whole", *settings) == 0
    original = training.CharRunner.train_loss
    calls = {"count": 0}

    def interrupt(self, model, step, tau, carry):
        calls["count"] += 1
        if calls["count"] == 4:  # after the checkpoint at step 2, mid-pass over the corpus (carry is not None)
            raise KeyboardInterrupt
        return original(self, model, step, tau, carry)

    monkeypatch.setattr(training.CharRunner, "train_loss", interrupt)
    assert _run(tmp_path, "charlm", "--name", "cut", *settings) == 130
    monkeypatch.setattr(training.CharRunner, "train_loss", original)
    assert _run(tmp_path, "charlm", "--name", "cut", "--resume", *settings) == 0
    whole, resumed = _results(tmp_path, "charlm", "whole"), _results(tmp_path, "charlm", "cut")
    assert _untimed(whole["metrics"]) == _untimed(resumed["metrics"])
    assert whole["histories"] == resumed["histories"]


def test_pixel_paper_scale_matches_the_released_pixel_code():
    """MNIST, float64, NTM 100 with 28 × 28 memory like ARMIN(100, 28 × 28); an epoch is 54k / 128 iterations."""
    pixel = next(experiment for experiment in experiments() if experiment.name == "pixel-seq").configs["paper"]
    assert (pixel.dataset, pixel.dtype) == ("mnist", "float64")
    ntm, armin = pixel.sizes.model("ntm"), pixel.sizes.model("armin")
    assert (ntm.hidden, ntm.width, ntm.slots) == (100, 28, 28) == (armin.hidden, armin.width, armin.slots)
    assert pixel.train.tau_every == 54_000 // 128 and pixel.train.iterations == 150 * pixel.train.tau_every
