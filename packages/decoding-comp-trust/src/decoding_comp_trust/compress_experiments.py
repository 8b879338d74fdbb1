"""The `compress` experiment: one base model through the paper's compression grid (§2, Table 1) × calibration seeds.

Run directory contract (read by the `trust` experiment): ``models/<setting>/`` holds a ``save_pretrained`` causal LM
(dense weights, fake-quantized or masked), its tokenizer and ``compression.json``; ``results.json`` holds the table of
perplexity / size / time per setting and the relative change vs dense. A finished setting is skipped on ``--resume``.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro_shared import io
from repro_shared.errors import ConfigError
from repro_shared.experiments import Claim, Experiment
from repro_shared.logging import get_logger

from .compress.api import STORAGES
from .compress.calibration import CalibrationConfig, check_source_name, load_texts, token_windows
from .compress.settings import AWQ_GRIDS, CompressSettings, parse_setting
from .compress_claims import compression_claims
from .data import COMPRESS_DATASETS

log = get_logger(__name__)
TINY = "tiny-random"

# run order: data-free settings first (seconds each), then the paper's main settings, then the extra patterns
FULL_GRID = ("rtn-w4", "rtn-w3", "rtn-w8", "magnitude-2:4", "magnitude-4:8", "magnitude-1:2", "magnitude-unstructured",
             "gptq-w4", "gptq-w3", "gptq-w8", "sparsegpt-2:4", "wanda-2:4", "awq-w4", "awq-w3", "awq-w8",
             "sparsegpt-4:8", "wanda-4:8", "sparsegpt-1:2", "wanda-1:2", "sparsegpt-unstructured", "wanda-unstructured",
             "autoround-w4", "autoround-w3", "autoround-w8")
# the paper's seeded configurations: GPTQ 3/4-bit, AWQ 3-bit, SparseGPT 2:4
SEEDED_SUBSET = ("gptq-w3", "gptq-w4", "awq-w3", "sparsegpt-2:4")
# the held-out windows' sampling seed unless `eval_seed` is None (then: the run's seed)
DEFAULT_EVAL_SEED = 1234


@dataclass(frozen=True)
class CompressConfig:
    """The grid, the calibration sets (per family, as in the paper) and the held-out perplexity set."""

    base_models: tuple[str, ...] = ("smollm2-135m-instruct",)  # alias, Hub id, folder, or "tiny-random"
    settings: tuple[str, ...] = FULL_GRID  # run at every seed of `seeds` (quick: the whole grid)
    seeds: tuple[int, ...] = (0,)  # calibration seeds of the grid; empty: the run's --seed
    extra_seeds: tuple[int, ...] = (1, 2)  # calibration resamples for `extra_seed_settings` only
    extra_seed_settings: tuple[str, ...] = SEEDED_SUBSET
    group_size: int = 64  # largest group dividing SmolLM2-135M's in-features 576 and 1536 (paper: 128)
    gptq_calibration: CalibrationConfig = field(
        default_factory=lambda: CalibrationConfig("trec", "chat", n_samples=16, seq_len=128))
    awq_calibration: CalibrationConfig = field(  # AWQ and AutoRound
        default_factory=lambda: CalibrationConfig("trec", "plain", n_samples=16, seq_len=128))
    prune_calibration: CalibrationConfig = field(
        default_factory=lambda: CalibrationConfig("trec", "plain", n_samples=16, seq_len=128))
    eval_source: str = "sst2-validation"
    eval_windows: int = 8
    eval_seq_len: int = 128
    # which held-out windows are drawn; None: the run's --seed, so that runs over seeds also resample the held-out set
    eval_seed: int | None = DEFAULT_EVAL_SEED
    autoround_iters: int = 10
    # the ratios AWQ searches: "llm-compressor" (k/19, 0…1, the library's; quick) or "llm-awq" (k/20, 0…0.95, paper)
    awq_grid: str = "llm-compressor"
    save_dtype: str = "bfloat16"
    # dense: fake-quantized weights (the paper's storage); packed: quantized settings as compressed-tensors integers +
    # scales (pruned settings stay dense: no sparse format); both reload with plain transformers
    storage: str = "dense"
    backend: str = "auto"
    # an earlier compress run directory: its finished models/<setting>/ with the same calibration, held-out set and
    # dtype are hard-linked instead of recomputed (continue a grid under a changed job list)
    reuse_models_from: str = ""

    def __post_init__(self) -> None:
        if not self.base_models:
            raise ConfigError("base_models is empty", "name at least one model")
        if self.storage not in STORAGES:
            raise ConfigError(f"storage={self.storage!r}", f"use one of {', '.join(STORAGES)}")
        if self.awq_grid not in AWQ_GRIDS:
            raise ConfigError(f"awq_grid={self.awq_grid!r}", f"use one of {', '.join(AWQ_GRIDS)}")
        if self.save_dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"save_dtype={self.save_dtype!r}", "use float32, bfloat16 or float16")
        check_source_name(self.eval_source)
        for spec, seed in self.jobs():  # every setting parses and checks (bits, N:M) before anything runs
            parse_setting(spec, group_size=self.group_size, seed=seed, backend=self.backend)

    def jobs(self, run_seed: int = 0) -> list[tuple[str, int]]:
        """(setting, seed) pairs in run order: the grid at each seed, then the seeded subset at the extra seeds."""
        out = [(spec, seed) for seed in (self.seeds or (run_seed,)) for spec in self.settings]
        out += [(spec, seed) for seed in self.extra_seeds for spec in self.extra_seed_settings
                if (spec, seed) not in out]
        return _drop_seed_duplicates_of_data_free(out, self.group_size)

    def calibration_for(self, settings: CompressSettings) -> CalibrationConfig | None:
        if not settings.needs_calibration:
            return None
        if settings.method == "gptq":
            return self.gptq_calibration
        return self.awq_calibration if settings.is_quantization else self.prune_calibration

    def eval_windows_seed(self, run_seed: int) -> int:
        return run_seed if self.eval_seed is None else self.eval_seed

    def eval_set(self, run_seed: int) -> dict[str, Any]:
        """The held-out set as manifests record it (the seed only when it is not the default, as in older runs)."""
        described: dict[str, Any] = {"source": self.eval_source, "windows": self.eval_windows,
                                     "seq_len": self.eval_seq_len}
        if self.eval_windows_seed(run_seed) != DEFAULT_EVAL_SEED:
            described["seed"] = self.eval_windows_seed(run_seed)
        return described


def _drop_seed_duplicates_of_data_free(jobs: list[tuple[str, int]], group_size: int) -> list[tuple[str, int]]:
    seen, out = set(), []
    for spec, seed in jobs:
        name = parse_setting(spec, group_size=group_size, seed=seed).name()
        if name not in seen:
            seen.add(name)
            out.append((spec, seed))
    return out


def _short(base: str) -> str:
    return Path(base).name.lower()


class _Base:
    """One base model: where it loads from, its tokenizer, its held-out windows, its dense perplexity."""

    def __init__(self, name: str, ctx: Any, config: CompressConfig) -> None:
        from transformers import AutoTokenizer

        self.name = name
        if name == TINY:
            from .compress.tiny import save_tiny_model

            folder = ctx.path / "base" / "tiny-random-llama"
            if not (folder / "config.json").exists():
                save_tiny_model(folder)
            self.location, self.description = str(folder), "tiny random Llama (seed 0), built from config"
        else:
            from repro_shared.models import resolve_model

            source = resolve_model(name)
            self.location, self.description = source.location, source.description
        self.tokenizer = AutoTokenizer.from_pretrained(self.location)
        texts = load_texts(config.eval_source, ctx.data_dir)
        self.eval_windows = token_windows(texts, self.tokenizer, n_samples=config.eval_windows,
                                          seq_len=config.eval_seq_len, seed=config.eval_windows_seed(ctx.seed),
                                          what="held-out perplexity")

    def load(self, ctx: Any) -> Any:
        import torch
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(self.location, dtype=torch.float32)
        model.config.name_or_path = self.location
        return model.to(ctx.device).eval()


def _as_stored(model: Any, dtype: str) -> Any:
    """The model with the values it will have on disk (cast to the save dtype and back to fp32 for scoring)."""
    import torch

    return model.to(getattr(torch, dtype)).to(torch.float32)


def _run_one(base: _Base, spec: str, seed: int, config: CompressConfig, ctx: Any, dense: dict[str, Any],
             prefix: str) -> dict[str, Any]:
    from .compress import compress, save_compressed
    from .compress.checks import window_nlls

    settings = parse_setting(spec, group_size=config.group_size, seed=seed, backend=config.backend)
    out = ctx.path / "models" / f"{prefix}{settings.name()}"
    if (out / "compression.json").exists():
        finished = io.read_json(out / "compression.json")
        if "size_rel_change" in finished:  # written last: the folder's record is complete
            log.info("%s: done already, reusing %s", settings.name(), out)
            return finished
        import shutil

        log.info("%s: %s was interrupted before its record was complete, redoing it", settings.name(), out)
        shutil.rmtree(out)
    reused = _reuse(out, settings, config, config.eval_set(ctx.seed))
    if reused is not None:
        return reused
    model = base.load(ctx)
    result = compress(model, settings.method, tokenizer=base.tokenizer, bits=settings.bits,
                      group_size=settings.group_size, pattern=settings.pattern, seed=seed, backend=config.backend,
                      calibration=config.calibration_for(settings), data_dir=ctx.data_dir,
                      autoround_iters=config.autoround_iters, base_model=base.name, awq_grid=config.awq_grid)
    storage = "packed" if config.storage == "packed" and settings.is_quantization else "dense"
    extra = {"eval_set": config.eval_set(ctx.seed), "base_model_source": base.description}
    if storage == "dense":  # score the values the folder will hold, then save
        result.model = _as_stored(result.model, config.save_dtype)
        started = time.perf_counter()
        nlls = window_nlls(result.model, base.eval_windows)
        manifest = save_compressed(result, base.tokenizer, out, dtype=config.save_dtype, extra=extra)
    else:  # packing consumes the model: save, then score the folder as transformers reloads it
        import torch
        from transformers import AutoModelForCausalLM

        manifest = save_compressed(result, base.tokenizer, out, dtype=config.save_dtype, storage="packed",
                                   extra=extra)
        started = time.perf_counter()
        nlls = window_nlls(AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval(), base.eval_windows)
    ppl = math.exp(statistics.fmean(nlls))
    manifest.update(perplexity=ppl, window_nll=[round(value, 6) for value in nlls],
                    perplexity_dense=dense["perplexity"], perplexity_rel_change=ppl / dense["perplexity"] - 1,
                    perplexity_seconds=time.perf_counter() - started)
    manifest["size_rel_change"] = manifest["size_bytes"] / dense["size_bytes"] - 1
    io.atomic_write_json(out / "compression.json", manifest)
    log.info("%s: ppl %.2f (dense %.2f), %.1f s, checks %s", settings.name(), ppl, dense["perplexity"],
             manifest["compress_seconds"], "ok" if manifest["checks_ok"] else "FAILED")
    ctx.log_metrics(setting=settings.name(), perplexity=ppl, compress_seconds=manifest["compress_seconds"])
    return manifest


def _reuse(out: Path, settings: CompressSettings, config: CompressConfig,
           eval_set: dict[str, Any]) -> dict[str, Any] | None:
    """Hard-link a finished model of ``config.reuse_models_from`` whose manifest matches this run's settings."""
    import os
    import shutil

    if not config.reuse_models_from:
        return None
    source = Path(config.reuse_models_from) / "models" / out.name
    if not (source / "compression.json").exists():
        return None
    manifest = io.read_json(source / "compression.json")
    calibration = config.calibration_for(settings)
    expected = {"calibration": {**calibration.describe(), "seed": settings.seed} if calibration else None,
                "eval_set": eval_set,
                "dtype": config.save_dtype, "setting": settings.name(),
                "storage_kind": "packed" if config.storage == "packed" and settings.is_quantization else "dense"}
    manifest.setdefault("storage_kind", "dense")  # manifests written before packed storage existed
    if settings.method == "awq":  # manifests written before the grid was recorded used llm-compressor's
        expected["awq_grid"] = config.awq_grid
        manifest.setdefault("awq_grid", "llm-compressor")
    if any(manifest.get(key) != value for key, value in expected.items()):
        log.info("%s: %s differs in calibration/eval/dtype/storage, recomputing", settings.name(), source)
        return None
    with io.atomic_directory(out) as tmp:
        shutil.rmtree(tmp)
        shutil.copytree(source, tmp, copy_function=os.link)
    log.info("%s: reused %s", settings.name(), source)
    return manifest


