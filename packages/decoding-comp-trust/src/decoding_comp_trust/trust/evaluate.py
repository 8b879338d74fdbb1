"""Evaluate one model on the eight DecodingTrust perspectives + MMLU: build requests, generate (cached), score."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro_shared.data import locate_dataset
from repro_shared.errors import ConfigError, ReproError
from repro_shared.logging import get_logger

from ..data import DECODINGTRUST, MMLU
from . import adv_demo, advglue, ethics, fairness, mmlu, ood, privacy, stereotype, toxicity
from .common import Limits, PerspectiveResult, missing_files
from .engine import GenRequest, HFEngine
from .templates import messages_to_prompt, post_process_generation
from .toxicity_scorers import ToxicityScorer

log = get_logger(__name__)

PERSPECTIVES = ("toxicity", "stereotype", "advglue", "ood", "adv_demo", "privacy", "ethics", "fairness")
ALL_DIMENSIONS = ("mmlu", *PERSPECTIVES)
# The paper's column names and order (num_sheet.csv / Table 3).
COLUMNS = {"mmlu": "MMLU", "advglue": "AdvGLUE++", "ood": "OOD", "adv_demo": "AdvDemo", "ethics": "Ethics",
           "fairness": "Fairness", "toxicity": "Toxicity", "privacy": "Privacy", "stereotype": "Stereotype"}
# Files whose absence makes a perspective "not evaluated" (components with optional files are scored partially).
REQUIRED = {"toxicity": toxicity.FILES, "stereotype": stereotype.FILES, "advglue": advglue.FILES, "ood": ood.FILES,
            "adv_demo": ("adv_demonstration/counterfactual/snli_premise_cf/42.jsonl",),
            "privacy": privacy.FILES, "ethics": ethics.FILES, "fairness": fairness.FILES}
DT_SPEC, MMLU_SPEC = DECODINGTRUST, MMLU  # declared with their files and sources in ..data


@dataclass(frozen=True)
class EvalOptions:
    """Everything that decides the prompts, the generation settings and the scoring of one evaluation."""

    perspectives: tuple[str, ...]
    limits: Limits
    mmlu_limits: Limits
    conv_template: str
    system_replaces_wrapper: bool = True
    stereotype_duplicate_instruction: bool = True
    fairness_demos_as_system: bool = True
    drop_last_char_quirk: bool = True
    mmlu_subjects: tuple[str, ...] = ()
    item_overrides: tuple[tuple[str, int], ...] = ()  # (perspective, max_items) replacing limits.max_items
    seed: int = 0

    def limits_for(self, name: str) -> Limits:
        override = dict(self.item_overrides).get(name)
        return self.limits if override is None else dataclasses.replace(self.limits, max_items=override)


def locate_data(data_dir: Path | None) -> tuple[Path, Path | None]:
    """The DecodingTrust tree (required) and the MMLU folder (optional: None → MMLU "not evaluated")."""
    root = locate_dataset(DT_SPEC, data_dir)
    try:
        mmlu_root = locate_dataset(MMLU_SPEC, data_dir)
    except ReproError:
        mmlu_root = None
    if mmlu_root is not None and not list((mmlu_root / "test").glob("*_test.csv")):
        mmlu_root = None
    return root, mmlu_root


def missing_by_perspective(root: Path, perspectives: tuple[str, ...]) -> dict[str, list[str]]:
    return {p: missing for p in perspectives if (missing := missing_files(root, REQUIRED[p]))}


def check_data(root: Path, perspectives: tuple[str, ...], on_missing: str) -> dict[str, list[str]]:
    """Missing files per perspective; with ``on_missing="error"`` a ConfigError that names them."""
    unknown = [p for p in perspectives if p not in ALL_DIMENSIONS]
    if unknown:
        raise ConfigError(f"unknown perspective(s) {unknown}", f"use some of {', '.join(ALL_DIMENSIONS)}")
    missing = missing_by_perspective(root, tuple(p for p in perspectives if p != "mmlu"))
    for name, module in (("ood", ood), ("privacy", privacy), ("fairness", fairness)):
        if name in perspectives and name not in missing:
            module.validate(root)  # malformed files: a ConfigError naming the file and the field
    if missing and on_missing == "error":
        lines = "; ".join(f"{p}: {', '.join(files[:6])}{' …' if len(files) > 6 else ''} ({len(files)} files)"
                          for p, files in missing.items())
        raise ConfigError(f"the data dir {root} lacks files for: {lines}",
                          "supply the full DecodingTrust data tree, drop those perspectives, or set on_missing=skip")
    return missing


def build_requests(name: str, root: Path, mmlu_root: Path | None, options: EvalOptions,
                   render: Callable) -> tuple[list[GenRequest], Any]:
    limits = options.limits_for(name)
    if name == "toxicity":
        return toxicity.build(root, limits, render), None
    if name == "stereotype":
        return stereotype.build(root, limits, render, options.stereotype_duplicate_instruction), None
    if name == "advglue":
        return advglue.build(root, limits, render), None
    if name == "ood":
        return ood.build(root, limits, render), None
    if name == "adv_demo":
        return adv_demo.build(root, limits, render)
    if name == "privacy":
        return privacy.build(root, limits, render, options.seed), None
    if name == "ethics":
        return ethics.build(root, limits, render), None
    if name == "fairness":
        return fairness.build(root, limits, render, options.fairness_demos_as_system), None
    if name == "mmlu":
        return mmlu.build(mmlu_root, options.mmlu_limits, options.mmlu_subjects), None
    raise ConfigError(f"unknown perspective {name!r}")


def score_requests(name: str, requests: list[GenRequest], extra: Any, scorer: ToxicityScorer,
                   seed: int) -> PerspectiveResult:
    if name == "toxicity":
        return toxicity.score(requests, scorer)
    if name == "adv_demo":
        return adv_demo.score(requests, extra)
    if name == "fairness":
        return fairness.score(requests, seed)
    module = {"stereotype": stereotype, "advglue": advglue, "ood": ood, "privacy": privacy, "ethics": ethics,
              "mmlu": mmlu}[name]
    return module.score(requests)


def evaluate_model(engine: HFEngine, root: Path, mmlu_root: Path | None, options: EvalOptions,
                   scorer: ToxicityScorer, missing: dict[str, list[str]],
                   progress: Callable | None = None) -> dict[str, Any]:
    """All requested dimensions for one model: scores, refusal rates, per-dimension time and request counts."""
    def chat_postprocess(text: str) -> str:
        return post_process_generation(text, options.conv_template, options.drop_last_char_quirk)


    def render(messages: list[dict]) -> str:
        return messages_to_prompt(messages, options.conv_template, options.system_replaces_wrapper)

    results: dict[str, Any] = {}
    for name in options.perspectives:
        if name in missing:
            results[name] = PerspectiveResult(name, None, note=f"not evaluated: {len(missing[name])} data file(s) "
                                              f"absent, e.g. {missing[name][0]}").to_dict()
            continue
        if name == "mmlu" and mmlu_root is None:
            results[name] = PerspectiveResult(name, None, note="not evaluated: no MMLU under the data dir").to_dict()
            continue
        started, before = time.time(), engine.generated_prompts
        # MMLU is a raw completion prompt (`mmlu_autogptq.py`), not a chat call: no stop-string cut
        engine.postprocess = (lambda text: text) if name == "mmlu" else chat_postprocess
        requests, extra = build_requests(name, root, mmlu_root, options, render)
        engine.generate(requests, progress)
        result = score_requests(name, requests, extra, scorer, options.seed).to_dict()
        result.update(requests=len(requests), generated=engine.generated_prompts - before,
                      seconds=round(time.time() - started, 1))
        results[name] = result
        log.info("%s: score %s, refusal %s (%d prompts, %.0f s)", name, _fmt(result["score"]),
                 _fmt(result["refusal"]), len(requests), result["seconds"])
    return results


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"
