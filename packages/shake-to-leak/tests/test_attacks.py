"""Oracles for the attacks: DDIM inversion/denoising, SecMI's statistic, AUC/TPR vs scikit-learn, the Eidetic rule."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from shake_to_leak.attacks import (
    EideticCounter,
    SecMIConfig,
    auc,
    calibrated_delta,
    ddim_denoise,
    ddim_invert,
    eidetic_extraction,
    normalized_l2,
    secmi_scores,
    tpr_at_fpr,
)
from shake_to_leak.models import sd_scheduler
from sklearn.metrics import roc_auc_score, roc_curve

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib does not put tests/ on sys.path


class PointMassEps(torch.nn.Module):
    """The exact ε-predictor for data that is a point mass at ``mu``: ε*(x, t) = (x − √ᾱ_t μ) / √(1 − ᾱ_t)."""

    dtype = torch.float64

    def __init__(self, mu: torch.Tensor, alphas: torch.Tensor, bias: float = 0.0) -> None:
        super().__init__()
        self.mu, self.alphas, self.bias = mu, alphas.double(), bias

    def forward(self, x, t, cond):
        a = self.alphas[t].view(-1, 1, 1, 1)
        eps = (x - a.sqrt() * self.mu) / (1 - a).sqrt()
        return SimpleNamespace(sample=eps + self.bias * torch.sin(30 * x) * t.view(-1, 1, 1, 1) / 1000)


def _pipe(unet):
    return SimpleNamespace(unet=unet, scheduler=sd_scheduler("ddim"))


def test_ddim_inversion_is_exact_for_the_point_mass_oracle():
    torch.manual_seed(0)
    mu = torch.randn(1, 4, 4, 4, dtype=torch.float64)
    z0 = mu + 0.1 * torch.randn(3, 4, 4, 4, dtype=torch.float64)
    pipe = _pipe(PointMassEps(mu, sd_scheduler("ddim").alphas_cumprod))
    x = ddim_invert(pipe, z0, None, 200, 10)
    back = ddim_denoise(pipe, x, None, 200, 10)
    assert torch.allclose(back, z0, atol=1e-10)
    # and the inverted sample is the closed form √ᾱ_t μ + √(1−ᾱ_t) ε0 of the deterministic trajectory
    a0, a200 = (pipe.scheduler.alphas_cumprod[t].double() for t in (0, 200))
    eps0 = (z0 - a0.sqrt() * mu) / (1 - a0).sqrt()
    assert torch.allclose(x, a200.sqrt() * mu + (1 - a200).sqrt() * eps0, atol=1e-10)


def test_reconstruction_error_is_small_at_small_t_and_grows_with_t():
    """A non-exact predictor (the oracle plus a t-dependent perturbation): the round trip is close at small t."""
    torch.manual_seed(1)
    mu = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    z0 = mu + 0.3 * torch.randn(4, 4, 8, 8, dtype=torch.float64)
    pipe = _pipe(PointMassEps(mu, sd_scheduler("ddim").alphas_cumprod, bias=0.5))
    errors = []
    for t in (20, 100, 400):
        back = ddim_denoise(pipe, ddim_invert(pipe, z0, None, t, 10), None, t, 10)
        errors.append(float((back - z0).norm() / z0.norm()))
    assert errors[0] < 0.01  # stated tolerance: 1 % relative at t = 20
    assert errors[0] < errors[1] < errors[2]


def _secmi_pipe(mu, bias):
    """The point-mass predictor with an identity "VAE" and a constant text encoder."""
    pipe = _pipe(PointMassEps(mu, sd_scheduler("ddim").alphas_cumprod, bias))
    pipe.vae = SimpleNamespace(device="cpu", dtype=torch.float64, config=SimpleNamespace(scaling_factor=1.0),
                               encode=lambda x: SimpleNamespace(latent_dist=SimpleNamespace(
                                   sample=lambda generator=None: x, mode=lambda: x)))
    pipe.unet.device = torch.device("cpu")
    pipe.tokenizer = lambda prompts, **kw: SimpleNamespace(input_ids=torch.zeros(len(prompts), 2, dtype=int))
    pipe.tokenizer.model_max_length = 2
    pipe.text_encoder = lambda ids: (torch.zeros(len(ids), 2, 1),)
    pipe.text_encoder.device = "cpu"
    return pipe


def _noisy_secmi_pipe(mu, bias):
    """As ``_secmi_pipe``, but the "VAE" posterior is diffusers' own Gaussian with std 0.1 around the input."""
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

    pipe = _secmi_pipe(mu, bias)
    log_var = 2 * torch.log(torch.tensor(0.1, dtype=torch.float64))
    pipe.vae.encode = lambda x: SimpleNamespace(
        latent_dist=DiagonalGaussianDistribution(torch.cat([x, torch.full_like(x, float(log_var))], dim=1)))
    return pipe


