"""Experiments of `shake-to-leak`, registered with `repro` through the `repro.experiments` entry point.

* ``main-table``: the paper's Table 1 — pre-trained, End-to-End on an OoD set, and every S2L fine-tuning method on
  the synthetic private set — scored by SecMI (AUC, TPR@1%FPR) and Eidetic extraction, per target domain;
* ``lora-rank``: the LoRA-rank sweep (blog figure "param_sens", left);
* ``ti-tokens``: the Textual-Inversion token-count sweep (same figure, right);
* ``perturbation``: the Gaussian weight-perturbation control (blog ``gauss.png``).

``main-table`` also has a ``tour`` config (``repro reproduce``): the headline claim alone, over three seeds.

Each row of a table is a string ``method[:key=value]`` (``pretrained``, ``ood``, a ``finetune.METHODS`` name, with an
optional ``rank``, ``tokens`` or ``std`` setting). Every (domain, row) result is written to the run directory as soon
as it is finished, so ``--resume`` continues an interrupted run where it stopped.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from repro_shared import io
from repro_shared.errors import ConfigError
from repro_shared.experiments import Claim, Experiment

from .attacks import ExtractionConfig, SecMIConfig, auc, extraction_attack, read_scores, secmi_attack
from .data import DataConfig, Domain, check_subject_template, domain_by_spec, load_domains, pretraining_corpus
from .models import ModelConfig, load_pipeline
from .pretrain import PretrainConfig, ensure_pretrained
from .scales import (
    PAPER_DATA,
    PAPER_MODEL,
    PAPER_PRETRAIN,
    QUICK_DATA,
    QUICK_MODEL,
    QUICK_PRETRAIN,
    SMOKE_DATA,
    SMOKE_MODEL,
    SMOKE_PRETRAIN,
    TOUR_DATA,
    TOUR_PRETRAIN,
)
from .synthesize import SynthConfig, generate, load_image_set, quantize, save_image_set, synthesize

MAIN_ROWS = ("pretrained", "ood", "end-to-end", "dreambooth", "textual-inversion", "hypernetwork", "lora",
             "dreambooth+hypernetwork", "dreambooth+lora")
# At quick scale every method trains at batch 8 for 100 steps, where DreamBooth+Hypernetwork (the Hypernetwork's
# parameters under the combo script's batch 2) would repeat the Hypernetwork run bit for bit: it is left out there.
QUICK_MAIN_ROWS = tuple(r for r in MAIN_ROWS if r != "dreambooth+hypernetwork")
PRIOR_METHODS = ("end-to-end", "dreambooth", "lora", "dreambooth+lora")  # the methods s2l.py trains
ROW_KEYS = {"rank": "lora_rank", "tokens": "ti_tokens", "std": "perturb_std"}

# The paper's Table 1: AUC, TPR@1%FPR, extraction Num per row.
PAPER_TABLE = {
    "pretrained": (0.712, 0.167, 0.0), "ood": (0.682, 0.158, 0.0), "end-to-end": (0.722, 0.167, 0.0),
    "dreambooth": (0.758, 0.172, 12.7), "textual-inversion": (0.738, 0.169, 14.6), "hypernetwork": (0.734, 0.168, 4.4),
    "lora": (0.745, 0.169, 13.4), "dreambooth+hypernetwork": (0.747, 0.169, 5.9),
    "dreambooth+lora": (0.766, 0.175, 16.3),
}


@dataclass(frozen=True)
class FinetuneSettings:
    """Fine-tuning settings shared by the rows (defaults: the released scripts; per-method lrs)."""

    steps: int = 50_000  # 100 epochs × 2000 SP images / batch 4
    batch_size: int = 4
    combo_batch_size: int = 2  # lora_db.sh: batch 2 for the DreamBooth+ combinations
    combo_steps: int = 100_000
    lr_full: float = 1e-6
    lr_lora: float = 1e-6
    lr_ti: float = 5e-4
    lr_hypernet: float = 1e-5
    lora_rank: int = 8
    ti_tokens: int = 12
    hypernet_hidden_mult: int = 2
    perturb_std: float = 8e-4
    train_text_encoder: bool = True
    # s2l.py --with_prior_preservation (off in every shipped script): for the s2l.py methods (End-to-End, DreamBooth,
    # LoRA, DreamBooth+LoRA), num_class_images sampled from class_prompt by the attacked model join every batch
    prior_preservation: bool = False
    class_prompt: str = "a photo of a person"
    num_class_images: int = 100  # s2l.py's default

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("bool", "str") or isinstance(value, bool | str):
                continue
            if not isinstance(value, int | float) or not value > 0 or (f.type == "int" and not isinstance(value, int)):
                raise ConfigError(f"finetune.{f.name}={value!r}: must be a positive {f.type}")

    def lr(self, method: str) -> float:
        if method in ("lora", "dreambooth+lora"):
            return self.lr_lora
        if method == "textual-inversion":
            return self.lr_ti
        if method in ("hypernetwork", "dreambooth+hypernetwork"):
            return self.lr_hypernet
        return self.lr_full


@dataclass(frozen=True)
class S2LConfig:
    """One S2L table: model, corpus, SP generation, fine-tuning, attacks, target domains and rows."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    secmi: SecMIConfig = field(default_factory=SecMIConfig)
    extraction: ExtractionConfig = field(default_factory=ExtractionConfig)
    targets: tuple[str, ...] = ("photo:chelsea",)
    ood_domain: str = "lfw:faces"  # the OoD control fine-tunes End-to-End on this domain's images
    ood_source: str = "sp"  # "sp": the OoD domain's synthetic set (its subject as prompt); "images": its own images
    rows: tuple[str, ...] = MAIN_ROWS
    instance_template: str = "photo of {subject}"  # s2l scripts: --instance_prompt="photo of <Name>"
    keep_artefacts: bool = False  # fine-tuned weights are deleted once a row's attacks are written
    extract: bool = True  # False: SecMI only, no extraction attack (the tour)

    def __post_init__(self) -> None:
        if not self.targets:
            raise ConfigError("targets is empty", "name at least one target domain from data.domains")
        for spec in (*self.targets, self.ood_domain):
            if spec not in self.data.domains:
                raise ConfigError(f"domain {spec!r} is not in data.domains", f"data.domains = {self.data.domains}")
        if self.ood_domain in self.targets and "ood" in self.rows:
            raise ConfigError(f"ood_domain {self.ood_domain!r} is also a target", "pick a domain that is not a target")
        if self.ood_source not in ("sp", "images"):
            raise ConfigError(f"ood_source={self.ood_source!r}", "use sp (its synthetic set) or images (its own)")
        check_subject_template("instance_template", self.instance_template)
        for row in self.rows:  # every row's fine-tuning settings are checked now, before any pre-training
            method, overrides = parse_row(row)
            if method != "pretrained":
                try:
                    finetune_config(self, method, overrides, seed=0)
                except ConfigError as error:
                    raise ConfigError(f"row {row!r}: {error.message}", error.hint) from None