def _dense(base: _Base, config: CompressConfig, ctx: Any) -> dict[str, Any]:
    """Perplexity and size on disk of the uncompressed model, saved as stored (for the relative changes)."""
    import tempfile

    from .compress.checks import folder_size, window_nlls

    record = ctx.path / "dense" / f"{_short(base.name)}.json"
    earlier = Path(config.reuse_models_from) / "dense" / record.name if config.reuse_models_from else None
    eval_set = config.eval_set(ctx.seed)
    for candidate in (record, earlier):
        if candidate is not None and candidate.exists():
            dense = io.read_json(candidate)
            if dense.get("dtype") == config.save_dtype and dense.get("eval_set", eval_set) == eval_set:
                if candidate != record:
                    io.atomic_write_json(record, dense)
                return dense
    model = _as_stored(base.load(ctx), config.save_dtype)
    nlls = window_nlls(model, base.eval_windows)
    ppl = math.exp(statistics.fmean(nlls))
    with tempfile.TemporaryDirectory(prefix="dct-dense-") as folder:
        model.to(getattr(__import__("torch"), config.save_dtype)).save_pretrained(folder)
        base.tokenizer.save_pretrained(folder)
        size = folder_size(Path(folder))
    dense = {"base_model": base.name, "perplexity": ppl, "size_bytes": size, "dtype": config.save_dtype,
             "eval_set": eval_set, "window_nll": [round(value, 6) for value in nlls]}
    io.atomic_write_json(record, dense)
    return dense


