import torch
from armin.addressing import (
    gumbel_softmax_sample,
    read_memory,
    sample_gumbel,
    st_gumbel_softmax,
    tau_schedule,
    write_memory,
    write_weights,
)
from armin.models import ModelConfig, build_model


def test_straight_through_read_is_one_hot_forward_and_passes_gradient_to_logits():
    torch.manual_seed(0)
    logits = torch.randn(4, 6, requires_grad=True)
    state = torch.get_rng_state()
    hard = st_gumbel_softmax(logits, inverse_temperature=2.0)
    torch.set_rng_state(state)
    perturbed = logits.detach() + sample_gumbel(logits.shape, logits)
    assert torch.equal(hard.detach().sum(-1), torch.ones(4))
    assert set(hard.detach().unique().tolist()) == {0.0, 1.0}
    assert torch.equal(hard.detach().argmax(-1), perturbed.argmax(-1))  # the Gumbel-max sample
    memory = torch.randn(4, 6, 3)
    read = read_memory(hard, memory)
    assert torch.equal(read.detach(), memory[torch.arange(4), hard.detach().argmax(-1)])  # exactly one slot
    read.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_gradient_of_hard_sample_equals_gradient_of_soft_sample():
    torch.manual_seed(1)
    logits = torch.randn(3, 5, requires_grad=True)
    weights = torch.randn(3, 5)
    state = torch.get_rng_state()
    hard = st_gumbel_softmax(logits, 3.0)
    (hard * weights).sum().backward()
    straight_through = logits.grad.clone()
    logits.grad = None
    torch.set_rng_state(state)
    soft = gumbel_softmax_sample(logits, 3.0, sample_gumbel(logits.shape, logits))
    (soft * weights).sum().backward()
    torch.testing.assert_close(straight_through, logits.grad)


def test_addressing_layer_of_armin_receives_gradient_through_the_hard_read():
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=6, width=4, slots=3), 2, 2)
    logits, _ = model(torch.randn(8, 2, 2), tau=1.0)  # 8 steps > 3 slots: reads of written slots
    logits.sum().backward()
    assert model.core.address_state.weight.grad.abs().sum() > 0
    assert model.core.address_input.weight.grad.abs().sum() > 0


def test_write_fills_empty_slots_in_order_then_overwrites_the_slot_just_read():
    eye = torch.eye(3)
    read = torch.tensor([[0.0, 0.0, 1.0]], requires_grad=True)
    assert torch.equal(write_weights(read, 0, 3, eye), torch.tensor([[1.0, 0.0, 0.0]]))
    assert torch.equal(write_weights(read, 2, 3, eye), torch.tensor([[0.0, 0.0, 1.0]]))
    overwrite = write_weights(read, 3, 3, eye)
    assert torch.equal(overwrite, read.detach()) and not overwrite.requires_grad


def test_write_memory_replaces_exactly_the_addressed_slot():
    memory = torch.arange(6.0).view(1, 3, 2)
    written = write_memory(memory, torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([[9.0, 8.0]]))
    assert torch.equal(written, torch.tensor([[[0.0, 1.0], [9.0, 8.0], [4.0, 5.0]]]))


def test_sequential_fill_then_overwrite_inside_the_model():
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=5, width=5, slots=3, eval_noise=False), 2, 1).core.eval()
    state = model.initial_state(1)
    inputs = torch.randn(3, 1, 2)
    _, state = model(inputs, state, 1.0)
    words = []  # the word written at step t is W_v h_t; recompute h_t by feeding step by step
    replay = model.initial_state(1)
    for t in range(3):
        _, replay = model(inputs[t:t + 1], replay, 1.0)
        words.append(model.word(replay["h"]))
    assert state["writes"] == 3
    torch.testing.assert_close(state["memory"][0], torch.cat(words))


def test_tau_schedule_increases_stepwise_up_to_the_maximum():
    assert [tau_schedule(s, 1.0, 1.0, 400, 3.0) for s in (0, 399, 400, 800, 5000)] == [1.0, 1.0, 2.0, 3.0, 3.0]


def test_straight_through_backward_passes_gradcheck_as_the_softmax_it_stands_for():
    from armin.addressing import _StraightThroughOneHot

    logits = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 4, dtype=torch.float64)
    (_StraightThroughOneHot.apply(logits, 1.5) * weights).sum().backward()
    expected = torch.autograd.grad((torch.softmax(logits * 1.5, -1) * weights).sum(), logits)[0]
    torch.testing.assert_close(logits.grad, expected)
