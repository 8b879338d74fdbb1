"""LimitedDomain, the DP-Argmax and the partition against their definitions (fixed seeds)."""

import math
from collections import Counter

import numpy as np
import pytest
from dp_opt.mechanisms import (
    BOTTOM,
    LimitedDomainParams,
    gumbel_argmax,
    limited_domain_top1,
    partition_sample,
    sample_groups,
)

DRAWS = 20_000
ZERO = "zero-vote token"


def ld_distribution(histogram, params):
    """Algorithm 4 in closed form: the argmax of Gumbel(1/eps0)-noised scores is a softmax of eps0·score over the
    top-k̄ voted tokens, the threshold h_(k̄+1) + margin, and the k̄ - #voted zero-count domain members."""
    ranked = sorted(histogram.items(), key=lambda kv: -kv[1])
    domain = ranked[: params.k_bar]
    after = ranked[params.k_bar][1] if len(ranked) > params.k_bar else 0
    weights = {token: math.exp(params.eps0 * count) for token, count in domain}
    weights[BOTTOM] = math.exp(params.eps0 * (after + params.threshold_margin))
    weights[ZERO] = (params.k_bar - len(domain)) * 1.0
    total = sum(weights.values())
    return {key: w / total for key, w in weights.items()}


def empirical(histogram, params, seed):
    rng = np.random.default_rng(seed)
    outcomes = Counter()
    for _ in range(DRAWS):
        token = limited_domain_top1(histogram, params, rng)
        outcomes[ZERO if token is not BOTTOM and token not in histogram else token] += 1
    return {key: count / DRAWS for key, count in outcomes.items()}


@pytest.mark.parametrize("histogram", [
    {11: 4, 22: 3, 33: 1},  # fewer than k̄ voted: zero-count members take part
    {t: c for t, c in zip(range(100, 112), (9, 8, 8, 3, 2, 2, 1, 1, 1, 1, 1, 1), strict=True)},  # 12 voted
])
def test_limited_domain_matches_its_definition(histogram):
    params = LimitedDomainParams(eps0=1.0, delta0=0.1, vocab_size=500, k_bar=10)
    expected = ld_distribution(histogram, params)
    observed = empirical(histogram, params, seed=0)
    for key, p in expected.items():
        tolerance = 5 * math.sqrt(p * (1 - p) / DRAWS) + 1e-9
        assert abs(observed.get(key, 0.0) - p) <= tolerance, (key, observed.get(key), p)
    assert set(observed) <= set(expected)


def test_threshold_margin_formula():
    params = LimitedDomainParams(eps0=1.8, delta0=5e-7, vocab_size=32000)
    assert params.threshold_margin == pytest.approx(1 + math.log(2 / 5e-7) / 1.8)
    assert params.threshold_margin == pytest.approx(9.445, abs=1e-3)


def test_bottom_probability_follows_the_threshold():
    """P(⊥) grows as delta0 shrinks (higher bar) and vanishes when the top count clears the bar by far."""
    histogram = {5: 6, 6: 2}
    rates = []
    for delta0 in (0.5, 0.05, 0.005):
        params = LimitedDomainParams(eps0=1.0, delta0=delta0, vocab_size=500)
        observed = empirical(histogram, params, seed=1)
        assert observed.get(BOTTOM, 0.0) == pytest.approx(ld_distribution(histogram, params)[BOTTOM], abs=0.02)
        rates.append(observed.get(BOTTOM, 0.0))
    assert rates[0] < rates[1] < rates[2]
    clear = empirical({5: 40}, LimitedDomainParams(eps0=1.8, delta0=5e-7, vocab_size=500), seed=2)
    assert clear.get(BOTTOM, 0.0) == 0.0 and clear[5] == 1.0


def test_gumbel_argmax_is_the_exponential_mechanism():
    scores, eps = np.array([3.0, 2.0, 0.0]), 1.0
    rng = np.random.default_rng(3)
    counts = Counter(gumbel_argmax(scores, eps, rng) for _ in range(DRAWS))
    expected = np.exp(eps * scores) / np.exp(eps * scores).sum()
    for index, p in enumerate(expected):
        assert abs(counts[index] / DRAWS - p) <= 5 * math.sqrt(p * (1 - p) / DRAWS)


def neighbours_differ(sequential: bool, seed: int) -> int:
    """Groups that change when one sampled record is removed (its draw forced to 'not sampled')."""
    rng = np.random.default_rng(seed)
    n, groups, size = 400, 10, 4
    q = groups * size / n
    uniforms, draws = rng.random(n), rng.integers(groups, size=n)
    full = partition_sample(uniforms, draws, q, groups, size, sequential)
    sampled = np.flatnonzero(uniforms < q)
    removed = uniforms.copy()
    removed[sampled[0]] = 1.0  # the first sampled record leaves the dataset
    neighbour = partition_sample(removed, draws, q, groups, size, sequential)
    return sum(not np.array_equal(a, b) for a, b in zip(full, neighbour, strict=False))


def test_privacy_correct_partition_changes_at_most_one_group():
    assert all(neighbours_differ(False, seed) <= 1 for seed in range(50))


def test_released_sequential_partition_shifts_many_groups():
    assert max(neighbours_differ(True, seed) for seed in range(50)) >= 5


def test_partition_is_disjoint_and_covers_the_sample():
    rng = np.random.default_rng(4)
    groups = sample_groups(1000, 0.05, 10, 5, rng)
    members = np.concatenate(groups)
    assert len(members) == len(set(members.tolist()))
    assert 20 < len(members) < 80  # Binomial(1000, 0.05)
