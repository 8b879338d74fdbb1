"""Benchmark: our complete verifier (PGD → α-CROWN → BaB + leaf LPs) against the exact MILP baseline (scipy HiGHS).

On small networks trained here on the bundled digits (seeded), over the first N test images:
(a) the fraction of the instances the MILP decides that our verifier also decides (with the same verdict), and the
total-time ratio MILP / ours; (b) the α-CROWN-only (incomplete) verified accuracy as the lower reference.
Both are printed as ratios measured in this one run.

`--arm filtered` compares the two exact stages only: the clean check, PGD, CROWN and α-CROWN run once, and on every
image they leave open (the instances that reach branch and bound) both our BaB (budget `--domains` per image) and
the MILP (on the same open labels, `--milp-limit` seconds) decide; images are taken in order until `--instances`
such instances are collected. It reports the share of the MILP-decided instances BaB decides with the same verdict,
contradictions (must be 0), and the time ratio MILP / BaB over those instances.

    python packages/certified-pruning/benchmarks/bench_bab_vs_milp.py --images 20 --eps 0.05
    python packages/certified-pruning/benchmarks/bench_bab_vs_milp.py --arm filtered --instances 30 --domains 300
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from certified_pruning.data import load_split
from certified_pruning.milp import milp_verify
from certified_pruning.models import ModelConfig, cifar_model_deep, count_relus
from certified_pruning.train import TrainConfig, accuracy, train_model
from certified_pruning.verify import VerifierConfig, prepare_network, verify_image


def trained_network(mode: str, eps: float, epochs: int, seed: int, channels: tuple[int, ...], fc_width: int):
    """A small cifar_model_deep (default ≈570 ReLUs) trained on digits with a fixed seed."""
    split = load_split("digits", seed=0)
    torch.manual_seed(seed)
    model = cifar_model_deep(ModelConfig(in_channels=1, input_size=8, channels=channels, fc_width=fc_width))
    config = TrainConfig(mode=mode, eps=eps, epochs=epochs, learning_rate=0.05, weight_decay=0.0, schedule_start=1,
                         schedule_length=max(1, epochs // 2), seed=seed)
    return train_model(model, split.train_images, split.train_labels, config, split.num_classes), split


def run(mode: str, args) -> dict:
    channels = tuple(int(c) for c in args.channels.split(","))
    model, split = trained_network(mode, args.eps, args.epochs, args.seed, channels, args.fc_width)
    model, network = prepare_network(model, split.input_shape)
    config = VerifierConfig(eps=args.eps, timeout=args.timeout, pgd_steps=args.pgd_steps, pgd_restarts=args.restarts,
                            alpha_iterations=args.alpha_iterations)
    ours_seconds = milp_seconds = 0.0
    rows = []
    for index in range(args.images):
        x, label = split.test_images[index:index + 1], int(split.test_labels[index])
        result = verify_image(model, network, x, label, index, config)
        ours_seconds += result.seconds
        start = time.perf_counter()
        if int(model(x).argmax()) != label:  # the baseline gets the same free clean check
            exact = "falsified"
        else:
            x_lower, x_upper = (b.flatten().double().numpy() for b in config.ball.box(x))
            exact, _ = milp_verify(network, x_lower, x_upper, label, args.milp_limit, args.big_m)
        milp_seconds += time.perf_counter() - start
        rows.append({"index": index, "ours": result.status, "stage": result.stage, "milp": exact,
                     "ours_s": round(result.seconds, 3), "domains": result.domains,
                     "unstable": result.unstable_neurons})
        print(json.dumps(rows[-1]), flush=True)
    decided_by_milp = [r for r in rows if r["milp"] != "timeout"]
    agreeing = [r for r in decided_by_milp if r["ours"] == r["milp"]]
    contradictions = [r for r in rows if r["milp"] != "timeout" and r["ours"] in ("verified", "falsified")
                      and r["ours"] != r["milp"]]
    n = len(rows)
    return {
        "mode": mode, "images": n, "big_m": args.big_m, "eps": args.eps, "relus": count_relus(model, split.input_shape),
        "clean_accuracy_test": accuracy(model, split.test_images, split.test_labels),
        "milp_decided": len(decided_by_milp), "ours_decided_of_milp_decided": len(agreeing),
        "decided_fraction": len(agreeing) / max(len(decided_by_milp), 1),
        "contradictions": len(contradictions),
        "milp_seconds": round(milp_seconds, 2), "ours_seconds": round(ours_seconds, 2),
        "time_ratio_milp_over_ours": round(milp_seconds / max(ours_seconds, 1e-9), 2),
        "verified_accuracy_ours": sum(r["ours"] == "verified" for r in rows) / n,
        "verified_accuracy_milp": sum(r["milp"] == "verified" for r in rows) / n,
        "verified_accuracy_alpha_crown_only": sum(r["stage"] in ("crown", "alpha-crown") for r in rows) / n,
        "decided_by_bab": sum(r["stage"] == "bab" and r["ours"] in ("verified", "falsified") for r in rows),
    }


def run_filtered(mode: str, args) -> dict:
    """BaB against the MILP on the instances the clean / PGD / CROWN / α-CROWN filters leave open."""
    channels = tuple(int(c) for c in args.channels.split(","))
    model, split = trained_network(mode, args.eps, args.epochs, args.seed, channels, args.fc_width)
    model, network = prepare_network(model, split.input_shape)
    config = VerifierConfig(eps=args.eps, timeout=args.timeout, pgd_steps=args.pgd_steps, pgd_restarts=args.restarts,
                            alpha_iterations=args.alpha_iterations, max_domains=args.domains)
    rows = []
    for index in range(len(split.test_labels)):
        if len(rows) >= args.instances:
            break
        x, label = split.test_images[index:index + 1], int(split.test_labels[index])
        result = verify_image(model, network, x, label, index, config)
        if result.stage != "bab":
            continue
        x_lower, x_upper = (b.flatten().double().numpy() for b in config.ball.box(x))
        exact, milp_seconds = milp_verify(network, x_lower, x_upper, label, args.milp_limit, args.big_m,
                                          labels=result.open_labels)
        rows.append({"index": index, "bab": result.status, "milp": exact, "bab_s": round(result.bab_seconds, 3),
                     "milp_s": round(milp_seconds, 3), "domains": result.domains,
                     "open_labels": len(result.open_labels)})
        print(json.dumps(rows[-1]), flush=True)
    decided_by_milp = [r for r in rows if r["milp"] != "timeout"]
    agreeing = [r for r in decided_by_milp if r["bab"] == r["milp"]]
    bab_seconds, milp_seconds = sum(r["bab_s"] for r in rows), sum(r["milp_s"] for r in rows)
    return {
        "arm": "filtered", "mode": mode, "instances": len(rows), "images_scanned": index + 1, "eps": args.eps,
        "domains_per_image": args.domains, "big_m": args.big_m, "relus": count_relus(model, split.input_shape),
        "milp_decided": len(decided_by_milp), "bab_decided": sum(r["bab"] in ("verified", "falsified") for r in rows),
        "bab_decided_of_milp_decided": len(agreeing),
        "decided_share": len(agreeing) / max(len(decided_by_milp), 1),
        "contradictions": sum(r["milp"] != "timeout" and r["bab"] in ("verified", "falsified")
                              and r["bab"] != r["milp"] for r in rows),
        "bab_seconds": round(bab_seconds, 2), "milp_seconds": round(milp_seconds, 2),
        "time_ratio_milp_over_bab": round(milp_seconds / max(bab_seconds, 1e-9), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="natural,fgsm")
    parser.add_argument("--arm", default="pipeline", choices=["pipeline", "filtered"],
                        help="pipeline: whole verifier vs clean check + MILP; filtered: BaB vs MILP after the filters")
    parser.add_argument("--instances", type=int, default=30, help="filtered arm: BaB instances to collect per net")
    parser.add_argument("--domains", type=int, default=300, help="filtered arm: BaB domains per image")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--eps", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=60.0, help="our verifier, seconds per image")
    parser.add_argument("--milp-limit", type=float, default=120.0, help="MILP, seconds per image")
    parser.add_argument("--big-m", default="crown", choices=["crown", "interval"], help="MILP big-M constants")
    parser.add_argument("--pgd-steps", type=int, default=50)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--alpha-iterations", type=int, default=20)
    parser.add_argument("--channels", default="4,8,8,8,8", help="the five conv widths of cifar_model_deep")
    parser.add_argument("--fc-width", type=int, default=16)
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for mode in args.modes.split(","):
        print(json.dumps((run_filtered if args.arm == "filtered" else run)(mode, args)), flush=True)


if __name__ == "__main__":
    main()
