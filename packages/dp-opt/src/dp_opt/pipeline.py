"""Algorithm 1 (DP-OPT / OPT) end to end, and the baselines of the paper's tables (0-shot, ICL, DLN-1).

1. forward pass: ŷ = argmax_y p_LM(y | F(x, π0)) for the training records (computed lazily, only for the records
   that some sample draws; the result is the same as computing all of them first);
2. N prompts by DP-EnsGen (or OPT's non-private ensemble), all from π0, sharing one privacy budget;
3. private selection: DP-Argmax over the prompts' correct-counts on a holdout disjoint from the training records;
4. test accuracy of the selected prompt (on the same or another model: transfer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from .accounting import LimitedDomainAccountant, selection_epsilon
from .data import Example, TaskData
from .generate import (
    NON_PRIVATE_FIELDS,
    EnsembleSettings,
    EnsembleVoters,
    GenerationState,
    dp_ens_gen_step,
    leaks_demo,
    opt_ens_gen,
)
from .lm import append_token, forward_with_shared_prefix
from .mechanisms import LimitedDomainParams, gumbel_argmax
from .scoring import ScoringOptions, accuracy, predict
from .templates import TaskTemplate, icl_instruction


def released_prompt_text(tokenizer, tokens: Sequence[int]) -> str:
    """A generated prompt as the released code keeps it: decoded, stripped, newlines replaced by two spaces."""
    return tokenizer.decode(tokens, skip_special_tokens=True).strip().replace("\n", "  ")


@dataclass(frozen=True)
class PrivacySettings:
    """Per-token (eps0, delta0) and the total target (eps, delta); target_delta None means 1/n (the paper).

    ``privacy_model`` is how the accountant charges a LimitedDomain query and so where the budget stops
    (``accounting.query_epsilon``: "paper" eps0, "conservative" 2·eps0); the ledger reports both models.
    """

    eps0: float = 1.8
    delta0: float = 5e-7
    target_eps: float = 8.0
    target_delta: float | None = None
    privacy_model: str = "paper"


class ForwardPass:
    """Algorithm 1, line 2: the predictions ŷ of π0 on training records, computed on demand and cached."""

    def __init__(self, model, tokenizer, instruction: str, examples: Sequence[Example], label_words: Sequence[str],
                 scoring: ScoringOptions) -> None:
        self.model, self.tokenizer, self.instruction = model, tokenizer, instruction
        self.examples, self.label_words, self.scoring = examples, label_words, scoring
        self.cache: dict[int, int] = {}

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        missing = sorted({int(i) for i in indices} - self.cache.keys())
        if missing:
            predicted = predict(self.model, self.tokenizer, self.instruction,
                                [self.examples[i].text for i in missing], self.label_words, self.scoring)
            self.cache.update(zip(missing, (int(p) for p in predicted), strict=True))
        return np.array([self.cache[int(i)] for i in indices], dtype=int)


class PromptGenerator:
    """Algorithm 1's generation loop: N prompts by DP-EnsGen (privacy given) or OPT (privacy None), resumable.

    ``step()`` makes one LimitedDomain query (DP) or one whole prompt (OPT); ``state_dict()`` after any step holds
    the ledger, the accountant, the prompt in progress and the random states, so a resumed run repeats no query.
    """

    def __init__(self, model, tokenizer, data: TaskData, template: TaskTemplate, settings: EnsembleSettings,
                 num_prompts: int, privacy: PrivacySettings | None, seed: int, scoring: ScoringOptions) -> None:
        self.tokenizer, self.settings, self.num_prompts, self.privacy = tokenizer, settings, num_prompts, privacy
        self.num_records = len(data.train)
        self.forward_pass = ForwardPass(model, tokenizer, template.init_instruction, data.train,
                                        template.label_words, scoring)
        self.rng = np.random.default_rng(seed)
        self.torch_generator = torch.Generator().manual_seed(seed)
        self.voters = EnsembleVoters(model, tokenizer, template.init_instruction, [e.text for e in data.train],
                                     [e.label for e in data.train], template.label_words, self.forward_pass,
                                     settings.temperature, self.torch_generator, settings.use_prefix_cache,
                                     settings.strip_trailing_space)
        self.eos_ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        self.prompts: list[str] = []
        self.stop_reasons: list[str] = []
        self.ledger: list[dict] = []  # publishable: what was released and its (eps, delta)
        self.debug_ledger: list[dict] = []  # per query, the raw vote counts (NOT private)
        self.current = GenerationState()
        self.budget_exhausted = False
        self.accountant = None
        if privacy is not None:
            self.accountant = LimitedDomainAccountant(
                q=settings.num_voters * settings.demos_per_voter / self.num_records, eps0=privacy.eps0,
                delta0=privacy.delta0, target_eps=privacy.target_eps, target_delta=self.target_delta,
                privacy_model=privacy.privacy_model)
            self.ld_params = LimitedDomainParams(privacy.eps0, privacy.delta0, len(tokenizer), settings.k_bar)

    @property
    def target_delta(self) -> float:
        assert self.privacy is not None
        return self.privacy.target_delta if self.privacy.target_delta is not None else 1.0 / self.num_records

    def done(self) -> bool:
        return len(self.prompts) >= self.num_prompts or self.budget_exhausted

    def step(self) -> list[dict]:
        """Advance by one query (DP) or one prompt (OPT); returns the new (publishable) ledger entries."""
        if self.privacy is None:
            return self._opt_prompt()
        entry = dp_ens_gen_step(self.voters, self.current, self.accountant, self.settings, self.ld_params,
                                self.num_records, self.rng, self.eos_ids)
        entries = []
        if entry is not None:
            self.debug_ledger.append({"query": entry["query"], **{k: entry.pop(k) for k in NON_PRIVATE_FIELDS}})
            entry = {"prompt": len(self.prompts), **entry}
            self.ledger.append(entry)
            entries.append(entry)
        if self.current.stop_reason is not None:
            # a budget stop ends every prompt; the partial prompt is kept (released code)
            self.budget_exhausted = self.current.stop_reason == "budget"
            self._finish(self.current.tokens, self.current.stop_reason)
            self.current = GenerationState()
        return entries

    def _opt_prompt(self) -> list[dict]:
        tokens, demos = opt_ens_gen(self.voters, self.settings, self.num_records, self.rng, self.eos_ids)
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)  # the leak filter sees the raw text
        leaked = leaks_demo(text, [self.voters.texts[i] for i in demos])
        self._finish(tokens, "leak" if leaked else "done")
        return []

    def _finish(self, tokens: list[int], reason: str) -> None:
        self.prompts.append(released_prompt_text(self.tokenizer, tokens))
        self.stop_reasons.append(reason)

    def candidate_prompts(self) -> list[str]:
        """The prompts to select from: DP keeps all; OPT drops leaking prompts and duplicates (released code)."""
        if self.privacy is not None:
            return list(self.prompts)
        kept = [p for p, reason in zip(self.prompts, self.stop_reasons, strict=True) if reason != "leak"]
        return list(dict.fromkeys(kept))

    def privacy_spent(self) -> tuple[float, float]:
        """(eps, delta) of the generation so far under the accountant's model (OPT: (inf, 1))."""
        return self.accountant.privacy() if self.accountant is not None else (float("inf"), 1.0)

    def privacy_spent_by_model(self) -> dict[str, tuple[float, float]]:
        """(eps, delta) of the generation so far under every privacy model (DP only)."""
        return self.accountant.privacy_by_model() if self.accountant is not None else {}

    def state_dict(self) -> dict:
        return {"prompts": self.prompts, "stop_reasons": self.stop_reasons, "ledger": self.ledger,
                "debug_ledger": self.debug_ledger,
                "current": vars(self.current).copy(), "budget_exhausted": self.budget_exhausted,
                "queries": self.accountant.queries if self.accountant is not None else 0,
                "rng": self.rng.bit_generator.state, "torch_rng": self.torch_generator.get_state(),
                "forward_cache": dict(self.forward_pass.cache)}

    def load_state_dict(self, state: dict) -> None:
        self.prompts, self.stop_reasons = list(state["prompts"]), list(state["stop_reasons"])
        self.ledger = list(state["ledger"])
        self.debug_ledger = list(state.get("debug_ledger", []))  # absent in checkpoints of older versions
        self.current = GenerationState(**state["current"])
        self.budget_exhausted = state["budget_exhausted"]
        if self.accountant is not None:
            self.accountant.queries = state["queries"]
        self.rng.bit_generator.state = state["rng"]
        self.torch_generator.set_state(state["torch_rng"])
        self.forward_pass.cache = dict(state["forward_cache"])


