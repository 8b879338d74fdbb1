"""Generation engine: batching = one-at-a-time (greedy), cache resume, n samples, seeds, bad model folders."""

import json
import os
import shutil

import pytest
from decoding_comp_trust.trust.engine import (
    GenerationCache,
    GenRequest,
    HFEngine,
    Sampling,
    check_causal_lm_folder,
    model_fingerprint,
    pad_after_prefix,
    shared_prefix_length,
)
from decoding_comp_trust.trust.tiny import build_tiny_model
from repro_shared.errors import ConfigError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def requests(n=1, temperature=0.0):
    prompts = ["Hello there, how are", "A", "The quick brown fox jumps over", "xyz"]
    return [GenRequest("test", p, Sampling(max_tokens=6, temperature=temperature, n=n)) for p in prompts]


def test_batched_greedy_equals_one_prompt_at_a_time(tiny):
    batched = HFEngine.from_folder(tiny, batch_size=4)
    single = HFEngine.from_folder(tiny, batch_size=1)
    a, b = requests(), requests()
    batched.generate(a)
    single.generate(b)
    assert [r.outputs for r in a] == [r.outputs for r in b]
    assert all(len(r.outputs) == 1 for r in a)


def test_n_samples_and_seeded_sampling_is_reproducible(tiny):
    a, b = requests(n=3, temperature=1.0), requests(n=3, temperature=1.0)
    HFEngine.from_folder(tiny, batch_size=6, seed=1).generate(a)
    HFEngine.from_folder(tiny, batch_size=6, seed=1).generate(b)
    assert all(len(r.outputs) == 3 for r in a)
    assert [r.outputs for r in a] == [r.outputs for r in b]
    assert len({o for r in a for o in r.outputs}) > 4  # sampling at t = 1 gives different continuations


def test_cache_resume_generates_nothing_the_second_time(tiny, tmp_path):
    cache_path = tmp_path / "gen.jsonl"
    first = HFEngine.from_folder(tiny, cache=GenerationCache(cache_path), batch_size=2)
    partial = requests()[:2]
    first.generate(partial)  # an "interrupted" run: half done
    with open(cache_path, "a") as handle:
        handle.write('{"key": "torn')  # a crash mid-write leaves a torn line
    second = HFEngine.from_folder(tiny, cache=GenerationCache(cache_path), batch_size=2)
    full = requests()
    second.generate(full)
    assert second.generated_prompts == 2  # only the two missing prompts
    assert [r.outputs for r in full[:2]] == [r.outputs for r in partial]
    third = HFEngine.from_folder(tiny, cache=GenerationCache(cache_path), batch_size=2)
    again = requests()
    third.generate(again)
    assert third.generated_prompts == 0
    assert [r.outputs for r in again] == [r.outputs for r in full]


def test_cache_key_includes_sampling_settings(tiny, tmp_path):
    engine = HFEngine.from_folder(tiny, cache=GenerationCache(tmp_path / "c.jsonl"))
    engine.generate([GenRequest("t", "Hi", Sampling(4))])
    engine.generate([GenRequest("t", "Hi", Sampling(5))])
    engine.generate([GenRequest("other", "Hi", Sampling(4))])
    assert engine.generated_prompts == 3


def test_stop_strings_cut_the_output(tiny):
    engine = HFEngine.from_folder(tiny)
    free = [GenRequest("t", "Hello", Sampling(8))]
    engine.generate(free)
    text = free[0].outputs[0]
    if len(text) >= 3:
        stop = text[2]
        engine_stop = HFEngine.from_folder(tiny, stop_strings=(stop,))
        cut = [GenRequest("t", "Hello", Sampling(8))]
        engine_stop.generate(cut)
        assert stop not in cut[0].outputs[0]
        assert text.startswith(cut[0].outputs[0])


def test_not_a_causal_lm_is_rejected_before_loading(tmp_path):
    with pytest.raises(ConfigError, match=r"config\.json"):
        check_causal_lm_folder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"],
                                                      "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
                                                      "num_attention_heads": 1, "intermediate_size": 8}))
    with pytest.raises(ConfigError, match="not a causal language model"):
        check_causal_lm_folder(tmp_path)


def test_fingerprint_follows_content_not_folder(tiny, tmp_path):
    linked = tmp_path / "linked"
    linked.mkdir()
    for file in tiny.iterdir():
        os.link(file, linked / file.name)
    assert model_fingerprint(linked) == model_fingerprint(tiny)  # a reused (hard-linked) model shares the cache
    changed = tmp_path / "changed"
    shutil.copytree(tiny, changed, copy_function=shutil.copy2)
    (changed / "compression.json").write_text(json.dumps({"method": "rtn", "bits": 4}))
    assert model_fingerprint(changed) != model_fingerprint(tiny)
    weights = next(changed.glob("*.safetensors"))
    (changed / "compression.json").unlink()
    assert model_fingerprint(changed) == model_fingerprint(tiny)
    with weights.open("ab") as handle:
        handle.write(b"\0")
    assert model_fingerprint(changed) != model_fingerprint(tiny)


