"""Shared-prefix batching helpers against hand-made rows."""

from repro_shared.lm import common_prefix_length, left_padded_suffixes


def test_common_prefix_length():
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix_length([[5], [6]]) == 0
    assert common_prefix_length([[7, 8], [7, 8]]) == 2


def test_left_padded_suffixes_continue_the_prefix_positions():
    ids, mask, positions = left_padded_suffixes([[7, 8, 9], [1]], pad_id=0, prefix_length=4)
    assert ids.tolist() == [[7, 8, 9], [0, 0, 1]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert positions.tolist() == [[4, 5, 6], [3, 3, 4]]  # masked padding repeats the last prefix position