@dataclass(frozen=True)
class Selection:
    index: int
    holdout_accuracies: list[float]
    selection_eps: float


def select_prompt(model, tokenizer, prompts: Sequence[str], holdout: Sequence[Example], label_words: Sequence[str],
                  eps: float | None, rng: np.random.Generator, scoring: ScoringOptions) -> Selection:
    """Algorithm 1, last step: DP-Argmax^eps of correct-counts on the holdout (eps None: non-private argmax)."""
    counts, accuracies = [], []
    for prompt in prompts:
        acc, correct = accuracy(model, tokenizer, prompt, holdout, label_words, scoring)
        accuracies.append(acc)
        counts.append(correct)
    if eps is None:
        return Selection(int(np.argmax(counts)), accuracies, float("inf"))
    return Selection(gumbel_argmax(np.array(counts, dtype=float), eps, rng), accuracies, selection_epsilon(eps))


def icl_demos(train: Sequence[Example], label_words: Sequence[str], num_demos: int,
              rng: np.random.Generator) -> list[tuple[str, str]]:
    """Balanced ICL demos (eval_opt.py --balance_demos): num_demos // classes per class, else one per random class.

    So "5-shot" gives 4 demos on binary tasks (2 + 2) and 5 demos from 5 random classes on TREC, as in the code.
    Order as the released ``sample_demos``: classes in order of first appearance in the training set (its
    ``defaultdict`` of indices by label), each class's demos together; with fewer demos than classes, the randomly
    chosen classes in the order drawn. No shuffle.
    """
    by_class: dict[int, list[int]] = {}
    for index, example in enumerate(train):
        by_class.setdefault(example.label, []).append(index)
    per_class = num_demos // len(by_class)
    if per_class >= 1:
        chosen = [int(i) for c in by_class for i in rng.choice(by_class[c], per_class, replace=False)]
    else:
        classes = rng.choice(list(by_class), num_demos, replace=False)
        chosen = [int(rng.choice(by_class[int(c)])) for c in classes]
    return [(train[i].text, label_words[train[i].label]) for i in chosen]


