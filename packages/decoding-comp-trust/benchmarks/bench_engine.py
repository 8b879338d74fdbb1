"""Prompts per second of the batched generation engine vs one prompt at a time (HELM's loop), SmolLM2, CPU.

    OMP_NUM_THREADS=1 REPRO_DATA_DIR=/path/to/data uv run python packages/decoding-comp-trust/benchmarks/bench_engine.py

Both runs use the same engine code, model, prompts and no cache; only the batch size differs. Three workloads:
`classification` (OOD style zero-shot, greedy, 20 new tokens, as DecodingTrust's classification tasks),
`continuation` (toxicity prompts, greedy, 64 new tokens, decode-heavy) and `sampling` (toxicity prompts with the
sampling path that toxicity, stereotype and privacy use: t = 1, n = 2 samples, 32 new tokens, as `quick`; it goes
through `generate` with `num_return_sequences`, seeded per batch). Prints one JSON line per workload with both
throughputs and their ratio (target ≥ 4× for classification and continuation), and for greedy workloads the
fraction of identical outputs (sampled outputs depend on the batch's seed, so none is reported for `sampling`).

`--profile` adds where the time goes *one prompt at a time* (batch 1, where the engine does exactly one prompt
prefill and then decodes): the prefill alone and the rest (decoding), plus the time of a plain left-padded batched
prefill (the engine's batches instead share their prompt prefix's KV cache, so that number is an upper bound on its
batched prefill, and no batched decode time is derived from it) and the speed-up bound plain batching has if
decoding were free.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from decoding_comp_trust.trust import ood, toxicity
from decoding_comp_trust.trust.common import Limits
from decoding_comp_trust.trust.engine import GenRequest, HFEngine, Sampling
from decoding_comp_trust.trust.evaluate import locate_data
from decoding_comp_trust.trust.templates import messages_to_prompt
from repro_shared.models import resolve_model


def timed(engine: HFEngine, prompts: list[GenRequest]) -> tuple[float, list[str]]:
    requests = [GenRequest(r.perspective, r.prompt, r.sampling) for r in prompts]
    started = time.perf_counter()
    engine.generate(requests)
    return time.perf_counter() - started, [r.outputs[0] for r in requests]


def workload(name: str, count: int) -> list[GenRequest]:
    root, _ = locate_data(None)

    def render(messages: list[dict]) -> str:
        return messages_to_prompt(messages, "chatml")

    if name == "classification":
        return ood.build(root, Limits(max_items=count), render)[:count]
    sampling = Sampling(max_tokens=64) if name == "continuation" else Sampling(32, temperature=1.0, n=2)
    requests = toxicity.build(root, Limits(max_items=count), render)[:count]
    return [GenRequest(r.perspective, r.prompt, sampling) for r in requests]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workloads", default="classification,continuation,sampling")
    parser.add_argument("--profile", action="store_true", help="also time the prefill alone (prefill vs decode)")
    parser.add_argument("--max-padding", type=float, default=-1,
                        help="engine's length-bucket bound (fraction of the shortest prompt; negative: none)")
    parser.add_argument("--min-shared-prefix", type=int, default=8,
                        help="shortest common prefix whose KV cache a batch shares (large: never share)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    engine = HFEngine.from_folder(resolve_model("smollm2-135m-instruct").location,
                                  max_padding=None if args.max_padding < 0 else args.max_padding,
                                  min_shared_prefix=args.min_shared_prefix)
    for name in args.workloads.split(","):
        bench(engine, name, workload(name, args.prompts), args)


def bench(engine: HFEngine, name: str, prompts: list[GenRequest], args: argparse.Namespace) -> None:
    engine.generate([GenRequest(p.perspective, p.prompt, p.sampling) for p in prompts[:2]])  # warm-up
    engine.batch_size = 1
    sequential_s, sequential = timed(engine, prompts)
    engine.batch_size = args.batch_size
    batched_s, batched = timed(engine, prompts)
    print(json.dumps({
        "workload": name, "prompts": len(prompts), "threads": args.threads, "batch_size": args.batch_size,
        "max_padding": engine.max_padding, "min_shared_prefix": engine.min_shared_prefix,
        "sequential_prompts_per_s": round(len(prompts) / sequential_s, 3),
        "batched_prompts_per_s": round(len(prompts) / batched_s, 3),
        "speedup": round(sequential_s / batched_s, 2),
        "identical_outputs": None if prompts[0].sampling.temperature > 0 else round(
            sum(a == b for a, b in zip(sequential, batched, strict=True)) / len(prompts), 3),
        **(prefill_profile(engine, prompts, args.batch_size, sequential_s, batched_s) if args.profile else {}),
    }))


@torch.inference_mode()
def prefill_profile(engine: HFEngine, prompts: list[GenRequest], batch_size: int, sequential_s: float,
                    batched_s: float) -> dict[str, float]:
    """Seconds of prompt prefill (one forward pass) one at a time, decode = one-at-a-time generation − that prefill;
    a plain left-padded batched prefill (sorted by length; no shared prefix) and bound = sequential total / it."""
    texts = sorted((p.prompt for p in prompts), key=len)

    def forward_seconds(size: int) -> float:
        started = time.perf_counter()
        for i in range(0, len(texts), size):
            encoded = engine.tokenizer(texts[i:i + size], return_tensors="pt", padding=True)
            engine.model(**encoded, use_cache=True)
        return time.perf_counter() - started

    single, batched = forward_seconds(1), forward_seconds(batch_size)
    return {"prefill_s_sequential": round(single, 2), "decode_s_sequential": round(sequential_s - single, 2),
            "prefill_share_sequential": round(single / sequential_s, 3),
            "plain_padded_prefill_s_batched": round(batched, 2), "engine_s_batched": round(batched_s, 2),
            "speedup_bound_if_decode_free": round(sequential_s / batched, 2)}


if __name__ == "__main__":
    main()
