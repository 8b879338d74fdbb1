"""Evidence for a paper's claim: an interval for the measured effect, and the verdict that follows from it.

A claim is reduced to one signed number per run, its **effect**, oriented so that a positive value is what the paper
claims (``AUC_after − AUC_before`` for "AUC rises"; ``error_baseline − error_method`` for "the method errs less";
for "X is within m of Y", ``m − |X − Y|``). The verdict reads a 95 % interval of the effect against zero:

* ``reproduced``: the interval lies above zero (the paper's direction holds, and no effect is excluded);
* ``contradicted``: the interval lies below zero (the opposite holds, and no effect is excluded);
* ``inconclusive``: the interval contains zero, or there is no interval (one seed, and no interval over test items).

Two intervals are used, each where it fits:

* **Over seeds** (``seed_evidence``): a Student-t interval of the mean effect over independent runs that differ only
  in their seed. Each run's effect already is a paired difference (both arms share the seed's data and
  initialisation), so the seeds are i.i.d. draws of it; with the 3-5 seeds a CPU affords, the t interval is the exact
  interval under normality and honest about small n, where a bootstrap over five values would be too narrow.
* **Over test items** (``bootstrap_interval``): where one run is all a budget allows, a percentile bootstrap of the
  statistic over the run's test items (images, sentences, prompts), resampled jointly across the arms it compares
  (``scipy.stats.bootstrap`` with ``paired=True``). Percentile rather than BCa, because AUCs and accuracies of small
  test sets are often degenerate (all resamples equal), where BCa is undefined.

With two or more seeds the seed interval is used (it contains the item sampling of each run, through the spread of
the seeds); with one seed, that run's item interval if it has one; otherwise there is no interval.

**Zero spread.** When every seed gives the same effect, the t interval has zero width, yet a measured quantity that
rounds to the same value on every seed (an accuracy on 25 images, a count of verified images) is no more certain for
it: the seeds' spread then says nothing about the sampling error. Two cases are told apart by the claim:

* an **exact** claim (``Claim.exact``) is a deterministic function of the config (parameter counts, multiply-adds,
  a privacy accountant's epsilon): its identical values are the answer, and the interval is that point;
* any other claim with zero spread falls back on the seeds' intervals over test items, taking their hull (the seeds
  agree, so each item interval is one view of the same sampling error; the hull is the conservative reading, right
  when the seeds share their test items); without item intervals there is no interval, and the verdict is
  ``inconclusive``.

Seeds "agree" when their effects are equal up to float rounding (relative 1e-9): a difference of two accuracies
that lose the same 2 of 360 items on every seed is 0.4429 in the last bits of one seed and not another's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
ROUNDING_RTOL = 1e-9  # one quantity computed on several seeds may differ in the last bits of its float
ROUNDING_ATOL = 1e-12  # the same near zero (0.3 − 0.3 is 0 or ±5.6e-17 depending on how it was summed)


class Verdict(StrEnum):
    REPRODUCED = "reproduced"
    CONTRADICTED = "contradicted"
    INCONCLUSIVE = "inconclusive"


def verdict_from_interval(low: float | None, high: float | None, null: float = 0.0) -> Verdict:
    """``reproduced`` if the interval lies above ``null``, ``contradicted`` if below, else ``inconclusive``."""
    if low is None or high is None or not (math.isfinite(low) or math.isfinite(high)) or math.isnan(low + high):
        return Verdict.INCONCLUSIVE
    if low > null:
        return Verdict.REPRODUCED
    if high < null:
        return Verdict.CONTRADICTED
    return Verdict.INCONCLUSIVE


@dataclass(frozen=True)
class Evidence:
    """An effect measured over ``n`` runs: mean, sample std, a ``confidence`` interval, its method and the verdict."""

    mean: float
    std: float
    n: int
    low: float | None
    high: float | None
    method: str
    verdict: Verdict
    values: tuple[float, ...] = ()

    def summary(self) -> str:
        """``mean ± std (n=N)``, as a report cell."""
        if self.n == 1:
            return f"{self.mean:.4g} (n=1)"
        return f"{self.mean:.4g} ± {self.std:.2g} (n={self.n})"

    def interval_text(self) -> str:
        if self.low is None or self.high is None:
            return "—"
        return f"[{self.low:.4g}, {self.high:.4g}]"


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (at least two)."""
    from scipy import stats

    data = np.asarray(values, dtype=float)
    if data.size < 2:
        raise ValueError("a t interval needs at least two values")
    mean = float(data.mean())
    sem = float(data.std(ddof=1)) / math.sqrt(data.size)
    if sem == 0.0:
        return mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2, df=data.size - 1)) * sem
    return mean - half, mean + half


