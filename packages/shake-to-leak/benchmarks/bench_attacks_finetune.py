"""Speed of the two hot paths on the quick-scale tiny model (random weights; speed does not depend on training).

1. SecMI: images per second, batched (one UNet call per DDIM step for the whole batch) vs one image at a time
   (the released ``secmi.py`` runs batch size 1); printed as the speed-up ratio.
2. Fine-tuning: steps per second of every S2L method, each as a ratio to DreamBooth (full UNet + text encoder).

    OMP_NUM_THREADS=1 uv run python packages/shake-to-leak/benchmarks/bench_attacks_finetune.py --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch
from shake_to_leak.attacks import SecMIConfig, secmi_scores
from shake_to_leak.finetune import METHODS, steps_per_second
from shake_to_leak.models import build_tiny_pipeline
from shake_to_leak.scales import QUICK_MODEL


def secmi_rate(pipe, images, batch_size: int) -> float:
    config = SecMIConfig(t_sec=140, k=10, batch_size=batch_size)
    ids = [f"i{i}" for i in range(len(images))]
    started = time.perf_counter()
    secmi_scores(pipe, images, ["a photo of chelsea"] * len(images), ids, config, seed=0, show_progress=False)
    return len(images) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--ft-steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = build_tiny_pipeline(QUICK_MODEL, seed=0)
    pipe.set_progress_bar_config(disable=True)
    images = torch.rand(args.images, 3, QUICK_MODEL.resolution, QUICK_MODEL.resolution) * 2 - 1
    secmi_rate(pipe, images[:2], 2)  # warm-up
    batched, single = secmi_rate(pipe, images, args.images), secmi_rate(pipe, images, 1)
    print(f"SecMI (t_sec=140, k=10, {args.images} images): batched {batched:.2f} img/s, one at a time "
          f"{single:.2f} img/s -> batched/single = {batched / single:.2f}x")
    rates = {}
    for method in METHODS:
        if method == "perturb":
            continue
        rates[method] = steps_per_second(lambda: build_tiny_pipeline(QUICK_MODEL, seed=0), images[:8],
                                         "a photo of chelsea", method, steps=args.ft_steps, batch_size=8)
    reference = rates["dreambooth"]
    print("fine-tuning steps/s (batch 8), ratio to dreambooth:")
    for method, rate in rates.items():
        print(f"  {method:26s} {rate:6.2f} steps/s  {rate / reference:5.2f}x")


if __name__ == "__main__":
    main()
