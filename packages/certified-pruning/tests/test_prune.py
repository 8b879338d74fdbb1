"""Pruning methods and the lottery-ticket loop against hand-computed oracles."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from certified_pruning.models import ModelConfig, cifar_model_deep
from certified_pruning.prune import (
    PruneConfig,
    apply_masks,
    channel_parameter_masks,
    compress_channels,
    dense_channel_masks,
    dense_masks,
    hydra_scores,
    iterative_pruning,
    lottery_round,
    magnitude_scores,
    nrs_channel_scores,
    one_shot_pruning,
    prunable_weights,
    prune_lowest,
    prune_step,
    random_scores,
    refill_scores,
    slimming_scores,
    snip_scores,
    sparsity,
    taylor_scores,
)
from certified_pruning.train import TrainConfig, interval_relu_inputs
from cp_helpers import small_bn_cnn
from repro_shared.errors import ConfigError
from torch import nn


def _data(count: int = 24, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 1, 8, 8, generator=generator), torch.randint(0, 10, (count,), generator=generator)


def test_imp_removes_exactly_the_k_smallest_remaining_weights_on_hand_made_tensors():
    scores = {"a": torch.tensor([[0.5, -3.0], [0.1, 2.0]]).abs(), "b": torch.tensor([-0.05, 4.0, 0.2, -1.0]).abs()}
    masks = {"a": torch.tensor([[1.0, 1.0], [1.0, 1.0]]), "b": torch.tensor([0.0, 1.0, 1.0, 1.0])}
    # remaining magnitudes: a: .5 3 .1 2, b: 4 .2 1 (b[0] already pruned); 3/7 of 7 -> prune .1, .2, .5
    new = prune_lowest(scores, masks, 3 / 7)
    assert torch.equal(new["a"], torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    assert torch.equal(new["b"], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert torch.equal(masks["b"], torch.tensor([0.0, 1.0, 1.0, 1.0]))  # input not modified


def test_imp_on_a_model_prunes_the_global_smallest_conv_weights():
    model = small_bn_cnn(1)
    masks = dense_masks(model)
    assert all(name.endswith("weight") and model.get_submodule(name[:-7]).__class__ is nn.Conv2d for name in masks)
    new = prune_lowest(magnitude_scores(model, masks), masks, 0.3)
    values = torch.cat([w.detach().abs().flatten() for w in prunable_weights(model).values()])
    kept = torch.cat([new[name].flatten() for name in masks]).bool()
    k = round(0.3 * values.numel())
    assert int((~kept).sum()) == k
    assert values[~kept].max() <= values[kept].min()


def test_per_round_sparsity_compounds():
    model = small_bn_cnn(2)
    masks = dense_masks(model, include_linear=True)
    total = sum(m.numel() for m in masks.values())
    for round_index in range(1, 6):
        masks = prune_lowest(magnitude_scores(model, masks), masks, 0.2)
        expected = 1 - 0.8**round_index
        assert abs(sparsity(masks) - expected) <= round_index / total  # one rounding per round at most


def test_random_pruning_is_reproducible_and_hits_the_exact_count():
    model = small_bn_cnn(3)
    masks = dense_masks(model)
    total = sum(m.numel() for m in masks.values())
    first = prune_lowest(random_scores(masks, seed=7), masks, 0.25)
    second = prune_lowest(random_scores(masks, seed=7), masks, 0.25)
    other = prune_lowest(random_scores(masks, seed=8), masks, 0.25)
    assert all(torch.equal(first[n], second[n]) for n in masks)
    assert not all(torch.equal(first[n], other[n]) for n in masks)
    assert sum(int((m == 0).sum()) for m in first.values()) == round(0.25 * total)


def test_snip_and_taylor_scores_equal_w_times_grad_computed_by_hand():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    masks = {"0.weight": torch.ones(4, 3), "2.weight": torch.ones(2, 4)}
    masks["0.weight"][1, 2] = 0
    with torch.no_grad():
        model[0].weight.mul_(masks["0.weight"])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    # by hand: forward in closed form, backward by explicit chain rule
    w1, b1, w2, b2 = (before[k] for k in ("0.weight", "0.bias", "2.weight", "2.bias"))
    hidden_pre = x @ w1.T + b1
    hidden = hidden_pre.clamp(min=0)
    logits = hidden @ w2.T + b2
    dlogits = (logits.softmax(1) - F.one_hot(y, 2)) / len(x)
    grad_w2 = dlogits.T @ hidden
    dhidden = (dlogits @ w2) * (hidden_pre > 0)
    grad_w1 = dhidden.T @ x
    expected = {"0.weight": (w1 * grad_w1).abs() * masks["0.weight"], "2.weight": (w2 * grad_w2).abs()}
    for scores in (snip_scores(model, masks, x, y), taylor_scores(model, masks, x, y)):
        for name in masks:
            torch.testing.assert_close(scores[name], expected[name], rtol=1e-5, atol=1e-7)
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], before[n]) for n in before)  # scoring leaves the weights as they were
    assert isinstance(model[0].weight, nn.Parameter)


def test_slimming_removes_the_channels_with_smallest_abs_gamma():
    model = small_bn_cnn(5)
    gammas = {"1": [0.3, -0.01, 0.9, 0.5], "4": [0.2, -0.8, 0.05, 0.6, 0.7, -0.4, 0.1, 1.0]}
    with torch.no_grad():
        for name, values in gammas.items():
            model.get_submodule(name).weight.copy_(torch.tensor(values))
    masks = {name: torch.ones(len(v)) for name, v in gammas.items()}
    new = prune_lowest(slimming_scores(model, masks), masks, 4 / 12, keep_one_per_layer=True)
    # |γ| smallest four: 0.01 (1), 0.05, 0.1, 0.2 (4)
    assert torch.equal(new["1"], torch.tensor([1.0, 0.0, 1.0, 1.0]))
    assert torch.equal(new["4"], torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0]))
    parameter_masks = channel_parameter_masks(new)
    assert set(parameter_masks) == {"1.weight", "1.bias", "4.weight", "4.bias"}


def test_channel_pruning_never_empties_a_layer():
    model = small_bn_cnn(6)
    masks = dense_channel_masks(model)
    new = prune_lowest(slimming_scores(model, masks), masks, 1.0, keep_one_per_layer=True)
    assert all(int(mask.sum()) == 1 for mask in new.values())


def test_nrs_channel_scores_follow_the_formula_and_score_pruned_channels_zero():
    model = small_bn_cnn(7)
    x, _ = _data(6)
    masks = dense_channel_masks(model)
    with torch.no_grad():
        model[1].weight[2] = 0.0  # an already-pruned channel scores 0
    scores = nrs_channel_scores(model, x, 0.05, masks)
    lower, upper, bn = interval_relu_inputs(model, x, 0.05)[0]
    assert bn is model[1]
    channel = 0
    gamma = float(model[1].weight[channel].detach())
    expected = torch.tanh(1 + lower[:, channel] * upper[:, channel] / (gamma**2 + 1e-20)).mean()
    torch.testing.assert_close(scores["1"][channel], expected)
    assert float(scores["1"][2]) == 0.0
    assert all(float(s.min()) >= -1 and float(s.max()) <= 1 for s in scores.values())


def test_refill_channel_score_is_mean_abs_of_the_imp_pruned_filter():
    model = small_bn_cnn(8)
    masks = dense_channel_masks(model)
    scores = refill_scores(model, masks, imp_amount=0.2)
    conv_weights = [model[i].weight.detach() for i in (0, 3, 6, 9, 12)]
    magnitudes = torch.cat([w.abs().flatten() for w in conv_weights])
    threshold = magnitudes.sort().values[round(0.2 * magnitudes.numel()) - 1]
    filtered = conv_weights[1].abs() * (conv_weights[1].abs() > threshold)
    torch.testing.assert_close(scores["4"], filtered.mean(dim=(1, 2, 3)))


def _tiny_train_config():
    return TrainConfig(mode="natural", epochs=1, batch_size=8, learning_rate=0.05)


def test_pruned_weights_stay_zero_after_training_and_rewinding_restores_survivors():
    model = small_bn_cnn(9).train()
    images, labels = _data()
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    config = PruneConfig(method="imp", rate=0.5, rounds=2)
    history = iterative_pruning(model, images, labels, _tiny_train_config(), 10, config, score_batch=8)
    assert [round(h["sparsity"], 2) for h in history] == [0.0, 0.5]
    masks = history[-1]["masks"]
    state = model.state_dict()
    for name, mask in masks.items():
        assert torch.all(state[name][mask == 0] == 0)  # stayed zero through the SGD steps of round 1
        assert not torch.equal(state[name][mask == 1], initial[name][mask == 1])  # survivors trained
    # rewinding: prune once more from the trained model and check θ₀ ⊙ m exactly, BN and linear rewound too
    new_masks = lottery_round(model, initial, masks, config, images[:8], labels[:8])
    state = model.state_dict()
    for key, value in initial.items():
        expected = value * new_masks[key] if key in new_masks else value
        assert torch.equal(state[key], expected), key
    assert abs(sparsity(new_masks) - 0.75) < 1e-3


def test_structured_round_masks_bn_weight_and_bias():
    model = small_bn_cnn(10).train()
    images, labels = _data()
    config = PruneConfig(method="slim", rate=0.25, rounds=2)
    history = iterative_pruning(model, images, labels, _tiny_train_config(), 10, config, score_batch=8)
    masks = history[-1]["masks"]
    assert history[-1]["sparsity"] > 0
    for name, mask in masks.items():
        bn = model.get_submodule(name)
        assert torch.all(bn.weight[mask == 0] == 0) and torch.all(bn.bias[mask == 0] == 0)


def test_one_shot_prunes_at_init_and_trains_once():
    model = small_bn_cnn(11).train()
    images, labels = _data()
    masks = one_shot_pruning(model, images, labels, _tiny_train_config(), 10,
                             PruneConfig(method="snip"), amount=0.9, score_batch=8)
    assert abs(sparsity(masks) - 0.9) < 1e-3
    weights = prunable_weights(model)
    assert all(torch.all(weights[n][m == 0] == 0) for n, m in masks.items())


def test_bad_configuration_is_rejected():
    with pytest.raises(ConfigError, match="method"):
        PruneConfig(method="magnitude")
    with pytest.raises(ConfigError, match="rate"):
        PruneConfig(rate=1.5)
    with pytest.raises(ConfigError, match="amount"):
        prune_lowest({"a": torch.ones(2)}, {"a": torch.ones(2)}, 2.0)


def test_hydra_untrained_scores_are_per_layer_magnitude_and_training_moves_only_the_scores():
    model = small_bn_cnn(12).train()
    images, labels = _data(16)
    masks = dense_masks(model)
    config = PruneConfig(method="hydra", rate=0.4, hydra_epochs=0)
    new = prune_step(model, masks, config, images, labels, train_data=(images, labels))
    for name, weight in prunable_weights(model).items():  # s₀ ∝ w per layer ⇒ per-layer magnitude pruning
        magnitudes = weight.detach().abs().flatten()
        k = round(0.4 * magnitudes.numel())
        kept = new[name].flatten().bool()
        assert int((~kept).sum()) == k
        assert magnitudes[~kept].max() <= magnitudes[kept].min()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    untrained = hydra_scores(model, masks, images, labels, 0.4, epochs=0)
    trained = hydra_scores(model, masks, images, labels, 0.4, epochs=2, learning_rate=0.05, batch_size=8)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())  # weights frozen and restored
    assert all(p.requires_grad for p in model.parameters())
    assert all(isinstance(m.weight, nn.Parameter) for m in model if isinstance(m, nn.Conv2d))
    assert any(not torch.allclose(trained[n], untrained[n]) for n in masks)  # the straight-through grad reaches s
    with pytest.raises(ConfigError, match="method"):
        PruneConfig(method="l1-channel")


@pytest.mark.parametrize("input_size", [8, 16])
def test_compressed_model_computes_the_same_function_with_fewer_channels(input_size):
    model = small_bn_cnn(13)
    if input_size != 8:  # 2×2 spatial output: the first linear layer drops 4 columns per channel
        torch.manual_seed(13)
        model = cifar_model_deep(ModelConfig(in_channels=1, input_size=input_size, channels=(4, 8, 8, 8, 8),
                                             fc_width=16))
        for bn in model:
            if isinstance(bn, nn.BatchNorm2d):
                bn.weight.data.uniform_(0.5, 1.5)
                bn.bias.data.uniform_(-0.2, 0.2)
                bn.running_mean.uniform_(-0.2, 0.2)
    masks = dense_channel_masks(model)
    masks = prune_lowest(slimming_scores(model, masks), masks, 0.5, keep_one_per_layer=True)
    apply_masks(model, channel_parameter_masks(masks))
    compact = compress_channels(model, masks)
    x = torch.rand(10, 1, input_size, input_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(compact(x), model.eval()(x), rtol=1e-5, atol=1e-6)
    widths = [m.out_channels for m in compact if isinstance(m, nn.Conv2d)]
    assert widths == [int(masks[name].sum()) for name in ("1", "4", "7", "10", "13")]
    assert sum(widths) < sum(m.out_channels for m in model if isinstance(m, nn.Conv2d))


def test_lottery_loop_resumed_after_a_trained_round_equals_the_uninterrupted_loop():
    """The one lottery loop (`iterative_pruning`, also behind the `pruning` experiment's units) resumes exactly."""
    import copy

    images, labels = _data()
    config = PruneConfig(method="imp", rate=0.5, rounds=3)
    model = small_bn_cnn(11).train()
    theta0 = {k: v.detach().clone() for k, v in model.state_dict().items()}
    fresh = copy.deepcopy(model)
    seen = {}

    def record(round_index, trained, masks, seconds):
        assert seconds >= 0
        seen[round_index] = (copy.deepcopy(trained.state_dict()), {k: m.clone() for k, m in masks.items()})

    iterative_pruning(model, images, labels, _tiny_train_config(), 10, config, score_batch=8, on_round=record)
    assert sorted(seen) == [0, 1, 2]
    fresh.load_state_dict(seen[1][0])
    history = iterative_pruning(fresh, images, labels, _tiny_train_config(), 10, config, score_batch=8,
                                initial_state=theta0, start_round=2, masks=seen[1][1])
    assert [h["round"] for h in history] == [2]
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    assert abs(history[0]["sparsity"] - 0.75) < 1e-3


def test_refill_imp_step_covers_only_the_filters_of_surviving_channels():
    model = small_bn_cnn(14)
    masks = dense_channel_masks(model)
    masks["1"] = torch.tensor([1.0, 0.0, 1.0, 1.0])  # channel 1 of the first BN pruned in an earlier round
    scores = refill_scores(model, masks, imp_amount=0.2)
    conv_weights = [model[i].weight.detach() for i in (0, 3, 6, 9, 12)]
    alive = [w for w in conv_weights]
    alive[0] = torch.cat([conv_weights[0][:1], conv_weights[0][2:]])  # the pruned filter does not compete
    magnitudes = torch.cat([w.abs().flatten() for w in alive])
    threshold = magnitudes.sort().values[round(0.2 * magnitudes.numel()) - 1]
    assert scores["1"][1] == 0  # a pruned channel scores 0 (it stays pruned)
    for name, weight in zip(("1", "4"), conv_weights[:2], strict=True):
        filtered = weight.abs() * (weight.abs() > threshold)
        expected = filtered.mean(dim=(1, 2, 3)) * (masks[name] if name == "1" else 1)
        torch.testing.assert_close(scores[name], expected)


def test_snip_and_taylor_score_with_batch_statistics_and_leave_the_model_as_it_was():
    import copy

    model = small_bn_cnn(15)  # eval mode, running statistics far from this batch's
    x, y = _data(16, 15)
    masks = dense_masks(model)
    before = copy.deepcopy(model.state_dict())
    reference = copy.deepcopy(model).train()  # the released scorer's model.train()
    weights = dict(reference.named_parameters())
    grads = torch.autograd.grad(F.cross_entropy(reference(x), y), [weights[name] for name in masks])
    expected = {name: (weights[name] * grad).abs() for name, grad in zip(masks, grads, strict=True)}
    for scores in (taylor_scores(model, masks, x, y), snip_scores(model, masks, x, y)):
        for name in masks:
            torch.testing.assert_close(scores[name], expected[name].detach(), atol=1e-6, rtol=1e-5)
    assert not model.training
    assert all(torch.equal(value, before[key]) for key, value in model.state_dict().items())
    eval_model = copy.deepcopy(model)
    eval_weights = dict(eval_model.named_parameters())
    eval_grads = torch.autograd.grad(F.cross_entropy(eval_model(x), y), [eval_weights[n] for n in masks])
    first = next(iter(masks))
    assert not torch.allclose((eval_weights[first] * eval_grads[0]).abs(), expected[first], atol=1e-4)
