"""The RDP accountant of DP-OPT (Section 4 of the paper; the released code's ``utils/dp_accountant.py``).

Written from the formulas, without autodp (autodp 0.2.3.1 serves only as a test oracle):

1. each LimitedDomain query is modelled as an exponential mechanism with parameter eps0 (``em_rdp``);
2. its delta0 failure is folded into the sampling rate, q' = q(1 - delta0)/(1 - q delta0), and the RDP is amplified
   by Poisson subsampling with the general bound of Zhu & Wang (2019) as autodp implements it
   (``poisson_subsampled_rdp``);
3. T queries compose additively in RDP, successes and failures (⊥) alike (``composed_rdp``);
4. RDP converts to (eps, delta1) by Balle et al. (2020), Thm. 21, minimised over integer orders 2..199
   (``rdp_to_eps``); the total delta is delta1 + T q delta0.

``LimitedDomainAccountant`` caches eps(T), answers "may I spend one more query?" and finds the largest T that fits
the target. The private selection (Gumbel DP-argmax on monotone counts) is pure eps-DP (``selection_epsilon``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

ORDERS = np.arange(2, 200)  # the RDP orders alpha the conversion minimises over
_BINOMIAL_TABLE_ORDERS = 100  # autodp evaluates binomials from a table up to this order, by lgamma beyond


def em_rdp(alpha: float, eps0: float) -> float:
    """RDP of the eps0 exponential mechanism (Remark 3.4 of arXiv 1605.02065, as the released code); inf: 2 eps0."""
    if math.isinf(alpha):
        return 2.0 * eps0
    zcdp_bound = alpha * eps0**2 / 2.0
    # log[(sinh(a e) - sinh((a-1) e)) / sinh(e)] in log space: sinh(x) = e^x (1 - e^{-2x}) / 2
    log_numerator = _log_sinh_difference(alpha * eps0, (alpha - 1) * eps0)
    pure_bound = (log_numerator - _log_sinh(eps0)) / (alpha - 1)
    return min(zcdp_bound, pure_bound)


def _log_sinh(x: float) -> float:
    return x + math.log1p(-math.exp(-2 * x)) - math.log(2)


def _log_sinh_difference(a: float, b: float) -> float:
    """log(sinh(a) - sinh(b)) for a > b > 0, stable for large arguments."""
    # sinh(a) - sinh(b) = (e^a - e^b)/2 - (e^-a - e^-b)/2
    log_pos = a + math.log1p(-math.exp(b - a)) - math.log(2)
    correction = (math.exp(-b) - math.exp(-a)) / 2  # positive, tiny next to the first term for large a
    return log_pos + math.log1p(correction * math.exp(-log_pos))


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    if math.isinf(top):
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


def _log_binomial(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def poisson_subsampled_rdp(alpha: int, q: float, eps0: float) -> float:
    """RDP at integer order alpha of the eps0-EM Poisson-subsampled at rate q (Zhu & Wang 2019, general bound)."""
    if q == 0:
        return 0.0
    if q == 1.0:
        return em_rdp(alpha, eps0)
    # the pure-DP bound of the subsampled mechanism caps every order (autodp's subsample_epsdelta)
    eps_inf = math.log1p(q * math.expm1(em_rdp(math.inf, eps0)))
    log_q, log_1mq = math.log(q), math.log1p(-q)
    terms = [(alpha - 1) * log_1mq + math.log1p((alpha - 1) * q)]
    # j = 2 uses (j - 1) RDP(j); j >= 3 uses j RDP(j + 1): the indexing of autodp's compose_poisson_subsampled_
    # mechanisms1, which the paper's numbers come from (kept verbatim so the accountant matches them)
    terms.append(1 * em_rdp(2, eps0) + 2 * log_q + (alpha - 2) * log_1mq + _log_binomial(alpha, 2))
    for j in range(3, alpha + 1):
        terms.append(j * em_rdp(j + 1, eps0) + j * log_q + (alpha - j) * log_1mq + _log_binomial(alpha, j))
    return min(eps_inf, _logsumexp(terms) / (alpha - 1))


def effective_sampling_rate(q: float, delta0: float) -> float:
    """q' = q(1 - delta0)/(1 - q delta0): the LD failure event folded into the sampling (released code)."""
    return q * (1 - delta0) / (1 - q * delta0)


