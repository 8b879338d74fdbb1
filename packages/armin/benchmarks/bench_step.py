"""Training-step throughput on the copy task at the paper's sizes, CPU: ARMIN(100, 32×50) vs the package's LSTM(300)
(the paper's baseline) vs torch.nn.LSTM(300) (fused kernels), measured in one run and printed as ratios.

    python packages/armin/benchmarks/bench_step.py [--batch 16] [--length 20] [--repeats 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from armin.models import ModelConfig, build_model
from armin.tasks import TaskConfig, algorithmic_batch

MODELS = {
    "armin(100)": ModelConfig(kind="armin", hidden=100, width=32, slots=50),
    "lstm(300) package": ModelConfig(kind="lstm", hidden=300),
    "torch.nn.LSTM(300)": ModelConfig(kind="torch-lstm", hidden=300),
}


def sequences_per_second(model, inputs, targets, repeats: int) -> float:
    """Median over ``repeats`` training steps (forward, BCE, backward, RMSprop update) after two warm-up steps."""
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4, momentum=0.9, alpha=0.95)
    times = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        logits, _ = model(inputs)
        loss = F.binary_cross_entropy_with_logits(logits[-targets.shape[0]:], targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    median = sorted(times[2:])[repeats // 2]
    return inputs.shape[1] / median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--length", type=int, default=20, help="copy sequence length (2L+2 time steps)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = TaskConfig("copy", min_length=args.length, max_length=args.length + 1)
    for batch_size in args.batch:
        batch = algorithmic_batch(task, batch_size, torch.Generator().manual_seed(0))
        rates = {}
        for name, config in MODELS.items():
            torch.manual_seed(0)
            model = build_model(config, task.input_size, task.output_size)
            rates[name] = sequences_per_second(model, batch.inputs, batch.targets, args.repeats)
        print(f"copy L={args.length} ({batch.inputs.shape[0]} steps), batch {batch_size}, {args.threads} threads")
        for name, rate in rates.items():
            print(f"  {name:20s} {rate:9.1f} sequences/s")
        armin = rates["armin(100)"]
        print(f"  ratio ARMIN / package LSTM(300):    {armin / rates['lstm(300) package']:.2f}  (target >= 1)")
        print(f"  ratio ARMIN / torch.nn.LSTM(300):   {armin / rates['torch.nn.LSTM(300)']:.2f}  (target >= 0.5)")


if __name__ == "__main__":
    main()
