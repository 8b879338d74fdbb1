"""TARDIS / AwTA addressing: the paper's (can become confident) and the released code's (capped by normalisation)."""

import math

import pytest
import torch
import torch.nn.functional as F
from armin.addressing import gumbel_sigmoid, sample_gumbel
from armin.models import ModelConfig, build_model

SLOTS = 20


def _fit_read_of_one_slot(variant: str, intended: int = 7, steps: int = 150) -> float:
    """Fit the addressing alone to read slot ``intended``; return the mean softmax probability of that slot."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="tardis", hidden=16, width=8, slots=SLOTS, key_size=5, tardis=variant), 3, 2)
    addressing = model.core.addressing
    x_part, state = addressing.from_input(torch.randn(16, 3)).detach(), torch.randn(16, 16)
    memory, usage, previous = torch.randn(16, SLOTS, 8), torch.rand(16, SLOTS), torch.zeros(16, SLOTS)
    optimizer = torch.optim.Adam(addressing.parameters(), lr=0.05)
    target = torch.full((16,), intended)
    probability = 0.0
    for _ in range(steps):
        logits = addressing(x_part, state, memory, usage, previous)
        probability = float(torch.softmax(logits.detach(), -1)[:, intended].mean())
        if probability > 0.95:  # confident enough: stop early
            break
        loss = F.cross_entropy(logits, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return probability


def test_paper_tardis_addressing_can_become_confident():
    assert _fit_read_of_one_slot("paper") > 0.9


def test_released_code_tardis_addressing_is_capped_by_its_l2_normalisation():
    """Logits on the unit sphere: the best softmax probability is e^m / (e^m + N − 1), m = √(1 + 1/(N − 1))."""
    margin = math.sqrt(1 + 1 / (SLOTS - 1))
    cap = math.exp(margin) / (math.exp(margin) + SLOTS - 1)
    assert cap == pytest.approx(0.128, abs=1e-3)
    probability = _fit_read_of_one_slot("code")
    assert 0.9 * cap < probability <= cap + 1e-6  # the fit reaches the cap and cannot pass it


def test_released_code_addressing_subtracts_the_penalty_then_normalises():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="tardis", hidden=8, width=4, slots=5, key_size=3, tardis="code"), 3, 2)
    addressing = model.core.addressing
    x_part, state, memory = torch.randn(2, 2), torch.randn(2, 8), torch.randn(2, 5, 4)
    usage, previous = torch.rand(2, 5), torch.eye(5)[[0, 2]]
    with torch.no_grad():
        raw = addressing(x_part, state, memory, usage, torch.zeros(2, 5))
        unnormalised = raw * 0  # recompute the scores before normalisation by hand
        inner = torch.tanh((x_part + addressing.from_state(state)).unsqueeze(1) + addressing.from_key(addressing.keys)
                           + addressing.from_memory(memory)
                           + addressing.from_usage(usage / usage.norm(dim=-1, keepdim=True)).unsqueeze(1))
        unnormalised = addressing.score(inner).squeeze(-1)
        expected = (unnormalised - 100 * previous) / (unnormalised - 100 * previous).norm(dim=-1, keepdim=True)
        torch.testing.assert_close(addressing(x_part, state, memory, usage, previous), expected)
    assert addressing.score.weight.shape == (1, 8 // 4)  # the addressing MLP is hidden // 4 wide
    assert addressing.from_usage.weight.shape == (8 // 4, 5)  # the whole usage vector, for every slot


@pytest.mark.parametrize("kind", ["tardis", "awta"])
def test_released_code_variant_learns_its_initial_state(kind):
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind, hidden=6, width=4, slots=3, key_size=3, tardis="code"), 2, 2)
    model(torch.randn(5, 2, 2), tau=2.0)[0].square().sum().backward()
    assert model.core.initial_hidden.grad.abs().sum() > 0
    if kind == "tardis":
        assert model.core.initial_cell.grad.abs().sum() > 0
        assert torch.equal(model.core.initial_state(1)["c"], torch.zeros(1, 6))  # tanh(0): zeros init, as c_bias


def test_gate_noise_one_gumbel_sample_in_the_released_code_two_in_the_paper():
    logits = torch.randn(4, 2)
    torch.manual_seed(3)
    one = gumbel_sigmoid(logits, 2.0, samples=1)
    torch.manual_seed(3)
    g1 = sample_gumbel(logits.shape, logits)
    g2 = sample_gumbel(logits.shape, logits)
    torch.testing.assert_close(one, torch.sigmoid((logits + g1) * 2.0))
    torch.manual_seed(3)
    torch.testing.assert_close(gumbel_sigmoid(logits, 2.0), torch.sigmoid((logits + g1 - g2) * 2.0))
