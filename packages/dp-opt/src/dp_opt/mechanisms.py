"""The DP mechanisms of DP-OPT, written from the paper and the released code (``utils/dp.py``, ``utils/data.py``).

- ``limited_domain_top1``: LimitedDomain (Durfee & Rogers 2019; the paper's Algorithm 4) with Gumbel noise.
- ``gumbel_argmax``: the DP-Argmax for private prompt selection (Algorithm 1, last step).
- ``sample_groups`` / ``partition_sample``: Algorithm 2's fresh Poisson sample partitioned into J disjoint groups.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# ⊥: LimitedDomain found no token whose noisy count beats the noisy threshold
BOTTOM = None


@dataclass(frozen=True)
class LimitedDomainParams:
    """Algorithm 4's parameters: domain size k̄, eps0, delta0, vocabulary size d and l0 sensitivity (2 in the code)."""

    eps0: float
    delta0: float
    vocab_size: int
    k_bar: int = 10
    sensitivity: int = 2

    @property
    def threshold_margin(self) -> float:
        """1 + ln(min(sens, k̄, d - k̄)/delta0)/eps0: how far the threshold sits above the (k̄+1)-th count."""
        return 1.0 + math.log(min(self.sensitivity, self.k_bar, self.vocab_size - self.k_bar) / self.delta0) / self.eps0


def limited_domain_top1(histogram: Mapping[int, int], params: LimitedDomainParams,
                        rng: np.random.Generator) -> int | None:
    """Algorithm 4, LimitedDomain(h; k̄, eps0, delta0) with Gumbel(1/eps0) noise: a token id, or ⊥ (None).

    The domain is the top-k̄ of the histogram; its members with zero votes (when fewer than k̄ tokens got votes) are
    simulated by the max of their noisy zero counts, and win with a uniformly random zero-vote token.
    """
    scale = 1.0 / params.eps0
    ranked = sorted(histogram.items(), key=lambda item: (-item[1], item[0]))
    ranked = [(token, count) for token, count in ranked if count > 0]
    if params.k_bar >= params.vocab_size:  # PATE-like: the whole vocabulary is the domain, no threshold
        raise ValueError("k_bar must be smaller than the vocabulary size")
    count_after_domain = ranked[params.k_bar][1] if len(ranked) > params.k_bar else 0
    noisy_threshold = count_after_domain + params.threshold_margin + rng.gumbel(0.0, scale)
    domain = ranked[: params.k_bar]
    zero_members = params.k_bar - len(domain)
    zero_wins = False
    if zero_members > 0:
        noisy_zero = float(np.max(rng.gumbel(0.0, scale, size=zero_members)))
        if noisy_zero >= noisy_threshold:
            noisy_threshold, zero_wins = noisy_zero, True
    noisy_counts = np.array([count for _, count in domain], dtype=float) + rng.gumbel(0.0, scale, size=len(domain))
    if len(domain) and noisy_counts.max() >= noisy_threshold:
        return domain[int(np.argmax(noisy_counts))][0]
    if zero_wins:
        return _random_unvoted_token(histogram, params.vocab_size, rng)
    return BOTTOM


def _random_unvoted_token(histogram: Mapping[int, int], vocab_size: int, rng: np.random.Generator) -> int:
    voted = {token for token, count in histogram.items() if count > 0}
    while True:  # rejection sampling: at most k̄ tokens are voted, out of a vocabulary of thousands
        token = int(rng.integers(vocab_size))
        if token not in voted:
            return token


def gumbel_argmax(scores: np.ndarray, eps: float, rng: np.random.Generator, sensitivity: float = 1.0) -> int:
    """DP-Argmax (Algorithm 1): argmax(scores + Gumbel(sens/eps)), i.e. Pr[i] ∝ exp(eps·score_i/sens)."""
    noisy = np.asarray(scores, dtype=float) + rng.gumbel(0.0, sensitivity / eps, size=len(scores))
    return int(np.argmax(noisy))


def poisson_subsample(num_records: int, q: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the records kept by Poisson sampling: each record independently with probability q."""
    return np.flatnonzero(rng.random(num_records) < q)


def partition_sample(keep_uniforms: np.ndarray, group_draws: np.ndarray, q: float, num_groups: int,
                     group_size: int, sequential: bool = False) -> list[np.ndarray]:
    """Algorithm 2's Poisson sample S partitioned into J disjoint groups S_1..S_J, from per-record draws.

    Record i is sampled when ``keep_uniforms[i] < q``. A record absent from the dataset is one that is never sampled
    (uniform 1.0), so neighbouring datasets share every other record's draws.

    Privacy-correct (default): a sampled record joins group ``group_draws[i]``, drawn independently of all other
    records, so adding or removing one record changes exactly one group. Group sizes are Binomial, with mean m when
    q = J·m/n.

    ``sequential=True`` is the released code: the sample, in dataset order, is cut into consecutive blocks of m and
    records beyond J·m are dropped. One added record then shifts every later group, so the one-vote sensitivity that
    the analysis assumes does not hold.
    """
    kept = keep_uniforms < q
    if sequential:
        sampled = np.flatnonzero(kept)
        return [sampled[j * group_size:(j + 1) * group_size] for j in range(num_groups)]
    return [np.flatnonzero(kept & (group_draws == j)) for j in range(num_groups)]


def sample_groups(num_records: int, q: float, num_groups: int, group_size: int, rng: np.random.Generator,
                  sequential: bool = False) -> list[np.ndarray]:
    """A fresh Poisson sample of the records, partitioned into J groups (see ``partition_sample``)."""
    keep_uniforms = rng.random(num_records)
    group_draws = rng.integers(num_groups, size=num_records)
    return partition_sample(keep_uniforms, group_draws, q, num_groups, group_size, sequential)