def seed_evidence(values: Sequence[float], confidence: float = CONFIDENCE, *, exact: bool = False,
                  item_intervals: Sequence[tuple[float, float] | None] = ()) -> Evidence:
    """The evidence of per-seed effects: a t interval over seeds (n ≥ 2), else the one run's item interval.

    ``item_intervals`` are the seeds' intervals over test items, in the order of ``values``: the one run's interval
    for one seed, and the hull when the seeds agree exactly (zero spread) and the claim is not ``exact`` (see the
    module docstring). An ``exact`` claim's values agree when they differ only by float rounding (relative 1e-9).
    """
    data = [float(value) for value in values if value is not None and math.isfinite(float(value))]
    if not data:
        raise ValueError("no finite effect to aggregate")
    identical = len(set(data)) == 1  # not std == 0: the mean of equal floats can differ from them in the last bit
    # seeds that agree up to float rounding agree (exact or not): a t interval of width 1e-15 is zero spread
    agree = identical or bool(np.allclose(data, data[0], rtol=ROUNDING_RTOL, atol=ROUNDING_ATOL))
    mean = data[0] if identical else float(np.mean(data))
    std = 0.0 if agree else float(np.std(data, ddof=1))
    intervals = [tuple(float(b) for b in interval) for interval in item_intervals if interval is not None]
    if len(item_intervals) > len(data):
        raise ValueError(f"{len(item_intervals)} item intervals for {len(data)} finite effects: pass one per seed")
    if exact and agree:
        low = high = mean
        method = f"exact: a deterministic quantity, the same on {len(data)} seed(s)"
    elif len(data) >= 2 and not agree:
        low, high = t_interval(data, confidence)
        method = f"t interval over {len(data)} seeds"
    elif len(data) >= 2 and intervals and len(intervals) == len(data):
        low, high = min(i[0] for i in intervals), max(i[1] for i in intervals)
        method = f"{len(data)} seeds agree exactly: hull of their intervals over test items"
    elif len(data) >= 2:
        low = high = None
        method = f"{len(data)} seeds agree exactly: zero spread, no interval over test items"
    elif intervals and len(intervals) == len(data):
        low, high = intervals[0]
        method = "bootstrap over test items (one seed)"
    else:
        low = high = None
        method = "one seed, no interval"
    return Evidence(mean, std, len(data), low, high, method, verdict_from_interval(low, high), tuple(data))


def bootstrap_interval(statistic: Callable[..., float], *samples: Sequence | np.ndarray,
                       confidence: float = CONFIDENCE, n_resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*samples)``, the samples resampled together (paired by item).

    ``samples`` are equally long arrays whose i-th entries belong to test item i (e.g. the scores of one image
    under the pre-trained and the fine-tuned model, and its membership label). ``statistic`` takes them and returns
    one float. Seeded: the same inputs and seed give the same interval.
    """
    from scipy import stats

    arrays = [np.asarray(sample) for sample in samples]
    if not arrays or len({len(array) for array in arrays}) != 1 or len(arrays[0]) < 2:
        raise ValueError("bootstrap_interval needs equally long samples of at least two items")
    result = stats.bootstrap(tuple(arrays), lambda *resampled: statistic(*resampled), paired=True,
                             vectorized=False, confidence_level=confidence, n_resamples=n_resamples,
                             method="percentile", random_state=np.random.default_rng(seed))
    low, high = result.confidence_interval
    if math.isnan(low) or math.isnan(high):  # every resample gave the same value
        value = float(statistic(*arrays))
        return value, value
    return float(low), float(high)
