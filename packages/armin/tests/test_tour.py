"""The tour scale (what `repro reproduce` runs), the claims' signed effects, lazy imports and declared dtypes."""

import dataclasses
import math
import subprocess
import sys

import pytest
from armin.experiments import experiments
from armin.reporting import algorithmic_claims, char_claims, efficiency_claims, pixel_claims
from repro_shared.config import apply_overrides, config_to_dict, flatten

BY_NAME = {experiment.name: experiment for experiment in experiments()}


def _effects(claims) -> dict[str, float]:
    return {claim.name: claim.effect for claim in claims}


def test_tour_covers_the_headline_experiments_at_three_seeds():
    touring = {name for name, experiment in BY_NAME.items() if experiment.has_tour}
    assert touring == {"charlm", "efficiency"}
    for name in touring:
        assert BY_NAME[name].tour_seeds == (0, 1, 2)
        config = BY_NAME[name].config("tour")
        assert apply_overrides(config, flatten(config_to_dict(config))) == config  # every field settable, valid


def test_charlm_tour_is_quick_with_a_third_of_the_training():
    quick, tour = BY_NAME["charlm"].config("quick"), BY_NAME["charlm"].config("tour")
    # Same corpus, split, models, sizes and optimiser as quick: the test text and the comparison are quick's.
    assert dataclasses.replace(tour, train=quick.train) == quick
    assert tour.train.iterations * 3 == quick.train.iterations
    assert dataclasses.replace(tour.train, iterations=quick.train.iterations, tau_every=quick.train.tau_every) \
        == quick.train
    # The τ schedule is compressed with the training: about the same final inverse temperature.
    assert tour.train.tau(tour.train.iterations - 1) == pytest.approx(quick.train.tau(quick.train.iterations - 1),
                                                                      abs=1)


def test_efficiency_tour_keeps_the_paper_sizes_and_drops_the_side_models():
    quick, tour = BY_NAME["efficiency"].config("quick"), BY_NAME["efficiency"].config("tour")
    assert tour.sizes == quick.sizes and tour.copy_length == quick.copy_length
    assert tour.batch_size == quick.batch_size
    assert tour.models == ("armin", "lstm", "ntm")
    assert max(tour.memory_lengths) == max(quick.memory_lengths)


def test_no_experiment_claims_a_dtype_it_does_not_honour():
    pixel = {"pixel-seq", "pixel-perm"}  # the only ones whose models take a dtype (the released code's float64)
    assert {name: experiment.dtypes for name, experiment in BY_NAME.items()} == {
        name: ("fp32", "fp64") if name in pixel else () for name in BY_NAME}
    assert all(BY_NAME[name].own_dtype_under_auto for name in pixel)


