"""MMLU, the benign-utility axis: 5-shot, generation-based, first character of the output.

Prompt = "The following are multiple choice questions (with answers) about {subject}.\\n\\n" + 5 dev examples +
the question ({subject} = " high school physics": the authors' `format_subject` puts a space before every
word); the prediction is the first character of the lower-cased output, upper-cased, ∈ {A, B, C, D}, else a
refusal (counted wrong). Score = micro-averaged accuracy over all subjects' questions. Raw prompt (no chat
template, and no chat post-processing: the stop-string cut and its last-character quirk do not apply), as
`scripts/mmlu_autogptq.py`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from repro_shared.errors import ConfigError

from .common import Limits, PerspectiveResult, answer_status, first_output, item_records, status_rates
from .engine import GenRequest, Sampling

CHOICES = ("A", "B", "C", "D")
PAPER_MAX_TOKENS, N_TRAIN = 16, 5


def read_csv(path: Path) -> list[list[str]]:
    """Rows [question, A, B, C, D, answer letter]; also reads the header + 0–3 answer index variant of the CSVs."""
    with open(path, encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if rows and rows[0][0] == "question" and rows[0][-1] == "answer":
        rows = rows[1:]
    return [[*row[:5], CHOICES[int(row[5])] if row[5].isdigit() else row[5].strip()] for row in rows]


def subjects(root: Path) -> list[str]:
    return sorted(p.name[: -len("_test.csv")] for p in (root / "test").glob("*_test.csv"))


def format_subject(subject: str) -> str:
    """`format_subject`: every word preceded by a space, so the prompt reads "about  high school physics"."""
    return "".join(" " + word for word in subject.split("_"))


def format_example(row: list[str], include_answer: bool = True) -> str:
    text = row[0] + "".join(f"\n{c}. {row[i + 1]}" for i, c in enumerate(CHOICES)) + "\nAnswer:"
    return text + f" {row[5]}\n\n" if include_answer else text


def prompt(subject: str, dev: list[list[str]], question: list[str], k: int = N_TRAIN) -> str:
    head = f"The following are multiple choice questions (with answers) about {format_subject(subject)}.\n\n"
    return head + "".join(format_example(row) for row in dev[:k]) + format_example(question, include_answer=False)


def validate(root: Path, only: tuple[str, ...] = ()) -> None:
    """Preflight: every evaluated subject has its dev file (the 5-shot examples)."""
    absent = [f"dev/{s}_dev.csv" for s in subjects(root) if (not only or s in only)
              and not (root / "dev" / f"{s}_dev.csv").exists()]
    if absent:
        raise ConfigError(f"the MMLU folder {root} lacks {len(absent)} dev file(s), e.g. {absent[0]}",
                          "supply MMLU's dev/ split beside test/, or leave mmlu out of perspectives")


def build(root: Path, limits: Limits, only: tuple[str, ...] = ()) -> list[GenRequest]:
    sampling = Sampling(limits.tokens(PAPER_MAX_TOKENS))
    requests = []
    for subject in subjects(root):
        if only and subject not in only:
            continue
        dev = read_csv(root / "dev" / f"{subject}_dev.csv")
        for row in limits.items(read_csv(root / "test" / f"{subject}_test.csv")):
            requests.append(GenRequest("mmlu", prompt(subject, dev, row), sampling,
                                       {"subject": subject, "label": row[5]}))
    return requests


def parse_prediction(output: str) -> str | None:
    """First character of the lower-cased output, upper-cased; None (refusal) unless A–D; empty output → None.

    Leading whitespace is skipped: Llama's SentencePiece decoding drops the space of the first generated token
    ("▁B" → "B"), byte-level BPE tokenizers (SmolLM2) keep it (" B"); without this every answer would be a refusal.
    """
    text = output.lower().lstrip()
    first = text[0].upper() if text else ""
    return first if first in CHOICES else None


def score(requests: list[GenRequest]) -> PerspectiveResult:
    outputs = [first_output(r) for r in requests]
    preds = [parse_prediction(o) for o in outputs]
    # per question, in prompt order: the items a paired bootstrap between models resamples
    correct = [int(p == r.meta["label"]) for p, r in zip(preds, requests, strict=True)]
    refused, unreadable = status_rates([answer_status(o, p is not None) for o, p in zip(outputs, preds, strict=True)])
    value = 100.0 * sum(correct) / len(requests)
    return PerspectiveResult("mmlu", value, refused,
                             {"questions": len(requests), "subjects": len({r.meta["subject"] for r in requests}),
                              "fork_refusal_rate": refused + unreadable, "correct": correct,
                              "items": item_records(["mmlu"] * len(requests), correct)},
                             unreadable=unreadable, score_unreadable_wrong=value)
