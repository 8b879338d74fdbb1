"""Intervals and verdicts (repro_shared.evidence) and claims aggregated over seeds (repro_shared.aggregate)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from repro_shared.aggregate import check_same_config, group_by_config, read_run, summarise_claims
from repro_shared.errors import ConfigError
from repro_shared.evidence import Verdict, bootstrap_interval, seed_evidence, t_interval, verdict_from_interval
from repro_shared.experiments import Claim


def test_t_interval_matches_the_hand_computed_value() -> None:
    # mean 2, sample std 1, n 3: half-width t(0.975, 2) / sqrt(3); with 2 degrees of freedom the t quantile has the
    # closed form (2p - 1) / sqrt(2 p (1 - p))
    low, high = t_interval([1.0, 2.0, 3.0])
    half = (2 * 0.975 - 1) / math.sqrt(2 * 0.975 * 0.025) / math.sqrt(3)
    assert low == pytest.approx(2 - half, abs=1e-12) and high == pytest.approx(2 + half, abs=1e-12)


@pytest.mark.parametrize(("true_effect", "expected"), [
    (1.0, Verdict.REPRODUCED), (0.0, Verdict.INCONCLUSIVE), (-1.0, Verdict.CONTRADICTED)])
def test_seed_verdicts_follow_a_known_effect(true_effect: float, expected: Verdict) -> None:
    rng = np.random.default_rng(7)
    effects = true_effect + 0.5 * rng.standard_normal(5)  # five seeds of a noisy measurement
    evidence = seed_evidence(effects)
    assert evidence.verdict is expected
    assert evidence.n == 5 and evidence.low < evidence.mean < evidence.high
    assert evidence.std == pytest.approx(float(np.std(effects, ddof=1)))


def test_no_effect_is_mostly_inconclusive_and_the_interval_has_its_coverage() -> None:
    """Under no effect a 95 % interval excludes zero in about 5 % of experiments (binomial bound, fixed seed)."""
    rng = np.random.default_rng(0)
    wrong = sum(seed_evidence(rng.standard_normal(4)).verdict is not Verdict.INCONCLUSIVE for _ in range(2000))
    assert 60 <= wrong <= 140  # 100 expected; ±4.4 sd of Binomial(2000, 0.05)


def test_one_seed_uses_the_item_interval_or_is_inconclusive() -> None:
    assert seed_evidence([0.3], item_intervals=[(0.1, 0.5)]).verdict is Verdict.REPRODUCED
    assert seed_evidence([0.3], item_intervals=[(-0.1, 0.5)]).verdict is Verdict.INCONCLUSIVE
    alone = seed_evidence([0.3])
    assert alone.verdict is Verdict.INCONCLUSIVE and alone.low is None and alone.std == 0.0


def test_identical_seeds_give_a_point_interval_only_for_an_exact_claim() -> None:
    exact = seed_evidence([2.0, 2.0, 2.0], exact=True)
    assert (exact.low, exact.high, exact.verdict) == (2.0, 2.0, Verdict.REPRODUCED)
    assert seed_evidence([0.0, 0.0], exact=True).verdict is Verdict.INCONCLUSIVE  # a point at zero excludes nothing
    assert seed_evidence([1.5], exact=True).verdict is Verdict.REPRODUCED  # one seed of a deterministic quantity
    measured = seed_evidence([2.0, 2.0, 2.0])  # a sampled quantity that happened to round alike on every seed
    assert measured.low is None and measured.verdict is Verdict.INCONCLUSIVE and "zero spread" in measured.method
    varying = seed_evidence([1.0, 2.0, 3.0], exact=True)  # "exact" values that vary are not exact: t interval
    assert (varying.low, varying.high) == t_interval([1.0, 2.0, 3.0])
    rounded = seed_evidence([7.359, 7.359 + 2e-15, 7.359 - 1e-15], exact=True)  # one quantity, float rounding apart
    assert rounded.low == rounded.high == rounded.mean and rounded.std == 0.0 and "exact" in rounded.method
    near = seed_evidence([7.359, 7.359 + 1e-6], exact=True)  # farther apart than rounding: measured, t interval
    assert near.low < near.high and near.method.startswith("t interval")
    # a sampled effect that agrees only up to rounding (the same 2 of 360 items lost on every seed, differenced in
    # another order) is zero spread too: the hull of the item intervals, not a t interval of width 1e-14
    lost = [1 - 100 * (kept / 360 - (kept - 2) / 360) for kept in (356, 354, 357)]  # 1 point minus the loss
    assert len(set(lost)) > 1 and max(lost) - min(lost) < 1e-9
    hull = seed_evidence(lost, item_intervals=[(-0.95, 1.84), (-1.23, 1.84), (-0.95, 1.84)])
    assert (hull.low, hull.high, hull.verdict, hull.std) == (-1.23, 1.84, Verdict.INCONCLUSIVE, 0.0)
    assert "agree exactly" in hull.method
    assert seed_evidence([0.0, 5.6e-17, -5.6e-17]).low is None  # rounding apart at zero: no spread information


def test_item_intervals_are_one_per_seed() -> None:
    with pytest.raises(ValueError, match="one per seed"):
        seed_evidence([0.3], item_intervals=[(0.1, 0.5), (0.2, 0.4)])


def test_identical_seeds_fall_back_on_the_hull_of_their_item_intervals() -> None:
    evidence = seed_evidence([2.0, 2.0, 2.0], item_intervals=[(1.0, 3.0), (0.5, 2.5), (1.5, 3.5)])
    assert (evidence.low, evidence.high, evidence.verdict) == (0.5, 3.5, Verdict.REPRODUCED)
    wide = seed_evidence([2.0, 2.0], item_intervals=[(1.0, 3.0), (-0.5, 4.0)])
    assert (wide.low, wide.high, wide.verdict) == (-0.5, 4.0, Verdict.INCONCLUSIVE)
    missing = seed_evidence([2.0, 2.0], item_intervals=[(1.0, 3.0), None])  # one seed has none: no interval
    assert missing.low is None and missing.verdict is Verdict.INCONCLUSIVE
    spread = seed_evidence([1.0, 2.0, 3.0], item_intervals=[(5.0, 6.0)] * 3)  # seeds differ: the t interval rules
    assert (spread.low, spread.high) == t_interval([1.0, 2.0, 3.0])


def test_a_coarse_measurement_that_rounds_alike_no_longer_reads_reproduced() -> None:
    """"A is within 1 point of B" on 100 test items, where A is really 2 points below B: the claim is false.

    Accuracies move in 1-point steps, so seeds can agree on a difference of 0, whose slack 1 − |0| = 1 read through a
    point interval says "reproduced". Simulated (fixed seed) and conditioned on that event (three seeds, each with a
    difference of exactly 0): the point interval calls it reproduced 30 times of 30, the item intervals' hull at
    about a 95 % interval's error rate (2 of 30 here; at most 3 allowed).
    """
    rng = np.random.default_rng(11)
    slack = lambda a, b: 1.0 - abs(100 * (float(np.mean(b)) - float(np.mean(a))))  # noqa: E731

    def seed_with_equal_accuracy() -> tuple[float, tuple[float, float]]:
        while True:
            discordant = rng.random(100) < 0.05  # items the arms may disagree on; B is right on 70 %, A on 30 %
            a = np.where(discordant, rng.random(100) < 0.3, True).astype(float)
            b = np.where(discordant, rng.random(100) < 0.7, True).astype(float)
            if a.sum() == b.sum():
                return slack(a, b), bootstrap_interval(slack, a, b, n_resamples=200, seed=int(rng.integers(1000)))

    false_reproduced = 0
    for _ in range(30):
        seeds = [seed_with_equal_accuracy() for _ in range(3)]
        effects = [effect for effect, _ in seeds]
        assert effects == [1.0] * 3 and t_interval(effects) == (1.0, 1.0)  # the old reading: reproduced
        evidence = seed_evidence(effects, item_intervals=[interval for _, interval in seeds])
        false_reproduced += evidence.verdict is Verdict.REPRODUCED
    assert false_reproduced <= 3


def test_verdict_from_interval_edges() -> None:
    assert verdict_from_interval(0.0, 1.0) is Verdict.INCONCLUSIVE  # touching zero excludes nothing
    assert verdict_from_interval(-2.0, -0.1) is Verdict.CONTRADICTED
    assert verdict_from_interval(float("nan"), 1.0) is Verdict.INCONCLUSIVE
    assert verdict_from_interval(None, None) is Verdict.INCONCLUSIVE


def test_bootstrap_interval_is_paired_seeded_and_covers_the_effect() -> None:
    rng = np.random.default_rng(1)
    before = rng.standard_normal(200)
    after = before + 0.3 + 0.1 * rng.standard_normal(200)  # a small shift, large item-to-item spread
    mean_gain = lambda a, b: float(np.mean(b - a))  # noqa: E731
    low, high = bootstrap_interval(mean_gain, before, after, seed=3)
    assert low < 0.3 < high and high - low < 0.1  # pairing removes the item spread; unpaired would be ~0.55 wide
    assert bootstrap_interval(mean_gain, before, after, seed=3) == (low, high)
    assert bootstrap_interval(lambda a: float(np.mean(a)), np.ones(10)) == (1.0, 1.0)  # degenerate: a point
    with pytest.raises(ValueError):
        bootstrap_interval(mean_gain, before, after[:10])


def test_claim_effect_sets_the_direction_and_checks_the_interval() -> None:
    assert Claim("c", 1, 2, effect=-0.5).direction_holds is False
    assert Claim("c", 1, 2, effect=0.5, interval=(0.1, 0.9)).interval == (0.1, 0.9)
    with pytest.raises(ValueError):
        Claim("c", 1, 2, effect=0.5, interval=(0.9, 0.1))


def _run(folder: Path, seed: int, effect: float | None, config: dict | None = None, name: str = "c") -> Path:
    folder.mkdir(parents=True)
    claims = [{"name": name, "paper_value": "up", "measured_value": effect, "direction_holds": None,
               "effect": effect, "interval": None}]
    (folder / "results.json").write_text(json.dumps(
        {"experiment": "pkg:exp", "scale": "tour", "seed": seed, "claims": claims}))
    (folder / "config.yaml").write_text(yaml.safe_dump(
        {"experiment": "pkg:exp", "scale": "tour", "seed": seed, "config": config or {"n": 1}}))
    (folder / "status.json").write_text('{"state": "complete"}')
    return folder


def test_aggregation_over_seeds_matches_seed_evidence(tmp_path: Path) -> None:
    effects = [0.9, 1.1, 1.3]
    runs = [read_run(_run(tmp_path / f"s{seed}", seed, effect)) for seed, effect in enumerate(effects)]
    [summary] = summarise_claims(runs)
    assert summary.evidence == seed_evidence(effects)
    assert summary.verdict == "reproduced" and summary.runs == 3


def _with_claim_fields(folder: Path, **fields: object) -> Path:
    results = json.loads((folder / "results.json").read_text())
    results["claims"][0].update(fields)
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_aggregation_reads_exact_claims_and_item_intervals(tmp_path: Path) -> None:
    exact = [read_run(_with_claim_fields(_run(tmp_path / f"e{seed}", seed, 1.4), exact=True)) for seed in range(3)]
    [summary] = summarise_claims(exact)
    assert (summary.evidence.low, summary.evidence.high, summary.verdict) == (1.4, 1.4, "reproduced")
    intervals = [(0.5, 1.5), (0.2, 1.9), (0.6, 1.2)]
    sampled = [read_run(_with_claim_fields(_run(tmp_path / f"s{seed}", seed, 1.0), interval=list(interval)))
               for seed, interval in enumerate(intervals)]
    [summary] = summarise_claims(sampled)
    assert (summary.evidence.low, summary.evidence.high) == (0.2, 1.9) and summary.verdict == "reproduced"
    bare = [read_run(_run(tmp_path / f"b{seed}", seed, 1.0)) for seed in range(3)]  # old runs: no field, no interval
    assert summarise_claims(bare)[0].verdict == "inconclusive"


def test_aggregation_refuses_runs_of_different_configs(tmp_path: Path) -> None:
    a = read_run(_run(tmp_path / "a", 0, 1.0, {"n": 1, "model": {"hidden": 8}}))
    b = read_run(_run(tmp_path / "b", 1, 1.0, {"n": 1, "model": {"hidden": 16}}))
    with pytest.raises(ConfigError, match=r"model\.hidden 8 vs 16"):
        check_same_config([a, b])
    with pytest.raises(ConfigError):
        summarise_claims([a, b])
    groups = group_by_config([a, b])  # grouping keeps them apart instead
    assert [[run.path.name for run in group] for group in groups] == [["a"], ["b"]]
