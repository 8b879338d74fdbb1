"""Algorithm 2's stop rules and budget, and resuming Algorithm 1 without repeating a query."""

import numpy as np
import pytest
from dp_opt.accounting import LimitedDomainAccountant, limited_domain_privacy
from dp_opt.data import load_task
from dp_opt.generate import EnsembleSettings, GenerationState, dp_ens_gen_step
from dp_opt.mechanisms import LimitedDomainParams
from dp_opt.pipeline import PrivacySettings, PromptGenerator
from dp_opt.scoring import ScoringOptions
from dp_opt.templates import TASKS

EOS = 1


class ScriptedVoters:
    """A test double for the J voters: every voter returns the token the script gives for this query."""

    def __init__(self, script):
        self.script, self.calls = script, 0

    def meta_prompts(self, groups, rng):
        return [[0] for _ in groups]

    def votes(self, rows, generated):
        token = self.script(self.calls)
        self.calls += 1
        return [token] * len(rows) if token is not None else list(range(100, 100 + len(rows)))


def run(script, settings, accountant):
    voters, state, ledger = ScriptedVoters(script), GenerationState(), []
    params = LimitedDomainParams(eps0=1.8, delta0=5e-7, vocab_size=1000)
    rng = np.random.default_rng(0)
    while state.stop_reason is None:
        entry = dp_ens_gen_step(voters, state, accountant, settings, params, 1000, rng, {EOS})
        if entry is not None:
            ledger.append(entry)
    return state, ledger, voters


def accountant(target_eps=8.0):
    return LimitedDomainAccountant(q=40 * 2 / 1000, eps0=1.8, delta0=5e-7, target_eps=target_eps, target_delta=1e-3)


def test_generation_stops_exactly_before_the_budget():
    budget = accountant(target_eps=2.0)
    limit = budget.max_queries()
    state, ledger, voters = run(lambda call: 7, EnsembleSettings(40, 2, max_new_tokens=10_000), budget)
    assert state.stop_reason == "budget"
    assert len(ledger) == voters.calls == limit == len(state.tokens)
    assert ledger[-1]["eps"] <= 2.0 < limited_domain_privacy(limit + 1, budget.q, 1.8, 5e-7)[0]
    assert [e["query"] for e in ledger] == list(range(1, limit + 1))


def test_unanimous_votes_pass_and_eos_stops():
    state, ledger, _ = run(lambda call: 7 if call < 3 else EOS, EnsembleSettings(40, 2, max_new_tokens=50),
                           accountant())
    assert state.tokens == [7, 7, 7] and state.stop_reason == "eos" and len(ledger) == 4


def test_bottom_retries_once_per_position_and_counts_every_query():
    # J=40 distinct votes: no token clears the bar, so ⊥, a retry, ⊥ again: stop after two queries
    state, ledger, _ = run(lambda call: 7 if call < 2 else None, EnsembleSettings(40, 2, max_new_tokens=50),
                           accountant())
    assert state.stop_reason == "bottom" and state.tokens == [7, 7]
    assert [e["token"] for e in ledger] == [7, 7, None, None]


def test_length_stop():
    state, ledger, _ = run(lambda call: 7, EnsembleSettings(40, 2, max_new_tokens=5), accountant())
    assert state.stop_reason == "length" and len(state.tokens) == 5 == len(ledger)


def make_generator(tiny_lm, data_dir, private=True):
    model, tokenizer = tiny_lm
    data = load_task("sst2", data_dir, 0.05, 0, max_test=4)
    settings = EnsembleSettings(num_voters=4, demos_per_voter=2, max_new_tokens=2)
    privacy = PrivacySettings(eps0=6.0, delta0=0.05, target_eps=30.0, target_delta=0.5) if private else None
    return PromptGenerator(model, tokenizer, data, TASKS["sst2"], settings, 2, privacy, 5, ScoringOptions(8))


def test_resume_repeats_no_query_and_gives_the_same_ledger(tiny_lm, data_dir):
    reference = make_generator(tiny_lm, data_dir)
    while not reference.done():
        reference.step()
    first = make_generator(tiny_lm, data_dir)
    for _ in range(2):
        first.step()
    assert 0 < len(first.ledger) < len(reference.ledger)
    saved = first.state_dict()
    resumed = make_generator(tiny_lm, data_dir)
    resumed.load_state_dict(saved)
    while not resumed.done():
        resumed.step()
    assert resumed.ledger == reference.ledger
    assert [e["query"] for e in resumed.ledger] == list(range(1, len(resumed.ledger) + 1))
    assert resumed.prompts == reference.prompts
    assert resumed.privacy_spent() == reference.privacy_spent()


def test_opt_is_deterministic_in_the_seed(tiny_lm, data_dir):
    prompts = []
    for _ in range(2):
        generator = make_generator(tiny_lm, data_dir, private=False)
        while not generator.done():
            generator.step()
        prompts.append(generator.prompts)
        assert generator.ledger == [] and len(generator.prompts) == 2
    assert prompts[0] == prompts[1]


@pytest.mark.parametrize("private", [True])
def test_forward_pass_is_computed_only_for_sampled_records(tiny_lm, data_dir, private):
    generator = make_generator(tiny_lm, data_dir, private)
    generator.step()
    assert 0 < len(generator.forward_pass.cache) < generator.num_records


def test_meta_prompts_take_every_groups_labels_from_one_call(tiny_lm):
    import torch
    from dp_opt.generate import EnsembleVoters
    from dp_opt.templates import BACKWARD_MESSAGES

    model, tokenizer = tiny_lm
    calls = []

    def forward_labels(indices):  # ŷ = index parity, so each demo's success/failure is known
        calls.append([int(i) for i in indices])
        return np.asarray(indices) % 2

    texts, labels = [f"film {i}" for i in range(8)], [0, 0, 1, 1, 0, 1, 0, 1]
    voters = EnsembleVoters(model, tokenizer, "Classify.", texts, labels, ("negative", "positive"), forward_labels,
                            1.0, torch.Generator())
    groups = [np.array([0, 3]), np.array([], dtype=int), np.array([5])]
    rows = voters.meta_prompts(groups, np.random.default_rng(0))
    assert calls == [[0, 3, 5]]
    messages = np.random.default_rng(0).integers(len(BACKWARD_MESSAGES), size=len(groups))
    one_by_one = [voters.meta_prompt(group, BACKWARD_MESSAGES[m]) for group, m in zip(groups, messages, strict=True)]
    assert rows == one_by_one and calls[1:] == [[0, 3], [5]]
