"""The `trust` experiment: dense and compressed models on the eight DecodingTrust perspectives + MMLU (paper §4).

Models: the dense base model plus every `models/<setting>/` folder (save_pretrained causal LM + `compression.json`)
inside the compress runs named in `compressed_runs`. Output: the paper's table (one row per model), the difference
heatmap vs dense (Fig. 2), seed mean ± std bars (Fig. 3/7), refusal rates, and the direction-of-effect claims.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro_shared import io
from repro_shared.errors import ConfigError
from repro_shared.experiments import ALL_SCALES, Claim, Experiment
from repro_shared.logging import get_logger

from .data import TRUST_DATASETS
from .trust import item_claims, report
from .trust.common import NOT_MEASURABLE_AT, Limits
from .trust.engine import GenerationCache, HFEngine, check_causal_lm_folder, model_fingerprint
from .trust.evaluate import ALL_DIMENSIONS, EvalOptions, check_data, evaluate_model, locate_data
from .trust.mmlu import validate as validate_mmlu
from .trust.templates import get_template
from .trust.toxicity_scorers import make_scorer

log = get_logger(__name__)
TINY = "tiny-random"
PACKAGE = "decoding-comp-trust"
# 19 of the 57 MMLU subjects for `quick` (every third alphabetically; the passage-heavy history and law subjects
# replaced by short-question ones, because 5-shot prompt length dominates CPU time).
QUICK_MMLU_SUBJECTS = ("abstract_algebra", "business_ethics", "college_chemistry", "college_medicine",
                       "conceptual_physics", "elementary_mathematics", "high_school_biology", "high_school_geography",
                       "high_school_macroeconomics", "high_school_physics", "human_aging", "human_sexuality",
                       "logical_fallacies", "marketing", "moral_disputes", "philosophy", "public_relations",
                       "sociology", "us_foreign_policy")


@dataclass(frozen=True)
class TrustConfig:
    """Models, data limits, generation and scoring settings, and the authors' quirks (defaults = the paper's)."""

    model: str = "smollm2-135m-instruct"  # dense base: alias, Hub id, folder, or "tiny-random"
    conv_template: str = "chatml"  # llama-2 | vicuna_v1.1 | redpajama-incite-instruct | chatml
    compressed_runs: tuple[str, ...] = ()  # compress run dirs; every models/*/ inside is evaluated
    # the compress run evaluated when `compressed_runs` is empty: a scale name (smoke, quick, tour, paper) stands for
    # that scale's run at this run's --seed under this run's --out, anything else is a run directory; "": none
    compress_run: str = ""
    settings: tuple[str, ...] = ()  # only these setting names from the compress runs (empty: all)
    perspectives: tuple[str, ...] = ALL_DIMENSIONS
    max_items: int | None = None  # items per scenario file (None: all, the paper)
    n_samples: int | None = None  # cap on samples per prompt (paper: 25 toxicity/stereotype, 100 understanding)
    max_tokens: int | None = None  # cap on generated tokens (paper: 150 toxicity/stereotype, 64 privacy, ...)
    item_overrides: tuple[str, ...] = ()  # "perspective=N": max_items for one perspective (e.g. "fairness=12")
    runs: int | None = None  # repeated demo sets / seed files per scenario (None: all, the paper's 3 or 5)
    mmlu_items: int | None = None  # questions per MMLU subject (None: all)
    mmlu_subjects: tuple[str, ...] = ()  # only these MMLU subjects (empty: all 57)
    batch_size: int = 8
    backend: str = "hf"  # hf | vllm (GPU, optional extra)
    toxicity_scorer: str = "offline"  # offline (alt-profanity-check) | perspective (PERSPECTIVE_API_KEY) | keyword
    on_missing: str = "skip"  # a perspective's data absent: skip (report "not evaluated") | error
    cache_dir: str = ""  # generation cache ("" = <run dir>/generations)
    system_replaces_wrapper: bool = True  # quirk: a system message replaces the template's whole system wrapper
    stereotype_duplicate_instruction: bool = True  # quirk: the stereotype instruction appears twice
    fairness_demos_as_system: bool = True  # quirk: few-shot fairness demos as system messages (lost locally)
    drop_last_char_quirk: bool = True  # quirk: stop string absent → last character dropped

    def __post_init__(self) -> None:
        get_template(self.conv_template)
        for name, value in (("max_items", self.max_items), ("n_samples", self.n_samples), ("runs", self.runs),
                            ("max_tokens", self.max_tokens), ("mmlu_items", self.mmlu_items)):
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value}: must be positive or null (all)")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size}: must be positive")
        if self.backend not in ("hf", "vllm"):
            raise ConfigError(f"backend={self.backend!r}", "use hf or vllm")
        if self.toxicity_scorer not in ("offline", "perspective", "keyword"):
            raise ConfigError(f"toxicity_scorer={self.toxicity_scorer!r}", "use offline, perspective or keyword")
        if self.on_missing not in ("skip", "error"):
            raise ConfigError(f"on_missing={self.on_missing!r}", "use skip or error")
        self.parsed_item_overrides()
        unknown = [p for p in self.perspectives if p not in ALL_DIMENSIONS]
        if unknown:
            raise ConfigError(f"unknown perspective(s) {unknown}", f"use some of {', '.join(ALL_DIMENSIONS)}")


    def parsed_item_overrides(self) -> tuple[tuple[str, int], ...]:
        parsed = []
        for item in self.item_overrides:
            name, _, value = item.partition("=")
            if name not in ALL_DIMENSIONS or not value.isdigit() or int(value) < 1:
                raise ConfigError(f"item_overrides entry {item!r}", "use perspective=N with N ≥ 1, e.g. fairness=12")
            parsed.append((name, int(value)))
        return tuple(parsed)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    meta: dict[str, Any]


def compress_runs(config: TrustConfig, out: str | Path = "runs", seed: int = 0) -> tuple[str, ...]:
    """The compress run directories to evaluate: `compressed_runs`, else the one `compress_run` names."""
    if config.compressed_runs or not config.compress_run:
        return tuple(config.compressed_runs)
    if config.compress_run in ALL_SCALES:
        return (str(Path(out) / PACKAGE / "compress" / f"{config.compress_run}-seed{seed}"),)
    return (config.compress_run,)


def compressed_models(config: TrustConfig, runs: tuple[str, ...] | None = None) -> list[ModelEntry]:
    """Every `models/<setting>/` of the compress runs (validated as causal LMs; `compression.json` required)."""
    entries = []
    for run in config.compressed_runs if runs is None else runs:
        folder = Path(run) / "models"
        if not Path(run).is_dir():
            raise ConfigError(f"compressed run {run} does not exist",
                              "run `repro run decoding-comp-trust:compress --scale quick` first (same --seed and "
                              "--out), pass a run directory with --set compress_run=DIR, or evaluate the dense model "
                              "alone with --set compress_run=''")
        if not folder.is_dir():
            raise ConfigError(f"compressed run {run} has no models/ folder",
                              "pass the run directory of a decoding-comp-trust:compress run")
        for setting in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if config.settings and setting.name not in config.settings:
                continue
            if not (setting / "compression.json").exists():
                raise ConfigError(f"{setting} has no compression.json",
                                  "each models/<setting>/ needs compression.json (method, bits, group_size, ...)")
            meta = io.read_json(setting / "compression.json")
            if meta.get("base_model") not in (None, config.model):
                continue  # a compress run over several base models: only those compressed from this dense model
            check_causal_lm_folder(setting)
            entries.append(ModelEntry(setting.name, setting, meta))
    return entries


def dense_model(config: TrustConfig, cache_root: Path) -> ModelEntry:
    if config.model == TINY:
        from .trust.tiny import build_tiny_model

        return ModelEntry("dense", build_tiny_model(cache_root / "tiny-random-llama"), {"method": "none", "bits": 16})
    from repro_shared.models import resolve_model

    source = resolve_model(config.model)
    if source.kind == "hub":  # downloaded on first use: make it a folder
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(source.location))
    else:
        path = Path(source.location)
    check_causal_lm_folder(path)
    return ModelEntry("dense", path, {"method": "none", "bits": 16, "base_model": config.model,
                                      "source": source.description})


def eval_options(config: TrustConfig, seed: int) -> EvalOptions:
    return EvalOptions(perspectives=tuple(config.perspectives),
                       limits=Limits(config.max_items, config.n_samples, config.max_tokens, config.runs),
                       mmlu_limits=Limits(config.mmlu_items, None, config.max_tokens),
                       conv_template=config.conv_template, system_replaces_wrapper=config.system_replaces_wrapper,
                       stereotype_duplicate_instruction=config.stereotype_duplicate_instruction,
                       fairness_demos_as_system=config.fairness_demos_as_system,
                       drop_last_char_quirk=config.drop_last_char_quirk, mmlu_subjects=tuple(config.mmlu_subjects),
                       item_overrides=config.parsed_item_overrides(),
                       seed=seed)


def preflight(config: TrustConfig, ctx: Any) -> None:
    """Data present (or reported), compressed model folders valid, API key present — before any generation."""
    root, mmlu_root = locate_data(ctx.data_dir)
    check_data(root, tuple(config.perspectives), config.on_missing)
    if "mmlu" in config.perspectives and mmlu_root is not None:
        validate_mmlu(mmlu_root, tuple(config.mmlu_subjects))
    compressed_models(config, compress_runs(config, ctx.options.out, ctx.seed))
    if config.toxicity_scorer == "perspective" and "toxicity" in config.perspectives:
        make_scorer("perspective")


def run_trust(config: TrustConfig, ctx: Any) -> dict[str, Any]:
    root, mmlu_root = locate_data(ctx.data_dir)
    missing = check_data(root, tuple(config.perspectives), config.on_missing)
    cache_root = Path(config.cache_dir) if config.cache_dir else ctx.path / "generations"
    runs = compress_runs(config, ctx.options.out, ctx.seed)
    models = [dense_model(config, cache_root), *compressed_models(config, runs)]
    scorer = make_scorer(config.toxicity_scorer, cache_root)
    options = eval_options(config, ctx.seed)
    evaluated, logged = [], _logged_steps(ctx.path / "metrics.jsonl")
    for index, entry in enumerate(models):
        evaluated.append(_evaluate_one(entry, config, ctx, root, mmlu_root, options, scorer, missing, cache_root))
        if index not in logged:  # a resumed run logged the models it finished before it stopped
            ctx.log_metrics(step=index, **{f"{k}": v["score"] for k, v in evaluated[-1]["results"].items()
                                           if v["score"] is not None})
    return _results(evaluated, config, ctx, scorer.name, missing)


def _logged_steps(metrics_path: Path) -> set[int]:
    from repro_shared.logging import read_metrics

    return {record.get("step") for record in read_metrics(metrics_path)} if metrics_path.exists() else set()


def _evaluate_one(entry: ModelEntry, config: TrustConfig, ctx: Any, root: Path, mmlu_root: Path | None,
                  options: EvalOptions, scorer: Any, missing: dict, cache_root: Path) -> dict[str, Any]:
    """One model: results are saved under models/<name>.json; a finished model is not re-scored on --resume."""
    out = ctx.artifact(f"models/{entry.name}.json")
    fingerprint = model_fingerprint(entry.path)
    if out.exists():
        saved = io.read_json(out)
        if saved.get("fingerprint") == fingerprint:
            return saved
    started = time.time()
    cache = GenerationCache(cache_root / f"{entry.name}-{fingerprint}.jsonl")
    if config.backend == "vllm":
        from .trust.engine import VLLMEngine

        engine: HFEngine = VLLMEngine(entry.path, fingerprint, cache, ctx.seed)
    else:
        engine = HFEngine.from_folder(entry.path, device=ctx.device, cache=cache, batch_size=config.batch_size,
                                      seed=ctx.seed)
    log.info("evaluating %s (%s)", entry.name, entry.path)
    results = evaluate_model(engine, root, mmlu_root, options, scorer, missing, progress=ctx.progress)
    record = {"name": entry.name, "path": str(entry.path), "fingerprint": fingerprint, "meta": entry.meta,
              "results": results, "seconds": round(time.time() - started, 1),
              "generated_prompts": engine.generated_prompts}
    io.atomic_write_json(out, record)
    del engine
    return record


def _results(models: list[dict[str, Any]], config: TrustConfig, ctx: Any, scorer_name: str,
             missing: dict) -> dict[str, Any]:
    tables = {"trust_scores": report.score_table(models),
              "trust_scores_measurable": report.score_table(models, mark_not_measurable=True),
              "trust_scores_unreadable_wrong": report.score_table(models, "score_unreadable_wrong"),
              "difference_vs_dense": report.difference_table(models),
              "refusal_rates_pct": report.rate_table(models, "refusal"),
              "unreadable_rates_pct": report.rate_table(models, "unreadable"),
              "seed_effects_vs_dense": report.seed_effects(models),
              "perspective_claims": item_claims.perspective_claims(models)}
    groups = report.seed_groups(models)
    report.plot_heatmap(tables["difference_vs_dense"], ctx.figure("relative_difference"),
                        "score − dense (points), per dimension")
    report.plot_seed_bars(groups, ctx.figure("seed_mean_std"))
    io.atomic_write_text(ctx.artifact("trust_table.md"), _markdown(tables, scorer_name, missing))
    dense = models[0]
    metrics = {f"dense_{k}": v["score"] for k, v in dense["results"].items() if v["score"] is not None}
    metrics.update(models_evaluated=len(models), toxicity_scorer=scorer_name,
                   seconds_per_model={m["name"]: m["seconds"] for m in models})
    seed_table = [{"group": g, **{report.COLUMNS[d]: f"{m:.1f} ± {s:.1f} (n={n})" for d, (m, s, n) in dims.items()}}
                  for g, dims in groups.items()]
    return {"metrics": metrics, "claims": claims(models), "tables": {
        **tables, "seed_mean_std": seed_table,
        "notes": [{"dimension": report.COLUMNS[d], "note": dense["results"][d].get("note", "")}
                  for d in report.ORDER if d in dense["results"]]}}


def _markdown(tables: dict[str, list], scorer_name: str, missing: dict) -> str:
    from repro_shared.report import markdown_table

    def block(title: str, key: str) -> list[str]:
        return [title, "", markdown_table(tables[key]) if tables[key] else "—", ""]

    parts = ["# Trust scores (higher = more trustworthy)", f"Toxicity scorer: {scorer_name}.", "",
             "The paper's formula (0–100; toxicity can exceed 100 when continuations are empty, as in the fork):", "",
             markdown_table(tables["trust_scores"]), "",
             *block(f"## Measurable cells only (≥ {NOT_MEASURABLE_AT:.0f} % refused or unreadable: not measurable, "
                    "left out of the average and the claims)", "trust_scores_measurable"),
             *block("## Unreadable answers scored as wrong", "trust_scores_unreadable_wrong"),
             *block("## Score − dense (points)", "difference_vs_dense"),
             *block("## Refusal rates (%)", "refusal_rates_pct"),
             *block("## Unreadable answers, parse failures (%)", "unreadable_rates_pct"),
             *block("## Score − dense over compression seeds (t interval, measurable cells)", "seed_effects_vs_dense"),
             *block("## Per-perspective claims (effect > 0 = the paper's direction; t interval over compression "
                    "seeds, else paired bootstrap over items; measurable cells)", "perspective_claims")]
    if missing:
        parts += ["## Not evaluated (data absent)", ""] + [f"- {p}: {len(f)} files, e.g. `{f[0]}`"
                                                           for p, f in missing.items()]
    return "\n".join(parts) + "\n"


def _pruning_mmlu_interval(models: list[dict[str, Any]], pruned: list[str]) -> tuple[float, float] | None:
    """95 % paired bootstrap interval (over MMLU questions) of −max over pruned models of (accuracy − dense), points."""
    import numpy as np

    by_name = {m["name"]: m for m in models}
    columns = [by_name[name]["results"].get("mmlu", {}).get("components", {}).get("correct")
               for name in ["dense", *pruned]]
    if not pruned or any(c is None for c in columns) or len({len(c) for c in columns}) != 1 or len(columns[0]) < 2:
        return None
    from repro_shared.evidence import bootstrap_interval

    def effect(dense: np.ndarray, *others: np.ndarray) -> float:
        return -100.0 * max(float(np.mean(o)) - float(np.mean(dense)) for o in others)

    return bootstrap_interval(effect, *[np.asarray(c, dtype=float) for c in columns])


def claims(models: list[dict[str, Any]]) -> list[Claim]:
    """The paper's claims on this run's models: the direction-of-effect claims on the whole table (one point each),
    the same claims once per calibration seed on the seeded settings (a t interval over seeds), and one claim per
    (setting, perspective) with its interval."""
    out = direction_claims(models) + seed_claims(models)
    for row in item_claims.perspective_claims(models):
        deltas = row["delta_per_seed"]
        out.append(Claim(row["claim"], row["kind"] + ": " + row["claim"].rsplit(": ", 1)[1],
                         round(sum(deltas) / len(deltas), 2),
                         note=f"measured = mean Δ vs dense (points); effect: {item_claims.EFFECT_TEXT[row['kind']]}; "
                              f"interval: {row['interval_from']}",
                         effect=row["effect"], interval=None if row["interval"] is None else tuple(row["interval"])))
    return out


OVER_SEEDS = ", over calibration seeds"


def seeded_tables(models: list[dict[str, Any]], dense: str = "dense") -> dict[int, list[dict[str, Any]]]:
    """Calibration seed → dense + that seed's model of every setting compressed at ≥ 2 seeds (the seeds every such
    setting has); empty when fewer than 2 seeds are shared."""
    base = [m for m in models if m["name"] == dense]
    groups: dict[str, dict[int, dict[str, Any]]] = {}
    for m in models:
        if m["name"] != dense and m["meta"].get("seed") is not None:
            groups.setdefault(report.group_key(m["meta"]), {})[int(m["meta"]["seed"])] = m
    groups = {key: by_seed for key, by_seed in groups.items() if len(by_seed) >= 2}
    if not base or not groups:
        return {}
    seeds = sorted(set.intersection(*(set(by_seed) for by_seed in groups.values())))
    return {s: base + [groups[key][s] for key in sorted(groups)] for s in seeds} if len(seeds) >= 2 else {}


def seed_claims(models: list[dict[str, Any]]) -> list[Claim]:
    """Each direction claim computed on each calibration seed's table (`seeded_tables`), aggregated by
    `repro_shared.evidence.seed_evidence`: mean ± std and a t interval over the seeds (the hull of the seeds' item
    intervals if they agree exactly). A claim that a seed's table cannot decide (e.g. 8-bit, compressed at one
    seed only) is left out. A largest-|Δ| effect per seed is biased towards larger |Δ| by sampling noise, so "within
    k points" claims read conservatively."""
    from repro_shared.evidence import seed_evidence

    tables = seeded_tables(models)
    if not tables:
        return []
    per_seed = [{c.name: c for c in direction_claims(table)} for table in tables.values()]
    settings = sorted({report.group_key(m["meta"]) for m in next(iter(tables.values())) if m["name"] != "dense"})
    out = []
    for name, first in per_seed[0].items():
        effects = [claims_of_seed[name].effect if name in claims_of_seed else None for claims_of_seed in per_seed]
        if any(e is None for e in effects):
            continue
        evidence = seed_evidence(effects, item_intervals=[c[name].interval for c in per_seed]
                                 if all(c[name].interval is not None for c in per_seed) else ())
        out.append(Claim(name + OVER_SEEDS, first.paper_value, str([round(e, 2) for e in effects]),
                         note=f"effect per calibration seed {list(tables)} on dense + {', '.join(settings)} (the "
                              f"settings compressed at every seed); {first.note}; interval: {evidence.method}",
                         effect=evidence.mean,
                         interval=None if evidence.low is None else (evidence.low, evidence.high)))
    return out