def test_importing_the_experiments_loads_no_heavy_library():
    heavy = ["transformers", "diffusers", "peft", "auto_LiRPA", "datasets", "sklearn", "scipy", "auto_round",
             "llmcompressor", "matplotlib", "pandas"]
    code = ("import sys; from armin.experiments import experiments; experiments(); "
            f"print([name for name in {heavy!r} if name in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"


def _algorithmic(armin_bits, lstm_bits, armin_s=0.01, lstm_s=0.02, ntm_s=0.04):
    return {"armin": {"eval_bits_per_sequence": armin_bits, "parameters": 100, "seconds_per_iteration": armin_s},
            "lstm": {"eval_bits_per_sequence": lstm_bits, "parameters": 400, "seconds_per_iteration": lstm_s},
            "ntm": {"eval_bits_per_sequence": 0.0, "parameters": 90, "seconds_per_iteration": ntm_s}}


def test_algorithmic_effects_are_oriented_towards_the_paper():
    better = _effects(algorithmic_claims("copy", _algorithmic(2.0, 10.0)))
    worse = _effects(algorithmic_claims("copy", _algorithmic(20.0, 10.0, armin_s=0.08)))
    assert better.keys() == worse.keys()  # names carry no measured numbers: they match across seeds
    similar = "copy: ARMIN's bit error is similar to LSTM's (eval bits/sequence, ARMIN vs LSTM)"
    assert better[similar] == pytest.approx(1.1 * 10 + 0.1 - 2)  # 9.1: within the margin, and better
    assert worse[similar] == pytest.approx(1.1 * 10 + 0.1 - 20)  # -8.9: worse by more than the margin
    assert better["ARMIN has fewer parameters than LSTM"] == pytest.approx(math.log(4))
    assert better["ARMIN trains faster per iteration than NTM (s/iteration)"] == pytest.approx(math.log(4))
    assert worse["ARMIN trains faster per iteration than LSTM (s/iteration)"] == pytest.approx(math.log(0.25))
    ablation = "copy: auto-addressing learns at least as well as TARDIS addressing (eval bits/sequence, ARMIN vs AwTA)"
    assert ablation not in better  # no AwTA run, no ablation claim
    with_awta = {**_algorithmic(20.0, 10.0), "awta": {"eval_bits_per_sequence": 30.0, "parameters": 110,
                                                       "seconds_per_iteration": 0.05}}
    assert _effects(algorithmic_claims("copy", with_awta))[ablation] == pytest.approx(1.1 * 30 + 0.1 - 20)  # 13.1
    with_awta["awta"]["eval_bits_per_sequence"] = 5.0
    assert _effects(algorithmic_claims("copy", with_awta))[ablation] == pytest.approx(1.1 * 5 + 0.1 - 20)  # -14.4
    direction = {claim.name: claim.direction_holds for claim in algorithmic_claims("copy", _algorithmic(20, 10))}
    assert direction[similar] is False and direction["ARMIN has fewer parameters than LSTM"] is True


def test_margin_edges_of_the_similar_claims():
    # Exactly at the margin the effect is zero; a hair inside it is positive.
    assert char_claims({"armin": {"test_bpc": 2.75}, "lstm": {"test_bpc": 2.70}})[0].effect == pytest.approx(0)
    assert char_claims({"armin": {"test_bpc": 2.40}, "lstm": {"test_bpc": 2.70}})[0].effect == pytest.approx(0.35)
    assert char_claims({"armin": {"test_bpc": 2.90}, "lstm": {"test_bpc": 2.70}})[0].effect == pytest.approx(-0.15)
    accuracy = lambda armin, lstm: pixel_claims(  # noqa: E731
        "permuted", "digits", {"armin": {"test_accuracy": armin}, "lstm": {"test_accuracy": lstm}})[0].effect
    assert accuracy(0.608, 0.674) == pytest.approx(-0.046)
    assert accuracy(0.829, 0.834) == pytest.approx(0.015)
    assert char_claims({"armin": {"test_bpc": 2.4}}) == []


def test_efficiency_effects_are_log_ratios_of_the_other_model_to_armin():
    rows = [{"model": "armin", "parameters": 92_198, "macs_per_step": 91_444, "train_ms_per_time_step": 0.5},
            {"model": "lstm", "parameters": 375_608, "macs_per_step": 374_400, "train_ms_per_time_step": 0.4},
            {"model": "ntm", "parameters": 87_800, "macs_per_step": 91_840, "train_ms_per_time_step": 2.0}]
    memory = [{"model": "armin", "length": 50, "saved_activation_mb": 1.0},
              {"model": "armin", "length": 200, "saved_activation_mb": 30.0},
              {"model": "ntm", "length": 50, "saved_activation_mb": 0.5},
              {"model": "ntm", "length": 200, "saved_activation_mb": 120.0}]
    effects = _effects(efficiency_claims(rows, memory))
    assert effects == pytest.approx({
        "ARMIN(100) has fewer parameters than LSTM(300)": math.log(375_608 / 92_198),
        "ARMIN(100) needs fewer multiply-adds per step than LSTM(300)": math.log(374_400 / 91_444),
        "ARMIN(100) trains faster per step than LSTM(300) (ms per time step)": math.log(0.4 / 0.5),  # slower: < 0
        "ARMIN trains faster per step than NTM": math.log(4.0),
        "ARMIN holds less training memory than NTM at length 200": math.log(4.0),  # the longest length only
    })
