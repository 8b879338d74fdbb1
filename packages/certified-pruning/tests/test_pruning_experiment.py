"""The `pruning` experiment: smoke run end to end, resume skips done points, claims logic, bad input, IBP loss."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from certified_pruning import pruning_experiment as pe
from certified_pruning.experiments import experiments
from certified_pruning.prune import METHODS as PRUNE_METHODS
from certified_pruning.pruning_report import claims
from cp_helpers import sample_ball, small_bn_cnn
from repro_shared.errors import ConfigError, NotFoundError
from repro_shared.runs import RunOptions, execute


def _experiment():
    return replace(next(e for e in experiments() if e.name == "pruning"), package="certified-pruning")


def _smoke_config():
    return replace(_experiment().configs["smoke"], modes=("fgsm",), methods=("imp", "slim"))


def test_smoke_grid_runs_end_to_end_and_records_every_point(tmp_path):
    run_dir = execute(_experiment(), _smoke_config(), RunOptions(scale="smoke", out=tmp_path, threads=1))
    points = pe.read_points(run_dir.path / "points.jsonl")
    # slimming trains with its L1 term on γ, so it has its own dense round 0; IMP shares the plain dense one
    assert sorted(pe.point_key(p) for p in points) == [("fgsm", "dense", 0), ("fgsm", "imp", 1), ("fgsm", "slim", 0),
                                                      ("fgsm", "slim", 1)]
    by_method = {pe.point_key(p)[1]: p for p in points if pe.point_key(p)[2] > 0 or pe.point_key(p)[1] == "dense"}
    # IMP prunes half of the conv weights in place; slimming removes channels physically before verification
    assert by_method["imp"]["weight_sparsity"] == pytest.approx(0.5, abs=0.02)
    assert by_method["imp"]["relus"] == by_method["dense"]["relus"]
    assert by_method["slim"]["relus"] < by_method["dense"]["relus"]
    assert 0 < by_method["slim"]["sparsity"] < 1 and by_method["slim"]["weight_sparsity"] > 0
    for point in points:
        statuses = point["verified"] + point["falsified"] + point["timeout"] + point["unknown"]
        assert statuses == point["images"] == 2
        assert point["certified_accuracy"] <= point["clean_accuracy"]
        # the true certified accuracy lies between the verified share and the share not falsified
        assert point["certified_upper_bound"] == (point["images"] - point["falsified"]) / point["images"]
        assert point["certified_accuracy"] <= point["certified_upper_bound"]
    results = json.loads((run_dir.path / "results.json").read_text())
    assert {c["name"].split(":")[0] for c in results["claims"]} == {"FGSM + GradAlign"}
    assert [row["method"] for row in results["tables"]["points_fgsm"]] == ["dense", "imp", "slim", "slim"]
    for name in ("certified_vs_sparsity", "unstable_vs_sparsity", "bab_domains_vs_sparsity"):
        assert (run_dir.path / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_skips_done_points_and_retrains_nothing(tmp_path, monkeypatch):
    config = _smoke_config()
    run_dir = execute(_experiment(), config, RunOptions(scale="smoke", out=tmp_path, threads=1))
    points_path = run_dir.path / "points.jsonl"
    lines = points_path.read_text().splitlines()
    # simulate a kill while the last point was being written: its line is torn, the run is not complete
    points_path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    (run_dir.path / "results.json").unlink()
    (run_dir.path / "status.json").write_text('{"state": "running"}')
    calls = {"train": 0, "verify": []}
    original_verify = pe.verify_point

    def counting_verify(grid, model, masks, mode, method, round_index, seconds):
        calls["verify"].append((mode, method, round_index))
        return original_verify(grid, model, masks, mode, method, round_index, seconds)

    def no_training(*args, **kwargs):
        calls["train"] += 1

    monkeypatch.setattr(pe, "verify_point", counting_verify)
    monkeypatch.setattr("certified_pruning.train.train_model", no_training)
    execute(_experiment(), config, RunOptions(scale="smoke", out=tmp_path, threads=1, resume=True))
    missing = pe.point_key(json.loads(lines[-1]))
    assert calls == {"train": 0, "verify": [missing]}
    resumed = points_path.read_text().splitlines()
    assert resumed[:-1] == lines[:-1] and json.loads(resumed[-1])["certified_accuracy"] == json.loads(
        lines[-1])["certified_accuracy"]


@pytest.mark.parametrize(("change", "message"), [
    ({"eps": 0.0}, "eps=0.0"),
    ({"eps": -0.1}, "perturbation radius must be positive"),
    ({"methods": ("imp", "magic")}, "unknown \\['magic'\\]"),
    ({"modes": ("natural",)}, "modes"),
    ({"rate": 1.0}, "rate=1.0: the sparsity step"),
    ({"structured_rate": 0.0}, "structured_rate=0.0"),
    ({"rounds": 0}, "rounds"),
    ({"pgd_restarts": 0}, r"^pgd_restarts=0: must be an integer >= 1$"),
    ({"timeout": -1.0}, r"^timeout=-1.0: the wall-clock safety net"),
    ({"fgsm_learning_rate": -0.01}, r"^fgsm_learning_rate=-0.01: must be > 0$"),
    ({"crown_learning_rate": 0.0}, r"^crown_learning_rate=0.0: must be > 0$"),
    ({"nrs_weight_fgsm": -1.0}, r"^nrs_weight_fgsm=-1.0: must be >= 0$"),
    ({"batch_domains": 0}, r"^batch_domains=0"),
])
def test_bad_settings_are_refused_with_a_clear_message(change, message):
    with pytest.raises(ConfigError, match=message):
        replace(_experiment().configs["quick"], **change)


def test_paper_scale_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NotFoundError, match=r"cifar10.*offline mode"):
        pe.check_pruning(_experiment().configs["paper"], None)


def test_ibp_robust_loss_bounds_sampled_margins_and_matches_auto_lirpa():
    """Oracle 1: every sampled point's true margin is ≥ the IBP margin bound inside the loss. Oracle 2: the loss
    equals auto_LiRPA's CROWN-IBP loss at ε = ε_max (κ = 0, pure IBP with the spec folded into the last layer)."""
    from certified_pruning.bounds import bounded_module
    from certified_pruning.train import crown_ibp_loss

    model = small_bn_cnn(3)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 8, 8, generator=generator)
    y = torch.tensor([0, 3, 5, 9])
    eps = 0.05
    loss = pe.ibp_robust_loss(model, x, y, eps, 10)
    reference = crown_ibp_loss(bounded_module(model, x[:2]), x, y, eps, eps, 10)
    assert float(loss.detach()) == pytest.approx(float(reference.detach()), rel=1e-4)
    # the loss is CE of [0, −lb]; a loss computed from sampled (true) margins can only be smaller
    with torch.no_grad():
        for i in range(len(x)):
            logits = model(sample_ball(x[i:i + 1], eps, 200, generator))
            margins = logits[:, y[i]:y[i] + 1] - logits
            worst = margins.min(dim=0).values  # the true minimum over samples ≥ the IBP lower bound
            sampled_ce = torch.nn.functional.cross_entropy(-worst.unsqueeze(0), y[i:i + 1])
            single = pe.ibp_robust_loss(model, x[i:i + 1], y[i:i + 1], eps, 10)
            assert float(sampled_ce) <= float(single) + 1e-6


