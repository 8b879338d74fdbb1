"""The tour config and the headline claims' signed effects, against hand-made points; lazy experiment imports."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
from certified_pruning.experiments import experiments
from certified_pruning.pruning_experiment import PruningConfig
from certified_pruning.pruning_report import claims, headline_claims
from repro_shared.errors import ConfigError
from repro_shared.evidence import Verdict, seed_evidence

HEAVY = ("transformers", "diffusers", "peft", "auto_LiRPA", "datasets", "sklearn", "scipy", "auto_round",
         "llmcompressor", "matplotlib", "pandas")


def _pruning():
    return next(e for e in experiments() if e.name == "pruning")


def test_tour_config_is_the_quick_model_on_one_method_with_more_images():
    experiment = _pruning()
    tour, quick = experiment.config("tour"), experiment.config("quick")
    assert experiment.has_tour and len(experiment.tour_seeds) >= 3 and experiment.dtypes == ()
    assert tour.methods == ("random",) == (tour.headline_method,) and tour.modes == ("fgsm",)
    assert tour.images >= 100 > quick.images and tour.rounds < quick.rounds
    # the network, data and optimiser are quick's; one 75 % random step replaces two 50 % ones, with fewer epochs
    same = ("dataset", "eps", "channels", "fc_width", "fgsm_learning_rate", "batch_size", "pgd_steps")
    assert all(getattr(tour, name) == getattr(quick, name) for name in same)
    assert 1 - (1 - tour.rate) ** (tour.rounds - 1) == 1 - (1 - quick.rate) ** 2 == 0.75
    assert tour.fgsm_epochs < quick.fgsm_epochs and tour.bab_domains < quick.bab_domains
    assert not any(e.has_tour for e in experiments() if e.name != "pruning")
    assert all(e.dtypes == () for e in experiments())  # ctx.dtype is never read: fp32 training, fp64 bounds
    with pytest.raises(ConfigError, match="headline_method"):
        replace(tour, headline_method="magic")
    with pytest.raises(ConfigError, match="bab_domains"):
        PruningConfig(bab_domains=0)


def _point(method, round_index, certified, unstable, correct, sparsity=0.0):
    """A point with per-item lists: `certified` over 10 images, `unstable` per image, `correct` over 20 test items."""
    return {"mode": "fgsm", "method": method, "round": round_index, "weight_sparsity": sparsity,
            "sparsity": sparsity, "images": len(certified), "certified_per_image": certified,
            "certified_accuracy": sum(certified) / len(certified), "ibp_unstable_per_image": unstable,
            "ibp_unstable": sum(unstable) / len(unstable), "test_correct": correct,
            "test_accuracy": sum(correct) / len(correct)}


DENSE = _point("dense", 0, [1, 0, 0, 0, 1, 0, 0, 1, 0, 0], [600] * 10, [1] * 18 + [0] * 2)
PRUNED = _point("random", 2, [1, 1, 1, 0, 1, 1, 0, 1, 1, 1], [300] * 5 + [200] * 5, [1] * 17 + [0] * 3, 0.75)


def test_headline_effects_are_oriented_as_the_paper_claims():
    gain, unstable, kept = headline_claims("fgsm", DENSE, PRUNED)
    # hand-computed: certified 0.3 → 0.8 = +50 points; unstable 600 → 250 = 1 − 250/600; test 0.90 → 0.85 = −5 + 1
    assert gain.effect == pytest.approx(50.0) and gain.paper_value == 24.5 and gain.direction_holds
    assert unstable.effect == pytest.approx(1 - 250 / 600) and unstable.direction_holds
    assert kept.effect == pytest.approx(-4.0) and kept.direction_holds is False
    for claim in (gain, unstable, kept):
        low, high = claim.interval
        assert low <= claim.effect <= high
    assert gain.interval[0] > 0  # 5 of 10 images gained, none lost
    # swap the arms: every effect flips sign (the slack of the accuracy claim moves with it)
    back_gain, back_unstable, back_kept = headline_claims("fgsm", PRUNED, DENSE)
    assert back_gain.effect == pytest.approx(-50.0) and back_unstable.effect < 0
    assert back_kept.effect == pytest.approx(6.0)


def test_headline_claims_keep_their_names_across_seeds_and_aggregate_to_verdicts():
    other = _point("random", 2, [0] * 10, [700] * 10, [1] * 20, 0.75)
    names = [c.name for c in headline_claims("fgsm", DENSE, PRUNED, seed=0)]
    assert names == [c.name for c in headline_claims("fgsm", DENSE, other, seed=1)]
    assert not any(char.isdigit() for name in names for char in name.replace("1 point", ""))
    gains = [headline_claims("fgsm", DENSE, PRUNED, seed=s)[0] for s in range(3)]
    # three seeds, all +50: equal values carry no spread, so the verdict rests on the image intervals
    assert seed_evidence([c.effect for c in gains]).verdict == Verdict.INCONCLUSIVE
    assert seed_evidence([c.effect for c in gains],
                         item_intervals=[c.interval for c in gains]).verdict == Verdict.REPRODUCED
    losses = [headline_claims("fgsm", DENSE, other, seed=s)[0] for s in range(3)]
    lost = seed_evidence([c.effect for c in losses], item_intervals=[c.interval for c in losses])
    # −30 points on 10 images, 3 of them certified dense: a resample without them is likely enough (0.7^10 ≈ 2.8 %)
    # that the interval reaches zero, so this is not yet a contradiction
    assert lost.mean == pytest.approx(-30.0) and lost.high == pytest.approx(0.0) and lost.low < -30.0
    assert lost.verdict == Verdict.INCONCLUSIVE


def test_a_tour_run_reports_only_the_headline_claims_a_grid_run_both():
    first_round = _point("random", 1, [1, 1, 0, 0, 1, 0, 0, 1, 0, 0], [400] * 10, [1] * 18 + [0] * 2, 0.5)
    tour = claims([DENSE, first_round, PRUNED], "random")
    assert [c.effect for c in tour] == pytest.approx([50.0, 1 - 250 / 600, -4.0])  # the highest sparsity counts
    imp = _point("imp", 1, [1] * 10, [500] * 10, [1] * 20, 0.5)
    grid = claims([DENSE, first_round, PRUNED, imp], "random")
    assert len(grid) == 3 + 5 and grid[:3] == tour
    gain = next(c for c in grid if "largest certified-accuracy gain" in c.name)
    assert gain.effect == pytest.approx(70.0)  # IMP's 1.0 against dense 0.3


def test_importing_the_experiments_pulls_in_no_heavy_library():
    code = ("import sys; from certified_pruning.experiments import experiments; experiments(); "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
