"""Step 3 of S2L: SecMI membership inference and data extraction with the (k, ℓ2, δ)-Eidetic criterion
(Carlini et al. 2023 Def. 2).

SecMI_stat (``SecMI/src/mia/secmi.py``): z0 = VAE posterior sample × scale; deterministic DDIM inversion (η = 0, own
caption, no CFG) over t = 0, k, 2k, …, t_sec; then one inversion step t_sec → t_sec + k and one denoising step
back; the score is ‖x̃_{t_sec} − x_{t_sec}‖² summed over latent elements, lower = member.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from repro_shared.errors import ConfigError
from repro_shared.logging import progress

from .data import Domain, check_subject_template, to_unit
from .models import embed_prompts, encode
from .synthesize import CANDIDATE_STREAM, generate_batches


# ---------------------------------------------------------------------------------------------------------- SecMI
@dataclass(frozen=True)
class SecMIConfig:
    """SecMI's t-error at t_sec with interval k (the code: t_sec = 140, k = 10)."""

    t_sec: int = 140
    k: int = 10
    batch_size: int = 32
    sample_posterior: bool = True  # SecMI-LDM: latent_dist.sample(), seeded

    def __post_init__(self) -> None:
        if self.k < 1 or self.t_sec < 0 or self.t_sec % self.k:
            raise ConfigError(f"secmi.t_sec={self.t_sec}, secmi.k={self.k}: t_sec must be a non-negative multiple "
                              "of k ≥ 1", "the paper uses t_sec=140, k=10")


def ddim_step(x: torch.Tensor, eps: torch.Tensor, alpha_from: torch.Tensor, alpha_to: torch.Tensor) -> torch.Tensor:
    """One deterministic DDIM (η = 0) move from ᾱ_from to ᾱ_to: up (inversion) or down (denoising)."""
    x0 = (x - (1 - alpha_from).sqrt() * eps) / alpha_from.sqrt()
    return alpha_to.sqrt() * x0 + (1 - alpha_to).sqrt() * eps


def _alphas(pipe: Any) -> torch.Tensor:
    return pipe.scheduler.alphas_cumprod.to(torch.float64)


def _eps(pipe: Any, x: torch.Tensor, t: int, cond: torch.Tensor) -> torch.Tensor:
    timestep = torch.full((len(x),), t, dtype=torch.long, device=x.device)
    return pipe.unet(x.to(pipe.unet.dtype), timestep, cond).sample.to(x.dtype)


@torch.no_grad()
def ddim_invert(pipe: Any, z0: torch.Tensor, cond: torch.Tensor, t_end: int, k: int) -> torch.Tensor:
    """Deterministic DDIM inversion of z0 (taken as the sample at t = 0) to t_end in steps of k."""
    alphas = _alphas(pipe)
    x = z0.to(torch.float64)
    for t in range(0, t_end, k):
        x = ddim_step(x, _eps(pipe, x, t, cond), alphas[t], alphas[t + k])
    return x


@torch.no_grad()
def ddim_denoise(pipe: Any, x: torch.Tensor, cond: torch.Tensor, t_start: int, k: int, t_end: int = 0
                 ) -> torch.Tensor:
    """Deterministic DDIM denoising from t_start down to t_end in steps of k (the inverse of ``ddim_invert``)."""
    alphas = _alphas(pipe)
    x = x.to(torch.float64)
    for t in range(t_start, t_end, -k):
        x = ddim_step(x, _eps(pipe, x, t, cond), alphas[t], alphas[t - k])
    return x


