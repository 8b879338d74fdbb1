"""The complete verifier against an exact MILP oracle (scipy HiGHS) on small random networks, plus resume."""

from __future__ import annotations

import copy
import json
from collections import Counter

import certified_pruning.verify as verify_module
import numpy as np
import pytest
import torch
from certified_pruning.milp import milp_minimum, milp_verify
from certified_pruning.relaxation import backward_lower_bound, crown_layer_bounds
from certified_pruning.verify import VerifierConfig, prepare_network, read_results, verify_dataset, verify_image
from cp_helpers import random_mlp, sample_ball, small_bn_cnn
from repro_shared.errors import ConfigError
from torch import nn

# Full pipeline, and one with the attack and α-CROWN switched off so branch and bound alone must decide.
PIPELINES = {
    "full": {"pgd_steps": 10, "pgd_restarts": 4, "alpha_iterations": 5},
    "bab-only": {"pgd_steps": 0, "pgd_restarts": 1, "alpha_iterations": 0},
}


def _check_against_milp(model, images, eps, pipeline, input_shape):
    """Run the verifier on every image and compare with the MILP; returns the verdict counts."""
    config = VerifierConfig(eps=eps, timeout=120, batch_domains=8, **PIPELINES[pipeline])
    model, network = prepare_network(model, input_shape)
    reference = copy.deepcopy(model).double()
    counts = Counter()
    with torch.no_grad():
        labels = reference(images.double()).argmax(1)
    for index in range(len(images)):
        x = images[index:index + 1].float()
        result = verify_image(model, network, x, int(labels[index]), index, config)
        x_lower, x_upper = (b.flatten().double().numpy() for b in config.ball.box(x))
        exact, _ = milp_verify(network, x_lower, x_upper, int(labels[index]), time_limit=120)
        assert exact != "timeout"
        # completeness: with a generous timeout branch and bound decides what the MILP decides, and agrees
        assert result.status == exact, (index, result, exact)
        if result.status == "falsified":  # a real counterexample inside the ball that changes the prediction
            point = torch.tensor(result.counterexample, dtype=torch.float64).view(1, *input_shape)
            assert (point >= torch.from_numpy(x_lower).view_as(point) - 1e-12).all()
            assert (point <= torch.from_numpy(x_upper).view_as(point) + 1e-12).all()
            assert (point - x.double()).abs().max() <= eps + 1e-6  # the box is formed in float32
            logits = reference(point)[0]
            assert logits.argmax() != labels[index] or logits.max() == logits[labels[index]]
        counts[(result.stage, result.status)] += 1
    return counts


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
@pytest.mark.parametrize("seed", [0, 1])
def test_verdicts_agree_with_milp_on_random_mlps(seed, pipeline):
    model = random_mlp(seed)
    images = torch.rand(10, 6, generator=torch.Generator().manual_seed(seed))
    counts = Counter()
    for eps in (0.03, 0.08):
        counts += _check_against_milp(model, images, eps, pipeline, (6,))
    statuses = Counter(status for (_, status), n in counts.items() for _ in range(n))
    assert statuses["verified"] > 0 and statuses["falsified"] > 0  # the instances are not all one-sided
    if pipeline == "bab-only":
        assert counts[("bab", "verified")] > 0 and counts[("bab", "falsified")] > 0


def test_verdicts_agree_with_milp_on_a_batchnorm_cnn():
    model = small_bn_cnn(2, channels=(2, 2, 2, 2, 2), fc_width=6)
    images = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    counts = _check_against_milp(model, images, 0.03, "bab-only", (1, 8, 8))
    assert sum(counts.values()) == 6


def test_leaf_lps_are_exercised_and_exact(monkeypatch):
    """Deep narrow nets leave CROWN loose on fully split leaves; the LP there must keep verdicts exact."""
    calls = []
    original = verify_module.leaf_lp_minimum

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(verify_module, "leaf_lp_minimum", counting)
    model = random_mlp(3, inputs=2, hidden=(6, 6, 6), classes=2)
    images = torch.rand(12, 2, generator=torch.Generator().manual_seed(3))
    _check_against_milp(model, images, 0.3, "bab-only", (2,))
    assert calls, "no fully split leaf was reached: the LP path is untested"


def test_milp_minimum_is_below_every_sample_and_above_crown():
    model = random_mlp(7, inputs=4, hidden=(8, 8), classes=2)
    _, network = prepare_network(model, (4,))
    margin = network.with_spec(torch.tensor([[1.0, -1.0]], dtype=torch.float64))
    x = torch.rand(1, 4, generator=torch.Generator().manual_seed(7))
    x_lower, x_upper = (x - 0.2).clamp(0, 1).double(), (x + 0.2).clamp(0, 1).double()
    exact = milp_minimum(margin, x_lower[0].numpy(), x_upper[0].numpy())
    samples = sample_ball(x, 0.2, 5000, torch.Generator().manual_seed(8)).double()
    assert exact.minimum <= float(margin(samples).min()) + 1e-9
    assert abs(float(margin(torch.from_numpy(exact.minimiser)[None])[0, 0]) - exact.minimum) < 1e-6
    crown = backward_lower_bound(margin, 2, torch.ones(1, 1, dtype=torch.float64),
                                 crown_layer_bounds(margin, x_lower, x_upper), x_lower, x_upper).lower
    assert float(crown) <= exact.minimum + 1e-9


def test_results_are_written_per_image_and_resume_loses_nothing(tmp_path):
    model = random_mlp(1)
    images = torch.rand(6, 6, generator=torch.Generator().manual_seed(11))
    labels = model(images).argmax(1)
    config = VerifierConfig(eps=0.05, timeout=30, pgd_steps=5, pgd_restarts=2, alpha_iterations=3)
    path = tmp_path / "results.jsonl"

    class Killed(Exception):
        pass

    def kill_after_three(result):
        if result.index == 2:
            raise Killed

    with pytest.raises(Killed):
        verify_dataset(model, images, labels, config, path, on_result=kill_after_three)
    assert [r.index for r in read_results(path)] == [0, 1, 2]
    with path.open("a") as stream:
        stream.write('{"index": 3, "lab')  # a torn line, as a kill mid-write leaves it
    seen = []
    resumed = verify_dataset(model, images, labels, config, path, resume=True, on_result=lambda r: seen.append(r.index))
    assert seen == [3, 4, 5]
    assert [r.index for r in resumed] == list(range(6))
    fresh = verify_dataset(model, images, labels, config, tmp_path / "fresh.jsonl")
    assert [r.status for r in resumed] == [r.status for r in fresh]
    assert len(path.read_text().splitlines()) == 6 and all(json.loads(line) for line in path.read_text().splitlines())


def test_verifier_rejects_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="eps=0"):
        VerifierConfig(eps=0)
    model = random_mlp(0)
    with pytest.raises(ConfigError, match="input shape"):
        verify_dataset(model, torch.rand(2, 5), torch.zeros(2, dtype=torch.long), VerifierConfig(eps=0.1),
                       tmp_path / "r.jsonl")
    with pytest.raises(ConfigError, match="MaxPool2d"):
        prepare_network(nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)), (1, 8, 8))
    assert np.isfinite(VerifierConfig(eps=0.1).ball.eps)
