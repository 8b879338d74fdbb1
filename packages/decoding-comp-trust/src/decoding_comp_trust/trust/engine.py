"""Batched generation engine with a resumable on-disk cache (HELM's `HuggingFaceServer`, batched).

DecodingTrust generates one prompt at a time through HELM; here prompts with the same sampling settings are generated
in batches with left padding and attention masks, which gives the same greedy continuations much faster (see
`benchmarks/bench_engine.py`). Every finished prompt is appended to a JSONL cache (flushed and fsynced) keyed by
(model fingerprint, perspective, prompt, sampling settings), so an interrupted evaluation resumes and a changed scorer
re-scores without generating anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from repro_shared.errors import ConfigError
from repro_shared.io import append_jsonl, read_jsonl
from repro_shared.lm import cache_keyword, common_prefix_length, left_padded_suffixes
from repro_shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Sampling:
    """Generation settings of one request: n samples at temperature t (t = 0: greedy), at most max_tokens."""

    max_tokens: int
    temperature: float = 0.0
    n: int = 1
    top_p: float = 1.0

    def key(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GenRequest:
    """One prompt to generate for: the rendered prompt string plus what the scorer needs to know about it."""

    perspective: str
    prompt: str
    sampling: Sampling
    meta: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] | None = None


def request_key(model_id: str, request: GenRequest) -> str:
    payload = json.dumps({"model": model_id, "perspective": request.perspective, "prompt": request.prompt,
                          "sampling": request.sampling.key()}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class GenerationCache:
    """Append-only JSONL cache of generations; a torn last line (a crash mid-write) is ignored on reading."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.entries: dict[str, list[str]] = {record["key"]: record["outputs"] for record in read_jsonl(self.path)}

    def get(self, key: str) -> list[str] | None:
        return self.entries.get(key)

    def put_many(self, items: Iterable[tuple[str, list[str]]]) -> None:
        items = list(items)
        append_jsonl(self.path, ({"key": key, "outputs": outputs} for key, outputs in items))
        self.entries.update(items)


