"""The tour config, the compression claims' effects (hand-made NLLs as the oracle), per-window NLL, compress-run
resolution for `trust`, and lazy imports of the experiments module."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from decoding_comp_trust.compress.checks import perplexity, window_nlls
from decoding_comp_trust.compress_claims import NEAR_DENSE_NATS, compression_claims, window_nll_by_setting
from decoding_comp_trust.compress_experiments import FULL_GRID
from decoding_comp_trust.trust_experiments import TrustConfig, compress_runs
from repro_shared.experiments import find_experiment

DENSE = [2.0, 2.2, 1.8, 2.1, 1.9, 2.0]


def manifest(method, nll, bits=None, pattern=None, seed=0):
    return {"method": method, "bits": bits, "pattern": pattern, "seed": seed, "window_nll": list(nll)}


def shifted(values, delta):
    return [v + d for v, d in zip(values, np.broadcast_to(delta, len(values)), strict=True)]


def by_name(claims):
    return {claim.name.split(" (")[0]: claim for claim in claims}


def test_tour_config_is_valid_and_differs_from_quick_where_intended():
    experiment = find_experiment("decoding-comp-trust:compress")
    tour, quick = experiment.config("tour"), experiment.config("quick")
    assert experiment.has_tour and len(experiment.tour_seeds) >= 3 and experiment.dtypes == ()
    assert set(tour.settings) < set(FULL_GRID) and not tour.extra_seed_settings
    # one calibration seed per run, the run's own: runs over --seed are independent calibration draws
    assert {seed for spec, seed in tour.jobs(run_seed=2) if spec.startswith("gptq")} == {2}
    assert tour.eval_seed is None and tour.eval_windows_seed(5) == 5 and quick.eval_windows_seed(5) == 1234
    assert tour.eval_set(5)["seed"] == 5 and "seed" not in quick.eval_set(5)  # older manifests stay comparable
    assert tour.gptq_calibration == quick.gptq_calibration and tour.base_models == quick.base_models
    assert find_experiment("decoding-comp-trust:trust").dtypes == ()


def test_claim_effects_have_the_papers_orientation_on_hand_made_nlls():
    claims = by_name(compression_claims([
        manifest("rtn", shifted(DENSE, 0.01), bits=8),            # 8-bit: 0.01 nats from dense, inside the bar
        manifest("gptq", shifted(DENSE, 0.5), bits=4),
        manifest("gptq", shifted(DENSE, 1.5), bits=3, seed=0),    # two calibration seeds: averaged per window
        manifest("gptq", shifted(DENSE, 2.5), bits=3, seed=1),
        manifest("magnitude", shifted(DENSE, 3.0), pattern="2:4"),
        manifest("magnitude", shifted(DENSE, 2.0), pattern="4:8"),
    ], DENSE))
    assert claims["RTN 8-bit ≈ dense: held-out NLL within 0.03 nats/token of dense"].effect == pytest.approx(
        NEAR_DENSE_NATS - 0.01)
    assert claims["GPTQ 3-bit degrades more than 4-bit"].effect == pytest.approx(2.0 - 0.5)
    assert claims["magnitude 2:4 pruning"].effect == pytest.approx(3.0)
    assert claims["magnitude: 4:8 hurts less than 2:4"].effect == pytest.approx(1.0)
    for claim in claims.values():  # constant per-window differences: every resample gives the effect itself
        assert claim.direction_holds is True
        assert claim.interval == pytest.approx((claim.effect, claim.effect))


def test_claims_turn_negative_when_the_paper_is_contradicted():
    claims = by_name(compression_claims([
        manifest("awq", shifted(DENSE, -0.1), bits=8),             # 8-bit far (below) dense: outside the bar
        manifest("awq", shifted(DENSE, 1.0), bits=4),
        manifest("awq", shifted(DENSE, 0.2), bits=3),              # 3-bit better than 4-bit
        manifest("wanda", shifted(DENSE, -0.3), pattern="2:4"),    # pruning helps
        manifest("wanda", shifted(DENSE, 0.5), pattern="4:8"),     # 4:8 worse than 2:4
    ], DENSE))
    assert claims["AWQ 8-bit ≈ dense: held-out NLL within 0.03 nats/token of dense"].effect == pytest.approx(
        NEAR_DENSE_NATS - 0.1)
    assert claims["AWQ 3-bit degrades more than 4-bit"].effect == pytest.approx(-0.8)
    assert claims["wanda 2:4 pruning"].effect == pytest.approx(-0.3)
    assert claims["wanda: 4:8 hurts less than 2:4"].effect == pytest.approx(-0.8)
    assert all(claim.direction_holds is False for claim in claims.values())


def test_claim_names_do_not_depend_on_the_measurement_and_intervals_cover_the_effect():
    rng = np.random.default_rng(0)
    names, effects = [], []
    for _ in range(2):
        noisy = [manifest("gptq", DENSE + rng.normal(1.0, 0.3, len(DENSE)), bits=3),
                 manifest("gptq", DENSE + rng.normal(0.3, 0.3, len(DENSE)), bits=4)]
        claims = compression_claims(noisy, DENSE, seed=1)
        names.append([claim.name for claim in claims])
        effects.append(claims[0].effect)
        low, high = claims[0].interval
        assert low < claims[0].effect < high
    assert names[0] == names[1] and effects[0] != effects[1]


def test_models_without_window_nlls_are_left_out():
    assert window_nll_by_setting([{"method": "rtn", "bits": 8, "perplexity": 3.0}]) == {}
    assert compression_claims([{"method": "rtn", "bits": 8, "perplexity": 3.0}], DENSE) == []


class UniformLM(torch.nn.Module):
    """Logits all zero: every next token has probability 1/vocab, so each window's NLL is ln(vocab)."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, ids, use_cache=False):
        return type("Out", (), {"logits": torch.zeros(*ids.shape, self.vocab) + 0 * self.anchor})()