def icl_prompt(train: Sequence[Example], label_words: Sequence[str], num_demos: int, rng: np.random.Generator) -> str:
    """The ICL baseline's instruction (non-private: it contains training records)."""
    return icl_instruction(icl_demos(train, label_words, num_demos, rng))


@dataclass(frozen=True)
class DLN1Settings:
    """DLN-1's hyperparameters; defaults are the released code's ``sweeps/*/dln1.yml``."""

    steps: int = 20
    num_candidates: int = 20  # backward meta-prompts (= candidate prompts) per step
    num_demos: int = 20  # demos per meta-prompt
    temperature: float = 0.7
    max_new_tokens: int = 100
    patience: int = 2  # stop after this many (cumulative) steps without improvement
    strip_trailing_space: bool = False  # as EnsembleSettings.strip_trailing_space


@dataclass
class DLN1Result:
    selected: str
    holdout_accuracy: float
    steps: list[dict] = field(default_factory=list)  # per step: instruction, candidates, accuracies, adopted


def _sample_continuation(model, row: list[int], max_new_tokens: int, temperature: float,
                         torch_generator: torch.Generator, eos_ids: set[int], pad_id: int) -> list[int]:
    """Plain sampling at temperature t from one prompt (model.generate with do_sample, KV-cached), up to EOS."""
    logits, state = forward_with_shared_prefix(model, [row], pad_id, keep_state=True)
    last = logits[:, -1]
    tokens: list[int] = []
    while len(tokens) < max_new_tokens:
        probabilities = torch.softmax(last.float() / temperature, dim=-1).cpu()
        token = int(torch.multinomial(probabilities, 1, generator=torch_generator)[0, 0])
        if token in eos_ids:
            break
        tokens.append(token)
        if len(tokens) < max_new_tokens:
            last = append_token(model, state, token)
    return tokens