def parse_row(row: str) -> tuple[str, dict[str, Any]]:
    """``"lora:rank=4"`` → ("lora", {"lora_rank": 4}); ConfigError for an unknown method or key."""
    from .finetune import METHODS

    method, _, setting = row.partition(":")
    if method not in ("pretrained", "ood", *METHODS):
        raise ConfigError(f"unknown row {row!r}", f"rows are pretrained, ood or one of {', '.join(METHODS)}")
    values: dict[str, Any] = {}
    if setting:
        key, sep, raw = setting.partition("=")
        if not sep or key not in ROW_KEYS:
            raise ConfigError(f"row {row!r}: setting {setting!r} is not key=value with key in {sorted(ROW_KEYS)}")
        try:
            values[ROW_KEYS[key]] = float(raw) if key == "std" else int(raw)
        except ValueError:
            raise ConfigError(f"row {row!r}: {key}={raw!r} is not a number") from None
    return method, values


def finetune_config(config: S2LConfig, method: str, overrides: dict[str, Any], seed: int) -> Any:
    """The FinetuneConfig of one row (the OoD row is End-to-End)."""
    from .finetune import FinetuneConfig

    settings = config.finetune
    method = "end-to-end" if method == "ood" else method
    combo = method.startswith("dreambooth+")
    values = {"steps": 0 if method == "perturb" else (settings.combo_steps if combo else settings.steps),
              "lr": settings.lr(method), "batch_size": settings.combo_batch_size if combo else settings.batch_size,
              "lora_rank": settings.lora_rank, "ti_tokens": settings.ti_tokens,
              "hypernet_hidden_mult": settings.hypernet_hidden_mult, "perturb_std": settings.perturb_std,
              "train_text_encoder": settings.train_text_encoder, "seed": seed,
              "with_prior_preservation": settings.prior_preservation and method in PRIOR_METHODS,
              "class_prompt": settings.class_prompt, **overrides}
    return FinetuneConfig(method, **values)


