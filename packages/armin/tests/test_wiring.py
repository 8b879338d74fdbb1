"""Wiring between the parts: each test fails when one connection is broken (checked by breaking it on purpose)."""

import pytest
import torch
from armin import training
from armin.models import ModelConfig, build_model
from armin.ntm import ntm_address
from armin.tasks import PixelSplits
from repro_shared.cli import main

# --- TARDIS: the −100 · previous-read penalty (no reading the same slot twice in a row) -------------------------


@pytest.mark.parametrize("kind", ["tardis", "awta"])
def test_tardis_never_reads_the_slot_it_read_at_the_previous_step(kind):
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind, hidden=6, width=4, slots=4, key_size=3), 3, 2)
    state = model.initial_state(16)
    slots = []
    for step in torch.randn(30, 1, 16, 3).unbind(0):  # one step at a time; the read weights are in the state
        _, state = model(step, state, tau=2.0)
        slots.append(state["previous"].argmax(-1))
    reads = torch.stack(slots)  # (30, 16)
    assert (reads[1:] != reads[:-1]).all()  # without the penalty, 4 slots × 29 × 16 reads repeat at once


def test_tardis_penalty_lowers_exactly_the_previous_slot_by_100():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="tardis", hidden=6, width=4, slots=5, key_size=3), 3, 2)
    addressing = model.core.addressing
    x_part, state, memory = torch.randn(2, 4), torch.randn(2, 6), torch.randn(2, 5, 4)
    usage, previous = torch.rand(2, 5), torch.eye(5)[[1, 3]]
    with torch.no_grad():
        difference = addressing(x_part, state, memory, usage, previous) - addressing(x_part, state, memory, usage,
                                                                                     torch.zeros(2, 5))
    torch.testing.assert_close(difference, -100.0 * previous)


# --- NTM: the 3-way circular shift (Graves et al. 2014, Eq. 8) --------------------------------------------------


def _shifted(previous: torch.Tensor, shift: list[float]) -> torch.Tensor:
    """ntm_address with the interpolation gate closed (w^g = previous) and no sharpening (γ = 1)."""
    batch, slots = previous.shape
    memory, key = torch.randn(batch, slots, 3), torch.randn(batch, 3)
    return ntm_address(key, torch.ones(batch, 1), torch.zeros(batch, 1), torch.tensor([shift] * batch),
                       torch.ones(batch, 1), memory, previous)


def test_ntm_shift_moves_the_focus_by_one_slot_circularly():
    one_hot = torch.eye(5)
    torch.testing.assert_close(_shifted(one_hot[[2]], [1.0, 0.0, 0.0]), one_hot[[1]])  # shift −1
    torch.testing.assert_close(_shifted(one_hot[[2]], [0.0, 1.0, 0.0]), one_hot[[2]])  # no shift
    torch.testing.assert_close(_shifted(one_hot[[2]], [0.0, 0.0, 1.0]), one_hot[[3]])  # shift +1
    torch.testing.assert_close(_shifted(one_hot[[0]], [1.0, 0.0, 0.0]), one_hot[[4]])  # wraps around
    torch.testing.assert_close(_shifted(one_hot[[4]], [0.0, 0.0, 1.0]), one_hot[[0]])


def test_ntm_shift_is_the_circular_convolution_of_eq_8_by_hand():
    previous = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    # w̃(i) = Σ_j w(j) s(i − j): s(−1) = 0.2, s(0) = 0.5, s(+1) = 0.3
    expected = torch.tensor([[0.2 * 0.2 + 0.5 * 0.1 + 0.3 * 0.4, 0.2 * 0.3 + 0.5 * 0.2 + 0.3 * 0.1,
                              0.2 * 0.4 + 0.5 * 0.3 + 0.3 * 0.2, 0.2 * 0.1 + 0.5 * 0.4 + 0.3 * 0.3]])
    torch.testing.assert_close(_shifted(previous, [0.2, 0.5, 0.3]), expected)


# --- the τ schedule reaches the loss and the models -------------------------------------------------------------


def test_training_feeds_the_scheduled_tau_to_every_step(tmp_path, monkeypatch):
    seen = []
    original = training.AlgorithmicRunner.train_loss

    def record(self, model, step, tau, carry):
        seen.append((step, tau))
        return original(self, model, step, tau, carry)

    monkeypatch.setattr(training.AlgorithmicRunner, "train_loss", record)
    assert main(["run", "armin:copy", "--scale", "smoke", "--device", "cpu", "--threads", "1", "--out",
                 str(tmp_path), "--set", "models=[armin]", "--set", "train.iterations=7", "--set",
                 "train.tau_every=2", "--set", "train.tau_max=4.5"]) == 0
    # smoke: τ starts at 2 (the released algorithmic code), +1 every 2 iterations here, capped at 4.5
    assert seen == [(0, 2.0), (1, 2.0), (2, 3.0), (3, 3.0), (4, 4.0), (5, 4.0), (6, 4.5)]


@pytest.mark.parametrize("kind", ["armin", "tardis", "awta"])
def test_the_read_gradient_scales_with_tau(kind):
    """The straight-through read's backward is that of softmax(z·τ): the model must pass τ on to it."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind, hidden=6, width=4, slots=3, key_size=3), 2, 2)
    inputs = torch.randn(6, 2, 2)
    gradients = []
    for tau in (1.0, 4.0):
        model.zero_grad()
        torch.manual_seed(1)  # the same Gumbel noise, hence the same forward pass
        model(inputs, tau=tau)[0].square().sum().backward()
        layer = model.core.address_state if kind == "armin" else model.core.addressing.score
        gradients.append(layer.weight.grad.clone())
    assert not torch.allclose(gradients[0], gradients[1], rtol=1e-3, atol=1e-6)


# --- pixel classification uses the last step ---------------------------------------------------------------------


class _StepwiseClassifier(torch.nn.Module):
    """Predicts class (t mod 10) at step t: only the last step of a 13-step sequence says class 2."""

    def forward(self, inputs, state=None, tau=1.0):
        steps, batch, _ = inputs.shape
        labels = torch.arange(steps) % 10
        return 10.0 * torch.nn.functional.one_hot(labels, 10).float().unsqueeze(1).expand(steps, batch, 10), None


def test_pixel_runner_classifies_from_the_last_step():
    pixels, labels = torch.rand(6, 13, 1), torch.full((6,), 2)
    splits = PixelSplits((pixels, labels), (pixels, labels), (pixels, labels), source="hand-made")
    runner = training.PixelRunner(splits, batch_size=3, seed=0, device=torch.device("cpu"))
    scores = runner.evaluate(_StepwiseClassifier(), tau=1.0)
    assert scores["test_accuracy"] == 1.0 and scores["test_nll"] < 1e-3
    loss, metrics, _ = runner.train_loss(_StepwiseClassifier(), 0, 1.0, None)
    assert metrics["accuracy"] == 1.0 and loss < 1e-3
    assert runner.validation_score(_StepwiseClassifier(), 1.0) < 1e-3
