"""Batched, prefix-cached forward passes and label scoring against one-row-at-a-time computations."""

import numpy as np
import pytest
import torch
from dp_opt.lm import append_token, forward_with_shared_prefix, length_buckets
from dp_opt.scoring import ScoringOptions, encode, label_log_probs
from dp_opt.templates import fill_eval_template
from repro_shared.lm import common_prefix_length


def single_row_logits(model, row):
    with torch.no_grad():
        return model(torch.tensor([row])).logits[0]


def test_common_prefix_length():
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix_length([[5], [6]]) == 0


def test_prefix_cached_batch_equals_unbatched_rows(tiny_lm):
    model, tokenizer = tiny_lm
    texts = ["Instruction: classify.\n\nInput: a", "Instruction: classify.\n\nInput: longer text here",
             "Instruction: classify.\n\nInput: b c"]
    rows = [encode(tokenizer, t) for t in texts]
    assert common_prefix_length(rows) > 3
    logits, _ = forward_with_shared_prefix(model, rows, tokenizer.pad_token_id, logits_to_keep=2)
    for index, row in enumerate(rows):
        torch.testing.assert_close(logits[index], single_row_logits(model, row)[-2:], atol=1e-4, rtol=1e-4)


def test_length_buckets_bound_the_padding_and_cover_every_row():
    lengths = [10, 50, 12, 48, 11, 100, 49]
    buckets = length_buckets(lengths, max_padding=0.1)
    assert sorted(i for bucket in buckets for i in bucket) == list(range(len(lengths)))
    for bucket in buckets:
        tokens = sum(lengths[i] for i in bucket)
        assert max(lengths[i] for i in bucket) * len(bucket) - tokens <= 0.1 * tokens
    assert len(buckets) == 3  # {100}, {50, 49, 48}, {12, 11, 10}
    assert length_buckets(lengths, max_padding=10.0) == [[5, 1, 6, 3, 2, 4, 0]]


@pytest.mark.parametrize("use_prefix_cache", [True, False])
def test_bucketed_batch_equals_unbatched_rows(tiny_lm, use_prefix_cache):
    model, tokenizer = tiny_lm
    texts = ["Instruction: classify.\n\nInput: a", "Instruction: classify.\n\nInput: a much much longer text here",
             "Instruction: classify.\n\nInput: b c", "Instruction: classify.\n\nInput: another long one, see"]
    rows = [encode(tokenizer, t) for t in texts]
    logits, _ = forward_with_shared_prefix(model, rows, tokenizer.pad_token_id, use_prefix_cache=use_prefix_cache,
                                           max_padding=0.0)
    for index, row in enumerate(rows):
        torch.testing.assert_close(logits[index, -1], single_row_logits(model, row)[-1], atol=1e-4, rtol=1e-4)


def test_append_token_equals_recomputing(tiny_lm):
    model, tokenizer = tiny_lm
    rows = [encode(tokenizer, "Improved Instruction: a"), encode(tokenizer, "Improved Instruction: bbb cc")]
    _, state = forward_with_shared_prefix(model, rows, tokenizer.pad_token_id, keep_state=True)
    token = 42
    logits = append_token(model, state, token)
    logits = append_token(model, state, token + 1)
    for index, row in enumerate(rows):
        expected = single_row_logits(model, [*row, token, token + 1])[-1]
        torch.testing.assert_close(logits[index], expected, atol=1e-4, rtol=1e-4)


def hand_score(model, tokenizer, prompt, text, word):
    """Mean log-probability of the label word's tokens after F(x, π), one sequence, no batching."""
    context = encode(tokenizer, fill_eval_template(prompt, text, "").rstrip())
    candidate = encode(tokenizer, fill_eval_template(prompt, text, word))
    log_probs = torch.log_softmax(single_row_logits(model, candidate), dim=-1)
    positions = range(len(context), len(candidate))
    return float(np.mean([log_probs[p - 1, candidate[p]].item() for p in positions]))


@pytest.mark.parametrize("use_prefix_cache", [True, False])
def test_scores_equal_the_hand_computation(tiny_lm, use_prefix_cache):
    model, tokenizer = tiny_lm
    prompt, texts, words = "Classify the input text.", ["a fine film", "dull"], ["no", "description"]
    scores = label_log_probs(model, tokenizer, prompt, texts, words,
                             ScoringOptions(batch_size=3, use_prefix_cache=use_prefix_cache))
    for i, text in enumerate(texts):
        for j, word in enumerate(words):
            assert scores[i, j] == pytest.approx(hand_score(model, tokenizer, prompt, text, word), abs=1e-4)


def test_batch_wide_label_length_is_the_released_quirk(tiny_lm):
    model, tokenizer = tiny_lm
    words = ["no", "zqxjvkw"]  # an unseen word: many byte tokens
    lengths = [len(encode(tokenizer, "Output: " + w)) - len(encode(tokenizer, "Output:")) for w in words]
    assert lengths[0] != lengths[1]  # otherwise the quirk is invisible
    own = label_log_probs(model, tokenizer, "P", ["x"], words, ScoringOptions(batch_size=2))
    quirk = label_log_probs(model, tokenizer, "P", ["x"], words,
                            ScoringOptions(batch_size=2, batch_wide_label_length=True))
    assert own[0, 1] == pytest.approx(quirk[0, 1], abs=1e-5)  # the longest label: same count
    assert own[0, 0] != pytest.approx(quirk[0, 0], abs=1e-5)  # the shorter one averages over extra tokens


def test_reusing_each_context_across_label_words_equals_full_candidates_and_runs_fewer_tokens(tiny_lm):
    from dp_opt.scoring import _scores_of_full_candidates

    model, tokenizer = tiny_lm
    words = ["no", "description", "zqxjvkw"]  # 1, several and many tokens
    texts = [f"film number {i} was {'good' if i % 2 else 'bad'}" for i in range(7)]
    processed = []
    handle = model.register_forward_pre_hook(lambda _, args, kwargs: processed.append(kwargs["input_ids"].numel()),
                                             with_kwargs=True)
    try:
        reused = label_log_probs(model, tokenizer, "Classify.", texts, words, ScoringOptions(batch_size=6))
        reused_tokens, processed[:] = sum(processed), []
        full = _scores_of_full_candidates(model, tokenizer, "Classify.", texts, words, ScoringOptions(batch_size=6))
        full_tokens = sum(processed)
    finally:
        handle.remove()
    np.testing.assert_allclose(reused, full, atol=1e-4)
    assert reused_tokens < 0.6 * full_tokens  # each context once instead of three times


def test_a_record_whose_candidates_do_not_extend_its_context_is_scored_in_full(tiny_lm, monkeypatch):
    from dp_opt import scoring

    model, tokenizer = tiny_lm
    original = scoring.encode

    def merging_encode(tokenizer, text):  # as if a BPE merge crossed the context/label boundary of "odd" records
        ids = original(tokenizer, text)
        return [ids[1], *ids[1:]] if "odd" in text and not text.endswith("Output:") else ids

    monkeypatch.setattr(scoring, "encode", merging_encode)
    texts, words = ["an odd film", "a fine film", "odd again"], ["no", "description"]
    reused = label_log_probs(model, tokenizer, "Classify.", texts, words, ScoringOptions(batch_size=4))
    full = scoring._scores_of_full_candidates(model, tokenizer, "Classify.", texts, words, ScoringOptions(4))
    np.testing.assert_allclose(reused, full, atol=1e-4)