# ------------------------------------------------------------------------------------------------------------ running
def _preflight(config: S2LConfig, ctx: Any) -> None:
    config.model.validate()
    from .finetune import METHODS  # noqa: F401 - the fine-tuning module must import before anything expensive

    domains = load_domains(config.data)  # bad data fails here, before the run directory exists
    for spec in config.targets:
        domain_by_spec(domains, spec)


class MetricsOnce:
    """Logs each pre-training step and each (domain, row) result once per run directory, across resumes.

    A resumed run redoes pre-training from its last checkpoint and rows whose result was not yet written; the records
    they had already appended to ``metrics.jsonl`` are read back here and not written again.
    """

    def __init__(self, ctx: Any) -> None:
        from repro_shared.logging import read_metrics

        path = ctx.run_dir.metrics_path if ctx.run_dir is not None else None
        records = read_metrics(path) if path is not None and path.exists() else []
        self.ctx = ctx
        self.last_pretrain_step = max((r["step"] for r in records if "pretrain_loss" in r), default=0)
        self.rows = {(r["domain"], r["row"]) for r in records if "domain" in r and "row" in r}

    def pretrain(self, step: int, loss: float) -> None:
        if step > self.last_pretrain_step:
            self.ctx.log_metrics(step=step, pretrain_loss=loss)
            self.last_pretrain_step = step

    def row(self, result: dict[str, Any]) -> None:
        key = (result["domain"], result["row"])
        if key not in self.rows:
            self.ctx.log_metrics(**result)
            self.rows.add(key)


def _base_pipeline_path(config: S2LConfig, ctx: Any, metrics: MetricsOnce) -> Path | str:
    if config.model.source != "tiny":
        return config.model.source
    return ensure_pretrained(ctx.options.out, config.model, config.data, config.pretrain, ctx.seed,
                             on_log=metrics.pretrain)


def _sp_set(pipe_path: Any, domain: Domain, config: S2LConfig, ctx: Any) -> tuple[torch.Tensor, str]:
    """The domain's synthetic private set: generated once per run, kept in the run directory as PNG files, and used
    as those 8-bit images (the released ``sp_gen.py`` saves PNGs and ``s2l.py`` reads them back)."""
    folder = ctx.artifact(f"sp/{domain.name}/x").parent
    saved = load_image_set(folder)
    if saved is not None:
        return saved
    pipe = load_pipeline(pipe_path, ctx.device)
    images, prompt = synthesize(pipe, domain.subject, config.synth, ctx.seed)
    images = quantize(images)
    save_image_set(images, prompt, folder)
    _save_grid(images[:64], ctx.figure(f"sp_{domain.name}"), f"SP set: {prompt[:60]}")
    return images, prompt


def _class_set(pipe_path: Any, config: S2LConfig, ctx: Any) -> torch.Tensor:
    """s2l.py's class-prior images: ``num_class_images`` samples of the attacked model for ``class_prompt`` at its
    default sampling settings, generated once per run and kept as PNG files."""
    folder = ctx.artifact("class_images/x").parent
    saved = load_image_set(folder)
    if saved is not None:
        return saved[0]
    settings = config.finetune
    images = quantize(generate(load_pipeline(pipe_path, ctx.device), settings.class_prompt, settings.num_class_images,
                               ctx.seed, config.synth.steps, config.synth.guidance_scale, None, config.synth.scheduler,
                               config.synth.batch_size, False, stream="class-prior"))
    save_image_set(images, settings.class_prompt, folder)
    return images


