"""Calibration and held-out text: named local sets (read from the data dir at run time), files, Hub datasets.

The paper drew 128 Alpaca instructions rendered in the model's chat template for GPTQ and 128 random C4 windows for
SparseGPT/Wanda (seeds 0, 1, 2). Neither set is available offline, so a source is named explicitly:

* ``trec`` / ``trec-test`` / ``sst2`` / ``sst2-validation`` / ``mpqa``: the local copies under ``<data dir>/dpopt/``
  (``REPRO_DATA_DIR`` or ``--data-dir``); ``trec`` holds 5,452 English questions (instruction-like text).
* ``file:PATH``: a ``.txt`` (one text per blank-line-separated paragraph) or ``.jsonl`` (field ``text`` or
  ``sentence``) file.
* ``hub:DATASET_ID[@CONFIG][:SPLIT]``: a Hub dataset through ``datasets`` (field ``text``), e.g.
  ``hub:allenai/c4@en:validation`` on a GPU
  machine with network; ``hub:yahma/alpaca-cleaned`` is rendered from its instruction/input/output fields.
* ``synthetic``: seeded random word sequences, only for the tiny smoke model (no data needed).

Texts are shuffled with the calibration seed and packed into ``n_samples`` windows of exactly ``seq_len`` tokens
(``template="chat"``: each text becomes one user turn rendered with the tokenizer's chat template, as the paper's
GPTQ calibration did). A source too short to fill every window is an error: the libraries silently drop short
samples, which would change the calibration set without telling anyone.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from repro_shared.data import DatasetSpec, locate_dataset
from repro_shared.errors import ConfigError

# name -> (dataset folder under the data dir, file, text field)
LOCAL_SOURCES: dict[str, tuple[str, str, str]] = {
    "trec": ("dpopt/trec", "train.jsonl", "sentence"),
    "trec-test": ("dpopt/trec", "test.jsonl", "sentence"),
    "sst2": ("dpopt/sst2", "train.tsv", "sentence"),
    "sst2-validation": ("dpopt/sst2", "validation.jsonl", "sentence"),
    "mpqa": ("dpopt/mpqa", "train.jsonl", "sentence"),
}
TEMPLATES = ("plain", "chat")
# The paper's "default" GPTQ calibration template, used when a tokenizer has no chat template (tiny test models).
FALLBACK_TEMPLATE = "Instruction:\n{text}\nOutput:\n"
_SYNTHETIC_WORDS = (
    "the", "model", "data", "layer", "weight", "token", "text", "value", "group", "sample", "paper", "trust",
    "seed", "bits", "sparse", "dense", "quantize", "prune", "question", "answer", "compress", "evaluate",
    "result", "table", "figure", "small", "large",
)


@dataclass(frozen=True)
class CalibrationConfig:
    """Where calibration text comes from and how it is cut: ``n_samples`` windows of ``seq_len`` tokens."""

    source: str = "trec"
    template: str = "plain"
    n_samples: int = 128
    seq_len: int = 2048

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise ConfigError(f"calibration template {self.template!r} unknown", f"use one of {TEMPLATES}")
        if self.n_samples < 1 or self.seq_len < 2:
            raise ConfigError(f"calibration needs n_samples >= 1 and seq_len >= 2, got {self.n_samples}, "
                              f"{self.seq_len}")
        check_source_name(self.source)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "template": self.template, "n_samples": self.n_samples,
                "seq_len": self.seq_len}


def check_source_name(source: str) -> None:
    if source in LOCAL_SOURCES or source == "synthetic" or source.startswith(("file:", "hub:")):
        return
    raise ConfigError(f"unknown text source {source!r}",
                      f"use one of {', '.join(LOCAL_SOURCES)}, synthetic, file:PATH or hub:DATASET_ID[@CONFIG][:SPLIT]")


def load_texts(source: str, data_dir: str | Path | None = None, *, seed: int = 0) -> list[str]:
    """Every text of a named source, in file order (``synthetic``: 2,000 seeded word sequences)."""
    check_source_name(source)
    if source == "synthetic":
        rng = random.Random(seed)
        return [" ".join(rng.choice(_SYNTHETIC_WORDS) for _ in range(rng.randint(8, 24))) + "." for _ in range(2000)]
    if source.startswith("file:"):
        return _read_file(Path(source[5:]).expanduser(), "text")
    if source.startswith("hub:"):
        return _read_hub(source[4:])
    folder, file, field = LOCAL_SOURCES[source]
    root = locate_dataset(DatasetSpec(folder, required_files=(file,), description=f"text source {source}"), data_dir)
    return _read_file(root / file, field)


def _read_file(path: Path, field: str) -> list[str]:
    if not path.is_file():
        raise ConfigError(f"text file {path} does not exist", "pass file:PATH of a .txt or .jsonl file")
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        texts = [row.get(field) or row.get("text") or row.get("sentence") or "" for row in rows]
    elif path.suffix == ".tsv":
        with open(path, encoding="utf-8", newline="") as handle:
            texts = [row[field] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]
    else:
        texts = path.read_text(encoding="utf-8").split("\n\n")
    texts = [text.strip() for text in texts if text and text.strip()]
    if not texts:
        raise ConfigError(f"text file {path} holds no text")
    return texts


def _read_hub(spec: str) -> list[str]:
    from datasets import load_dataset

    dataset_id, _, split = spec.partition(":")
    dataset_id, _, name = dataset_id.partition("@")
    try:
        rows = load_dataset(dataset_id, name or None, split=split or "train")
    except Exception as error:  # offline, gated or missing: one clear line
        raise ConfigError(f"Hub dataset {dataset_id!r} could not be loaded: {type(error).__name__}: {error}",
                          "offline, use a local source (trec, sst2, file:PATH) instead") from error
    if "instruction" in rows.column_names:  # Alpaca: instruction + input as the prompt, output as the answer
        return [f"{r['instruction']}\n{r.get('input') or ''}".strip() + "\n" + r.get("output", "") for r in rows]
    return [row["text"] for row in rows]


def _render(text: str, tokenizer: Any, template: str) -> str:
    if template == "plain":
        return text + "\n\n"
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                             add_generation_prompt=True)
    return FALLBACK_TEMPLATE.format(text=text)


def token_windows(texts: list[str], tokenizer: Any, *, n_samples: int, seq_len: int, seed: int,
                  template: str = "plain", what: str = "calibration") -> torch.Tensor:
    """``n_samples`` × ``seq_len`` token ids: texts shuffled by ``seed``, rendered, concatenated, cut into windows."""
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    needed = n_samples * seq_len
    ids: list[int] = []
    for index in order:
        ids.extend(tokenizer(_render(texts[index], tokenizer, template), add_special_tokens=False)["input_ids"])
        if len(ids) >= needed:
            break
    if len(ids) < needed:
        raise ConfigError(f"{what} text too short: {len(texts)} texts give {len(ids)} tokens, but {n_samples} samples "
                          f"x {seq_len} tokens = {needed} are needed (the libraries would silently drop short "
                          "samples; we stop)", "use a larger source, fewer samples or a shorter seq_len")
    return torch.tensor(ids[:needed], dtype=torch.long).reshape(n_samples, seq_len)


def calibration_windows(config: CalibrationConfig, tokenizer: Any, *, seed: int,
                        data_dir: str | Path | None = None) -> torch.Tensor:
    """The calibration set of one seed (the paper's seeds 0, 1, 2 resample it)."""
    texts = load_texts(config.source, data_dir, seed=seed)
    return token_windows(texts, tokenizer, n_samples=config.n_samples, seq_len=config.seq_len, seed=seed,
                         template=config.template)
