"""The verification budget is a count of BaB domains: identical verdicts on reruns; the clock only as a safety net."""

from __future__ import annotations

import dataclasses

import torch
from certified_pruning.verify import ImageResult, VerifierConfig, stage_counts, summarise, verify_dataset
from cp_helpers import random_mlp

# attack and α-CROWN off, so that branch and bound has open labels to work on
BAB_ONLY = {"pgd_steps": 0, "pgd_restarts": 1, "alpha_iterations": 0, "batch_domains": 4}


def _instances():
    model = random_mlp(0)
    images = torch.rand(10, 6, generator=torch.Generator().manual_seed(0))
    return model, images, model(images).argmax(1)


def _verdicts(results):
    return [(r.status, r.stage, r.domains, r.clock_stop) for r in results]


def test_a_domain_budget_gives_identical_verdicts_on_reruns(tmp_path):
    model, images, labels = _instances()
    config = VerifierConfig(eps=0.08, max_domains=12, **BAB_ONLY)
    first = verify_dataset(model, images, labels, config, tmp_path / "a.jsonl")
    second = verify_dataset(model, images, labels, config, tmp_path / "b.jsonl")
    assert _verdicts(first) == _verdicts(second)
    spent = [r for r in first if r.status == "timeout"]
    assert spent, "no image ran out of domains: the budget is untested"
    # an image whose budget ran out stopped within one batch of children past it, and not by the clock
    assert all(config.max_domains <= r.domains < config.max_domains + 2 * config.batch_domains for r in spent)
    assert not any(r.clock_stop for r in first)
    # with more domains some of those images get decided: the budget, not the machine, decided them
    generous = verify_dataset(model, images, labels, dataclasses.replace(config, max_domains=100_000),
                              tmp_path / "c.jsonl")
    assert all(r.status in ("verified", "falsified") for r in generous)


def test_the_wall_clock_safety_net_is_reported_not_silent(tmp_path):
    model, images, labels = _instances()
    config = VerifierConfig(eps=0.08, timeout=1e-9, **BAB_ONLY)
    results = verify_dataset(model, images, labels, config, tmp_path / "clock.jsonl")
    stopped = [r for r in results if r.clock_stop]
    assert stopped and all(r.status == "timeout" and r.stage == "bab" for r in stopped)
    assert summarise(results)["clock_stops"] == len(stopped)


def test_stage_counts_tally_each_decision_where_it_was_made():
    def result(status, stage, clock_stop=False):
        return ImageResult(0, 0, 0, status, stage, 0.1, 0, 0, None, clock_stop=clock_stop)

    results = [result("falsified", "clean"), result("falsified", "pgd"), result("falsified", "pgd"),
               result("verified", "crown"), result("verified", "alpha-crown"), result("verified", "bab"),
               result("falsified", "bab"), result("timeout", "bab"), result("timeout", "bab", clock_stop=True),
               result("unknown", "bab")]
    counts = stage_counts(results)
    assert counts == {"verified_by_crown": 1, "verified_by_alpha-crown": 1, "verified_by_bab": 1,
                      "falsified_by_clean": 1, "falsified_by_pgd": 2, "falsified_by_bab": 1,
                      "timeout": 2, "unknown": 1, "clock_stops": 1}


def test_certified_accuracy_is_bracketed_by_the_verified_and_the_not_falsified_share():
    def result(index, status):
        return ImageResult(index, 0, 0, status, "bab", 0.1, 30, 5, -0.1)

    statuses = ["verified", "verified", "timeout", "falsified", "timeout", "verified", "unknown", "falsified"]
    summary = summarise([result(i, s) for i, s in enumerate(statuses)])
    assert summary["verified_accuracy"] == 3 / 8  # proven robust
    assert summary["certified_upper_bound"] == 6 / 8  # not disproven: the 2 timeouts and the unknown might be robust