def dln1(model, tokenizer, data: TaskData, template: TaskTemplate, settings: DLN1Settings, seed: int,
         scoring: ScoringOptions) -> DLN1Result:
    """The DLN-1 baseline (Sordoni et al. 2023) as the released DP-OPT code runs it (``ape_mode=bwd``); NOT private.

    Settings from the released code's ``dln1.yml`` sweeps; the backward meta-prompt is the released template.
    Starting from the init instruction π, each of ``steps`` steps:

    1. samples ``num_candidates · num_demos`` training records without replacement and evaluates the current π on
       them (forward pass, template without "Instruction:"/"Input:" labels: ``rm_eval_item_name``) to get ŷ;
    2. builds ``num_candidates`` backward meta-prompts B_π (section 2.3) of ``num_demos`` demos each (successes
       ŷ = y and failures, a random [MSG] per meta-prompt) and samples one continuation from each at temperature
       0.7, up to ``max_new_tokens`` (no ensemble, no vote);
    3. drops candidates that contain a demo input verbatim (leak filter) and duplicates, evaluates the rest on the
       holdout, and adopts the best if its holdout accuracy beats the current instruction's;
    4. stops early once ``patience`` steps (cumulative) brought no improvement.

    The holdout accuracy of π0 is the bar of the first step (assumption: the paper says "adopt the best if it
    improves" without saying how the starting instruction is scored).
    """
    scoring = replace(scoring, item_names=False)
    rng = np.random.default_rng(seed)
    torch_generator = torch.Generator().manual_seed(seed)
    eos_ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    texts, labels = [e.text for e in data.train], [e.label for e in data.train]
    current = template.init_instruction
    best_acc, _ = accuracy(model, tokenizer, current, data.holdout, template.label_words, scoring)
    result = DLN1Result(current, best_acc)
    misses = 0
    for _ in range(settings.steps):
        chosen = rng.choice(len(texts), min(len(texts), settings.num_candidates * settings.num_demos),
                            replace=False)
        groups = [chosen[j * settings.num_demos:(j + 1) * settings.num_demos]
                  for j in range(settings.num_candidates)]
        forward = ForwardPass(model, tokenizer, current, data.train, template.label_words, scoring)
        voters = EnsembleVoters(model, tokenizer, current, texts, labels, template.label_words, forward,
                                settings.temperature, torch_generator,
                                strip_trailing_space=settings.strip_trailing_space)
        rows = voters.meta_prompts(groups, rng)
        generated = [tokenizer.decode(_sample_continuation(model, row, settings.max_new_tokens,
                                                           settings.temperature, torch_generator, eos_ids, pad_id),
                                      skip_special_tokens=True) for row in rows]
        demo_texts = [texts[i] for i in chosen]
        # the leak filter sees the raw text, then strip and replace("\n", "  ") (released code's post-processing)
        candidates = list(dict.fromkeys(p.strip().replace("\n", "  ") for p in generated
                                        if not leaks_demo(p, demo_texts)))
        accuracies = [accuracy(model, tokenizer, p, data.holdout, template.label_words, scoring)[0]
                      for p in candidates]
        adopted = bool(accuracies) and max(accuracies) > best_acc
        if adopted:
            best = int(np.argmax(accuracies))
            current, best_acc = candidates[best], accuracies[best]
        else:
            misses += 1
        result.steps.append({"instruction": result.selected, "generated": generated, "candidates": candidates,
                             "holdout_accuracies": accuracies, "adopted": adopted})
        result.selected, result.holdout_accuracy = current, best_acc
        if misses >= settings.patience:
            break
    return result