@lru_cache(maxsize=256)
def _single_query_rdp(q: float, eps0: float, delta0: float) -> tuple[float, ...]:
    rate = effective_sampling_rate(q, delta0)
    return tuple(poisson_subsampled_rdp(int(alpha), rate, eps0) for alpha in ORDERS)


def composed_rdp(queries: int, q: float, eps0: float, delta0: float) -> np.ndarray:
    """RDP curve over ``ORDERS`` of ``queries`` subsampled LimitedDomain queries (additive composition)."""
    return queries * np.asarray(_single_query_rdp(q, eps0, delta0))


def rdp_to_eps(rdp: np.ndarray, delta: float) -> float:
    """(eps, delta) from an RDP curve by Balle et al. 2020, Theorem 21 (BBGHS), minimised over ``ORDERS``."""
    alphas = ORDERS.astype(float)
    eps = rdp + np.log((alphas - 1) / alphas) - (math.log(delta) + np.log(alphas)) / (alphas - 1)
    return float(np.min(np.maximum(eps, 0.0)))


def limited_domain_privacy(queries: int, q: float, eps0: float, delta0: float) -> tuple[float, float]:
    """(eps, delta) after ``queries`` LD queries at rate q (released code: compose_subsampled_LimitedDomain)."""
    if queries == 0:
        return 0.0, 0.0
    eps = rdp_to_eps(composed_rdp(queries, q, eps0, delta0), delta0)
    return eps, delta0 + queries * q * delta0


def selection_epsilon(eps: float) -> float:
    """Privacy of the DP-argmax over monotone correct-counts (sensitivity 1, Pr ∝ exp(eps·count)): pure eps-DP."""
    return eps


@dataclass
class LimitedDomainAccountant:
    """Budget of Algorithm 2's LD queries: eps(T) cached; ``can_spend`` refuses a query that would exceed the target."""

    q: float
    eps0: float
    delta0: float
    target_eps: float
    target_delta: float
    queries: int = 0
    _cache: dict[int, tuple[float, float]] = field(default_factory=dict, repr=False)

    def privacy(self, queries: int | None = None) -> tuple[float, float]:
        """(eps, delta) after ``queries`` queries (default: those spent so far)."""
        count = self.queries if queries is None else queries
        if count not in self._cache:
            self._cache[count] = limited_domain_privacy(count, self.q, self.eps0, self.delta0)
        return self._cache[count]

    def fits(self, queries: int) -> bool:
        eps, delta = self.privacy(queries)
        return eps <= self.target_eps and delta <= self.target_delta

    def can_spend(self) -> bool:
        """Whether one more query keeps (eps, delta) within the target (checked *before* the query is made)."""
        return self.fits(self.queries + 1)

    def spend(self) -> tuple[float, float]:
        """Record one query (success or ⊥); refuses to exceed the target."""
        if not self.can_spend():
            raise BudgetExhausted(f"query {self.queries + 1} would exceed eps={self.target_eps}, "
                                  f"delta={self.target_delta}")
        self.queries += 1
        return self.privacy()

    def max_queries(self, upper: int = 100_000) -> int:
        """The largest T with eps(T) <= target and delta(T) <= target (eps is monotone in T: bisection)."""
        low, high = 0, 1
        while high <= upper and self.fits(high):
            low, high = high, high * 2
        high = min(high, upper + 1)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if self.fits(middle) else (low, middle)
        return low


class BudgetExhausted(RuntimeError):
    """One more LimitedDomain query would exceed the privacy target."""