def test_window_nll_and_perplexity_against_the_uniform_model():
    windows = torch.randint(0, 50, (5, 16), generator=torch.Generator().manual_seed(0))
    assert window_nlls(UniformLM(50), windows, batch_size=2) == pytest.approx([math.log(50)] * 5)
    assert perplexity(UniformLM(50), windows) == pytest.approx(50.0)


def test_trust_takes_its_compress_run_by_option_under_out_and_seed(tmp_path):
    out = tmp_path / "runs"
    assert compress_runs(TrustConfig(compress_run="tour"), out, seed=2) == (
        str(out / "decoding-comp-trust" / "compress" / "tour-seed2"),)
    assert compress_runs(TrustConfig(compress_run="some/dir"), out, seed=2) == ("some/dir",)
    assert compress_runs(TrustConfig(compress_run="quick", compressed_runs=("a", "b")), out, 2) == ("a", "b")
    assert compress_runs(TrustConfig(compress_run=""), out, 2) == ()
    assert find_experiment("decoding-comp-trust:trust").config("quick").compress_run == "quick"


def test_importing_the_experiments_imports_no_heavy_library():
    heavy = ("transformers", "diffusers", "peft", "auto_LiRPA", "datasets", "sklearn", "scipy", "auto_round",
             "llmcompressor", "matplotlib", "pandas")
    code = ("import sys; import decoding_comp_trust.experiments as e; e.experiments(); "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def trust_model(name, mmlu, ood, **meta):
    return {"name": name, "meta": {"method": "none", **meta},
            "results": {"mmlu": {"score": mmlu}, "ood": {"score": ood}}}


def test_trust_claim_effects_on_a_hand_made_table():
    from decoding_comp_trust.trust_experiments import claims

    models = [trust_model("dense", 50.0, 60.0),
              trust_model("rtn-w8", 49.0, 62.0, method="rtn", bits=8),          # largest |Δ| 2 → effect 3 − 2
              trust_model("rtn-w4", 44.0, 60.0, method="rtn", bits=4),          # largest |Δ| 6 → effect 5 − 6
              trust_model("rtn-w3", 40.0, 50.0, method="rtn", bits=3),          # largest |Δ| 10 → 10 − 6
              trust_model("mag-2of4", 45.0, 55.0, method="magnitude", sparsity=0.5, pattern="2:4"),
              trust_model("mag-4of8", 51.0, 59.0, method="magnitude", sparsity=0.5, pattern="4:8")]
    effects = {claim.name.split(" (")[0].split(":")[0]: claim.effect for claim in claims(models)}
    assert effects["8-bit quantization"] == pytest.approx(1.0)
    assert effects["4-bit quantization"] == pytest.approx(-1.0)
    assert effects["3-bit quantization degrades more than 4/8-bit"] == pytest.approx(4.0)
    assert effects["50% pruning costs MMLU"] == pytest.approx(-1.0)  # the 4:8 model gained a point
    assert effects["among N"] == pytest.approx(0.0 - (-5.0))  # mean Δ 4:8 = 0, 2:4 = −5


def test_direction_claims_per_calibration_seed_get_a_t_interval_over_the_seeds():
    from decoding_comp_trust.trust_experiments import OVER_SEEDS, claims, seeded_tables
    from scipy import stats

    models = [trust_model("dense", 50.0, 60.0), trust_model("rtn-w8", 49.0, 62.0, method="rtn", bits=8)]
    w4_mmlu, w3_mmlu = [48.0, 53.0, 46.0], [40.0, 38.0, 45.0]  # largest |Δ| per seed: 4-bit 2, 3, 4; 3-bit 10, 12, 5
    for seed in (0, 1, 2):
        models.append(trust_model(f"gptq-w4-seed{seed}", w4_mmlu[seed], 60.0, method="gptq", bits=4, seed=seed))
        models.append(trust_model(f"gptq-w3-seed{seed}", w3_mmlu[seed], 60.0, method="gptq", bits=3, seed=seed))
    models.append(trust_model("awq-w3-seed0", 30.0, 60.0, method="awq", bits=3, seed=0))  # one seed: not in the tables
    tables = seeded_tables(models)
    assert sorted(tables) == [0, 1, 2]
    assert [m["name"] for m in tables[1]] == ["dense", "gptq-w3-seed1", "gptq-w4-seed1"]
    by_name = {c.name: c for c in claims(models)}
    four = by_name["4-bit quantization: within 5 points of dense on every dimension" + OVER_SEEDS]
    three = by_name["3-bit quantization degrades more than 4/8-bit (largest |Δ|)" + OVER_SEEDS]
    effects_4, effects_3 = np.array([3.0, 2.0, 1.0]), np.array([8.0, 9.0, 1.0])
    for claim, effects in ((four, effects_4), (three, effects_3)):
        half = stats.t.ppf(0.975, 2) * effects.std(ddof=1) / np.sqrt(3)
        assert claim.effect == pytest.approx(effects.mean())
        assert claim.interval == pytest.approx((effects.mean() - half, effects.mean() + half))
    # the whole-table claim keeps its point (awq-w3 at seed 0 makes 3-bit's largest |Δ| 20) and has no interval
    whole = by_name["3-bit quantization degrades more than 4/8-bit (largest |Δ|)"]
    assert whole.effect == pytest.approx(20.0 - 4.0) and whole.interval is None
    # 8-bit was compressed at one seed only: no claim over seeds
    assert not any(name.startswith("8-bit") and name.endswith(OVER_SEEDS) for name in by_name)
    assert seeded_tables([m for m in models if "seed" not in m["name"] or m["name"].endswith("seed0")]) == {}
