"""Experiments of `dp-opt`, registered with `repro` through the `repro.experiments` entry point.

- ``main-table``: the paper's main table for one task: 0-shot, 5-shot ICL, OPT, DP-OPT (eps = 8) and DLN-1 prompts,
  generated and evaluated on one model (the paper evaluates on DaVinci-003 after generating on Vicuna-7b).
- ``transfer``: the transfer table: the same prompts, also evaluated on other models (``eval_models``).

Every run writes ``prompts.json`` (candidates, selection, eps) and ``privacy_ledger_dp-opt.jsonl`` (every
LimitedDomain query with (eps, delta) so far under both privacy models) to the run directory, and the non-private
statistics (raw top-token votes, holdout accuracies of every candidate) to ``debug/``; the checkpoint after every
query lets ``--resume`` continue the same ledger without repeating a query.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace

from repro_shared.errors import ConfigError
from repro_shared.experiments import Claim, Experiment

from .accounting import LD_PRIVACY_MODELS
from .templates import TASKS

METHODS = ("0-shot", "icl", "opt", "dp-opt", "dln-1")  # new methods go last (seeds use the index)


@dataclass(frozen=True)
class DPOptConfig:
    """One task through Algorithm 1 and the baselines. Sizes ``None`` mean the whole split (the paper)."""

    task: str = "sst2"
    model: str = "smollm2-135m-instruct"  # generates prompts and evaluates them
    eval_models: tuple[str, ...] = ()  # transfer: further models the selected prompts are evaluated on
    methods: tuple[str, ...] = METHODS
    num_voters: int = 205  # J
    demos_per_voter: int = 5  # m
    num_prompts: int = 40  # N
    max_new_tokens: int = 50  # L
    temperature: float = 1.1
    k_bar: int = 10
    eps0: float = 1.8
    delta0: float = 5e-7
    target_eps: float = 8.0
    target_delta: float | None = None  # None: 1/n
    selection_eps: float | None = None  # None: target_eps (the released code)
    # how a LimitedDomain query is charged, and so where generation stops: "paper" (eps0, the released accountant)
    # or "conservative" (2·eps0: accounting.query_epsilon); results and ledger report both
    ld_privacy_model: str = "paper"
    holdout_ratio: float = 0.01
    max_train: int | None = None
    max_holdout: int | None = None
    max_test: int | None = None
    icl_demos: int = 5
    eval_batch_size: int = 16
    sequential_partition: bool = False  # the released code's partition (not privacy-correct)
    batch_wide_label_length: bool = False  # the released code's scoring quirk
    strip_trailing_space: bool = False
    use_prefix_cache: bool = True
    # DLN-1 baseline (non-private); defaults: the released code's dln1.yml
    dln_steps: int = 20
    dln_candidates: int = 20
    dln_demos: int = 20
    dln_temperature: float = 0.7
    dln_max_new_tokens: int = 100
    dln_patience: int = 2

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}", f"use one of {', '.join(TASKS)}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ConfigError(f"methods {list(self.methods)}: unknown {unknown}", f"use some of {', '.join(METHODS)}")
        for name in ("num_voters", "demos_per_voter", "num_prompts", "max_new_tokens", "k_bar", "eval_batch_size",
                     "dln_steps", "dln_candidates", "dln_demos", "dln_max_new_tokens", "dln_patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: must be at least 1")
        if not (self.eps0 > 0 and self.target_eps > 0):
            raise ConfigError(f"eps0={self.eps0}, target_eps={self.target_eps}: must be positive")
        if not 0 < self.delta0 < 1:
            raise ConfigError(f"delta0={self.delta0}: must be in (0, 1)")
        if self.target_delta is not None and not 0 < self.target_delta < 1:
            raise ConfigError(f"target_delta={self.target_delta}: must be in (0, 1)")
        if self.selection_eps is not None and not 0 < self.selection_eps <= self.target_eps:
            raise ConfigError(f"selection_eps={self.selection_eps}: must be positive and at most "
                              f"target_eps={self.target_eps} (the reported eps is max(generation, selection))")
        if self.ld_privacy_model not in LD_PRIVACY_MODELS:
            raise ConfigError(f"ld_privacy_model={self.ld_privacy_model!r}: unknown",
                              f"use one of {', '.join(LD_PRIVACY_MODELS)}")
        if not 0 < self.holdout_ratio < 1:
            raise ConfigError(f"holdout_ratio={self.holdout_ratio}: must be in (0, 1)")
        if self.temperature <= 0 or self.dln_temperature <= 0:
            raise ConfigError(f"temperature={self.temperature}, dln_temperature={self.dln_temperature}: "
                              "must be positive")


def check_inputs(config: DPOptConfig, ctx) -> None:
    """Before any model is loaded: the data exists, J·m fits the training set, k̄ is below the generating model's
    vocabulary size (Algorithm 4 needs tokens outside the domain), label words tokenise to something."""
    from .data import load_task
    from .models import load_tokenizer
    from .scoring import encode
    from .templates import fill_eval_template

    data = load_task(config.task, ctx.data_dir, config.holdout_ratio, ctx.seed, config.max_train,
                     config.max_holdout, config.max_test)
    if config.num_voters * config.demos_per_voter > len(data.train):
        raise ConfigError(f"J·m = {config.num_voters}·{config.demos_per_voter} exceeds the {len(data.train)} "
                          "training records", "lower num_voters or demos_per_voter")
    if not data.holdout or not data.test:
        raise ConfigError("the holdout or the test set is empty", "raise holdout_ratio / max_holdout / max_test")
    template = TASKS[config.task]
    vocabulary = len(load_tokenizer(config.model))
    if "dp-opt" in config.methods and config.k_bar >= vocabulary:
        raise ConfigError(f"k_bar={config.k_bar}: must be smaller than the vocabulary size ({vocabulary}) of "
                          f"{config.model}", "lower k_bar (paper: 10)")
    for name in (config.model, *config.eval_models):
        tokenizer = load_tokenizer(name)
        context = encode(tokenizer, fill_eval_template(template.init_instruction, "x", "").rstrip())
        for word in template.label_words:
            candidate = fill_eval_template(template.init_instruction, "x", word).rstrip()
            if not word.strip() or len(encode(tokenizer, candidate)) <= len(context):
                raise ConfigError(f"label word {word!r} tokenises to nothing with the tokenizer of {name}")


def run_dp_opt(config: DPOptConfig, ctx) -> dict:
    """Algorithm 1 and the baselines on one task; resumable at every LimitedDomain query."""
    import numpy as np

    from .accounting import LimitedDomainAccountant
    from .data import load_task
    from .generate import EnsembleSettings
    from .models import load_lm
    from .pipeline import PrivacySettings, icl_prompt
    from .scoring import ScoringOptions, correct_items

    started = time.time()
    data = load_task(config.task, ctx.data_dir, config.holdout_ratio, ctx.seed, config.max_train,
                     config.max_holdout, config.max_test)
    template = TASKS[config.task]
    scoring = ScoringOptions(config.eval_batch_size, batch_wide_label_length=config.batch_wide_label_length,
                             use_prefix_cache=config.use_prefix_cache)
    settings = EnsembleSettings(config.num_voters, config.demos_per_voter, config.max_new_tokens,
                                config.temperature, config.k_bar, sequential_partition=config.sequential_partition,
                                use_prefix_cache=config.use_prefix_cache,
                                strip_trailing_space=config.strip_trailing_space)
    privacy = PrivacySettings(config.eps0, config.delta0, config.target_eps, config.target_delta,
                              config.ld_privacy_model)
    model, tokenizer = load_lm(config.model, ctx.device, ctx.dtype)
    state = ctx.load_checkpoint() or {"prompts": {}, "generators": {}, "test": {}, "elapsed": 0.0}
    state.setdefault("test_correct", {})  # per test item, for paired item bootstraps (absent in older checkpoints)
    q = config.num_voters * config.demos_per_voter / len(data.train)
    planned = LimitedDomainAccountant(q, config.eps0, config.delta0, config.target_eps,
                                      privacy.target_delta or 1 / len(data.train), config.ld_privacy_model)
    ctx.log.info("task %s: n=%d train, %d holdout, %d test; q=%.4f; at most %d LD queries fit eps=%g "
                 "(%s privacy model)", config.task, len(data.train), len(data.holdout), len(data.test), q,
                 planned.max_queries(), config.target_eps, config.ld_privacy_model)

    def save() -> None:
        ctx.save_checkpoint({**state, "elapsed": state["elapsed"] + time.time() - started})

    for method in config.methods:
        if method in state["prompts"]:
            continue
        method_rng = np.random.default_rng([ctx.seed, METHODS.index(method)])
        if method == "0-shot":
            state["prompts"][method] = {"selected": template.init_instruction}
        elif method == "dln-1":
            state["prompts"][method] = _run_dln1(config, ctx, data, template, scoring, model, tokenizer)
        elif method == "icl":
            state["prompts"][method] = {"selected": icl_prompt(data.train, template.label_words, config.icl_demos,
                                                               method_rng)}
        else:
            state["prompts"][method] = _generate_and_select(
                method, config, ctx, data, template, settings, privacy if method == "dp-opt" else None,
                scoring, state, save, model, tokenizer)
        save()
    evaluations = {config.model: (model, tokenizer)}
    for name in (config.model, *config.eval_models):
        for method in config.methods:
            key = f"{name}|{method}"
            if key in state["test"]:
                continue
            if name not in evaluations:
                evaluations = {name: load_lm(name, ctx.device, ctx.dtype)}
            eval_model, eval_tokenizer = evaluations[name]
            # DLN-1 is evaluated with its own template (no "Instruction:"/"Input:" labels: rm_eval_item_name)
            method_scoring = replace(scoring, item_names=False) if method == "dln-1" else scoring
            correct = correct_items(eval_model, eval_tokenizer, state["prompts"][method]["selected"], data.test,
                                    template.label_words, method_scoring)
            acc = float(correct.mean()) if len(correct) else 0.0
            state["test"][key], state["test_correct"][key] = acc, correct.astype(int).tolist()
            ctx.log.info("test accuracy %s on %s: %.4f", method, name, acc)
            save()
    return _results(config, state, started, data, planned.max_queries(), ctx)


def _generate_and_select(method, config, ctx, data, template, settings, privacy, scoring, state, save, model,
                         tokenizer) -> dict:
    """Algorithm 1, lines 3-4, for OPT (privacy None) or DP-OPT; checkpoints after every step."""
    import numpy as np

    from .pipeline import PromptGenerator, select_prompt

    seed = [ctx.seed, METHODS.index(method)]
    generator = PromptGenerator(model, tokenizer, data, template, settings, config.num_prompts, privacy,
                                int(np.random.SeedSequence(seed).generate_state(1)[0]), scoring)
    if method in state["generators"]:
        generator.load_state_dict(state["generators"][method])
    ledger_path = ctx.artifact(f"privacy_ledger_{method}.jsonl") if privacy is not None else None
    while not generator.done():
        before = len(generator.prompts)
        for entry in generator.step():
            ctx.log_metrics(step=entry["query"], method=method, **{k: v for k, v in entry.items() if k != "query"})
        state["generators"][method] = generator.state_dict()
        save()
        if len(generator.prompts) > before:
            ctx.log.info("%s prompt %d/%d (%s): %r", method, len(generator.prompts), config.num_prompts,
                         generator.stop_reasons[-1], generator.prompts[-1])
    if ledger_path is not None and ctx.is_main_process:
        # rewritten whole from the checkpointed ledger: a resumed run continues it; raw votes go to debug/
        ledger_path.write_text("".join(json.dumps(entry) + "\n" for entry in generator.ledger))
        ctx.artifact(f"debug/votes_{method}.jsonl").write_text(
            "".join(json.dumps(entry) + "\n" for entry in generator.debug_ledger))
    candidates = generator.candidate_prompts() or [template.init_instruction]
    selection_rng = np.random.default_rng([ctx.seed, METHODS.index(method), 1])
    selection_eps = None if privacy is None else (config.selection_eps or config.target_eps)
    selection = select_prompt(model, tokenizer, candidates, data.holdout, template.label_words, selection_eps,
                              selection_rng, scoring)
    gen_eps, gen_delta = generator.privacy_spent()
    entry = {"candidates": candidates, "stop_reasons": generator.stop_reasons,
             "holdout_accuracies": selection.holdout_accuracies, "selected_index": selection.index,
             "selected": candidates[selection.index], "queries": len(generator.ledger),
             "generation_eps": gen_eps, "generation_delta": gen_delta,
             # generation and selection touch disjoint records (train vs holdout): parallel composition -> max
             "total_eps": max(gen_eps, selection.selection_eps) if privacy is not None else float("inf")}
    if privacy is not None:
        entry.update(privacy_model=privacy.privacy_model, selection_eps=selection.selection_eps,
                     privacy_by_model={model: {"generation_eps": eps, "generation_delta": delta,
                                               "total_eps": max(eps, selection.selection_eps)}
                                       for model, (eps, delta) in generator.privacy_spent_by_model().items()})
    return entry


def _run_dln1(config, ctx, data, template, scoring, model, tokenizer) -> dict:
    """The DLN-1 baseline (``pipeline.dln1``); resumable per method only (a run interrupted inside it restarts it)."""
    import numpy as np

    from .pipeline import DLN1Settings, dln1

    settings = DLN1Settings(config.dln_steps, config.dln_candidates, config.dln_demos, config.dln_temperature,
                            config.dln_max_new_tokens, config.dln_patience, config.strip_trailing_space)
    seed = int(np.random.SeedSequence([ctx.seed, METHODS.index("dln-1")]).generate_state(1)[0])
    result = dln1(model, tokenizer, data, template, settings, seed, scoring)
    ctx.log.info("dln-1: %d steps, selected %r (holdout accuracy %.4f)", len(result.steps), result.selected,
                 result.holdout_accuracy)
    return {"selected": result.selected, "holdout_accuracy": result.holdout_accuracy, "steps": result.steps,
            "total_eps": float("inf")}


PAPER_TABLE = {  # main table, DaVinci-003 test accuracy % (Vicuna-7b generates), from the paper
    "sst2": {"icl": 94.7, "opt": 92.4, "0-shot": 92.4, "dp-opt": 92.2, "dln-1": 92.7},
    "trec": {"icl": 79.1, "opt": 71.5, "0-shot": 51.8, "dp-opt": 68.7, "dln-1": 70.7},
    "mpqa": {"icl": 88.8, "opt": 85.8, "0-shot": 84.5, "dp-opt": 85.8, "dln-1": 81.4},
    "disaster": {"icl": 69.0, "opt": 79.0, "0-shot": 76.4, "dp-opt": 78.9, "dln-1": 77.0},
}


# The paper's DP-OPT is 0-3 points below OPT on every task of its main table ("competitive with OPT").
OPT_MARGIN_POINTS = 3.0


def accuracy_claims(task: str, target_eps: float, accuracies: dict, correct: dict, seed: int) -> list[Claim]:
    """DP-OPT against the 0-shot instruction and against OPT, from test accuracies (fractions, by method).

    Effects are in accuracy points, positive = the paper's claim: ``DP-OPT − 0-shot`` for "beats 0-shot",
    ``3 + DP-OPT − OPT`` for "loses at most 3 points to OPT". ``correct`` (by method, per test item 0/1, the same
    items in the same order) gives each effect a paired percentile-bootstrap interval over test items.
    """
    from repro_shared.evidence import bootstrap_interval

    paper, dp = PAPER_TABLE[task], accuracies.get("dp-opt")
    comparisons = (("0-shot", f"{task}: DP-OPT (eps={target_eps:g}) beats the 0-shot instruction", 0.0),
                   ("opt", f"{task}: DP-OPT loses at most {OPT_MARGIN_POINTS:g} points to non-private OPT",
                    OPT_MARGIN_POINTS))
    claims = []
    for baseline, name, margin in comparisons:
        base = accuracies.get(baseline)
        if dp is None or base is None:
            continue
        interval = None
        if "dp-opt" in correct and baseline in correct:
            interval = bootstrap_interval(lambda ours, theirs, margin=margin: margin + _points(ours, theirs),
                                          correct["dp-opt"], correct[baseline], seed=seed)
        claims.append(Claim(name, f"{paper['dp-opt']} vs {paper[baseline]}", f"{100 * dp:.1f} vs {100 * base:.1f}",
                            effect=margin + 100 * (dp - base), interval=interval,
                            note=f"effect: {margin:g} + DP-OPT − {baseline}, accuracy points"))
    return claims


def _points(ours, theirs) -> float:
    """Accuracy difference in points of two per-item correctness arrays."""
    import numpy as np

    return 100.0 * (float(np.mean(ours)) - float(np.mean(theirs)))


def privacy_claims(target_eps: float, dp_entry: dict) -> list[Claim]:
    """The privacy budget: the eps DP-EnsGen spent stays under the target, and so does the reported total.

    The reported eps is max(generation, private selection) and the selection is eps-DP at exactly the target, so the
    total equals the target by construction; the measurable margin is the generation's: effect = target − its eps
    (exact, a deterministic function of the queries made, hence a zero-width interval).
    """
    if not dp_entry or dp_entry.get("generation_eps") is None:
        return []
    generation, total = float(dp_entry["generation_eps"]), float(dp_entry["total_eps"])
    margin = target_eps - generation
    return [Claim("reported eps never exceeds the target (generation within it)", target_eps,
                  f"generation {generation:.3g}, reported {total:.3g}", total <= target_eps + 1e-9 and margin > 0,
                  note="effect: target − generation eps (the selection spends the target itself)",
                  effect=margin, interval=(margin, margin), exact=True)]


# computed from the holdout's or the training records' labels without noise: NOT private, kept in debug/ only
NON_PRIVATE_PROMPT_FIELDS = ("holdout_accuracies", "holdout_accuracy", "steps")


def split_non_private(prompts: dict) -> tuple[dict, dict]:
    """(publishable, debug) views of the prompts record: the non-private statistics move to the debug view.

    What stays is what each method releases (its prompts; for DP-OPT the DP outputs and their eps). ICL, OPT and
    DLN-1 prompts are non-private by construction (``private`` says so per method).
    """
    public, debug = {}, {}
    for method, entry in prompts.items():
        public[method] = {key: value for key, value in entry.items() if key not in NON_PRIVATE_PROMPT_FIELDS}
        public[method]["private"] = method == "dp-opt"
        debug[method] = {key: value for key, value in entry.items() if key in NON_PRIVATE_PROMPT_FIELDS}
    return public, debug


def _results(config: DPOptConfig, state: dict, started: float, data, max_queries: int, ctx) -> dict:
    prompts = state["prompts"]
    if ctx.is_main_process:
        public, debug = split_non_private(prompts)
        ctx.artifact("prompts.json").write_text(json.dumps(public, indent=2, default=str))
        ctx.artifact("debug/prompts.json").write_text(json.dumps(debug, indent=2, default=str))
    rows, metrics = [], {}
    for key, acc in state["test"].items():
        model_name, method = key.split("|")
        entry = prompts[method]
        rows.append({"model": model_name, "method": method, "test_accuracy": round(100 * acc, 2),
                     "paper": PAPER_TABLE[config.task].get(method), "eps": entry.get("total_eps", "—"),
                     "queries": entry.get("queries", 0), "prompt": entry["selected"][:120]})
        metrics[f"acc/{method}" if model_name == config.model else f"acc/{model_name}/{method}"] = acc
    dp = prompts.get("dp-opt", {})
    by_model = dp.get("privacy_by_model", {})
    for model, spent in by_model.items():
        metrics.update({f"eps_spent_{model}": spent["total_eps"], f"generation_eps_{model}": spent["generation_eps"],
                        f"generation_delta_{model}": spent["generation_delta"]})
    metrics.update({"eps_spent": dp.get("total_eps"), "generation_eps": dp.get("generation_eps"),
                    "generation_delta": dp.get("generation_delta"), "dp_queries": dp.get("queries"),
                    "max_queries_at_target": max_queries, "n_train": len(data.train),
                    "n_holdout": len(data.holdout), "n_test": len(data.test),
                    "wall_time_s": state["elapsed"] + time.time() - started})
    own = {method: state["test"].get(f"{config.model}|{method}") for method in config.methods}
    correct = {method: state["test_correct"][f"{config.model}|{method}"] for method in config.methods
               if f"{config.model}|{method}" in state.get("test_correct", {})}
    claims = [*accuracy_claims(config.task, config.target_eps, own, correct, ctx.seed),
              *privacy_claims(config.target_eps, dp)]
    privacy = {"headline_model": config.ld_privacy_model, "by_model": by_model,
               "note": "eps_spent, generation_eps/delta and the budget stop use headline_model"} if dp else {}
    return {"metrics": metrics, "claims": claims, "tables": {"accuracy": rows}, "privacy": privacy}


SMOKE = DPOptConfig(model="tiny-random", num_voters=6, demos_per_voter=2, num_prompts=2, max_new_tokens=3,
                    max_train=200, max_holdout=8, max_test=8, eps0=3.0, target_eps=20.0, eval_batch_size=8,
                    dln_steps=2, dln_candidates=2, dln_demos=3, dln_max_new_tokens=3)
# quick: SmolLM2 on a 2-core CPU. J=24 voters of m=2 demos on n=2,000 training records: q=0.024, where the accountant
# allows 485 LD queries at eps=8 (far more than the N·L·2 = 24 this run can use); J=24 is about the smallest ensemble
# whose top token can clear the LD threshold (9.4 votes above the 11th count) with margin. N=2 prompts of L=6 tokens,
# 60 holdout and 150 test examples keep one task within about half an hour on a shared 2-core machine.
QUICK = DPOptConfig(model="smollm2-135m-instruct", num_voters=24, demos_per_voter=2, num_prompts=2, max_new_tokens=6,
                    max_train=2000, max_holdout=60, max_test=150, strip_trailing_space=True,
                    # DLN-1 reduced like OPT (not yet run at this scale): 3 steps of 4 candidates, 8 demos, 20 tokens
                    dln_steps=3, dln_candidates=4, dln_demos=8, dln_max_new_tokens=20)
PAPER = DPOptConfig(model="lmsys/vicuna-7b-v1.3")
# many-voters: the small-model setting where DP-OPT releases tokens (J = 64 voters of m = 1 demo; with quick's
# J = 24, m = 2 no token clears the LimitedDomain threshold on TREC, MPQA, Disaster), against 0-shot; otherwise
# quick (N = 2 prompts of L = 6 tokens, n = 2,000: q = 0.032). One command for its table (README):
#   repro run dp-opt:many-voters --scale quick --grid task=sst2,trec,mpqa,disaster --grid seed=0,1,2
MANY_VOTERS_QUICK = replace(QUICK, methods=("0-shot", "dp-opt"), num_voters=64, demos_per_voter=1)
# tour (`repro reproduce`): the paper's headline, "a DP-OPT prompt (eps = 8) beats the 0-shot instruction", and its
# privacy budget, on MPQA with SmolLM2 — the task where quick measured a clear gain (80.0 vs 70.7 with J = 64, m = 1).
# Only 0-shot and DP-OPT run: J = 64 voters of m = 1 demo (on MPQA with quick's J = 24 the voters do not agree: no
# token is released), one prompt of L = 4 tokens (quick: 2 prompts of 6), so the private selection is the Gumbel
# argmax over one candidate; a 20-sentence holdout and 150 test sentences. A DP token costs one batched forward of
# 64 meta-prompts plus the forward-pass labels of their 64 demos; with each record's scoring context reused across
# label words three seeds fit the budget (times: see the README): each claim gets a t interval over the seeds, and
# each run a paired bootstrap interval over the test sentences. Left to quick: OPT, ICL, DLN-1, the other tasks,
# N = 2 prompts of 6 tokens with private selection, J = 24 (and `many-voters` for the other tasks at J = 64).
TOUR_TOKENS, TOUR_TEST = 4, 150
TOUR = replace(QUICK, task="mpqa", methods=("0-shot", "dp-opt"), num_voters=64, demos_per_voter=1, num_prompts=1,
               max_new_tokens=TOUR_TOKENS, max_holdout=20, max_test=TOUR_TEST)
TOUR_SEEDS = (0, 1, 2)
# ctx.dtype is the dtype the models are loaded in (scores and sampling are computed in float32 from their logits)
DTYPES = ("fp32", "bf16", "fp16")


def experiments() -> list[Experiment]:
    """Every experiment this package registers (smoke, quick and paper configs; main-table also a tour config):
    ``main-table``, ``many-voters`` (J = 64, m = 1 against 0-shot) and ``transfer``."""
    from .data import datasets
    main = {"smoke": SMOKE, "quick": QUICK, "paper": PAPER, "tour": TOUR}
    transfer = {"smoke": replace(SMOKE, eval_models=("tiny-random:1",), methods=("0-shot", "dp-opt")),
                # the only model available offline is SmolLM2 itself: quick transfer evaluates it in bfloat16
                # is not done; set eval_models to any causal LM you have (see README)
                "quick": replace(QUICK, methods=("0-shot", "dp-opt")),
                "paper": replace(PAPER, eval_models=("lmsys/vicuna-33b-v1.3", "meta-llama/Llama-2-13b-chat-hf",
                                                     "meta-llama/Llama-2-70b-chat-hf"))}
    many_voters = {"smoke": replace(SMOKE, methods=("0-shot", "dp-opt"), num_voters=12, demos_per_voter=1),
                   "quick": MANY_VOTERS_QUICK,
                   # the paper has no such setting: at paper scale this is its own J = 205, m = 5
                   "paper": replace(PAPER, methods=("0-shot", "dp-opt"))}
    return [
        Experiment("main-table", "0-shot / ICL / OPT / DP-OPT / DLN-1 prompts for one task (paper's main table)", main,
                   run_dp_opt, check_inputs, tour_seeds=TOUR_SEEDS, dtypes=DTYPES, datasets=datasets()),
        Experiment("many-voters", "DP-OPT with J = 64 voters of one demo against 0-shot (the small-model setting)",
                   many_voters, run_dp_opt, check_inputs, dtypes=DTYPES, datasets=datasets()),
        Experiment("transfer", "DP-OPT and 0-shot prompts evaluated on further models (paper's transfer table)",
                   transfer, run_dp_opt, check_inputs, dtypes=DTYPES, datasets=datasets()),
    ]

