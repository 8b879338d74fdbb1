"""The RDP accountant of DP-OPT (Section 4 of the paper; the released code's ``utils/dp_accountant.py``).

Written from the formulas, without autodp (autodp 0.2.3.1 serves only as a test oracle):

1. each LimitedDomain query is modelled as an exponential mechanism with parameter eps0 (``em_rdp``) -- the
   paper's model -- or, with ``privacy_model="conservative"``, with parameter 2·eps0 (``query_epsilon`` derives it);
2. its delta0 failure is folded into the sampling rate, q' = q(1 - delta0)/(1 - q delta0), and the RDP is amplified
   by Poisson subsampling with the general bound of Zhu & Wang (2019) as autodp implements it
   (``poisson_subsampled_rdp``);
3. T queries compose additively in RDP, successes and failures (⊥) alike (``composed_rdp``);
4. RDP converts to (eps, delta1) by Balle et al. (2020), Thm. 21, minimised over integer orders 2..199
   (``rdp_to_eps``); the total delta is delta1 + T q delta0 (delta1 = delta0 by default, or
   total_delta − T q delta0 when the total is given, as the released ``compose_subsampled_LimitedDomain_to_approxDP``).

``LimitedDomainAccountant`` caches eps(T), answers "may I spend one more query?" and finds the largest T that fits
the target. The private selection (Gumbel DP-argmax on monotone counts) is pure eps-DP (``selection_epsilon``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

ORDERS = np.arange(2, 200)
# how one LimitedDomain query is charged: "paper" (eps0, the released accountant) or "conservative" (2·eps0)
LD_PRIVACY_MODELS = ("paper", "conservative")  # the RDP orders alpha the conversion minimises over
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


def query_epsilon(eps0: float, privacy_model: str = "paper") -> float:
    """The pure-DP parameter one LimitedDomain query is charged with: eps0 (paper) or 2·eps0 (conservative).

    Derivation of the conservative charge. LimitedDomain releases argmax_i (h_i + G_i) with G_i ~ Gumbel(1/eps0)
    (Algorithm 4, against a noisy threshold), i.e. it samples i with Pr ∝ exp(eps0·h_i): the exponential mechanism
    with utility h and Pr ∝ exp(eps·u / (2Δu)), eps = 2·eps0·Δu (McSherry & Talwar 2007, Thm. 6; Dwork & Roth 2014,
    Thm. 3.10; the Gumbel-max identity, Durfee & Rogers 2019, Lemma 4.2). Adding or removing one record changes the
    demos of one voter j (the partition is per record), so voter j's token can move from a to b: h_a − 1, h_b + 1,
    Δu = 1 in l∞ with l0 sensitivity 2 (the ``sensitivity=2`` of the threshold). For an output i,
    Pr_h[i] / Pr_h'[i] = exp(eps0 (h_i − h'_i)) · Z'/Z ≤ e^eps0 · e^eps0, so one query is 2·eps0-DP, and the
    threshold and the top-k̄ domain add delta0 (Durfee & Rogers 2019, Thm. 3). eps0-DP (the paper's charge) holds
    only for monotone changes (one count moves, in one direction: a voter added or removed, not changed). The
    conservative model feeds 2·eps0 into the same accountant (RDP of a pure-DP mechanism, subsampling,
    composition, conversion); it is a valid upper bound, not the tightest (the bounded-range view gives
    eps0²/2-zCDP, Cesar & Rogers 2021, which is not used here).
    """
    if privacy_model not in LD_PRIVACY_MODELS:
        raise ValueError(f"privacy_model={privacy_model!r}: must be one of {', '.join(LD_PRIVACY_MODELS)}")
    return 2.0 * eps0 if privacy_model == "conservative" else eps0


def _check_query_parameters(queries, q: float, eps0: float, delta0: float) -> None:
    """ValueError naming the first argument outside its domain (NaN fails every comparison, so it is caught)."""
    if isinstance(queries, bool) or not isinstance(queries, (int, np.integer)) or queries < 0:
        raise ValueError(f"queries={queries!r}: must be a non-negative integer")
    if not 0 < q <= 1:
        raise ValueError(f"q={q!r}: the sampling rate must be in (0, 1]")
    if not 0 < eps0 < math.inf:
        raise ValueError(f"eps0={eps0!r}: must be positive and finite")
    if not 0 < delta0 < 1:
        raise ValueError(f"delta0={delta0!r}: must be in (0, 1)")


def limited_domain_privacy(queries: int, q: float, eps0: float, delta0: float, total_delta: float | None = None,
                           privacy_model: str = "paper") -> tuple[float, float]:
    """(eps, delta) after ``queries`` LD queries at rate q (released code: compose_subsampled_LimitedDomain).

    Without ``total_delta``: eps at delta1 = delta0, delta = delta0 + T q delta0 (the released code's default,
    ``delta1=delta``). With it: eps at delta1 = total_delta − T q delta0 and delta = total_delta (the released
    code's ``total_delta`` form); ValueError when that delta1 is not positive.
    """
    _check_query_parameters(queries, q, eps0, delta0)
    accumulated = queries * q * delta0
    if total_delta is not None:
        if not 0 < total_delta < 1:
            raise ValueError(f"total_delta={total_delta!r}: must be in (0, 1)")
        if not total_delta - accumulated > 0:
            raise ValueError(f"total_delta={total_delta:g} is not above the {queries} queries' own delta "
                             f"T·q·delta0 = {accumulated:g}: nothing is left for the RDP conversion")
    query_eps = query_epsilon(eps0, privacy_model)
    if queries == 0:  # nothing released, nothing spent
        return 0.0, 0.0
    delta1 = delta0 if total_delta is None else total_delta - accumulated
    eps = rdp_to_eps(composed_rdp(queries, q, query_eps, delta0), delta1)
    return eps, delta1 + accumulated


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
    privacy_model: str = "paper"  # how a query is charged (``query_epsilon``); the budget stops on this model
    queries: int = 0
    _cache: dict[int, tuple[float, float]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        _check_query_parameters(0, self.q, self.eps0, self.delta0)
        query_epsilon(self.eps0, self.privacy_model)  # validates the model's name

    def privacy(self, queries: int | None = None) -> tuple[float, float]:
        """(eps, delta) after ``queries`` queries (default: those spent so far)."""
        count = self.queries if queries is None else queries
        if count not in self._cache:
            self._cache[count] = limited_domain_privacy(count, self.q, self.eps0, self.delta0,
                                                        privacy_model=self.privacy_model)
        return self._cache[count]

    def privacy_by_model(self, queries: int | None = None) -> dict[str, tuple[float, float]]:
        """(eps, delta) after ``queries`` queries under every model of ``LD_PRIVACY_MODELS`` (reported side by side)."""
        count = self.queries if queries is None else queries
        return {model: self.privacy(count) if model == self.privacy_model else
                limited_domain_privacy(count, self.q, self.eps0, self.delta0, privacy_model=model)
                for model in LD_PRIVACY_MODELS}

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
