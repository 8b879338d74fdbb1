import pytest
import torch
from armin.efficiency import matmul_macs_per_step, measured_matmul_macs_per_step, training_memory_bytes
from armin.models import KINDS, ModelConfig, build_model, count_parameters, detach_state
from repro_shared.errors import ConfigError


def _tiny(kind: str, **extra) -> ModelConfig:
    return ModelConfig(kind=kind, hidden=6, width=4, slots=5, **extra)


@pytest.mark.parametrize("kind", KINDS)
def test_every_model_runs_batched_and_every_parameter_gets_a_gradient(kind):
    torch.manual_seed(0)
    model = build_model(_tiny(kind), 3, 2)
    outputs, _state = model(torch.randn(9, 4, 3), tau=2.0)  # 9 steps > 5 slots: fill and overwrite
    assert outputs.shape == (9, 4, 2)
    outputs.square().sum().backward()
    unused = [name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not unused


@pytest.mark.parametrize("kind", KINDS)
def test_truncated_bptt_with_carried_state_equals_one_pass(kind):
    torch.manual_seed(0)
    model = build_model(_tiny(kind), 3, 2)
    inputs = torch.randn(10, 2, 3)
    torch.manual_seed(5)
    whole, _ = model(inputs, tau=3.0)
    torch.manual_seed(5)  # the same Gumbel noise, drawn in the same order
    first, state = model(inputs[:4], tau=3.0)
    second, _ = model(inputs[4:], detach_state(state), tau=3.0)
    torch.testing.assert_close(torch.cat([first, second]), whole)


def test_paper_sizes_parameter_counts_on_copy():
    """LSTM(300) ≈ 375.6 k and ARMIN(100, 32, 50) ≈ 92.5 k (released alg. code writes [x, h])."""
    lstm = build_model(ModelConfig(kind="lstm", hidden=300), 10, 8)
    armin = build_model(ModelConfig(hidden=100, width=32, slots=50, write_input=True), 10, 8)
    assert count_parameters(lstm) == 4 * 300 * (10 + 300) + 4 * 300 + 300 * 8 + 8
    assert round(count_parameters(armin) / 100) == 925


@pytest.mark.parametrize("kind", ["armin", "lstm", "tardis", "awta", "ntm"])
def test_analytic_macs_match_torch_flop_counter(kind):
    config = ModelConfig(kind=kind, hidden=7, width=5, slots=6, key_size=3, write_input=kind == "armin")
    model = build_model(config, 4, 3)
    assert matmul_macs_per_step(config, 4, 3) == measured_matmul_macs_per_step(model, 4)


def test_armin_is_cheaper_than_lstm300_at_paper_sizes():
    armin = matmul_macs_per_step(ModelConfig(hidden=100, width=32, slots=50), 10, 8)
    lstm = matmul_macs_per_step(ModelConfig(kind="lstm", hidden=300), 10, 8)
    assert armin < lstm / 3


def test_training_memory_grows_linearly_with_length():
    model = build_model(_tiny("armin"), 3, 2)
    small, large = (training_memory_bytes(model, torch.zeros(n, 2, 3)) for n in (10, 20))
    assert 1.8 < large / small < 2.2


@pytest.mark.parametrize("kwargs", [
    {"kind": "armin", "hidden": 8, "width": 16},  # code variant forbids width > hidden
    {"slots": 0}, {"kind": "gru"}, {"variant": "other"}, {"read": "hard"}, {"hidden": 0}])
def test_bad_model_configs_fail_with_a_clear_message(kwargs):
    with pytest.raises(ConfigError):
        ModelConfig(**kwargs)


def test_paper_variant_allows_memory_wider_than_hidden():
    model = build_model(ModelConfig(hidden=4, width=8, slots=3, variant="paper"), 2, 2)
    assert model(torch.randn(5, 1, 2))[0].shape == (5, 1, 2)


def test_gumbel_read_and_softmax_read_differ_only_by_config():
    torch.manual_seed(0)
    hard = build_model(_tiny("armin"), 3, 2)
    torch.manual_seed(0)
    soft = build_model(_tiny("armin", read="softmax"), 3, 2)
    assert all(torch.equal(a, b) for a, b in zip(hard.state_dict().values(), soft.state_dict().values(), strict=True))
    inputs = torch.randn(7, 2, 3)
    assert not torch.allclose(hard(inputs)[0], soft(inputs)[0])


@pytest.mark.gpu
@pytest.mark.parametrize("kind", KINDS)
def test_models_run_on_cuda_and_match_the_cpu(kind):
    torch.manual_seed(0)
    model = build_model(_tiny(kind, eval_noise=False), 3, 2).eval()
    inputs = torch.randn(9, 4, 3)
    expected, _ = model(inputs)
    actual, _ = model.to("cuda")(inputs.to("cuda"))
    torch.testing.assert_close(actual.cpu(), expected, atol=1e-4, rtol=1e-4)