def model_fingerprint(path: str | os.PathLike) -> str:
    """A short hash of a model folder's config, compression record and weight files (name, size, mtime).

    The folder's own path is left out, so a hard-linked or ``cp -p`` copy of a model (e.g. reused by a later compress
    run) shares its cached generations.
    """
    folder = Path(path)
    digest = hashlib.sha256()
    for name in ("config.json", "compression.json", "generation_config.json"):
        if (folder / name).exists():
            digest.update((folder / name).read_bytes())
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        stat = weights.stat()
        digest.update(f"{weights.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def check_causal_lm_folder(path: str | os.PathLike) -> None:
    """Raise ConfigError unless ``path`` is a folder with a causal-LM config and a tokenizer (cheap: no weights)."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"model folder {folder} has no config.json: it is not a save_pretrained model",
                          "pass a folder written by `save_pretrained` (a causal LM and its tokenizer)")
    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise ConfigError(f"model folder {folder}: config.json cannot be read ({error})") from error
    architectures = config.architectures or []
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or (
            architectures and not any(a.endswith("ForCausalLM") for a in architectures)):
        raise ConfigError(f"model folder {folder} holds a {config.model_type!r} model {architectures}, "
                          "not a causal language model",
                          "pass a causal LM (e.g. LlamaForCausalLM) saved with save_pretrained")
    if not any((folder / name).exists() for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise ConfigError(f"model folder {folder} has no tokenizer files", "save the tokenizer next to the model")


def shared_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Tokens common to the start of every row, leaving at least one token of each row outside the prefix."""
    return min(common_prefix_length(rows), min(len(row) for row in rows) - 1)


def pad_after_prefix(rows: Sequence[Sequence[int]], prefix: int, pad_id: int) -> tuple[Any, Any]:
    """Input ids and attention mask laid out as [shared prefix][padding][row's own suffix]: every row ends at the
    right edge (as with left padding, which this is for ``prefix = 0``); position ids follow the mask, so the
    padding shifts no position."""
    import torch

    suffix_ids, suffix_mask, _ = left_padded_suffixes([row[prefix:] for row in rows], pad_id, prefix)
    prefix_ids = torch.tensor([list(rows[0][:prefix])] * len(rows), dtype=torch.long).reshape(len(rows), prefix)
    return (torch.cat([prefix_ids, suffix_ids], dim=1),
            torch.cat([torch.ones_like(prefix_ids), suffix_mask], dim=1))


class HFEngine:
    """Batched `transformers` generation (left padding, attention masks, stop strings, n samples, seeds)."""

    def __init__(self, model: Any, tokenizer: Any, model_id: str, cache: GenerationCache | None = None,
                 batch_size: int = 8, seed: int = 0, add_special_tokens: bool = True,
                 postprocess: Callable[[str], str] | None = None, stop_strings: Sequence[str] = (),
                 max_padding: float | None = None, min_shared_prefix: int = 8) -> None:
        self.model, self.tokenizer, self.model_id = model, tokenizer, model_id
        self.cache, self.batch_size, self.seed = cache, batch_size, seed
        # a batch holds prompts whose token counts differ by at most this fraction of the shortest (None: any). Off
        # by default: with the shared prefix, padding sits in the suffixes only, and on SmolLM2 / CPU fewer, fuller
        # batches won (bench_engine: 2.6x with no bound vs 1.5x at 0.1 and 2.1x at 0.3, classification, batch 32)
        self.max_padding = max_padding
        self.min_shared_prefix = max(1, min_shared_prefix)  # shorter common prefixes are not worth a separate pass
        self.add_special_tokens = add_special_tokens
        self.postprocess = postprocess or (lambda text: text)
        self.stop_strings = tuple(stop_strings)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.generated_prompts = 0  # prompts actually run through the model (not served from the cache)

    @classmethod
    def from_folder(cls, path: str | os.PathLike, device: Any = "cpu", dtype: Any = None, **kwargs: Any) -> HFEngine:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        check_causal_lm_folder(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32).to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(path)
        return cls(model, tokenizer, model_id=model_fingerprint(path), **kwargs)

    def generate(self, requests: Sequence[GenRequest], progress: Callable | None = None) -> None:
        """Fill ``request.outputs`` for every request: from the cache, or by batched generation (then cached)."""
        pending: dict[str, list[GenRequest]] = {}
        for request in requests:
            key = request_key(self.model_id, request)
            cached = self.cache.get(key) if self.cache else None
            if cached is not None:
                request.outputs = list(cached)
            else:
                pending.setdefault(key, []).append(request)
        batches = self._batches(pending)
        iterator = progress(batches, desc="generation batches") if progress else batches
        for batch in iterator:
            outputs = self._generate_batch([pending[key][0] for key in batch])
            for key, texts in zip(batch, outputs, strict=True):
                for request in pending[key]:
                    request.outputs = list(texts)
            if self.cache is not None:
                self.cache.put_many(zip(batch, outputs, strict=True))

    def _batches(self, pending: dict[str, list[GenRequest]]) -> list[list[str]]:
        """Group keys with equal sampling settings, sorted by prompt length, into batches of at most
        ``batch_size`` sequences whose lengths differ by at most ``max_padding``."""
        groups: dict[Sampling, list[str]] = {}
        for key, reqs in pending.items():
            groups.setdefault(reqs[0].sampling, []).append(key)
        batches: list[list[str]] = []
        for sampling, keys in groups.items():
            lengths = dict(zip(keys, self._prompt_lengths([pending[k][0].prompt for k in keys]), strict=True))
            keys.sort(key=lambda k: (lengths[k], k))
            per_batch = max(1, self.batch_size // max(1, sampling.n))
            batch: list[str] = []
            for key in keys:
                too_long = (self.max_padding is not None and batch
                            and lengths[key] > lengths[batch[0]] * (1 + self.max_padding))
                if len(batch) == per_batch or too_long:
                    batches.append(batch)
                    batch = []
                batch.append(key)
            if batch:
                batches.append(batch)
        return batches

    def _prompt_lengths(self, prompts: list[str]) -> list[int]:
        encoded = self.tokenizer(prompts, add_special_tokens=self.add_special_tokens)["input_ids"]
        return [len(ids) for ids in encoded]

    def _generate_batch(self, batch: list[GenRequest]) -> list[list[str]]:
        import torch

        sampling = batch[0].sampling
        rows = self.tokenizer([r.prompt for r in batch], add_special_tokens=self.add_special_tokens)["input_ids"]
        # greedy / single-sample batches share the KV cache of their common token prefix (system prompt, task
        # instruction, demonstrations): it is computed once instead of once per row
        prefix = shared_prefix_length(rows) if sampling.n == 1 and len(rows) > 1 else 0
        if prefix < self.min_shared_prefix:
            prefix = 0
        input_ids, attention_mask = pad_after_prefix(rows, prefix, self.tokenizer.pad_token_id)
        encoded = {"input_ids": input_ids.to(self.model.device), "attention_mask": attention_mask.to(self.model.device)}
        if sampling.temperature == 0 and sampling.n == 1:
            texts = self._greedy_decode(encoded["input_ids"], encoded["attention_mask"], prefix, sampling.max_tokens)
            self.generated_prompts += len(batch)
            return [[text] for text in texts]
        kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_tokens, "pad_token_id": self.tokenizer.pad_token_id,
                                  "num_return_sequences": sampling.n}
        if prefix:
            kwargs[cache_keyword(self.model)] = self._prefix_cache(encoded["input_ids"][:1, :prefix], len(rows))
        if sampling.temperature > 0:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if self.stop_strings:
            kwargs.update(stop_strings=list(self.stop_strings), tokenizer=self.tokenizer)
        # Seeded per batch content, so that the same requests give the same samples in any run.
        digest = hashlib.sha256("".join(r.prompt for r in batch).encode()).digest()
        torch.manual_seed(self.seed * 1_000_003 + int.from_bytes(digest[:4], "little"))
        with torch.inference_mode():
            generated = self.model.generate(**encoded, **kwargs)
        new_tokens = generated[:, encoded["input_ids"].shape[1]:]
        texts = [self._decode(row) for row in new_tokens]
        self.generated_prompts += len(batch)
        return [texts[i * sampling.n:(i + 1) * sampling.n] for i in range(len(batch))]

    def _greedy_decode(self, input_ids: Any, attention_mask: Any, prefix: int, max_tokens: int) -> list[str]:
        """Greedy decoding that drops a row from the batch (and its KV cache) once it has produced end-of-sequence:
        `generate` keeps every row until the longest answer ends, which on a compute-bound CPU costs up to twice the
        decoded positions (bench_engine). Same tokens as `generate`'s greedy search (tested)."""
        import torch
        from transformers import DynamicCache

        cache_kw = cache_keyword(self.model)
        cache = self._prefix_cache(input_ids[:1, :prefix], len(input_ids)) if prefix else DynamicCache()
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # padding shifts no position
        eos_ids = self._eos_ids()
        alive = torch.arange(len(input_ids), device=input_ids.device)
        last_position = positions[:, -1]
        generated: list[list[int]] = [[] for _ in range(len(input_ids))]
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids[:, prefix:], attention_mask=attention_mask,
                                position_ids=positions[:, prefix:], use_cache=True, logits_to_keep=1,
                                **{cache_kw: cache}).logits[:, -1]
            for step in range(max_tokens):
                tokens = logits.argmax(-1)
                for row, token in zip(alive.tolist(), tokens.tolist(), strict=True):
                    generated[row].append(token)
                keep = torch.tensor([token not in eos_ids for token in tokens.tolist()], device=tokens.device)
                if step == max_tokens - 1 or not keep.any():
                    break
                if not keep.all():
                    index = keep.nonzero().squeeze(1)
                    cache.batch_select_indices(index)
                    alive, tokens, attention_mask, last_position = (alive[index], tokens[index],
                                                                    attention_mask[index], last_position[index])
                attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(alive), 1)], dim=1)
                last_position = last_position + 1
                logits = self.model(input_ids=tokens.unsqueeze(1), attention_mask=attention_mask,
                                    position_ids=last_position.unsqueeze(1), use_cache=True,
                                    **{cache_kw: cache}).logits[:, -1]
        return [self._decode(torch.tensor(tokens, dtype=torch.long)) for tokens in generated]

    def _prefix_cache(self, prefix_ids: Any, rows: int) -> Any:
        import torch
        from transformers import DynamicCache

        cache = DynamicCache()
        with torch.inference_mode():
            self.model(input_ids=prefix_ids, use_cache=True, **{cache_keyword(self.model): cache})
        cache.batch_repeat_interleave(rows)
        return cache

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        return set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}

    def _decode(self, token_ids: Any) -> str:
        """Cut at the first end-of-sequence token, decode without skipping special tokens (as HELM), stop strings."""
        ids = token_ids.tolist()
        eos_ids = self._eos_ids()
        for position, token in enumerate(ids):
            if token in eos_ids:
                ids = ids[:position]
                break
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        for stop in self.stop_strings:
            if stop in text:
                text = text[:text.index(stop)]
        return self.postprocess(text)