def _point(mode, method, round_index, certified, sparsity, unstable=100.0, test=0.9):
    return {"mode": mode, "method": method, "round": round_index, "certified_accuracy": certified,
            "weight_sparsity": sparsity, "sparsity": sparsity, "ibp_unstable": unstable, "test_accuracy": test}


def test_claims_recognise_a_cap_shaped_curve_and_a_ticket():
    cap = [_point("fgsm", "dense", 0, 0.30, 0.0, 300), _point("fgsm", "nrs", 0, 0.30, 0.0, 300),
           _point("fgsm", "nrs", 1, 0.50, 0.5, 200), _point("fgsm", "nrs", 2, 0.20, 0.75, 100),
           _point("fgsm", "imp", 1, 0.25, 0.5, 250), _point("fgsm", "imp", 2, 0.10, 0.75, 150, test=0.5)]
    found = {c.name.split(": ")[1]: c for c in claims(cap)}
    assert found["certified accuracy vs sparsity is ∩-shaped"].direction_holds is True
    assert found["certified accuracy vs sparsity is ∩-shaped"].note == "nrs"
    assert found["pruning lowers the number of unstable ReLUs"].direction_holds is True
    assert found["NRS (regulariser / channel pruning) gives the best certified accuracy"].direction_holds is True
    assert found["certified lottery tickets match dense test and certified accuracy"].direction_holds is True
    gain = found["largest certified-accuracy gain of pruning over dense (points)"]
    assert gain.measured_value == pytest.approx(20.0) and gain.paper_value == 24.5 and gain.effect == pytest.approx(20)
    # effects (points): NRS 0.50 vs IMP 0.25; ∩: NRS's 0.50 rises 20 above max(dense 0.30, its last 0.20)
    assert found["NRS (regulariser / channel pruning) gives the best certified accuracy"].effect == pytest.approx(25)
    assert found["certified accuracy vs sparsity is ∩-shaped"].effect == pytest.approx(20)
    assert found["pruning lowers the number of unstable ReLUs"].effect == pytest.approx(1 - (100 / 300 + 150 / 300) / 2)
    # a monotone decrease is not ∩-shaped, and nothing beats dense: no ticket, no gain
    falling = [_point("fgsm", "dense", 0, 0.5, 0.0), _point("fgsm", "imp", 1, 0.4, 0.5),
               _point("fgsm", "imp", 2, 0.3, 0.75)]
    found = {c.name.split(": ")[1]: c for c in claims(falling)}
    assert found["certified accuracy vs sparsity is ∩-shaped"].direction_holds is False
    assert found["certified lottery tickets match dense test and certified accuracy"].direction_holds is False
    assert found["largest certified-accuracy gain of pruning over dense (points)"].direction_holds is False
    assert found["largest certified-accuracy gain of pruning over dense (points)"].effect == pytest.approx(-10)
    assert found["certified accuracy vs sparsity is ∩-shaped"].effect == pytest.approx(-10)


