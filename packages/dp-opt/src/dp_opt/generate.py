"""Prompt generation by an ensemble of J meta-prompts: DP-EnsGen (Algorithm 2) and its non-private variant (OPT).

Each of the J voters is the backward meta-prompt B_π(S_j, π, z) built from its own group S_j of demonstrations
(with their forward-pass predictions ŷ) and the text z generated so far; each samples its own next token at
temperature t; the tokens form a histogram. DP-EnsGen draws a fresh Poisson sample for every token and releases the
histogram's top token through LimitedDomain; OPT draws its demos once per prompt and takes the majority vote.
The J voters run as one left-padded batch whose shared meta-template prefix is computed once (KV cache).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .accounting import LimitedDomainAccountant
from .lm import append_token, forward_with_shared_prefix
from .mechanisms import BOTTOM, LimitedDomainParams, limited_domain_top1, sample_groups
from .scoring import encode
from .templates import BACKWARD_MESSAGES, Demo, backward_meta_prompt

# record indices -> their forward-pass predictions ŷ (class ids); computed lazily by the pipeline
ForwardLabels = Callable[[np.ndarray], np.ndarray]

# fields of a ledger entry computed from the raw votes: not differentially private, kept out of published artefacts
NON_PRIVATE_FIELDS = ("top_votes",)

# voters' meta-prompts are bucketed by length so that padding is at most this share of a bucket's tokens
VOTER_BATCH_PADDING = 0.1


@dataclass(frozen=True)
class EnsembleSettings:
    """Algorithm 2's hyperparameters (paper: J=205, m=5, L=50, t=1.1, k̄=10, eps0=1.8, delta0=5e-7)."""

    num_voters: int = 205
    demos_per_voter: int = 5
    max_new_tokens: int = 50
    temperature: float = 1.1
    k_bar: int = 10
    max_retries_per_prompt: int = 5
    sequential_partition: bool = False  # the released code's partition (not privacy-correct; see mechanisms)
    use_prefix_cache: bool = True
    # End the meta-prompt at "Improved Instruction:" without the template's trailing space. With byte-level BPE
    # tokenizers (SmolLM2) a lone trailing space makes the model emit a newline first; Vicuna's SentencePiece
    # tokenizer has no such token. Off = verbatim template.
    strip_trailing_space: bool = False


class EnsembleVoters:
    """The J voters of one instruction π: meta-prompts from demo groups, one batched forward, one sample each."""

    def __init__(self, model, tokenizer, instruction: str, texts: Sequence[str], labels: Sequence[int],
                 label_words: Sequence[str], forward_labels: ForwardLabels, temperature: float,
                 torch_generator: torch.Generator, use_prefix_cache: bool = True,
                 strip_trailing_space: bool = False) -> None:
        self.model, self.tokenizer, self.instruction = model, tokenizer, instruction
        self.texts, self.labels, self.label_words = texts, labels, label_words
        self.forward_labels, self.temperature = forward_labels, temperature
        self.torch_generator, self.use_prefix_cache = torch_generator, use_prefix_cache
        self.strip_trailing_space = strip_trailing_space
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def meta_prompt(self, group: np.ndarray, message: str, predicted: np.ndarray | None = None) -> list[int]:
        """Token ids of B_π(S_j, π, '') for the records of one group (successes/failures by ŷ = y, ``predicted``)."""
        if predicted is None:
            predicted = self.forward_labels(group) if len(group) else np.array([], dtype=int)
        demos = [Demo(self.texts[i], self.label_words[int(p)], self.label_words[self.labels[i]])
                 for i, p in zip(group, predicted, strict=True)]
        text = backward_meta_prompt(self.instruction, demos, message)
        return encode(self.tokenizer, text.rstrip(" ") if self.strip_trailing_space else text)

    def meta_prompts(self, groups: Sequence[np.ndarray], rng: np.random.Generator) -> list[list[int]]:
        """One meta-prompt per group, each with a message [MSG] drawn at random from the four."""
        messages = rng.integers(len(BACKWARD_MESSAGES), size=len(groups))
        predicted = self.predicted_labels(groups)
        return [self.meta_prompt(group, BACKWARD_MESSAGES[m], labels)
                for group, m, labels in zip(groups, messages, predicted, strict=True)]

    def predicted_labels(self, groups: Sequence[np.ndarray]) -> list[np.ndarray]:
        """ŷ of every group's records from one call of forward_labels (batched, instead of J small forwards)."""
        sizes = [len(group) for group in groups]
        if not sum(sizes):
            return [np.array([], dtype=int) for _ in groups]
        predicted = self.forward_labels(np.concatenate([np.asarray(group, dtype=int) for group in groups]))
        return np.split(np.asarray(predicted, dtype=int), np.cumsum(sizes)[:-1])

    def sample(self, logits: torch.Tensor) -> list[int]:
        """Each voter samples its own token from softmax(logits / t) over the whole vocabulary."""
        probabilities = torch.softmax(logits.float() / self.temperature, dim=-1).cpu()
        return torch.multinomial(probabilities, 1, generator=self.torch_generator)[:, 0].tolist()

    def votes(self, rows: Sequence[list[int]], generated: Sequence[int]) -> list[int]:
        """The J sampled next tokens after B_π(S_j, π, z) for every voter j (one batched forward)."""
        logits, _ = forward_with_shared_prefix(self.model, [row + list(generated) for row in rows], self.pad_id,
                                               use_prefix_cache=self.use_prefix_cache,
                                               max_padding=VOTER_BATCH_PADDING if self.use_prefix_cache else None)
        return self.sample(logits[:, -1])


