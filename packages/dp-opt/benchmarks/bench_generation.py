"""Wall time per DP-generated token, end to end, on SmolLM2 (CPU): ours against the released code's approach.

A DP token (one iteration of Algorithm 2) is: a fresh Poisson sample of J·m records, the forward-pass labels ŷ of
the sampled records (Algorithm 1, line 2), J meta-prompts, one forward pass per voter and one sample each. Both
paths do all of it, on the same samples (same seed), and the script reports where the time goes.

- Ours (``dp_opt.generate.EnsembleVoters`` with ``pipeline.ForwardPass``): ŷ computed lazily for records not seen
  before, each record's scoring context run once and its KV cache reused by every label word; the J meta-prompts in
  length buckets (at most 10 % padding) sharing one KV cache of the meta-template prefix.
- The released code's approach: voters in left-padded batches of 8 (``--gen_batch_size`` 8) without a KV cache;
  labels by its evaluator, every (record, label word) candidate a full row, in batches of 12 records (the SST-2
  sweep's ``--batch_size``), no cache. (The released code labels all n training records once before generation;
  here it is charged only the records sampled for the token, which favours it.)

Also timed: OPT's generation (eps = ∞; demos fixed per prompt), where ours reuses the whole KV cache across tokens
and the released approach recomputes every voter's meta-prompt, in batches of 8, for every token.

    REPRO_DATA_DIR=data python benchmarks/bench_generation.py --task trec --voters 24 --demos 2 --steps 2
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import torch
from dp_opt.data import load_task
from dp_opt.generate import EnsembleVoters
from dp_opt.lm import append_token, forward_with_shared_prefix
from dp_opt.mechanisms import sample_groups
from dp_opt.models import load_lm
from dp_opt.pipeline import ForwardPass
from dp_opt.scoring import ScoringOptions, _scores_of_full_candidates
from dp_opt.templates import BACKWARD_MESSAGES, TASKS

RELEASED_GEN_BATCH, RELEASED_EVAL_BATCH = 8, 12  # train_opt.py --gen_batch_size; sweeps/sst2/dp-opt.yml --batch_size


def released_voter_logits(model, rows, pad_id) -> torch.Tensor:
    """Last-position logits of every voter: padded batches of 8, full rows, no KV cache (the released code)."""
    chunks = [forward_with_shared_prefix(model, rows[start:start + RELEASED_GEN_BATCH], pad_id,
                                         use_prefix_cache=False)[0][:, -1]
              for start in range(0, len(rows), RELEASED_GEN_BATCH)]
    return torch.cat(chunks)


def meta_prompts(voters, groups, messages, predicted) -> list[list[int]]:
    """The J meta-prompts of one token from its groups, messages and the groups' labels ŷ (already computed)."""
    return [voters.meta_prompt(group, BACKWARD_MESSAGES[m], labels)
            for group, m, labels in zip(groups, messages, predicted, strict=True)]