def _run_row(row: str, domain: Domain, sp: torch.Tensor, ood_sp: torch.Tensor, ood_subject: str,
             pipe_path: Any, training_set: torch.Tensor, config: S2LConfig, ctx: Any) -> dict[str, Any]:
    """Fine-tune (unless ``pretrained``), load the artefact into a fresh pipeline, run SecMI and extraction."""
    from .finetune import finetune, finetuned_prompt, load_finetuned, trainable_parameter_count

    method, overrides = parse_row(row)
    row_dir = _row_dir(ctx, domain, row)
    pipe = load_pipeline(pipe_path, ctx.device)
    params, train_s = 0, 0.0
    if method != "pretrained":
        ft_config = finetune_config(config, method, overrides, ctx.seed)
        images, subject = (ood_sp, ood_subject) if method == "ood" else (sp, domain.subject)
        class_images = _class_set(pipe_path, config, ctx) if ft_config.with_prior_preservation else None
        started = time.perf_counter()
        artefact = finetune(pipe, images, config.instance_template.format(subject=subject), ft_config,
                            row_dir / "artefact", class_images=class_images)
        train_s = time.perf_counter() - started
        params = trainable_parameter_count(artefact)
        # The attacks run on the artefact loaded into a fresh base pipeline (the released code could not load LoRA).
        pipe = load_finetuned(load_pipeline(pipe_path, ctx.device), artefact)
    # Textual Inversion: the learned tokens join every image's caption
    captions = [finetuned_prompt(pipe, c) for c in domain.image_captions()]
    started = time.perf_counter()
    mia = secmi_attack(pipe, domain, config.secmi, ctx.seed, row_dir / "secmi_scores.jsonl", show_progress=False,
                       captions=captions)
    mia_s = time.perf_counter() - started
    result = {"domain": domain.spec, "row": row, "auc": mia.auc, "tpr_at_1fpr": mia.tpr_at_1fpr,
              "member_score": mia.member_mean, "nonmember_score": mia.nonmember_mean, "params": params,
              "finetune_s": round(train_s, 2), "secmi_s": round(mia_s, 2)}
    if config.extract:
        result.update(_extract(pipe, domain, method, row, training_set, config, ctx))
    if not config.keep_artefacts and (row_dir / "artefact").exists():
        shutil.rmtree(row_dir / "artefact")
    return result


def _extract(pipe: Any, domain: Domain, method: str, row: str, training_set: torch.Tensor, config: S2LConfig,
             ctx: Any) -> dict[str, Any]:
    """The extraction attack's counts for one (domain, row), with the non-member control."""
    from .finetune import finetuned_prompt

    extraction_cfg = dataclasses.replace(config.extraction, prompt_template=finetuned_prompt(
        pipe, config.extraction.prompt_template))
    started = time.perf_counter()
    ext, gens = extraction_attack(pipe, domain, training_set, extraction_cfg, ctx.seed, show_progress=False)
    if method in ("pretrained", "dreambooth+lora"):
        _save_grid(gens[:32] * 2 - 1, ctx.figure(f"candidates_{domain.name}_{method}"),
                   f"extraction candidates, {domain.subject}, {row}")
    return {"extracted": ext.num_members, "matching_generations": ext.matching_generations,
            "nonmember_control": ext.num_nonmembers, "candidates": ext.candidates, "delta": ext.delta,
            "extraction_s": round(time.perf_counter() - started, 2)}


def run_table(config: S2LConfig, ctx: Any) -> dict[str, Any]:
    """Every (target domain, row) result, resumable per pair, then the table averaged over domains."""
    metrics = MetricsOnce(ctx)
    pipe_path = _base_pipeline_path(config, ctx, metrics)
    domains = load_domains(config.data)
    training_set, _ = pretraining_corpus(domains)
    ood = domain_by_spec(domains, config.ood_domain)
    ood_sp = None
    if "ood" in config.rows:  # the OoD fine-tuning set: the OoD images themselves, or the OoD subject's SP set
        ood_sp = (torch.cat([ood.members, ood.nonmembers]) if config.ood_source == "images"
                  else _sp_set(pipe_path, ood, config, ctx)[0])
    results, scores = [], {}
    for spec in config.targets:
        domain = domain_by_spec(domains, spec)
        sp, _ = _sp_set(pipe_path, domain, config, ctx)
        for row in config.rows:
            done = _row_dir(ctx, domain, row) / "result.json"
            if done.exists():
                result = io.read_json(done)
            else:
                ctx.log.info("%s / %s", spec, row)
                result = _run_row(row, domain, sp, ood_sp, ood.subject, pipe_path, training_set, config, ctx)
                io.atomic_write_json(done, result)
            metrics.row(result)  # also a finished row whose record a kill prevented
            results.append(result)
            scores.setdefault(row, {})[spec] = read_scores(done.parent / "secmi_scores.jsonl")
    out = {"per_domain": results, "table": _average(results, config.rows), "scores": scores}
    if "pretrained" in config.rows:
        out["pretrained_all_domains"] = _pretrained_auc_all_domains(pipe_path, domains, results, config, ctx)
    return out