def _images(n=5):
    torch.manual_seed(2)
    mu = torch.randn(1, 4, 4, 4, dtype=torch.float64)
    return mu, mu + 0.1 * torch.randn(n, 4, 4, 4, dtype=torch.float64)


def test_secmi_t_error_is_zero_for_the_exact_model_and_positive_otherwise():
    mu, images = _images()
    ids = [f"i{i}" for i in range(len(images))]
    config = SecMIConfig(t_sec=140, k=10, batch_size=2)
    exact = secmi_scores(_secmi_pipe(mu, 0.0), images, ["p"] * len(images), ids, config, 0, show_progress=False)
    assert max(exact.values()) < 1e-18
    off = secmi_scores(_secmi_pipe(mu, 0.5), images, ["p"] * len(images), ids, config, 0, show_progress=False)
    assert min(off.values()) > 1e-8


def _released_secmi_score(z0: np.ndarray, mu: np.ndarray, bias: float) -> np.ndarray:
    """The released ``secmi.py`` score, rebuilt step by step in NumPy: the vendored pipeline's inversion (float64
    latents) over timesteps = range(0, 200, 10) into ``reverse_results``, its denoising from every inverted latent in
    reversed order into ``denoising_results``, and ((denoising_results[-15] - reverse_results[14])**2).sum(). The
    ε-predictor is ``PointMassEps``'s formula written out again."""
    # ᾱ as the released code reads it (the scheduler's float32 table), checked against the scaled-linear formula
    alphas = sd_scheduler("ddim").alphas_cumprod.double().numpy()
    np.testing.assert_allclose(alphas, np.cumprod(1 - np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000) ** 2),
                               rtol=1e-5)

    def eps(x, t):
        return (x - np.sqrt(alphas[t]) * mu) / np.sqrt(1 - alphas[t]) + bias * np.sin(30 * x) * t / 1000

    def move(x, t_from, t_to):  # the DDIM scheduler's reverse() / step() with η = 0
        e = eps(x, t_from)
        x0 = (x - np.sqrt(1 - alphas[t_from]) * e) / np.sqrt(alphas[t_from])
        return np.sqrt(alphas[t_to]) * x0 + np.sqrt(1 - alphas[t_to]) * e

    timesteps = list(range(0, 200, 10))
    reverse_results = [z0]
    for i, t in enumerate(timesteps[:-1]):
        reverse_results.append(move(reverse_results[-1], t, timesteps[i + 1]))
    timesteps = list(reversed(timesteps))
    denoising_results = []
    for i, t in enumerate(timesteps[:-1]):
        denoising_results.append(move(reverse_results[len(reverse_results) - 1 - i], t, timesteps[i + 1]))
    return ((denoising_results[-15] - reverse_results[14]) ** 2).reshape(len(z0), -1).sum(1)


