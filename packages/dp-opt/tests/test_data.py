"""Task loading: a local copy wins; SST-2 and TREC fall back to the Hub with the paper's labels."""

import pytest
from dp_opt import data
from dp_opt.templates import TASKS
from repro_shared.errors import NotFoundError


def fake_trec_hub(hub_id, config=None, **kwargs):
    assert (hub_id, config) == ("CogComp/trec", None)
    split = {"text": ["What does NASA stand for ?", "Who wrote Hamlet ?", "What is a fjord ?"],
             "coarse_label": [0, 3, 2]}  # ABBR, HUM, DESC in CogComp/trec's order
    return {"train": split, "test": split}


def test_trec_from_the_hub_uses_the_papers_label_order(monkeypatch):
    monkeypatch.setattr(data, "load_hub_dataset", fake_trec_hub)
    train, test = data.read_hub_task("trec")
    words = TASKS["trec"].label_words
    assert [words[example.label] for example in train] == ["expression", "human", "description"]
    assert test == train


def test_missing_local_copy_falls_back_to_the_hub(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "load_hub_dataset", fake_trec_hub)
    task = data.load_task("trec", tmp_path, holdout_ratio=0.4, seed=0)
    assert len(task.train) + len(task.holdout) == 3 and len(task.test) == 3


def test_no_local_copy_and_no_hub_names_both_places(monkeypatch, tmp_path):
    def unreachable(hub_id, config=None, **kwargs):
        raise NotFoundError(f"dataset {hub_id!r} could not be loaded from the local HF cache", "run with network")

    monkeypatch.setattr(data, "load_hub_dataset", unreachable)
    with pytest.raises(NotFoundError, match=r"dpopt/sst2.*not found.*nyu-mll/glue"):
        data.load_task("sst2", tmp_path, holdout_ratio=0.1, seed=0)


def test_tasks_without_a_hub_copy_need_the_local_one(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "load_hub_dataset", lambda *a, **k: pytest.fail("MPQA has no Hub source"))
    with pytest.raises(NotFoundError, match="dpopt/mpqa"):
        data.load_task("mpqa", tmp_path, holdout_ratio=0.1, seed=0)