class Timer:
    """Seconds per named phase, accumulated."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def __call__(self, phase, function, *args):
        start = time.perf_counter()
        result = function(*args)
        self.seconds[phase] += time.perf_counter() - start
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--task", default="sst2", choices=sorted(TASKS))
    parser.add_argument("--voters", type=int, default=24)
    parser.add_argument("--demos", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2, help="DP tokens timed per path")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--opt-tokens", type=int, default=3, help="tokens of the OPT-generation comparison (0: skip)")
    parser.add_argument("--paths", default="ours,released", help="which DP-token paths to time (comma-separated)")
    args = parser.parse_args()
    paths = args.paths.split(",")
    if not paths or set(paths) - {"ours", "released"}:
        parser.error(f"--paths {args.paths!r}: use ours, released or both (comma-separated)")
    torch.set_num_threads(args.threads)
    model, tokenizer = load_lm(args.model, torch.device("cpu"), torch.float32)
    data = load_task(args.task, None, 0.01, 0, max_train=2000)
    template = TASKS[args.task]
    texts, labels = [e.text for e in data.train], [e.label for e in data.train]
    q = args.voters * args.demos / len(data.train)
    rng = np.random.default_rng(0)
    samples = [sample_groups(len(data.train), q, args.voters, args.demos, rng) for _ in range(args.steps)]
    generated = tokenizer(" Classify the", add_special_tokens=False)["input_ids"]

    def voters_with(forward_labels, seed):
        return EnsembleVoters(model, tokenizer, template.init_instruction, texts, labels, template.label_words,
                              forward_labels, 1.1, torch.Generator().manual_seed(seed), strip_trailing_space=True)

    ours_labels = ForwardPass(model, tokenizer, template.init_instruction, data.train, template.label_words,
                              ScoringOptions(16))
    ours_voters = voters_with(ours_labels, 0)
    released_options = ScoringOptions(RELEASED_EVAL_BATCH, use_prefix_cache=False)

    def released_labels(indices):
        scores = _scores_of_full_candidates(model, tokenizer, template.init_instruction, [texts[i] for i in indices],
                                            template.label_words, released_options)
        return scores.argmax(axis=1)

    released_voters = voters_with(released_labels, 0)

    def released_votes(rows, generated):
        logits = released_voter_logits(model, [row + generated for row in rows], released_voters.pad_id)
        return released_voters.sample(logits)

    forward_with_shared_prefix(model, [generated * 8, generated * 9], ours_voters.pad_id)  # warm-up
    timers = {path: Timer() for path in paths}
    message_rngs = {path: np.random.default_rng(1) for path in paths}
    all_voters = {"ours": ours_voters, "released": released_voters}
    for groups in samples:  # the paths alternate token by token, so a change in the machine's load hits both
        for path in paths:
            voters, timer, message_rng = all_voters[path], timers[path], message_rngs[path]
            sampled = np.concatenate(groups)
            predicted = timer("labels of the sampled records", voters.forward_labels, sampled)
            split = np.split(np.asarray(predicted), np.cumsum([len(g) for g in groups])[:-1])
            messages = message_rng.integers(len(BACKWARD_MESSAGES), size=len(groups))
            rows = timer("meta-prompts (tokenise)", meta_prompts, voters, groups, messages, split)
            vote = voters.votes if path == "ours" else released_votes
            timer("voters' forward + sample", vote, rows, generated)
            print(f"  ({path}: one DP token done, {sum(timer.seconds.values()):.1f} s so far)", flush=True)
    lengths = [len(r) for r in ours_voters.meta_prompts(samples[0], np.random.default_rng(1))]
    print(f"{args.task}: J={args.voters} voters, m={args.demos}, {len(template.label_words)} label words, "
          f"meta-prompt tokens mean {np.mean(lengths):.0f} (max {max(lengths)}), {args.steps} DP tokens, "
          f"{args.threads} threads")
    totals = {}
    for path, timer in timers.items():
        totals[path] = sum(timer.seconds.values()) / args.steps
        print(f"  {path:9s} {totals[path]:7.2f} s / DP token: " + ", ".join(
            f"{phase} {seconds / args.steps:.2f} s" for phase, seconds in timer.seconds.items()))
    if len(totals) == 2:
        print(f"speed-up per DP token, end to end, over the released code's approach: "
              f"{totals['released'] / totals['ours']:.2f}x")
    if args.opt_tokens > 0:
        rows = ours_voters.meta_prompts(samples[0], np.random.default_rng(1))
        opt_timings = time_opt_generation(model, ours_voters, rows, args.opt_tokens)
        for name, seconds in opt_timings.items():
            print(f"  OPT, {name:45s} {seconds:7.2f} s / token")
        print(f"speed-up of ours over the released approach in OPT generation: "
              f"{opt_timings['released (batches of 8, no cache)'] / opt_timings['ours (whole KV cache reused)']:.2f}x")


def time_opt_generation(model, voters, rows, num_tokens) -> dict[str, float]:
    """Seconds per OPT-generated token: our incremental KV-cached batch vs recomputing every voter every token."""
    def ours() -> None:
        logits, state = forward_with_shared_prefix(model, rows, voters.pad_id, keep_state=True)
        token = voters.sample(logits[:, -1])[0]
        for _ in range(num_tokens - 1):
            token = voters.sample(append_token(model, state, token))[0]

    def released() -> None:
        generated: list[int] = []
        for _ in range(num_tokens):
            logits = released_voter_logits(model, [row + generated for row in rows], voters.pad_id)
            generated.append(voters.sample(logits)[0])

    timings = {}
    for name, run in (("ours (whole KV cache reused)", ours), ("released (batches of 8, no cache)", released)):
        start = time.perf_counter()
        run()
        timings[name] = (time.perf_counter() - start) / num_tokens
    return timings


if __name__ == "__main__":
    main()
