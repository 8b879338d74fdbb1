"""The cifar_model_deep family: the paper's ReLU count, input sizes, widths, dense conversion."""

from __future__ import annotations

import pytest
import torch
from certified_pruning.affine_net import to_affine_relu_network
from certified_pruning.models import ModelConfig, cifar_model_deep, conv_output_size, count_relus
from repro_shared.errors import ConfigError


def test_paper_model_has_the_relu_count_of_the_released_architecture():
    # 32·32·32 + 64·16·16 + 64·16·16 + 128·8·8 + 128·4·4 + 100
    assert count_relus(cifar_model_deep(ModelConfig()), (3, 32, 32)) == 75_876


@pytest.mark.parametrize(("size", "spatial"), [(32, 4), (28, 3), (8, 1)])
def test_input_sizes_and_widths(size, spatial):
    config = ModelConfig(in_channels=1, input_size=size, channels=(2, 3, 3, 4, 5), fc_width=7, num_classes=4)
    model = cifar_model_deep(config).eval()
    assert conv_output_size(size) == spatial
    assert model(torch.zeros(2, 1, size, size)).shape == (2, 4)
    assert model[-3].in_features == 5 * spatial * spatial


def test_dense_form_computes_the_same_function():
    model = cifar_model_deep(ModelConfig(in_channels=1, input_size=8, channels=(4, 8, 8, 8, 8), fc_width=16))
    model.train()(torch.rand(32, 1, 8, 8))  # give BatchNorm non-trivial running statistics
    model.eval()
    x = torch.rand(5, 1, 8, 8)
    network = to_affine_relu_network(model, (1, 8, 8))
    torch.testing.assert_close(network(x.flatten(1)), model.double()(x.double()), atol=1e-10, rtol=1e-10)


def test_bad_model_configs_raise():
    with pytest.raises(ConfigError, match="too small"):
        ModelConfig(input_size=4)
    with pytest.raises(ConfigError, match="exactly 5"):
        ModelConfig(channels=(8, 8))


def test_layer_sizes_and_the_dense_verifier_memory_preflight():
    from certified_pruning.models import layer_sizes
    from certified_pruning.pruning_experiment import check_scale
    from certified_pruning.verify import dense_verifier_bytes

    quick = layer_sizes(ModelConfig(in_channels=1, input_size=8, channels=(8, 16, 16, 32, 32), fc_width=32))
    assert quick == [64, 512, 256, 256, 128, 32, 32, 10] and sum(quick[1:-1]) == 1216
    assert sum(layer_sizes(ModelConfig())[1:-1]) == 75_876  # the paper's model, as count_relus
    # hand: maps 2·3 + 3·1 = 9 entries; one domain batch of 2 · 2 · widest hidden 3 · widest 3 = 36; × 8 bytes
    assert dense_verifier_bytes([2, 3, 1], 2) == 8 * (9 + 36)
    check_scale("digits", (8, 16, 16, 32, 32), 32, 32, 8.0, None)  # the quick network passes
    with pytest.raises(ConfigError, match=r"75,876 ReLUs.*GiB.*verifier_memory_gib=8.0"):
        check_scale("cifar10", (32, 64, 64, 128, 128), 100, 512, 8.0, None)  # the paper's network is refused
