"""The accountant against the released code's numbers (autodp 0.2.3.1), and its budget rules."""

import itertools
import math

import pytest
from dp_opt.accounting import (
    BudgetExhausted,
    LimitedDomainAccountant,
    em_rdp,
    limited_domain_privacy,
    selection_epsilon,
)

EPS0, DELTA0 = 1.8, 5e-7
# (q, T) -> (eps, delta) from compose_subsampled_LimitedDomain_to_approxDP(1.8, 5e-7, q, T, delta1=5e-7)
REFERENCE = {
    (1.0, 1): (1.8407, 1.0e-6), (1.0, 10): (18.0338, 5.5e-6), (1.0, 100): (178.2752, 5.05e-5),
    (1.0, 1000): (1664.65, 5.005e-4),
    (0.05, 1): (0.2670, 5.25e-7), (0.05, 10): (2.2964, 7.5e-7), (0.05, 100): (8.8613, 3.0e-6),
    (0.05, 1000): (23.6046, 2.55e-5),
    (0.0153728, 1): (0.1159, 5.077e-7), (0.0153728, 10): (0.7852, 5.769e-7), (0.0153728, 100): (2.5323, 1.269e-6),
    (0.0153728, 1000): (6.9285, 8.186e-6),
    (0.01, 1): (0.0902, 5.05e-7), (0.01, 10): (0.5289, 5.5e-7), (0.01, 100): (1.6083, 1.0e-6),
    (0.01, 1000): (4.3341, 5.5e-6),
}


@pytest.mark.parametrize(("q", "queries"), sorted(REFERENCE))
def test_matches_the_papers_accountant(q, queries):
    eps, delta = limited_domain_privacy(queries, q, EPS0, DELTA0)
    expected_eps, expected_delta = REFERENCE[(q, queries)]
    decimals = len(str(expected_eps).split(".")[1])  # the reference values have 4 decimals (2 for 1664.65)
    assert eps == pytest.approx(expected_eps, abs=max(1e-4, 0.51 * 10**-decimals))
    assert delta == pytest.approx(expected_delta, rel=1e-3)


def test_sst2_at_1500_queries():
    assert limited_domain_privacy(1500, 0.0153728, EPS0, DELTA0)[0] == pytest.approx(8.3495, abs=1e-4)


@pytest.mark.parametrize(("n_train", "voters", "demos", "expected"), [
    (67349, 205, 5, 1377), (5452, 205, 5, 11), (8603, 205, 5, 16), (4430, 205, 5, 10),
    (4430, 40, 2, 927), (5452, 40, 2, 1497), (8603, 50, 2, 2538),
])
def test_max_queries_within_eps8_delta_1_over_n(n_train, voters, demos, expected):
    n = n_train - int(n_train * 0.01)  # the 1% holdout leaves the training set
    accountant = LimitedDomainAccountant(voters * demos / n, EPS0, DELTA0, 8.0, 1 / n)
    assert accountant.max_queries() == expected


def test_em_rdp_is_the_sinh_bound_for_eps0_1_8():
    assert em_rdp(2, EPS0) == pytest.approx(1.6515, abs=1e-4)
    assert em_rdp(math.inf, EPS0) == 2 * EPS0


def test_monotone_in_queries_rate_and_eps0():
    by_queries = [limited_domain_privacy(t, 0.02, EPS0, DELTA0)[0] for t in (1, 5, 20, 80, 300)]
    by_rate = [limited_domain_privacy(50, q, EPS0, DELTA0)[0] for q in (0.005, 0.01, 0.05, 0.2, 1.0)]
    by_eps0 = [limited_domain_privacy(50, 0.02, e, DELTA0)[0] for e in (0.5, 1.0, 1.8, 3.0)]
    for series in (by_queries, by_rate, by_eps0):
        assert all(a < b for a, b in itertools.pairwise(series))


def test_spending_stops_exactly_before_the_budget_is_exceeded():
    accountant = LimitedDomainAccountant(0.05, EPS0, DELTA0, target_eps=8.0, target_delta=1e-5)
    limit = accountant.max_queries()
    assert limit > 0
    while accountant.can_spend():
        eps, delta = accountant.spend()
        assert eps <= 8.0 and delta <= 1e-5
    assert accountant.queries == limit
    assert limited_domain_privacy(limit + 1, 0.05, EPS0, DELTA0)[0] > 8.0
    with pytest.raises(BudgetExhausted):
        accountant.spend()
    assert accountant.queries == limit


def test_selection_is_pure_eps_dp():
    assert selection_epsilon(8.0) == 8.0
