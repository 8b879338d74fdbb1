"""Generation engine: batching = one-at-a-time (greedy), cache resume, n samples, seeds, bad model folders."""

import json

import pytest
from decoding_comp_trust.trust.engine import GenerationCache, GenRequest, HFEngine, Sampling, check_causal_lm_folder
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