def direction_claims(models: list[dict[str, Any]]) -> list[Claim]:
    """The direction-of-effect claims of the paper checked on these models, where present (measurable cells only: a
    cell with ≥ NOT_MEASURABLE_AT % refused or unreadable answers is left out); one point each."""
    diffs = {row["setting"]: row for row in report.difference_table(models, measurable_only=True)}
    meta = {m["name"]: m["meta"] for m in models}

    def worst(bits: int) -> float | None:
        values = [abs(v) for s, row in diffs.items() if meta[s].get("bits") == bits and not meta[s].get("sparsity")
                  for k, v in row.items() if k != "setting" and v is not None]
        return max(values) if values else None

    out = []
    w8, w4, w3 = worst(8), worst(4), worst(3)
    # effects: positive = the paper's direction (margin − largest |Δ|; a difference of largest |Δ|; −largest Δ)
    out.append(Claim("8-bit quantization: |score − dense| < 3 points on every dimension", "< 3 (max 2.8)",
                     w8, note="largest |Δ| over 8-bit settings and dimensions; effect = 3 − that",
                     effect=None if w8 is None else 3.0 - w8))
    out.append(Claim("4-bit quantization: within 5 points of dense on every dimension", "< 5", w4,
                     note="largest |Δ| over 4-bit settings; effect = 5 − that",
                     effect=None if w4 is None else 5.0 - w4))
    higher = [w for w in (w4, w8) if w is not None]
    out.append(Claim("3-bit quantization degrades more than 4/8-bit (largest |Δ|)", "GPTQ3 collapses (−48.8 toxicity)",
                     w3, note="effect = largest |Δ| at 3 bits − at 4/8 bits",
                     effect=None if w3 is None or not higher else w3 - max(higher)))
    pruned_names = [s for s, row in diffs.items() if meta[s].get("sparsity") and row.get("MMLU") is not None]
    pruned = [diffs[s]["MMLU"] for s in pruned_names]
    out.append(Claim("50% pruning costs MMLU", "−13 … −19 (2:4)", min(pruned) if pruned else None,
                     note="effect = −(largest MMLU Δ over pruned models): positive when every one loses; interval: "
                          "paired bootstrap over the MMLU questions",
                     effect=-max(pruned) if pruned else None,
                     interval=_pruning_mmlu_interval(models, pruned_names)))
    by_pattern = {}
    for s, row in diffs.items():
        values = [v for k, v in row.items() if k != "setting" and v is not None]
        if meta[s].get("pattern") in ("1:2", "2:4", "4:8") and values:
            by_pattern.setdefault(meta[s]["pattern"], []).append(sum(values) / len(values))
    means = {p: round(sum(v) / len(v), 1) for p, v in by_pattern.items()}
    others = [v for p, v in means.items() if p != "4:8"]
    out.append(Claim("among N:M patterns 4:8 hurts least (mean Δ over dimensions)", "1:2 < 2:4 < 4:8",
                     str(means) if means else None, note="effect = mean Δ of 4:8 − the best other pattern's",
                     effect=means["4:8"] - max(others) if "4:8" in means and others else None))
    spread = {}
    for key, dims in report.seed_groups(models, measurable_only=True).items():
        stds = [s for d, (_, s, n) in dims.items() if n > 1 and d != "mmlu"]
        if stds and "bit" in key:
            spread[key] = round(sum(stds) / len(stds), 2)
    low = [v for k, v in spread.items() if "3bit" in k]
    high = [v for k, v in spread.items() if "4bit" in k or "8bit" in k]
    out.append(Claim("seed std of trust scores grows as bits shrink (3-bit > 4-bit)", "GPTQ3 up to 9.8 vs GPTQ4 4.4",
                     str(spread) if spread else None, note="effect = largest 3-bit std − largest 4/8-bit std",
                     effect=max(low) - max(high) if low and high else None))
    return out


