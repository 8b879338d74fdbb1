"""Wall time per DP-generated token with J voters on SmolLM2 (CPU): batched + prefix-cached vs a per-voter loop.

Reference: the straightforward approach (the released code's), one forward pass per voter over its full meta-prompt,
without a KV cache. Ours: the J meta-prompts in length buckets (at most 10 % padding) that share one KV cache of the
meta-template prefix (``dp_opt.lm``). Both paths see the same meta-prompts (fixed seed) and sample with the same
temperature; the forward-pass labels ŷ are precomputed so that only the voting forward passes are timed. Also timed:
OPT's generation (eps = ∞; demos fixed per prompt), where ours reuses the whole KV cache across tokens and the
reference recomputes every voter's meta-prompt for every token. Prints the ratios measured in this one run.

    REPRO_DATA_DIR=data python benchmarks/bench_generation.py --voters 24 --steps 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from dp_opt.data import load_task
from dp_opt.generate import EnsembleVoters
from dp_opt.lm import append_token, forward_with_shared_prefix
from dp_opt.mechanisms import sample_groups
from dp_opt.models import load_lm
from dp_opt.templates import TASKS


def per_voter_loop(model, rows, generated, temperature, generator):
    """The reference: each voter's full meta-prompt through the model alone, no cache, one sample each."""
    votes = []
    for row in rows:
        with torch.no_grad():
            logits = model(torch.tensor([row + generated])).logits[0, -1]
        probabilities = torch.softmax(logits.float() / temperature, dim=-1)
        votes.append(int(torch.multinomial(probabilities, 1, generator=generator)))
    return votes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--voters", type=int, default=24)
    parser.add_argument("--demos", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--opt-tokens", type=int, default=3, help="tokens of the OPT-generation comparison (0: skip)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_lm(args.model, torch.device("cpu"), torch.float32)
    data = load_task("sst2", None, 0.01, 0, max_train=2000)
    template = TASKS["sst2"]
    labels = np.array([e.label for e in data.train])
    generator = torch.Generator().manual_seed(0)
    voters = EnsembleVoters(model, tokenizer, template.init_instruction, [e.text for e in data.train], labels,
                            template.label_words, lambda idx: labels[idx], 1.1, generator, strip_trailing_space=True)
    rng = np.random.default_rng(0)
    q = args.voters * args.demos / len(data.train)
    steps = [voters.meta_prompts(sample_groups(len(data.train), q, args.voters, args.demos, rng), rng)
             for _ in range(args.steps)]
    generated = tokenizer(" Classify the", add_special_tokens=False)["input_ids"]
    voters.votes(steps[0][:2], generated)  # warm-up
    timings = {}
    for name, run in {
        "batched + prefix cache (ours)": lambda rows: voters.votes(rows, generated),
        "one padded batch + prefix cache": lambda rows: forward_with_shared_prefix(
            model, [r + generated for r in rows], voters.pad_id),
        "batched, no cache": lambda rows: forward_with_shared_prefix(
            model, [r + generated for r in rows], voters.pad_id, use_prefix_cache=False),
        "per-voter loop, no cache (reference)": lambda rows: per_voter_loop(model, rows, generated, 1.1, generator),
    }.items():
        start = time.perf_counter()
        for rows in steps:
            run(rows)
        timings[name] = (time.perf_counter() - start) / len(steps)
    lengths = [len(r) for rows in steps for r in rows]
    print(f"J={args.voters} voters, m={args.demos}, meta-prompt tokens mean {np.mean(lengths):.0f} "
          f"(max {max(lengths)}), {args.steps} tokens, {args.threads} threads")
    for name, seconds in timings.items():
        print(f"  {name:40s} {seconds:7.2f} s / DP token")
    reference = timings["per-voter loop, no cache (reference)"]
    ours = timings["batched + prefix cache (ours)"]
    print(f"speed-up of ours over the per-voter loop: {reference / ours:.2f}x")
    if args.opt_tokens > 0:
        opt_timings = time_opt_generation(model, voters, steps[0], args.opt_tokens, generator)
        for name, seconds in opt_timings.items():
            print(f"  OPT, {name:35s} {seconds:7.2f} s / token")
        print(f"speed-up of ours over the per-voter loop in OPT generation: "
              f"{opt_timings['per-voter loop, no cache'] / opt_timings['ours (whole KV cache reused)']:.2f}x")


def time_opt_generation(model, voters, rows, num_tokens, generator) -> dict[str, float]:
    """Seconds per OPT-generated token: our incremental KV-cached batch vs recomputing every voter every token."""
    def ours() -> None:
        logits, state = forward_with_shared_prefix(model, rows, voters.pad_id, keep_state=True)
        token = voters.sample(logits[:, -1])[0]
        for _ in range(num_tokens - 1):
            token = voters.sample(append_token(model, state, token))[0]

    def reference() -> None:
        generated: list[int] = []
        for _ in range(num_tokens):
            generated.append(per_voter_loop(model, rows, generated, 1.1, generator)[0])

    timings = {}
    for name, run in (("ours (whole KV cache reused)", ours), ("per-voter loop, no cache", reference)):
        start = time.perf_counter()
        run()
        timings[name] = (time.perf_counter() - start) / num_tokens
    return timings


if __name__ == "__main__":
    main()