@dataclass
class GenerationState:
    """A prompt in progress (everything needed to resume it without repeating a query)."""

    tokens: list[int] = field(default_factory=list)
    retries: int = 0
    previous_failed: bool = False
    stop_reason: str | None = None


def dp_ens_gen_step(voters: EnsembleVoters, state: GenerationState, accountant: LimitedDomainAccountant,
                    settings: EnsembleSettings, ld_params: LimitedDomainParams, num_records: int,
                    rng: np.random.Generator, eos_ids: set[int]) -> dict | None:
    """One iteration of Algorithm 2's loop (DP-EnsGen): a ledger entry for the query made, or None when stopped.

    The entry holds (eps, delta) so far under the accountant's model (``eps``, ``delta``) and under every model
    (``eps_paper``, ``eps_conservative``, ...), and the raw ``top_votes`` (NOT private; see ``NON_PRIVATE_FIELDS``).

    Stops (``state.stop_reason``) at L tokens, at EOS, after ⊥ twice in a row at one position or more than the
    allowed retries, or before a query that would exceed the privacy budget (that query is never made).
    """
    if len(state.tokens) >= settings.max_new_tokens:
        state.stop_reason = "length"
        return None
    if not accountant.can_spend():
        state.stop_reason = "budget"
        return None
    q = settings.num_voters * settings.demos_per_voter / num_records
    groups = sample_groups(num_records, q, settings.num_voters, settings.demos_per_voter, rng,
                           sequential=settings.sequential_partition)
    histogram = Counter(voters.votes(voters.meta_prompts(groups, rng), state.tokens))
    token = limited_domain_top1(histogram, ld_params, rng)
    eps, delta = accountant.spend()
    by_model = {f"{name}_{model}": value for model, (eps_m, delta_m) in accountant.privacy_by_model().items()
                for name, value in (("eps", eps_m), ("delta", delta_m))}
    # top_votes is the raw (non-private) vote count: the caller keeps it out of the published ledger
    entry = {"query": accountant.queries, "position": len(state.tokens), "token": token, "eps": eps, "delta": delta,
             **by_model, "top_votes": histogram.most_common(1)[0][1]}
    if token is BOTTOM:
        state.retries += 1
        if state.previous_failed or state.retries > settings.max_retries_per_prompt:
            state.stop_reason = "bottom"
        state.previous_failed = True
    elif token in eos_ids:
        state.stop_reason = "eos"
    else:
        state.previous_failed = False
        state.tokens.append(int(token))
    return entry


def opt_ens_gen(voters: EnsembleVoters, settings: EnsembleSettings, num_records: int, rng: np.random.Generator,
                eos_ids: set[int]) -> tuple[list[int], np.ndarray]:
    """Algorithm 2 with eps = ∞ (OPT): one demo sample per prompt, majority vote (random tie-break), KV-cached.

    Returns the generated tokens and the records used as demos (for the leak filter).
    """
    chosen = rng.choice(num_records, min(num_records, settings.num_voters * settings.demos_per_voter), replace=False)
    groups = [chosen[j * settings.demos_per_voter:(j + 1) * settings.demos_per_voter]
              for j in range(settings.num_voters)]
    rows = voters.meta_prompts(groups, rng)
    logits, state = forward_with_shared_prefix(voters.model, rows, voters.pad_id, keep_state=True,
                                               use_prefix_cache=voters.use_prefix_cache)
    last_logits = logits[:, -1]
    tokens: list[int] = []
    while len(tokens) < settings.max_new_tokens:
        histogram = Counter(voters.sample(last_logits))
        top = max(histogram.values())
        winners = sorted(token for token, count in histogram.items() if count == top)
        token = int(winners[rng.integers(len(winners))])
        if token in eos_ids:
            break
        tokens.append(token)
        last_logits = append_token(voters.model, state, token)
    return tokens, chosen


def leaks_demo(prompt: str, demo_texts: Sequence[str]) -> bool:
    """The released code's leak filter (exam_privacy_leakage): a demo input appears verbatim in the prompt."""
    return any(text and text in prompt for text in demo_texts)
