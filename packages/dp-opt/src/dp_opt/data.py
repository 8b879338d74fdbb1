"""The four tasks of DP-OPT (SST-2, TREC, MPQA, Disaster): a local copy wins, else the Hub (SST-2, TREC).

Local files are in the formats of the paper's public sources, and ``repro data fetch dpopt --to DIR`` builds them
(``DATASETS``: every file with its SHA-256 and source): SST-2's training sentences are the two halves of the GLUE
training set as the ALPS repository (``forest-snow/alps``, ``data/SST-2/{train,dev}.tsv``) splits it, concatenated
into ``train.tsv``; its validation set (DP-OPT's test set), TREC and MPQA are Ordered-Prompt's copies
(``yaolu/Ordered-Prompt``, ``data/<task>/``; SST-2's ``dev.jsonl`` becomes ``validation.jsonl``); Disaster is the
leopard repository's ``disaster_eval.json`` (``iesl/leopard``, ``data/json/disaster/``). Without a local copy, SST-2
comes from the Hub's ``nyu-mll/glue`` (config ``sst2``, the paper's ``load_dataset('glue','sst2')``) and TREC from
``CogComp/trec`` (coarse labels, mapped to the paper's class order); MPQA and Disaster have no Hub copy matching the
paper's files, so they need the local copy. Split rules (released code, ``utils/data.py``): the test set is the
original test/validation split; the holdout used for private selection is a ``holdout_ratio`` fraction of the
training set drawn with ``RandomState(seed)`` and removed from it. Disaster has one file: it is shuffled with
``RandomState(42)`` and its first 1,000 rows are the test set (the DLN loader's rule).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from repro_shared.data import DatasetSpec, load_hub_dataset, locate_dataset
from repro_shared.errors import ConfigError, NotFoundError
from repro_shared.fetch import ConcatTables, DataFile, Url

from .templates import TASKS

REQUIRED_FILES = {
    "sst2": ("train.tsv", "validation.jsonl"),
    "trec": ("train.jsonl", "test.jsonl"),
    "mpqa": ("train.jsonl", "test.jsonl"),
    "disaster": ("disaster_eval.json",),
}
# task -> (Hub dataset, config, test split, text column, label column); MPQA and Disaster: local copies only
HUB_SOURCES = {
    "sst2": ("nyu-mll/glue", "sst2", "validation", "sentence", "label"),
    "trec": ("CogComp/trec", None, "test", "text", "coarse_label"),
}
# CogComp/trec's coarse labels (ABBR, ENTY, DESC, HUM, LOC, NUM) -> the paper's order (description, entity,
# expression = ABBR, human, location, number), checked on the Ordered-Prompt copy's examples
TREC_HUB_LABELS = {0: 2, 1: 1, 2: 0, 3: 3, 4: 4, 5: 5}
DISASTER_TEST_SIZE = 1000

# Public repositories at the commits the local copies were taken from: (repository, commit).
ORDERED_PROMPT = ("yaolu/Ordered-Prompt", "975d1e2f70ecac895a7ae236ae1962ec748d51b2")
ALPS = ("forest-snow/alps", "3c7ef2c98249fc975a897b27f275695f97d5b7a9")
LEOPARD = ("iesl/leopard", "024ee5fdd7c1117720336516f0b6047cec6ee8a5")


def github_raw(repository: tuple[str, str], path: str) -> Url:
    """A file of a public GitHub repository at a pinned commit."""
    name, commit = repository
    return Url(f"https://raw.githubusercontent.com/{name}/{commit}/{path}")


# task -> its files: path in the task folder, SHA-256, and public source(s)
TASK_FILES = {
    "sst2": (DataFile("train.tsv", "8621df47b79e9b3fa010405ef4dd506cbf483319cf851f20f2b6773f61d387b5",
                      (github_raw(ALPS, "data/SST-2/train.tsv"), github_raw(ALPS, "data/SST-2/dev.tsv")),
                      ConcatTables()),
             DataFile("validation.jsonl", "ae29625f0e2d8e9065a651f6a214d6ec569f8a475f1baf474ab779b09898f049",
                      (github_raw(ORDERED_PROMPT, "data/sst2/dev.jsonl"),))),
    "trec": (DataFile("train.jsonl", "a0aeddb43e902809a167a198b0731fe83eedb2f8177dccd7fa9113e083e7bd54",
                      (github_raw(ORDERED_PROMPT, "data/trec/train.jsonl"),)),
             DataFile("test.jsonl", "1dcdbf856b9f0e561c6c75cac4587968f996ea0f83f82d00a0d893639bec389d",
                      (github_raw(ORDERED_PROMPT, "data/trec/test.jsonl"),))),
    "mpqa": (DataFile("train.jsonl", "1c75f1be0bfc47b979c9d523bdaeb848458534210f264786dc4c3951c36c2a47",
                      (github_raw(ORDERED_PROMPT, "data/mpqa/train.jsonl"),)),
             DataFile("test.jsonl", "76bb31c45d3cfa63e14fbe7b912d0172a14971ec5013d0a3eeae75559e8b337c",
                      (github_raw(ORDERED_PROMPT, "data/mpqa/test.jsonl"),))),
    "disaster": (DataFile("disaster_eval.json", "44bc8a4c73644ff210f111149b68bfd650c983e0e3f9b5cac6c98e0c6806cdf0",
                          (github_raw(LEOPARD, "data/json/disaster/disaster_eval.json"),)),),
}


@dataclass(frozen=True)
class Example:
    text: str
    label: int


@dataclass(frozen=True)
class TaskData:
    """Train (for generation), holdout (for private selection, disjoint from train) and test examples of one task."""

    name: str
    train: tuple[Example, ...]
    holdout: tuple[Example, ...]
    test: tuple[Example, ...]


def dataset_spec(task: str) -> DatasetSpec:
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}", f"use one of {', '.join(TASKS)}")
    return DatasetSpec(f"dpopt/{task}", required_files=REQUIRED_FILES[task], files=TASK_FILES[task],
                       description=f"DP-OPT task {task}")


def datasets() -> tuple[DatasetSpec, ...]:
    """The four tasks' datasets (for ``Experiment.datasets``: `repro doctor` and `repro data fetch`)."""
    return tuple(dataset_spec(task) for task in TASKS)