def test_secmi_score_equals_the_released_code_at_its_timestep_and_no_other():
    """Catches a wrong timestep index: the perturbed predictor's error depends on t, so scoring x_130 or x_150 (or
    passing t ± k to the ε-predictor, or reading ᾱ one step off) moves every score far beyond the tolerance."""
    mu, images = _images(4)
    ids = [f"i{i}" for i in range(4)]
    expected = _released_secmi_score(images.numpy(), mu.numpy(), bias=0.5)

    def ours(t_sec):
        config = SecMIConfig(t_sec=t_sec, k=10, batch_size=3)
        scores = secmi_scores(_secmi_pipe(mu, 0.5), images, ["p"] * 4, ids, config, 0, show_progress=False)
        return np.array([scores[i] for i in ids])

    np.testing.assert_allclose(ours(140), expected, rtol=1e-6)
    for wrong in (130, 150):
        assert np.abs(ours(wrong) / expected - 1).max() > 0.1  # 1e5 × the tolerance above


def test_secmi_scores_are_written_as_they_go_and_resume(tmp_path):
    mu, images = _images(5)
    ids = [f"i{i}" for i in range(5)]
    config = SecMIConfig(t_sec=40, k=10, batch_size=2)
    path = tmp_path / "scores.jsonl"
    full = secmi_scores(_secmi_pipe(mu, 0.5), images, ["p"] * 5, ids, config, 0, path, show_progress=False)
    lines = path.read_text().splitlines()
    assert len(lines) == 5
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][:7])  # killed while writing the second batch
    calls = []
    pipe = _secmi_pipe(mu, 0.5)
    forward = pipe.unet.forward
    pipe.unet.forward = lambda x, t, c: (calls.append(len(x)), forward(x, t, c))[1]
    resumed = secmi_scores(pipe, images, ["p"] * 5, ids, config, 0, path, show_progress=False)
    assert resumed == pytest.approx(full)
    assert set(calls) <= {2, 1} and sum(calls) == 3 * (40 // 10 + 2)  # only images 2, 3, 4 were scored again


def test_secmi_scores_do_not_depend_on_the_batch_size_with_a_noisy_vae():
    mu, images = _images(7)
    ids = [f"m{i}" for i in range(7)]

    def scores(batch_size, seed=0):
        config = SecMIConfig(t_sec=40, k=10, batch_size=batch_size)
        return secmi_scores(_noisy_secmi_pipe(mu, 0.5), images, ["p"] * 7, ids, config, seed, show_progress=False)

    reference = scores(1)
    assert scores(3) == reference and scores(40) == reference  # bit-identical, not merely close
    other_seed = scores(3, seed=1)  # the noise is real: another seed moves every score
    assert all(other_seed[name] != reference[name] for name in ids)


def test_secmi_config_rejects_t_sec_off_the_k_grid():
    with pytest.raises(Exception, match="multiple of k"):
        SecMIConfig(t_sec=145, k=10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_and_tpr_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    member = np.round(rng.normal(0.0, 1.0, 300), 1)  # rounding creates ties across the two groups
    nonmember = np.round(rng.normal(0.7, 1.0, 250), 1)
    labels = np.r_[np.ones(len(member)), np.zeros(len(nonmember))]
    scores = -np.r_[member, nonmember]  # sklearn: higher = positive; SecMI: lower = member
    assert auc(member, nonmember) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    for max_fpr in (0.01, 0.05, 0.2):
        assert tpr_at_fpr(member, nonmember, max_fpr) == pytest.approx(tpr[fpr <= max_fpr].max(), abs=1e-12)


def test_auc_extremes():
    assert auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 1.0
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 0.0
    assert tpr_at_fpr(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 1.0


def test_normalized_l2_is_rms_difference():
    a = torch.zeros(1, 3, 4, 4)
    b = torch.full((1, 3, 4, 4), 0.25)
    assert float(normalized_l2(a, b)) == pytest.approx(0.25)


def test_eidetic_extraction_on_hand_made_sets():
    torch.manual_seed(0)
    private = torch.rand(3, 3, 8, 8)  # three distinct members
    nonmember = torch.rand(1, 3, 8, 8)
    # training set: the three members plus 11 near copies of member 2 (so it has 12 > k = 10 near-duplicates)
    training = torch.cat([private, (private[2:3] + 0.01 * torch.randn(11, 3, 8, 8)).clamp(0, 1)])
    generations = torch.cat([
        (private[0:1] + 0.02).clamp(0, 1),  # near copy of member 0 (ℓ2 ≈ 0.02): extracted
        private[0:1],  # a second copy of the same member: still one unique extraction
        (private[1:2] + 0.3).clamp(0, 1),  # far from member 1 (ℓ2 > 0.1): not extracted
        private[2:3],  # exact copy of member 2, which has > k near-duplicates: not Eidetic
        nonmember,  # copy of a non-member: not an extraction of any member
    ])
    result = eidetic_extraction(generations, private, training, k=10, delta=0.1)
    assert result.extracted == [0]
    assert result.num == 1
    assert result.matching_generations == 2
    assert result.duplicates[2] == 12 and result.duplicates[0] == 1
    # with k = 12 the duplicated member counts as well
    assert eidetic_extraction(generations, private, training, k=12, delta=0.1).extracted == [0, 2]


def _constant_images(values):
    """Images whose every pixel is ``value``: the normalised ℓ2 between two of them is |a − b|."""
    return torch.tensor(values, dtype=torch.float64).view(-1, 1, 1, 1).expand(-1, 3, 4, 4).contiguous()


def test_calibrated_delta_lets_the_nonmembers_hit_at_most_max_hits_members():
    members = _constant_images([0.1, 0.3, 0.6, 0.9])
    nonmembers = _constant_images([0.12, 0.35, 0.95])
    # nearest non-member per member: 0.02, 0.05, 0.25, 0.05 → sorted 0.02, 0.05, 0.05, 0.25
    one = calibrated_delta(members, nonmembers, delta=0.1, max_hits=1)
    assert 0.0499 < one < 0.05
    assert eidetic_extraction(nonmembers, members, members, k=10, delta=one).extracted == [0]
    assert eidetic_extraction(nonmembers, members, members, k=10, delta=0.1).num == 3  # the uncalibrated rule
    assert 0.0199 < calibrated_delta(members, nonmembers, delta=0.1, max_hits=0) < 0.02
    assert calibrated_delta(members, nonmembers, delta=0.01, max_hits=1) == 0.01  # lowered, never raised


def test_chunked_distances_and_batched_counting_equal_the_one_shot_results():
    torch.manual_seed(3)
    a, b = torch.rand(7, 3, 5, 5), torch.rand(9, 3, 5, 5)
    assert torch.allclose(normalized_l2(a, b, chunk=2), normalized_l2(a, b, chunk=64), rtol=0, atol=1e-15)
    private = torch.rand(5, 3, 5, 5)
    generations = torch.cat([private[:3] + 0.01, torch.rand(6, 3, 5, 5)]).clamp(0, 1)
    training = torch.cat([private, private[1:2] + 0.005])  # member 1 has 2 near-duplicates
    whole = eidetic_extraction(generations, private, training, k=1, delta=0.05)
    counter = EideticCounter(private, training, k=1, delta=0.05, chunk=2)
    for batch in generations.split(4):
        counter.add(batch)
    assert counter.result() == whole
    assert whole.extracted == [0, 2] and whole.matching_generations == 2


def test_extraction_candidates_are_drawn_from_a_stream_disjoint_from_the_synthetic_set(tmp_path):
    """Same pipeline, prompt and seed: the SP set and the candidates share no image (they did when both streams were
    the same), and the candidate stream is itself seeded."""
    from s2l_helpers import tiny_pipeline
    from shake_to_leak.synthesize import CANDIDATE_STREAM, generate

    pipe = tiny_pipeline(tmp_path)
    kwargs = {"steps": 2, "guidance_scale": 7.5, "batch_size": 4, "show_progress": False}
    sp = generate(pipe, "a photo of a cat", 8, 0, **kwargs)
    candidates = generate(pipe, "a photo of a cat", 8, 0, stream=CANDIDATE_STREAM, **kwargs)
    assert torch.equal(generate(pipe, "a photo of a cat", 8, 0, **kwargs), sp)
    assert torch.equal(generate(pipe, "a photo of a cat", 8, 0, stream=CANDIDATE_STREAM, **kwargs), candidates)
    assert normalized_l2((sp + 1) / 2, (candidates + 1) / 2).min() > 1e-3