def _pretrained_auc_all_domains(pipe_path: Any, domains: list[Domain], results: list[dict[str, Any]],
                                config: S2LConfig, ctx: Any) -> list[dict[str, Any]]:
    """SecMI AUC of the pre-trained model on every corpus domain (targets from their rows, the others scored here)."""
    known = {r["domain"]: r for r in results if r["row"] == "pretrained"}
    pipe, table = None, []
    for domain in domains:
        if domain.spec not in known:
            pipe = pipe or load_pipeline(pipe_path, ctx.device)
            path = _row_dir(ctx, domain, "pretrained") / "secmi_scores.jsonl"
            mia = secmi_attack(pipe, domain, config.secmi, ctx.seed, path, show_progress=False)
            known[domain.spec] = {"auc": mia.auc, "tpr_at_1fpr": mia.tpr_at_1fpr}
        table.append({"domain": domain.spec, "target": domain.spec in config.targets,
                      "auc": known[domain.spec]["auc"], "tpr_at_1fpr": known[domain.spec]["tpr_at_1fpr"]})
    return table


def _row_dir(ctx: Any, domain: Domain, row: str) -> Path:
    return ctx.artifact(f"rows/{domain.name}/{row.replace(':', '_')}/x").parent


AVERAGED = ("auc", "tpr_at_1fpr", "extracted", "matching_generations", "nonmember_control", "delta", "finetune_s")