def test_units_share_the_dense_round_only_without_a_regulariser():
    config = replace(_experiment().configs["quick"], modes=("fgsm",), methods=("imp", "nrs", "imp-rs"))
    assert pe.unit_order(config) == [("fgsm", "dense"), ("fgsm", "imp"), ("fgsm", "nrs"), ("fgsm", "imp-rs")]
    assert pe.point_name("imp", 0) == "dense" and pe.point_name("nrs", 0) == "nrs"
    assert pe.train_config(config, "fgsm", "imp-rs", 0).gamma_pow == 0  # RS = NRS without γ²
    assert pe.train_config(config, "crown-ibp", "imp-nrs", 0).nrs_weight == 0.001
    assert pe.train_config(config, "fgsm", "imp", 0).nrs_weight == 0
    assert pe.prune_config(config, "nrs", 0).rate == config.structured_rate
    assert set(pe.GRID_METHODS) >= set(PRUNE_METHODS)  # the default grid runs every pruning method


def test_bad_input_on_the_command_line_is_one_line_non_zero_and_writes_nothing(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "repro_shared.cli", "run", "certified-pruning:pruning", "--scale",
                           "smoke", "--set", "pgd_restarts=0", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert errors == ["repro: error: pgd_restarts=0: must be an integer >= 1"]
    assert not out.exists()
