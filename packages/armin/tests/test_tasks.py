import numpy as np
import pytest
import torch
from armin.tasks import (
    TaskConfig,
    associative_recall_batch,
    batchify,
    char_corpus,
    copy_batch,
    normalised_repeats,
    pixel_permutation,
    pixel_sequences,
    priority_sort_batch,
    repeat_copy_batch,
    sort_by_priority,
    split_pixel_sequences,
)


def test_copy_layout_delimiters_data_and_answer_phase():
    batch = copy_batch(TaskConfig("copy", width=3, min_length=4, max_length=5), 2, torch.Generator().manual_seed(0))
    inputs, targets = batch.inputs, batch.targets
    assert inputs.shape == (4 + 2 + 4, 2, 5) and targets.shape == (4, 2, 3)
    assert torch.equal(inputs[0, :, 3], torch.ones(2)) and inputs[0].sum() == 2  # start delimiter only
    assert torch.equal(inputs[5, :, 4], torch.ones(2)) and inputs[5].sum() == 2  # end delimiter only
    assert torch.equal(inputs[1:5, :, :3], targets)  # the answer is the presented sequence
    assert inputs[1:5, :, 3:].abs().sum() == 0 and inputs[6:].abs().sum() == 0  # zeros while answering


def test_repeat_copy_targets_repeat_the_sequence_and_end_with_a_flag():
    config = TaskConfig("repeat", width=2, min_length=2, max_length=3, min_repeats=3, max_repeats=4)
    batch = repeat_copy_batch(config, 1, torch.Generator().manual_seed(0))
    sequence = batch.inputs[1:3, :, :2]
    assert batch.targets.shape == (2 * 3 + 1, 1, 3)
    assert torch.equal(batch.targets[:6, :, :2], torch.cat([sequence] * 3))
    assert batch.targets[:6, :, 2].sum() == 0 and batch.targets[6, 0].tolist() == [0.0, 0.0, 1.0]
    assert batch.inputs[3, 0, 3] == normalised_repeats(3, 3, 4)


def test_normalised_repeats_uses_the_released_code_constants():
    """repeatcopy.py: mean (max − min)/2 = 4.5, variance ((max − min + 1)² − 1)/12 = 8.25 for repeats 1..10."""
    for repeats in range(1, 10):
        assert normalised_repeats(repeats, 1, 10) == pytest.approx((repeats - 4.5) / 8.25 ** 0.5, abs=1e-12)
    assert normalised_repeats(1, 1, 10) == pytest.approx(-1.2185, abs=1e-4)


def test_associative_recall_target_is_the_item_after_the_query():
    config = TaskConfig("recall", width=4, min_length=2, max_length=3, min_items=3, max_items=4)
    for seed in range(20):
        batch = associative_recall_batch(config, 1, torch.Generator().manual_seed(seed))
        inputs = batch.inputs[:-batch.answer_steps, 0]
        starts = torch.nonzero(inputs[:, 4]).flatten().tolist()
        items = [inputs[start + 1:start + 3, :4] for start in starts]
        assert len(items) == 3
        query = inputs[3 * 3 + 1:3 * 3 + 3, :4]
        assert inputs[9, 5] == 1 and inputs[-1, 5] == 1  # query delimiters
        matches = [i for i, item in enumerate(items[:-1]) if torch.equal(item, query)]
        assert matches, "the query is one of the items, never the last"
        assert any(torch.equal(batch.targets[:, 0], items[i + 1]) for i in matches)


def test_sort_by_priority_hand_example():
    rows = torch.tensor([[1.0, 0.0, 0.1], [0.0, 1.0, 0.9], [1.0, 1.0, -0.5]]).unsqueeze(1)  # (3, 1, 2 + 1)
    assert sort_by_priority(rows, 2)[:, 0].tolist() == [[0.0, 1.0], [1.0, 0.0]]
    buggy = sort_by_priority(rows, 2, column_bug=True)[:, 0].tolist()
    assert buggy == [[1.0, 1.0], [1.0, 1.0]]  # columns sorted independently: not rows of the input


def test_priority_sort_targets_are_input_rows_in_descending_priority():
    config = TaskConfig("sort", width=5, sort_input=12, sort_output=7)
    batch = priority_sort_batch(config, 4, torch.Generator().manual_seed(3))
    inputs = batch.inputs[:12]
    for b in range(4):
        priorities = inputs[:, b, 5]
        top = torch.argsort(priorities, descending=True)[:7]
        assert torch.equal(batch.targets[:, b], inputs[top, b, :5])  # row-wise: bits travel with their priority
    assert batch.inputs.shape == (12 + 7, 4, 6)


def test_pixel_sequences_split_and_fixed_permutation():
    plain = pixel_sequences("digits", permuted=False)
    permuted = pixel_sequences("digits", permuted=True)
    assert plain.train[0].shape[1:] == (64, 1)
    assert len(plain.train[1]) + len(plain.validation[1]) + len(plain.test[1]) == 1797
    order = pixel_permutation(64)
    assert torch.equal(permuted.train[0][:, :, 0], plain.train[0][:, order, 0])
    assert torch.equal(plain.test[1], permuted.test[1])


def test_mnist_keeps_its_official_test_split_and_cuts_train_90_10():
    """The released code: 10 % of the 60k train images for validation (54k / 6k), the 10k test split for test."""
    from repro_shared.data import ImageDataset

    def images(count: int, label: int) -> ImageDataset:
        return ImageDataset(np.random.RandomState(count).rand(count, 2, 2).astype(np.float32),
                            np.full(count, label, dtype=np.int64), "fake", f"{count} fake images")

    splits = split_pixel_sequences(images(60, 1), permuted=True, test_images=images(10, 7))
    assert (len(splits.train[1]), len(splits.validation[1]), len(splits.test[1])) == (54, 6, 10)
    assert (splits.test[1] == 7).all() and (splits.train[1] == 1).all() and (splits.validation[1] == 1).all()
    order = pixel_permutation(4)
    torch.testing.assert_close(splits.test[0][:, :, 0], torch.from_numpy(images(10, 7).images.reshape(10, 4)[:, order]))
    assert splits.train[0].shape == (54, 4, 1)


def test_char_corpus_round_trips_and_batchify_keeps_streams_contiguous():
    corpus = char_corpus(max_chars=3000)
    decoded = "".join(corpus.vocabulary[i] for i in corpus.train[:200])
    from armin.tasks import stdlib_text

    assert stdlib_text()[0][:200] == decoded
    streams = batchify(torch.arange(10), 3)
    assert streams.tolist() == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]


@pytest.mark.parametrize("kwargs", [{"name": "unknown"}, {"min_length": 5, "max_length": 5},
                                    {"sort_input": 3, "sort_output": 4}, {"min_items": 1}])
def test_bad_task_configs_fail_at_config_time(kwargs):
    from repro_shared.errors import ConfigError

    with pytest.raises(ConfigError):
        TaskConfig(**kwargs)