@torch.no_grad()
def secmi_t_error(pipe: Any, images: torch.Tensor, prompts: list[str], config: SecMIConfig,
                  generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
    """SecMI_stat for a batch: invert to t_sec, one step up, one step down, squared ℓ2 error (lower = member).

    ``generator`` draws the VAE posterior sample; a list gives each image its own (diffusers' ``randn_tensor``).
    """
    z0 = encode(pipe, images, sample=config.sample_posterior, generator=generator)
    cond = embed_prompts(pipe, prompts)
    x_t = ddim_invert(pipe, z0, cond, config.t_sec, config.k)
    x_up = ddim_invert_from(pipe, x_t, cond, config.t_sec, config.k)
    x_back = ddim_denoise(pipe, x_up, cond, config.t_sec + config.k, config.k, config.t_sec)
    return (x_back - x_t).pow(2).flatten(1).sum(1).float().cpu()


def ddim_invert_from(pipe: Any, x: torch.Tensor, cond: torch.Tensor, t: int, k: int) -> torch.Tensor:
    """One inversion step t → t + k."""
    alphas = _alphas(pipe)
    return ddim_step(x, _eps(pipe, x, t, cond), alphas[t], alphas[t + k])


def secmi_scores(pipe: Any, images: torch.Tensor, prompts: list[str], ids: list[str], config: SecMIConfig,
                 seed: int, path: Path | None = None, show_progress: bool = True) -> dict[str, float]:
    """Per-image SecMI scores, batched; with ``path`` each finished batch is appended (JSONL) and a rerun resumes."""
    if not (len(images) == len(prompts) == len(ids)):
        raise ConfigError(f"secmi: {len(images)} images, {len(prompts)} prompts and {len(ids)} ids differ")
    done = read_scores(path)
    todo = [i for i, name in enumerate(ids) if name not in done]
    device = pipe.unet.device
    starts = range(0, len(todo), config.batch_size)
    for start in progress(starts, desc="SecMI", total=len(starts)) if show_progress else starts:
        batch = todo[start:start + config.batch_size]
        # Each image draws its VAE sample from its own generator, seeded by (seed, its id): its score does not depend
        # on the batch it lands in, so any batch size and a resume give the same scores bit for bit.
        generators = [torch.Generator(device).manual_seed(image_noise_seed(seed, ids[i])) for i in batch]
        scores = secmi_t_error(pipe, images[batch].to(device), [prompts[i] for i in batch], config, generators)
        new = {ids[i]: float(s) for i, s in zip(batch, scores, strict=True)}
        done.update(new)
        if path is not None:
            _append_scores(path, new)
    return {name: done[name] for name in ids}


def image_noise_seed(seed: int, image_id: str) -> int:
    """The seed of one image's VAE noise: a stable 63-bit hash of (run seed, image id), distinct across both."""
    digest = hashlib.sha256(f"secmi:{seed}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def read_scores(path: Path | None) -> dict[str, float]:
    if path is None or not path.exists():
        return {}
    scores = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a torn last line from a killed run
            continue
        scores[record["id"]] = float(record["score"])
    return scores


def _append_scores(path: Path, scores: dict[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps({"id": k, "score": v}) + "\n" for k, v in scores.items()))
        handle.flush()
        os.fsync(handle.fileno())


# ------------------------------------------------------------------------------------------------------- metrics
def roc_points(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) of the rule "member iff score ≤ τ" at every distinct τ, from (0, 0) to (1, 1)."""
    scores = np.concatenate([member_scores, nonmember_scores]).astype(np.float64)
    labels = np.concatenate([np.ones(len(member_scores)), np.zeros(len(nonmember_scores))])
    order = np.argsort(scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last_of_tie = np.r_[np.diff(scores) != 0, True]  # a threshold admits a whole group of tied scores at once
    tp = np.cumsum(labels)[last_of_tie]
    fp = np.cumsum(1 - labels)[last_of_tie]
    tpr = np.r_[0.0, tp / max(len(member_scores), 1)]
    fpr = np.r_[0.0, fp / max(len(nonmember_scores), 1)]
    return fpr, tpr


def auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """Area under the ROC curve (trapezoid over every threshold; lower score = member)."""
    fpr, tpr = roc_points(np.asarray(member_scores), np.asarray(nonmember_scores))
    return float(np.trapezoid(tpr, fpr))


def tpr_at_fpr(member_scores: np.ndarray, nonmember_scores: np.ndarray, max_fpr: float = 0.01) -> float:
    """The highest TPR among thresholds whose FPR ≤ max_fpr (TPR@1%FPR for max_fpr = 0.01)."""
    fpr, tpr = roc_points(np.asarray(member_scores), np.asarray(nonmember_scores))
    return float(tpr[fpr <= max_fpr + 1e-12].max())


@dataclass(frozen=True)
class MIAResult:
    auc: float
    tpr_at_1fpr: float
    member_mean: float
    nonmember_mean: float


def secmi_attack(pipe: Any, domain: Domain, config: SecMIConfig, seed: int, path: Path | None = None,
                 show_progress: bool = True, captions: list[str] | None = None) -> MIAResult:
    """SecMI on one domain's members vs non-members, each image with its caption (default: ``image_captions()``, its
    own caption where the domain has them, as the released code, else the domain's)."""
    captions = captions or domain.image_captions()
    images = torch.cat([domain.members, domain.nonmembers])
    ids = [f"m{i}" for i in range(len(domain.members))] + [f"n{i}" for i in range(len(domain.nonmembers))]
    scores = secmi_scores(pipe, images, captions, ids, config, seed, path, show_progress)
    member = np.array([scores[i] for i in ids if i.startswith("m")])
    nonmember = np.array([scores[i] for i in ids if i.startswith("n")])
    return MIAResult(auc(member, nonmember), tpr_at_fpr(member, nonmember), float(member.mean()),
                     float(nonmember.mean()))


# ---------------------------------------------------------------------------------------------------- extraction
@dataclass(frozen=True)
class ExtractionConfig:
    """Generate-and-compare extraction; (k, ℓ2, δ) = (10, normalised ℓ2, 0.1) as in the paper.

    ``calibrate_delta``: per target domain, δ is lowered (never raised) until the domain's non-member images, taken
    as if they were generations, come within δ of at most ``calibration_max_hits`` members; at 16×16 pixels δ = 0.1
    is so wide that unrelated low-contrast tiles of the same photo "extract" half the members.
    """

    num_candidates: int = 128
    k: int = 10
    delta: float = 0.1
    prompt_template: str = "a photo of {subject}"  # data_extraction.py: "A photo of Joe Biden"
    steps: int = 50
    guidance_scale: float = 7.5
    scheduler: str = "pndm"
    batch_size: int = 64
    calibrate_delta: bool = False
    calibration_max_hits: int = 1
    distance_chunk: int = 64  # images per side of one block of pairwise distances (bounds the host memory)

    def __post_init__(self) -> None:
        if self.num_candidates < 1 or self.k < 1 or self.delta <= 0:
            raise ConfigError("extraction.num_candidates and extraction.k must be ≥ 1 and extraction.delta > 0")
        if self.calibration_max_hits < 0 or self.distance_chunk < 1 or self.batch_size < 1:
            raise ConfigError("extraction.calibration_max_hits must be ≥ 0, extraction.distance_chunk and "
                              "extraction.batch_size ≥ 1")
        check_subject_template("extraction.prompt_template", self.prompt_template)


def normalized_l2(a: torch.Tensor, b: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """Pairwise √(Σ(a−b)²/d) between image sets in [0, 1] (Carlini et al.'s normalised ℓ2): (len(a), len(b)).

    Computed block by block (``chunk`` images of each set in float64 at a time), so at 512² pixels the working memory
    is 2 × chunk × 6 MB whatever the sizes of the two sets.
    """
    d = a[0].numel()
    out = torch.empty(len(a), len(b), dtype=torch.float64)
    for i in range(0, len(a), chunk):
        block_a = a[i:i + chunk].flatten(1).double()
        for j in range(0, len(b), chunk):
            out[i:i + chunk, j:j + chunk] = torch.cdist(block_a, b[j:j + chunk].flatten(1).double())
    return out.div_(d ** 0.5)


@dataclass(frozen=True)
class ExtractionResult:
    extracted: list[int]  # indices of the private images extracted (unique)
    matching_generations: int  # generations within δ of an extracted private image
    duplicates: list[int]  # per private image: |{x' in training set : ℓ2(x, x') ≤ δ}| (x itself included)

    @property
    def num(self) -> int:
        return len(self.extracted)


class EideticCounter:
    """(k, ℓ2, δ)-Eidetic extraction (Carlini et al. Def. 2) over generations that arrive batch by batch: a private
    image x counts if some generation is within δ of it and x has at most k near-duplicates (ℓ2 ≤ δ, itself included)
    in the training set. Only per-image flags are kept, never the generations. All images in [0, 1]."""

    def __init__(self, private: torch.Tensor, training_set: torch.Tensor, k: int, delta: float, chunk: int = 64
                 ) -> None:
        self.private, self.delta, self.chunk = private, delta, chunk
        self.duplicates = (normalized_l2(private, training_set, chunk) <= delta).sum(1)
        self.eligible = self.duplicates <= k
        self.hit = torch.zeros(len(private), dtype=torch.bool)
        self.matching = 0

    def add(self, generations: torch.Tensor) -> None:
        close = normalized_l2(self.private, generations, self.chunk) <= self.delta  # (private, generations)
        self.hit |= close.any(1) & self.eligible
        self.matching += int((close & self.eligible[:, None]).any(0).sum())

    def result(self) -> ExtractionResult:
        return ExtractionResult(torch.nonzero(self.hit).flatten().tolist(), self.matching, self.duplicates.tolist())


def eidetic_extraction(generations: torch.Tensor, private: torch.Tensor, training_set: torch.Tensor, k: int,
                       delta: float) -> ExtractionResult:
    """(k, ℓ2, δ)-Eidetic extraction of ``private`` by a set of generations (see ``EideticCounter``)."""
    counter = EideticCounter(private, training_set, k, delta)
    counter.add(generations)
    return counter.result()


def calibrated_delta(members: torch.Tensor, nonmembers: torch.Tensor, delta: float, max_hits: int = 1,
                     chunk: int = 64) -> float:
    """The largest δ' ≤ δ at which the non-members, taken as generations, come within δ' of at most ``max_hits``
    members (images in [0, 1]): just below the (max_hits + 1)-th smallest member-to-nearest-non-member distance."""
    nearest = normalized_l2(members, nonmembers, chunk).min(1).values.sort().values
    if len(nearest) <= max_hits:
        return delta
    return min(delta, float(torch.nextafter(nearest[max_hits], torch.tensor(0.0, dtype=torch.float64))))


@dataclass(frozen=True)
class DomainExtraction:
    num_members: int  # unique members extracted (the paper's "Num")
    matching_generations: int
    num_nonmembers: int  # control: non-members "extracted" by the same rule (they were never trained on)
    candidates: int
    delta: float  # the δ applied (``delta``, or lower where calibrated)


def extraction_attack(pipe: Any, domain: Domain, training_set: torch.Tensor, config: ExtractionConfig, seed: int,
                      show_progress: bool = True, keep: int = 32) -> tuple[DomainExtraction, torch.Tensor]:
    """Generate candidates with the plain domain prompt from the candidate noise stream (disjoint from the SP set's);
    count Eidetic-extracted members and the non-member control batch by batch. Returns the first ``keep`` candidates
    (in [0, 1]) for figures."""
    prompt = config.prompt_template.format(subject=domain.subject)
    train, members, nonmembers = to_unit(training_set), to_unit(domain.members), to_unit(domain.nonmembers)
    delta = (calibrated_delta(members, nonmembers, config.delta, config.calibration_max_hits, config.distance_chunk)
             if config.calibrate_delta else config.delta)
    member_counter = EideticCounter(members, train, config.k, delta, config.distance_chunk)
    # Non-members are not in the training set: their duplicate count is taken against training set + themselves.
    control_counter = EideticCounter(nonmembers, torch.cat([train, nonmembers]), config.k, delta,
                                     config.distance_chunk)
    kept, total = [], 0
    for batch in generate_batches(pipe, prompt, config.num_candidates, seed, config.steps, config.guidance_scale,
                                  None, config.scheduler, config.batch_size, show_progress, CANDIDATE_STREAM):
        batch = to_unit(batch)
        member_counter.add(batch)
        control_counter.add(batch)
        total += len(batch)
        if sum(len(k) for k in kept) < keep:
            kept.append(batch[:keep - sum(len(k) for k in kept)])
    found, control = member_counter.result(), control_counter.result()
    return DomainExtraction(found.num, found.matching_generations, control.num, total, delta), torch.cat(kept)
