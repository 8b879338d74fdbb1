"""Speed of compression on this CPU, printed in one run (not a timed test).

Per method/setting: seconds to compress the model; forward tokens/s of the compressed model vs dense (ratio; fake-
quantized and masked models are dense tensors, so ≈ 1 is expected: no low-bit or sparse kernels are involved); and,
where both exist, the library path (llm-compressor) vs the in-package reference implementation of the same
algorithm as a time ratio, with the perplexity of each on held-out text.

    OMP_NUM_THREADS=1 REPRO_DATA_DIR=data uv run python \
        packages/decoding-comp-trust/benchmarks/bench_compress.py [--model tiny] [--settings gptq-w4,wanda-2:4]
"""

from __future__ import annotations

import argparse
import time

import torch
from decoding_comp_trust.compress import CalibrationConfig, compress, parse_setting
from decoding_comp_trust.compress.api import LIBRARY_METHODS, REFERENCE_METHODS
from decoding_comp_trust.compress.calibration import load_texts, token_windows
from decoding_comp_trust.compress.checks import perplexity
from decoding_comp_trust.compress.tiny import save_tiny_model

DEFAULT = "rtn-w4,magnitude-2:4,gptq-w4,sparsegpt-2:4,wanda-2:4,awq-w4,autoround-w4"


def _loader(model: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model == "tiny":
        import tempfile

        folder = save_tiny_model(tempfile.mkdtemp(prefix="bench-tiny-"))
    else:
        from repro_shared.models import resolve_model

        folder = resolve_model(model).location
    tokenizer = AutoTokenizer.from_pretrained(folder)

    def load():
        m = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        m.config.name_or_path = str(folder)
        return m

    return load, tokenizer


@torch.no_grad()
def tokens_per_second(model, ids: torch.Tensor, repeats: int = 3) -> float:
    model(ids[:1, :8], use_cache=False)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        model(ids, use_cache=False)
        best = min(best, time.perf_counter() - started)
    return ids.numel() / best


def _warm_up() -> None:
    """One untimed llm-compressor run on a throw-away tiny model: imports and tracing set-up are not compression."""
    import tempfile

    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = save_tiny_model(tempfile.mkdtemp(prefix="bench-warm-"))
    model, tok = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    model.config.name_or_path = str(folder)
    compress(model, "gptq", tokenizer=tok, bits=4, group_size=32, backend="library",
             calibration=CalibrationConfig("synthetic", "plain", 2, 16))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="alias/path, or 'tiny' (random 2-block)")
    parser.add_argument("--settings", default=DEFAULT)
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument("--n-samples", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--autoround-iters", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    source = "synthetic" if args.model == "tiny" else "trec"
    group = 32 if args.model == "tiny" else args.group_size
    load, tokenizer = _loader(args.model)
    calibration = CalibrationConfig(source, "plain", args.n_samples, args.seq_len)
    held_out = token_windows(load_texts("synthetic" if args.model == "tiny" else "sst2-validation"), tokenizer,
                             n_samples=8, seq_len=args.seq_len, seed=1234)
    ids = held_out[:4]
    dense = load()
    dense_tps, dense_ppl = tokens_per_second(dense, ids), perplexity(dense, held_out)
    print(f"model {args.model}: dense {dense_tps:.0f} tokens/s forward, held-out perplexity {dense_ppl:.2f}")
    print(f"{'setting':<24} {'path':<10} {'compress s':>10} {'tokens/s':>9} {'vs dense':>8} {'ppl':>9}")
    _warm_up()
    times: dict[tuple[str, str], float] = {}
    for spec in args.settings.split(","):
        settings = parse_setting(spec, group_size=group)
        paths = [p for p, table in (("library", LIBRARY_METHODS), ("reference", REFERENCE_METHODS))
                 if settings.method in table]
        for path in paths:
            started = time.perf_counter()
            result = compress(load(), settings.method, tokenizer=tokenizer, bits=settings.bits,
                              group_size=settings.group_size, pattern=settings.pattern, backend=path,
                              calibration=calibration, autoround_iters=args.autoround_iters)
            seconds = time.perf_counter() - started
            times[(settings.method, path)] = seconds
            tps = tokens_per_second(result.model, ids)
            print(f"{settings.name():<24} {path:<10} {seconds:>10.1f} {tps:>9.0f} {tps / dense_tps:>8.2f} "
                  f"{perplexity(result.model, held_out):>9.2f}", flush=True)
    print("\nlibrary (llm-compressor) vs in-package reference, same algorithm, same calibration windows:")
    for method in sorted({m for m, _ in times}):
        if (method, "library") in times and (method, "reference") in times:
            ratio = times[(method, "library")] / times[(method, "reference")]
            print(f"  {method:<10} library {times[(method, 'library')]:.1f} s / reference "
                  f"{times[(method, 'reference')]:.1f} s = {ratio:.2f}x")


if __name__ == "__main__":
    main()