ROW_KEYS = ("setting", "method", "bits", "group_size", "pattern", "seed", "perplexity", "perplexity_rel_change",
            "size_bytes", "size_rel_change", "compress_seconds", "measured_sparsity", "effective_bits_per_weight",
            "checks_ok", "implementation")


def _row(manifest: dict[str, Any], base: str) -> dict[str, Any]:
    row = {"base_model": base, **{key: manifest.get(key) for key in ROW_KEYS}}
    row["size_mb"] = round(row.pop("size_bytes") / 2**20, 1)
    for key in ("perplexity", "perplexity_rel_change", "size_rel_change", "measured_sparsity"):
        row[key] = round(row[key], 4) if row[key] is not None else None
    return row


def _group_key(row: dict[str, Any]) -> str:
    return row["setting"].rsplit("-seed", 1)[0]


def summarize(rows: list[dict[str, Any]], dense: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Seed mean ± std of perplexity per (base model, setting), with the relative change vs dense."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["base_model"], _group_key(row)), []).append(row)
    out = []
    for (base, key), members in groups.items():
        ppls = [m["perplexity"] for m in members]
        mean = statistics.fmean(ppls)
        out.append({"base_model": base, "setting": key, "seeds": len(members), "perplexity_mean": round(mean, 3),
                    "perplexity_std": round(statistics.stdev(ppls), 3) if len(ppls) > 1 else None,
                    "rel_change_vs_dense_pct": round(100 * (mean / dense[base]["perplexity"] - 1), 2),
                    "compress_seconds_mean": round(statistics.fmean(m["compress_seconds"] for m in members), 1),
                    "size_mb": members[0]["size_mb"], "implementation": members[0]["implementation"]})
    return out


def _claims(summary: list[dict[str, Any]], manifests: list[dict[str, Any]], dense: dict[str, dict[str, Any]],
            config: CompressConfig, seed: int) -> list[Claim]:
    """The headline claims on the first base model's held-out NLL (effects + window bootstrap), then the claims that
    need the whole grid or several seeds in one run (N:M ordering, seed variance)."""
    base = config.base_models[0]
    claims = []
    if dense[base].get("window_nll"):
        own = [m for m in manifests if m.get("base_model") in (base, None)]
        claims += compression_claims(own, dense[base]["window_nll"], seed=seed)
    by = {row["setting"]: row for row in summary if row["base_model"] == base}
    for method in ("magnitude", "sparsegpt", "wanda"):
        p12, p24, p48 = (_prefix(by, f"{method}-{pattern}") for pattern in ("1of2", "2of4", "4of8"))
        if None not in (p12, p24, p48):
            ppl = [row["perplexity_mean"] for row in (p12, p24, p48)]
            # effect: the smaller of the two log-perplexity steps 1:2 → 2:4 → 4:8 (positive: both in the paper's order)
            effect = min(math.log(ppl[0] / ppl[1]), math.log(ppl[1] / ppl[2]))
            claims.append(Claim(f"{method}: coarser N:M hurts less, 1:2 > 2:4 > 4:8 (paper, MMLU of magnitude: "
                                "25.7 < 34.4 < 41.5); here perplexity", "1:2 worst, 4:8 best",
                                f"{ppl[0]:.1f} / {ppl[1]:.1f} / {ppl[2]:.1f}", effect=effect,
                                note="effect = min(ln ppl(1:2)/ppl(2:4), ln ppl(2:4)/ppl(4:8))"))
    own = [m for m in manifests if m.get("base_model") in (base, None)]
    spread3, spread4 = _log_ppl_std(own, "gptq", 3), _log_ppl_std(own, "gptq", 4)
    if spread3 is not None and spread4 is not None:
        claims.append(Claim("seed variance grows as bits shrink (paper: GPTQ 3-bit std up to 9.8 vs 4-bit 4.4 points)",
                            "std 3-bit > 4-bit", f"std of ln ppl {spread3:.3f} vs {spread4:.3f}",
                            effect=spread3 - spread4,
                            note="effect = std over calibration seeds of ln ppl, GPTQ 3-bit − 4-bit"))
    return claims


def _log_ppl_std(manifests: list[dict[str, Any]], method: str, bits: int) -> float | None:
    """Std over calibration seeds of ln perplexity (a relative spread, comparable across bit widths)."""
    values = [math.log(m["perplexity"]) for m in manifests if m.get("method") == method and m.get("bits") == bits]
    return statistics.stdev(values) if len(values) > 1 else None


def _prefix(by: dict[str, dict[str, Any]], prefix: str) -> dict[str, Any] | None:
    return next((r for k, r in by.items() if k.startswith(prefix)), None)


def _figure(summary: list[dict[str, Any]], dense: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(dense), 1, figsize=(12, 4.5 * len(dense)), squeeze=False)
    for ax, (base, record) in zip(axes[:, 0], dense.items(), strict=True):
        rows = [r for r in summary if r["base_model"] == base]
        colors = ["tab:blue" if r["setting"].split("-")[0] in ("gptq", "awq", "rtn", "autoround") else "tab:orange"
                  for r in rows]
        ax.bar(range(len(rows)), [r["perplexity_mean"] for r in rows],
               yerr=[r["perplexity_std"] or 0 for r in rows], color=colors, capsize=3)
        ax.axhline(record["perplexity"], color="black", linestyle="--", label=f"dense {record['perplexity']:.2f}")
        ax.set_xticks(range(len(rows)), [r["setting"] for r in rows], rotation=60, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("held-out perplexity (log)")
        ax.set_title(f"{base}: perplexity per compression setting (blue: quantization, orange: 50% pruning)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_compress(config: CompressConfig, ctx: Any) -> dict[str, Any]:
    """Compress each base model through the grid; write models/<setting>/, the table, the figure, the claims."""
    from repro_shared.device import set_threads

    set_threads(ctx.options.threads)
    rows, dense_records, manifests = [], {}, []
    for base_name in config.base_models:
        base = _Base(base_name, ctx, config)
        dense = dense_records[base_name] = _dense(base, config, ctx)
        prefix = "" if len(config.base_models) == 1 else f"{_short(base_name)}--"
        for spec, seed in ctx.progress(config.jobs(ctx.seed), desc=f"compress {_short(base_name)}"):
            manifests.append(_run_one(base, spec, seed, config, ctx, dense, prefix))
            rows.append(_row(manifests[-1], base_name))
    summary = summarize(rows, dense_records)
    _figure(summary, dense_records, ctx.figure("perplexity_per_setting"))
    io.atomic_write_text(ctx.artifact("table.md"), _markdown(summary, dense_records))
    failed = [r["setting"] for r in rows if not r["checks_ok"]]
    metrics = {"settings": len(rows), "checks_failed": len(failed),
               **{f"dense_perplexity_{_short(b)}": d["perplexity"] for b, d in dense_records.items()},
               "compress_seconds_total": round(sum(r["compress_seconds"] for r in rows), 1)}
    return {"metrics": metrics, "claims": _claims(summary, manifests, dense_records, config, ctx.seed),
            "tables": {"per_model": rows, "per_setting": summary,
                       "dense": [{"base_model": b, **d} for b, d in dense_records.items()]},
            "checks_failed": failed, "models_dir": str(ctx.path / "models")}


def _markdown(summary: list[dict[str, Any]], dense: dict[str, dict[str, Any]]) -> str:
    lines = ["| base | setting | seeds | ppl (mean ± std) | Δ vs dense | size MB | compress s | implementation |",
             "|---|---|---|---|---|---|---|---|"]
    for base, record in dense.items():
        lines.append(f"| {base} | dense | – | {record['perplexity']:.2f} | – | {record['size_bytes'] / 2**20:.1f} "
                     "| – | – |")
    for r in summary:
        std = f" ± {r['perplexity_std']:.2f}" if r["perplexity_std"] is not None else ""
        lines.append(f"| {r['base_model']} | {r['setting']} | {r['seeds']} | {r['perplexity_mean']:.2f}{std} | "
                     f"{r['rel_change_vs_dense_pct']:+.1f}% | {r['size_mb']} | {r['compress_seconds_mean']} | "
                     f"{r['implementation']} |")
    return "\n".join(lines) + "\n"


def decoder_in_features(model_config: Any) -> tuple[int, ...]:
    """In-feature sizes of a decoder's Linear layers from its config: q/k/v/gate/up (hidden), o (heads × head dim),
    down (intermediate)."""
    hidden = model_config.hidden_size
    heads = getattr(model_config, "num_attention_heads", None)
    head_dim = getattr(model_config, "head_dim", None) or (hidden // heads if heads else None)
    sizes = {hidden, getattr(model_config, "intermediate_size", None) or hidden}
    if heads and head_dim:
        sizes.add(heads * head_dim)
    return tuple(sorted(sizes))


def check_group_and_pattern_sizes(config: CompressConfig, base: str, in_features: tuple[int, ...]) -> None:
    """A quantization group or an N:M block M must divide every in-feature size (checked again on the layers)."""
    for spec, seed in config.jobs():
        settings = parse_setting(spec, group_size=config.group_size, seed=seed, backend=config.backend)
        step = settings.group_size if settings.is_quantization else settings.sparsity_pattern().m
        bad = [n for n in in_features if step and n % step]
        if bad:
            what = f"group_size={settings.group_size}" if settings.is_quantization else f"pattern {settings.pattern}"
            raise ConfigError(f"{what} ({spec}) does not divide {bad} among the in-features {list(in_features)} of "
                              f"{base}'s decoder Linear layers", "choose a group size / M dividing every in-feature "
                              "size (64 for SmolLM2-135M)")


def preflight(config: CompressConfig, ctx: Any) -> None:
    """Before any directory exists: the model resolves and every calibration / held-out source fills its windows."""
    from transformers import AutoTokenizer

    from .compress.tiny import tiny_llama, tiny_tokenizer

    for base in config.base_models:
        if base == TINY:
            tokenizer = tiny_tokenizer()
            check_group_and_pattern_sizes(config, base, decoder_in_features(tiny_llama().config))
        else:
            from repro_shared.models import resolve_model
            from transformers import AutoConfig

            location = resolve_model(base).location
            tokenizer = AutoTokenizer.from_pretrained(location)
            check_group_and_pattern_sizes(config, base, decoder_in_features(AutoConfig.from_pretrained(location)))
        for calibration in {config.gptq_calibration, config.awq_calibration, config.prune_calibration}:
            texts = load_texts(calibration.source, ctx.data_dir)
            for seed in sorted({seed for _, seed in config.jobs(ctx.seed)}):
                token_windows(texts, tokenizer, n_samples=calibration.n_samples, seq_len=calibration.seq_len,
                              seed=seed, template=calibration.template)
        token_windows(load_texts(config.eval_source, ctx.data_dir), tokenizer, n_samples=config.eval_windows,
                      seq_len=config.eval_seq_len, seed=config.eval_windows_seed(ctx.seed), what="held-out perplexity")


def _smoke() -> CompressConfig:
    synthetic = CalibrationConfig("synthetic", "plain", n_samples=4, seq_len=32)
    return CompressConfig(base_models=(TINY,), settings=FULL_GRID, group_size=32, seeds=(0,), extra_seeds=(1,),
                          extra_seed_settings=("gptq-w4",), gptq_calibration=dataclasses.replace(synthetic,
                                                                                                 template="chat"),
                          awq_calibration=synthetic, prune_calibration=synthetic, eval_source="synthetic",
                          eval_windows=2, eval_seq_len=32, autoround_iters=1, save_dtype="float32")


TOUR_GRID = ("rtn-w8", "gptq-w4", "gptq-w3", "magnitude-2:4")


def _tour() -> CompressConfig:
    """`repro reproduce`: the paper's headline compression claims on SmolLM2-135M, one calibration seed per run.

    Measures, on held-out NLL (8 × 128 tokens of SST-2 validation, drawn with the run's seed) against dense: 8-bit
    quantization ≈ dense (RTN-8, data-free), GPTQ 3-bit degrades more than GPTQ 4-bit (calibrated like quick, on
    16 × 128 tokens of TREC at the run's seed, the paper's seeded setting; the in-package GPTQ, 1.5× faster than
    llm-compressor's and tested equal to it), and 50 % magnitude 2:4 pruning costs utility. Each run resamples both
    the calibration and the held-out windows, so the spread over seeds holds both. Left to `quick`: the rest of the
    grid (AWQ, AutoRound, SparseGPT, Wanda, GPTQ-8, the 4:8, 1:2 and unstructured patterns), three calibration seeds
    in one run (seed variance), the library implementations, and the trust scores of every model.
    """
    return CompressConfig(settings=TOUR_GRID, seeds=(), extra_seeds=(), extra_seed_settings=(), eval_seed=None,
                          backend="reference")


def _paper() -> CompressConfig:
    return CompressConfig(
        base_models=("meta-llama/Llama-2-13b-chat-hf", "meta-llama/Llama-2-13b-hf", "lmsys/vicuna-13b-v1.3"),
        settings=FULL_GRID, seeds=(0,), extra_seeds=(1, 2), extra_seed_settings=SEEDED_SUBSET, group_size=128,
        gptq_calibration=CalibrationConfig("hub:yahma/alpaca-cleaned", "chat", n_samples=128, seq_len=2048),
        awq_calibration=CalibrationConfig("hub:mit-han-lab/pile-val-backup:validation", "plain", 128, 512),
        prune_calibration=CalibrationConfig("hub:allenai/c4@en:validation", "plain", n_samples=128, seq_len=4096),
        eval_source="hub:Salesforce/wikitext@wikitext-2-raw-v1:test", eval_windows=64, eval_seq_len=4096,
        autoround_iters=200, awq_grid="llm-awq")


def compress_experiments() -> list[Experiment]:
    """Experiments of this part of the package."""
    return [Experiment("compress", "compress a causal LM through the paper's grid: GPTQ/AWQ/AutoRound/RTN at 3/4/8 "
                       "bits, magnitude/SparseGPT/Wanda at 50% (2:4, 4:8, 1:2, unstructured) × calibration seeds",
                       {"smoke": _smoke(), "quick": CompressConfig(), "paper": _paper(), "tour": _tour()},
                       run_compress, preflight=preflight, tour_seeds=(0, 1, 2), datasets=COMPRESS_DATASETS,
                       # the model is loaded, compressed and scored in float32 and saved in `save_dtype`: --dtype
                       # is not read, so only auto is accepted
                       dtypes=())]