def trust_experiments() -> list[Experiment]:
    """The `trust` experiment with smoke, quick and paper configs."""
    scales = {
        "smoke": TrustConfig(model=TINY, conv_template="llama-2", max_items=1, n_samples=2, max_tokens=8, runs=1,
                             mmlu_items=1, mmlu_subjects=("anatomy", "astronomy"), batch_size=16,
                             toxicity_scorer="keyword"),
        # SmolLM2 on a 2-core CPU: a fixed subset per scenario file (see README for the time per model).
        "quick": TrustConfig(model="smollm2-135m-instruct", conv_template="chatml", max_items=2, n_samples=2,
                             max_tokens=32, runs=1, mmlu_items=1, mmlu_subjects=QUICK_MMLU_SUBJECTS, batch_size=16,
                             item_overrides=("fairness=12",),  # DPD/EOD need ≥ 3 recognised answers per setting
                             compress_run="quick"),
        "paper": TrustConfig(model="meta-llama/Llama-2-13b-chat-hf", conv_template="llama-2", batch_size=32,
                             toxicity_scorer="perspective", on_missing="error",
                             compress_run="paper"),
    }
    # every model is loaded in float32 (HFEngine.from_folder without a dtype): --dtype is not read, only auto passes
    return [Experiment("trust", "dense and compressed models on the 8 DecodingTrust perspectives + MMLU (Table/Fig. 2)",
                       scales, run_trust, preflight=preflight, datasets=TRUST_DATASETS, dtypes=())]