def vllm_available() -> bool:
    """The optional vLLM backend (GPU users, extra `vllm`) is used only when the package is importable."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class VLLMEngine(HFEngine):
    """Optional vLLM backend with the same request/cache interface (GPU only; not exercised on this CPU machine)."""

    def __init__(self, path: str | os.PathLike, model_id: str, cache: GenerationCache | None = None, seed: int = 0,
                 postprocess: Callable[[str], str] | None = None, stop_strings: Sequence[str] = ()) -> None:
        if not vllm_available():
            raise ConfigError("backend 'vllm' needs the vllm package", "pip install vllm (GPU), or use backend 'hf'")
        from vllm import LLM  # type: ignore[import-not-found]

        self.llm, self.model_id, self.cache, self.seed = LLM(model=str(path), seed=seed), model_id, cache, seed
        self.postprocess = postprocess or (lambda text: text)
        self.stop_strings = tuple(stop_strings)
        self.batch_size, self.generated_prompts, self.max_padding = 1 << 30, 0, None  # vLLM schedules itself

    def _prompt_lengths(self, prompts: list[str]) -> list[int]:
        return [len(prompt) for prompt in prompts]

    def _generate_batch(self, batch: list[GenRequest]) -> list[list[str]]:
        from vllm import SamplingParams  # type: ignore[import-not-found]

        s = batch[0].sampling
        params = SamplingParams(n=s.n, temperature=s.temperature, top_p=s.top_p if s.temperature > 0 else 1.0,
                                max_tokens=s.max_tokens, stop=list(self.stop_strings) or None, seed=self.seed)
        results = self.llm.generate([r.prompt for r in batch], params)
        self.generated_prompts += len(batch)
        return [[self.postprocess(o.text) for o in result.outputs] for result in results]