def test_batches_bound_padding_and_size(tiny):
    engine = HFEngine.from_folder(tiny, batch_size=4, max_padding=0.1)
    words = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "again", "and", "again"]
    prompts = [" ".join(words[: 1 + i % 12]) * (1 + i % 3) for i in range(40)]
    pending = {f"k{i}": [GenRequest("test", p, Sampling(max_tokens=2))] for i, p in enumerate(prompts)}
    lengths = dict(zip(pending, engine._prompt_lengths(prompts), strict=True))
    batches = engine._batches(pending)
    assert sorted(k for b in batches for k in b) == sorted(pending)  # every prompt once
    assert all(len(b) <= 4 for b in batches)
    assert all(max(lengths[k] for k in b) <= 1.1 * min(lengths[k] for k in b) for b in batches)
    engine.max_padding = None  # no bound: full batches of 4 in length order
    assert [len(b) for b in engine._batches(pending)] == [4] * 10


def test_prefix_layout_on_hand_made_rows():
    rows = [[5, 6, 7, 8, 9], [5, 6, 7, 1], [5, 6, 2, 3, 4, 4]]
    assert shared_prefix_length(rows) == 2
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2  # one token of every row stays outside the prefix
    ids, mask = pad_after_prefix(rows, 2, pad_id=0)
    assert ids.tolist() == [[5, 6, 0, 7, 8, 9], [5, 6, 0, 0, 7, 1], [5, 6, 2, 3, 4, 4]]
    assert mask.tolist() == [[1, 1, 0, 1, 1, 1], [1, 1, 0, 0, 1, 1], [1, 1, 1, 1, 1, 1]]
    ids, mask = pad_after_prefix(rows, 0, pad_id=0)  # plain left padding
    assert ids.tolist()[1] == [0, 0, 5, 6, 7, 1] and mask.tolist()[1] == [0, 0, 1, 1, 1, 1]


def test_shared_prefix_batches_equal_one_prompt_at_a_time(tiny, monkeypatch):
    shared = "System: answer the question with one word only, please. Question: "
    prompts = [shared + q for q in ("what colour is the sky", "why", "how many legs does a spider have", "who")]
    batched = HFEngine.from_folder(tiny, batch_size=4, max_padding=None)
    single = HFEngine.from_folder(tiny, batch_size=1)
    calls = []
    original = HFEngine._prefix_cache
    monkeypatch.setattr(HFEngine, "_prefix_cache", lambda self, ids, rows: calls.append(ids.shape[1]) or
                        original(self, ids, rows))
    a = [GenRequest("test", p, Sampling(max_tokens=8)) for p in prompts]
    b = [GenRequest("test", p, Sampling(max_tokens=8)) for p in prompts]
    batched.generate(a)
    single.generate(b)
    assert len(calls) == 1 and calls[0] >= 8  # the shared prefix ran once, for the one batch of four
    assert [r.outputs for r in a] == [r.outputs for r in b]


def test_greedy_decoding_equals_transformers_generate(tiny):
    """The engine's own greedy loop (rows leave the batch at end-of-sequence) against `generate`, one prompt each;
    the token one prompt produces third is made the end-of-sequence token, so rows finish at different steps."""
    import torch

    engine = HFEngine.from_folder(tiny, batch_size=4)
    prompts = ["System: one word. Q: sky colour", "System: one word. Q: why", "System: one word. Q: 2+2", "hi"]

    def reference(prompt):
        encoded = engine.tokenizer([prompt], return_tensors="pt")
        with torch.inference_mode():
            out = engine.model.generate(**encoded, max_new_tokens=12, do_sample=False, temperature=None, top_p=None,
                                        top_k=None, pad_token_id=engine.tokenizer.pad_token_id)
        return out[0, encoded["input_ids"].shape[1]:]

    stop_token = int(reference(prompts[0])[2])
    engine.model.generation_config.eos_token_id = stop_token
    requests_ = [GenRequest("test", p, Sampling(max_tokens=12)) for p in prompts]
    engine.generate(requests_)
    expected = [engine._decode(reference(p)) for p in prompts]
    assert [r.outputs for r in requests_] == [[e] for e in expected]
    assert len({len(e) for e in expected}) > 1  # the rows did finish at different steps
