"""The tour config, the claims' effects (sign, orientation, intervals), lazy imports and the declared dtypes."""

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from dp_opt.data import Example
from dp_opt.experiments import (
    DTYPES,
    QUICK,
    TOUR,
    accuracy_claims,
    experiments,
    privacy_claims,
)
from dp_opt.models import load_lm
from dp_opt.scoring import ScoringOptions, accuracy, correct_items
from repro_shared.device import parse_dtype


def by_name(claims):
    return {claim.name: claim for claim in claims}


def test_tour_is_the_registered_fourth_scale_and_differs_from_quick_where_intended():
    main = next(exp for exp in experiments() if exp.name == "main-table")
    assert main.has_tour and main.config("tour") == TOUR and main.tour_seeds == (0, 1, 2)
    assert (TOUR.task, TOUR.methods) == ("mpqa", ("0-shot", "dp-opt"))
    assert (TOUR.num_voters, TOUR.demos_per_voter, TOUR.num_prompts) == (64, 1, 1)
    assert TOUR.max_new_tokens < QUICK.max_new_tokens and TOUR.max_holdout < QUICK.max_holdout
    # what the tour does not change: the model, the privacy parameters, the data size that fixes q
    for name in ("model", "eps0", "delta0", "target_eps", "temperature", "k_bar", "max_train", "strip_trailing_space"):
        assert getattr(TOUR, name) == getattr(QUICK, name), name
    transfer = next(exp for exp in experiments() if exp.name == "transfer")
    assert not transfer.has_tour


def test_many_voters_is_quick_with_64_voters_of_one_demo_against_zero_shot():
    many = next(exp for exp in experiments() if exp.name == "many-voters")
    config = many.config("quick")
    assert (config.num_voters, config.demos_per_voter, config.methods) == (64, 1, ("0-shot", "dp-opt"))
    assert replace(config, num_voters=QUICK.num_voters, demos_per_voter=QUICK.demos_per_voter,
                   methods=QUICK.methods) == QUICK  # nothing else differs from quick
    assert not many.has_tour


def correctness(num_items, num_correct):
    return [1] * num_correct + [0] * (num_items - num_correct)


def test_dp_opt_beating_zero_shot_is_a_positive_effect_in_points_with_an_item_interval():
    # 200 items: DP-OPT right on 160, 0-shot on 120 (the same first 120): +20 points, every item pair agrees or DP wins
    correct = {"dp-opt": correctness(200, 160), "0-shot": correctness(200, 120)}
    claims = by_name(accuracy_claims("mpqa", 8.0, {"dp-opt": 0.8, "0-shot": 0.6}, correct, seed=0))
    claim = claims["mpqa: DP-OPT (eps=8) beats the 0-shot instruction"]
    assert claim.effect == pytest.approx(20.0)
    assert claim.direction_holds and claim.paper_value == "85.8 vs 84.5" and claim.measured_value == "80.0 vs 60.0"
    low, high = claim.interval
    # 40 of 200 paired differences are +1, the rest 0: the bootstrap mean is 100·Binomial(200, 0.2)/200, sd ≈ 2.8
    assert 14 < low < 20 < high < 26


def test_dp_opt_losing_to_zero_shot_is_negative_and_the_opt_margin_is_three_points():
    correct = {"dp-opt": correctness(100, 60), "0-shot": correctness(100, 70), "opt": correctness(100, 62)}
    claims = by_name(accuracy_claims("sst2", 8.0, {"dp-opt": 0.6, "0-shot": 0.7, "opt": 0.62}, correct, seed=1))
    zero_shot = claims["sst2: DP-OPT (eps=8) beats the 0-shot instruction"]
    assert zero_shot.effect == pytest.approx(-10.0) and not zero_shot.direction_holds
    assert zero_shot.interval[1] < 0  # 10 of 100 pairs lose, none win
    # 2 points below OPT is within the 3-point margin: effect 3 − 2 = +1
    opt = claims["sst2: DP-OPT loses at most 3 points to non-private OPT"]
    assert opt.effect == pytest.approx(1.0) and opt.direction_holds
    assert opt.interval[0] <= 1.0 <= opt.interval[1]


def test_claim_names_carry_no_measured_numbers_and_the_interval_is_seeded():
    def claims(dp_acc, seed):
        correct = {"dp-opt": correctness(50, int(50 * dp_acc)), "0-shot": correctness(50, 30)}
        return accuracy_claims("mpqa", 8.0, {"dp-opt": dp_acc, "0-shot": 0.6}, correct, seed)

    assert [c.name for c in claims(0.8, 0)] == [c.name for c in claims(0.5, 1)]
    assert claims(0.8, 3)[0].interval == claims(0.8, 3)[0].interval


def test_without_per_item_correctness_a_claim_has_an_effect_but_no_interval():
    (claim,) = accuracy_claims("trec", 8.0, {"dp-opt": 0.4, "0-shot": 0.3}, {}, seed=0)
    assert claim.effect == pytest.approx(10.0) and claim.interval is None


def test_privacy_claim_is_the_generation_margin_under_the_target():
    (claim,) = privacy_claims(8.0, {"generation_eps": 1.84, "total_eps": 8.0})
    assert claim.effect == pytest.approx(6.16) and claim.interval == pytest.approx((6.16, 6.16))
    assert claim.direction_holds
    (over,) = privacy_claims(8.0, {"generation_eps": 8.5, "total_eps": 8.5})
    assert over.effect == pytest.approx(-0.5) and not over.direction_holds
    assert privacy_claims(8.0, {}) == []


def test_correct_items_agree_with_accuracy(tiny_lm):
    model, tokenizer = tiny_lm
    examples = [Example(f"film number {i}", i % 2) for i in range(10)]
    flags = correct_items(model, tokenizer, "Classify.", examples, ("negative", "positive"), ScoringOptions(4))
    acc, count = accuracy(model, tokenizer, "Classify.", examples, ("negative", "positive"), ScoringOptions(4))
    assert flags.dtype == bool and flags.shape == (10,)
    assert count == int(flags.sum()) and acc == pytest.approx(flags.mean())


HEAVY = ("transformers", "diffusers", "peft", "auto_LiRPA", "datasets", "sklearn", "scipy", "auto_round",
         "llmcompressor", "matplotlib", "pandas")


def test_importing_the_experiments_loads_no_heavy_library():
    code = ("import sys, dp_opt.experiments as e; e.experiments(); "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


@pytest.mark.parametrize("name", DTYPES)
def test_every_declared_dtype_is_the_dtype_the_model_computes_in(name):
    assert {exp.dtypes for exp in experiments()} == {DTYPES}
    dtype = parse_dtype(name, torch.device("cpu"))
    model, tokenizer = load_lm("tiny-random", torch.device("cpu"), dtype)
    assert next(model.parameters()).dtype == dtype
    examples = [Example("good film", 1), Example("bad film", 0)]
    flags = correct_items(model, tokenizer, "Classify.", examples, ("negative", "positive"))  # runs in that dtype
    assert isinstance(flags, np.ndarray) and flags.shape == (2,)