def _average(results: list[dict[str, Any]], rows: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per row, the mean over target domains of every measured key (extraction keys only where it ran)."""
    table = []
    for row in rows:
        mine = [r for r in results if r["row"] == row]
        entry = {"row": row, "params": mine[0]["params"] if mine else 0}
        for key in AVERAGED:
            if not mine or all(key in r for r in mine):
                entry[key] = float(np.mean([r[key] for r in mine])) if mine else float("nan")
        entry["auc_per_domain"] = [round(r["auc"], 3) for r in mine]
        table.append(entry)
    return table


# ----------------------------------------------------------------------------------------------------------- figures
def _save_grid(images: torch.Tensor, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    cols = min(16, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.6, rows * 0.6 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img in zip(axes.flat, images, strict=False):
        ax.imshow(((img.permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1), interpolation="nearest")
    fig.suptitle(title, fontsize=7)
    with io.atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)


def _bar_figure(table: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    extracted = all("extracted" in t for t in table)  # no extraction panel where the attack did not run
    fig, axes = plt.subplots(1, 2 if extracted else 1, figsize=(10 if extracted else 5, 3.5), squeeze=False)
    ax1, ax2 = axes[0][0], axes[0][-1]
    names = [t["row"] for t in table]
    ax1.bar(names, [t["auc"] for t in table], color="tab:blue")
    ax1.axhline(table[0]["auc"], color="k", lw=0.8, ls="--")
    ax1.set_ylabel("SecMI AUC (mean over domains)")
    if extracted:
        _extraction_panel(ax2, names, table)
    for ax in axes[0]:
        ax.tick_params(axis="x", rotation=60, labelsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with io.atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)


def _extraction_panel(ax2: Any, names: list[str], table: list[dict[str, Any]]) -> None:
    ax2.bar(names, [t["extracted"] for t in table], color="tab:red", label="members")
    ax2.bar(names, [t["nonmember_control"] for t in table], color="tab:gray", alpha=0.6, label="non-member control")
    ax2.set_ylabel("extracted images per domain")
    ax2.legend(fontsize=7)


# ------------------------------------------------------------------------------------------------------ experiments
# Per-image SecMI scores of a table: row -> target domain spec -> image id ("m<i>" member, "n<i>" not) -> score.
Scores = dict[str, dict[str, dict[str, float]]]


def _paired_items(pre: dict[str, dict[str, float]], post: dict[str, dict[str, float]] | None = None
                  ) -> tuple[np.ndarray, ...]:
    """Over every image of every domain: its score before, after (the same image), is-member, domain index."""
    before, after, member, domain = [], [], [], []
    for index, (spec, scores) in enumerate(sorted(pre.items())):
        for image_id, score in scores.items():
            before.append(score)
            after.append((post or pre)[spec][image_id])
            member.append(image_id.startswith("m"))
            domain.append(index)
    return np.array(before), np.array(after), np.array(member), np.array(domain)


def mean_auc(scores: np.ndarray, member: np.ndarray, domain: np.ndarray) -> float:
    """SecMI AUC per domain (lower score = member), averaged over domains as the table is.

    A bootstrap resample of a tiny set can lack a domain's members or non-members; that domain is left out.
    """
    member = np.asarray(member, dtype=bool)  # the bootstrap hands the arrays back as floats
    aucs = [auc(scores[(domain == d) & member], scores[(domain == d) & ~member]) for d in np.unique(domain)
            if (member[domain == d]).any() and (~member[domain == d]).any()]
    return float(np.mean(aucs)) if aucs else float("nan")


def auc_change_interval(pre: dict[str, dict[str, float]], post: dict[str, dict[str, float]], seed: int
                        ) -> tuple[float, float]:
    """95 % interval of mean AUC(post) − mean AUC(pre), bootstrapping images paired across the two models."""
    from repro_shared.evidence import bootstrap_interval

    return bootstrap_interval(lambda a, b, m, d: mean_auc(b, m, d) - mean_auc(a, m, d), *_paired_items(pre, post),
                              seed=seed)


def auc_above_chance_interval(scores: dict[str, dict[str, float]], seed: int) -> tuple[float, float]:
    """95 % interval of mean AUC − 0.5 of one model, bootstrapping its images."""
    from repro_shared.evidence import bootstrap_interval

    before, _, member, domain = _paired_items(scores)
    return bootstrap_interval(lambda a, m, d: mean_auc(a, m, d) - 0.5, before, member, domain, seed=seed)


def claims_main(table: list[dict[str, Any]], scores: Scores | None = None, seed: int = 0) -> list[Claim]:
    """Table 1's claims, each with its signed effect (positive = what the paper claims).

    With ``scores`` (per-image SecMI scores of the rows), AUC claims also get a 95 % interval from a bootstrap over
    images, paired across the models compared (the same member and non-member images are scored by both).
    """
    by = {t["row"]: t for t in table}
    pre = by.get("pretrained")
    if pre is None:
        return []
    scores = scores or {}

    def rise_interval(row: str, reverse: bool = False) -> tuple[float, float] | None:
        if "pretrained" not in scores or row not in scores:
            return None
        before, after = (scores[row], scores["pretrained"]) if reverse else (scores["pretrained"], scores[row])
        return auc_change_interval(before, after, seed)

    claims = [Claim("pre-trained: SecMI AUC is above chance (0.5)", PAPER_TABLE["pretrained"][0], pre["auc"],
                    effect=pre["auc"] - 0.5,
                    interval=auc_above_chance_interval(scores["pretrained"], seed) if "pretrained" in scores else None)]
    sp_rows = [r for r in by if r not in ("pretrained", "ood", "end-to-end")]
    for row in sp_rows:
        paper = PAPER_TABLE.get(row)
        claims.append(Claim(f"{row}: SecMI AUC rises over the pre-trained model",
                            f"{PAPER_TABLE['pretrained'][0]:.3f} -> {paper[0]:.3f}" if paper else None,
                            f"{pre['auc']:.3f} -> {by[row]['auc']:.3f}", effect=by[row]["auc"] - pre["auc"],
                            interval=rise_interval(row)))
        if "extracted" in by[row] and "extracted" in pre:
            # A rise counts only above the non-member control (matches of images that were never trained on).
            floor = max(pre["extracted"], by[row]["nonmember_control"])
            claims.append(Claim(f"{row}: extracted members per domain rise (above the non-member control)",
                                f"0 -> {paper[2]}" if paper else None,
                                f"pre-trained {pre['extracted']:.2f} (control {pre['nonmember_control']:.2f}) -> "
                                f"{by[row]['extracted']:.2f} (control {by[row]['nonmember_control']:.2f})",
                                effect=by[row]["extracted"] - floor))
    if "ood" in by:
        claims.append(Claim("End-to-End on OoD data does not raise AUC", "0.712 -> 0.682",
                            f"{pre['auc']:.3f} -> {by['ood']['auc']:.3f}", effect=pre["auc"] - by["ood"]["auc"],
                            interval=rise_interval("ood", reverse=True)))
    others = [r for r in sp_rows if r != "dreambooth+lora"]
    if "dreambooth+lora" in by and others:
        best = max(others, key=lambda r: by[r]["auc"])
        claims.append(Claim("DreamBooth+LoRA has the highest AUC", "dreambooth+lora (0.766)",
                            f"dreambooth+lora {by['dreambooth+lora']['auc']:.3f}, next {best} {by[best]['auc']:.3f}",
                            effect=by["dreambooth+lora"]["auc"] - by[best]["auc"]))
    return claims


def claims_sweep(table: list[dict[str, Any]], what: str) -> list[Claim]:
    """LoRA rank: the paper's AUC peaks inside the range (9.6M params); TI tokens: it rises, then plateaus."""
    aucs = [t["auc"] for t in table[1:]]  # table[0] is the pre-trained reference
    if len(aucs) < 3:
        return []
    if what == "ti-tokens":
        return [Claim("ti-tokens: AUC rises with the number of tokens (then plateaus)", "0.712 (-8) -> 0.744 (+8)",
                      f"{aucs[0]:.3f} ({table[1]['row']}) -> {aucs[-1]:.3f} ({table[-1]['row']})",
                      effect=aucs[-1] - aucs[0])]
    peak = int(np.argmax(aucs))
    # Positive iff some interior setting beats both ends.
    return [Claim(f"{what}: AUC has a sweet spot (peak not at either end)", "yes, at ≈9.6M LoRA params",
                  f"peak at {table[1 + peak]['row']} ({aucs[peak]:.3f})",
                  effect=max(aucs[1:-1]) - max(aucs[0], aucs[-1]))]


def _run(config: S2LConfig, ctx: Any, kind: str) -> dict[str, Any]:
    started = time.perf_counter()
    out = run_table(config, ctx)
    table = out["table"]
    _bar_figure(table, ctx.figure(kind), f"S2L {kind} ({ctx.scale}): mean over {len(config.targets)} domain(s)")
    claims = claims_main(table, out["scores"], ctx.seed) if kind == "main-table" else claims_sweep(table, kind)
    metrics = {f"auc/{t['row']}": t["auc"] for t in table}
    metrics.update({f"extracted/{t['row']}": t["extracted"] for t in table if "extracted" in t})
    metrics.update({f"pretrained_auc/{t['domain']}": t["auc"] for t in out.get("pretrained_all_domains", [])})
    metrics["total_s"] = round(time.perf_counter() - started, 1)
    columns = ["row", "params", "auc", "tpr_at_1fpr", "extracted", "matching_generations", "nonmember_control",
               "delta", "auc_per_domain", "finetune_s"]
    tables = {kind: [{c: t[c] for c in columns if c in t} for t in table]}
    if "pretrained_all_domains" in out:
        tables["pretrained-auc-all-domains"] = out["pretrained_all_domains"]
    return {"metrics": metrics, "claims": claims, "tables": tables,
            "per_domain": out["per_domain"]}


def _smoke(rows: tuple[str, ...]) -> S2LConfig:
    return S2LConfig(
        model=SMOKE_MODEL, data=SMOKE_DATA, pretrain=SMOKE_PRETRAIN,
        synth=SynthConfig(num_images=4, steps=2, batch_size=4, suffix="", negative_prompt="", face_probability=0.0,
                          photo_template="a photo of {subject}"),
        finetune=FinetuneSettings(steps=2, combo_steps=2, batch_size=2, combo_batch_size=2, lr_full=1e-4,
                                  lr_lora=1e-3, lr_ti=5e-3, lr_hypernet=1e-3, lora_rank=2, ti_tokens=2),
        secmi=SecMIConfig(t_sec=20, k=10, batch_size=8),
        extraction=ExtractionConfig(num_candidates=4, steps=2, batch_size=4, calibrate_delta=True),
        targets=("photo:chelsea",), ood_domain="digit:7", rows=rows, instance_template="a photo of {subject}")


QUICK_TARGETS = ("photo:chelsea", "photo:astronaut")


def _quick(rows: tuple[str, ...], targets: tuple[str, ...] = QUICK_TARGETS) -> S2LConfig:
    return S2LConfig(
        model=QUICK_MODEL, data=QUICK_DATA, pretrain=QUICK_PRETRAIN,
        # The tiny text encoder only knows the corpus's caption words: the attacker's prompt is the domain caption
        # (no quality suffix, negative prompt = the unconditional embedding, which caption dropout trained).
        synth=SynthConfig(num_images=48, steps=50, batch_size=48, suffix="", negative_prompt="",
                          face_probability=0.0, photo_template="a photo of {subject}"),
        finetune=FinetuneSettings(steps=100, combo_steps=100, batch_size=8, combo_batch_size=8, lr_full=1e-4,
                                  lr_lora=1e-3, lr_ti=5e-3, lr_hypernet=1e-3, lora_rank=8, ti_tokens=4),
        secmi=SecMIConfig(t_sec=140, k=10, batch_size=40),
        # 256 candidates; δ lowered per domain until its non-member tiles would "extract" at most one member
        extraction=ExtractionConfig(num_candidates=256, steps=50, batch_size=64, calibrate_delta=True),
        targets=targets, ood_domain="lfw:faces", rows=rows, instance_template="a photo of {subject}")


TOUR_METHOD = "hypernetwork"


def _tour() -> S2LConfig:
    """The headline claim of Table 1 for ``repro reproduce``: S2L fine-tuning raises SecMI AUC over the pre-trained
    model. Per seed: a smaller pre-training (two domains, chelsea and astronaut, 20 members + 20 non-members each,
    shorter schedule), the SP set of each domain, one S2L method (Hypernetwork, the strongest at ``quick``) and SecMI
    on both models; no extraction. Claims: pre-trained AUC above chance, and the AUC rise, each with an image
    bootstrap interval per seed and a t interval over the tour seeds. ``quick`` keeps the rest: the six-domain
    pre-training, every method, the OoD control, extraction and the ablations.
    """
    return dataclasses.replace(
        _quick(("pretrained", TOUR_METHOD)), data=TOUR_DATA, pretrain=TOUR_PRETRAIN,
        synth=SynthConfig(num_images=32, steps=50, batch_size=32, suffix="", negative_prompt="",
                          face_probability=0.0, photo_template="a photo of {subject}"),
        ood_domain=QUICK_TARGETS[1], extract=False)


def _paper(rows: tuple[str, ...]) -> S2LConfig:
    """SD v1.1 with the released scripts' settings; members/non-members/OoD images come from folders the user fills."""
    return S2LConfig(
        model=PAPER_MODEL, data=dataclasses.replace(PAPER_DATA, domains=(*PAPER_DATA.domains, "folder:data/s2l/ood")),
        pretrain=PAPER_PRETRAIN, synth=SynthConfig(num_images=2000, batch_size=8),
        finetune=FinetuneSettings(lora_rank=64, ti_tokens=12),  # r=64 on q/k/v/out: 17.5M ≈ the paper's 19M
        secmi=SecMIConfig(t_sec=140, k=10, batch_size=8),
        extraction=ExtractionConfig(num_candidates=5000, batch_size=8, prompt_template="A photo of {subject}"),
        targets=PAPER_DATA.domains, ood_domain="folder:data/s2l/ood", ood_source="images", rows=rows)


def _experiment(name: str, description: str, smoke_rows: tuple[str, ...], quick_rows: tuple[str, ...],
                paper_rows: tuple[str, ...], quick_targets: tuple[str, ...] = QUICK_TARGETS,
                tour: S2LConfig | None = None) -> Experiment:
    configs = {"smoke": _smoke(smoke_rows), "quick": _quick(quick_rows, quick_targets), "paper": _paper(paper_rows)}
    if tour is not None:
        configs["tour"] = tour
    # dtypes=(): the model is built, fine-tuned and attacked in float32 whatever --dtype says (s2l.py fine-tunes in
    # fp32; SecMI's DDIM inversion runs in float64), so no explicit --dtype is honoured.
    return Experiment(name=name, description=description, configs=configs,
                      run=lambda config, ctx: _run(config, ctx, name), preflight=_preflight, tour_seeds=(0, 1, 2),
                      dtypes=())


def experiments() -> list[Experiment]:
    """Every experiment this package registers (each with smoke, quick and paper configs)."""
    ranks = (1, 2, 4, 8, 16, 32)
    tokens = (1, 2, 4, 8, 16)
    stds = (2e-4, 8e-4, 3.2e-3)
    return [
        _experiment("main-table", "Table 1: SecMI AUC / TPR@1%FPR and Eidetic extraction after S2L fine-tuning",
                    MAIN_ROWS, QUICK_MAIN_ROWS, MAIN_ROWS, tour=_tour()),
        _experiment("lora-rank", "LoRA-rank sweep of S2L (DreamBooth+LoRA): AUC and extraction vs rank",
                    ("pretrained", "dreambooth+lora:rank=1", "dreambooth+lora:rank=4"),
                    ("pretrained", *(f"dreambooth+lora:rank={r}" for r in ranks)),
                    ("pretrained", *(f"dreambooth+lora:rank={r}" for r in (8, 16, 32, 64, 128, 256, 512))),
                    quick_targets=QUICK_TARGETS[:1]),
        _experiment("ti-tokens", "Textual-Inversion token sweep of S2L: AUC and extraction vs number of tokens",
                    ("pretrained", "textual-inversion:tokens=1", "textual-inversion:tokens=2"),
                    ("pretrained", *(f"textual-inversion:tokens={t}" for t in tokens)),
                    ("pretrained", *(f"textual-inversion:tokens={t}" for t in range(4, 21, 2))),
                    quick_targets=QUICK_TARGETS[:1]),
        _experiment("perturbation", "Gaussian weight perturbation θ + N(0, ε²) as a control (blog gauss.png)",
                    ("pretrained", "perturb:std=8e-4"),
                    ("pretrained", *(f"perturb:std={s}" for s in stds)),
                    ("pretrained", *(f"perturb:std={s}" for s in stds))),
    ]