def locate_task(task: str, data_dir: str | Path | None) -> Path:
    """The folder with the task's files (raises NotFoundError at once when absent)."""
    return locate_dataset(dataset_spec(task), data_dir)


def _read_jsonl(path: Path, text_key: str = "sentence") -> list[Example]:
    with open(path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [Example(row[text_key].strip(), int(row["label"])) for row in rows]


def _read_sst2_tsv(path: Path) -> list[Example]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [Example(row["sentence"].strip(), int(row["label"])) for row in reader]


def _read_disaster(path: Path) -> tuple[list[Example], list[Example]]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    labels = {"Not Relevant": 0, "Relevant": 1}
    examples = [Example(row["sentence1"].strip(), labels[row["label"]]) for row in rows if row["label"] in labels]
    order = np.random.RandomState(42).permutation(len(examples))
    shuffled = [examples[i] for i in order]
    return shuffled[DISASTER_TEST_SIZE:], shuffled[:DISASTER_TEST_SIZE]


def read_task(task: str, folder: Path) -> tuple[list[Example], list[Example]]:
    """(train, test) examples of a task from its folder."""
    if task == "sst2":
        return _read_sst2_tsv(folder / "train.tsv"), _read_jsonl(folder / "validation.jsonl")
    if task == "disaster":
        return _read_disaster(folder / "disaster_eval.json")
    return _read_jsonl(folder / "train.jsonl"), _read_jsonl(folder / "test.jsonl")


def split_task(task: str, train: list[Example], test: list[Example], holdout_ratio: float, seed: int,
               max_train: int | None = None, max_test: int | None = None) -> TaskData:
    """Carve the holdout out of train (RandomState(seed), as the released code), then optionally subsample.

    ``max_train``/``max_test`` (quick scale) keep a seeded random subset; the privacy accounting then refers to the
    subset, which is the private dataset of that run.
    """
    rng = np.random.RandomState(seed)
    holdout_index = rng.choice(len(train), int(len(train) * holdout_ratio), replace=False)
    in_holdout = np.zeros(len(train), dtype=bool)
    in_holdout[holdout_index] = True
    rest = [example for example, held in zip(train, in_holdout, strict=True) if not held]
    holdout = [train[i] for i in holdout_index]
    if max_train is not None and max_train < len(rest):
        rest = [rest[i] for i in sorted(rng.choice(len(rest), max_train, replace=False))]
    if max_test is not None and max_test < len(test):
        test = [test[i] for i in sorted(rng.choice(len(test), max_test, replace=False))]
    return TaskData(task, tuple(rest), tuple(holdout), tuple(test))


def read_hub_task(task: str) -> tuple[list[Example], list[Example]]:
    """(train, test) examples of SST-2 or TREC from the Hugging Face Hub (``HUB_SOURCES``)."""
    hub_id, config, test_split, text_key, label_key = HUB_SOURCES[task]
    dataset = load_hub_dataset(hub_id, config)
    relabel = TREC_HUB_LABELS if task == "trec" else None

    def examples(split: str) -> list[Example]:
        rows = dataset[split]
        return [Example(text.strip(), relabel[label] if relabel else int(label))
                for text, label in zip(rows[text_key], rows[label_key], strict=True)]

    return examples("train"), examples(test_split)


def load_task(task: str, data_dir: str | Path | None, holdout_ratio: float, seed: int,
              max_train: int | None = None, max_holdout: int | None = None, max_test: int | None = None) -> TaskData:
    """Load and split one task (see ``split_task``); ``max_holdout`` caps the holdout after the split."""
    try:
        train, test = read_task(task, locate_task(task, data_dir))
    except NotFoundError as local_error:
        if task not in HUB_SOURCES:
            raise
        try:
            train, test = read_hub_task(task)
        except NotFoundError as hub_error:
            raise NotFoundError(f"{local_error.message}; {hub_error.message}",
                                f"{local_error.hint}; or {hub_error.hint}") from hub_error
    data = split_task(task, train, test, holdout_ratio, seed, max_train, max_test)
    if max_holdout is not None and max_holdout < len(data.holdout):
        data = TaskData(task, data.train, data.holdout[:max_holdout], data.test)
    return data
