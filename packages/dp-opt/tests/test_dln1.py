"""The DLN-1 baseline: its backward meta-prompt, a smoke run on the tiny model, determinism."""

import numpy as np
from dp_opt.data import Example, TaskData
from dp_opt.generate import EnsembleVoters
from dp_opt.pipeline import DLN1Settings, dln1
from dp_opt.scoring import ScoringOptions
from dp_opt.templates import BACKWARD_MESSAGES, TASKS


class CharTokenizer:
    """One token per character, so token ids decode back to the exact meta-prompt text."""

    pad_token_id = 0

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}


def test_dln1_backward_prompt_is_the_released_template():
    # hand-made: 3 demos, the current instruction predicts "positive" for all of them
    texts, labels = ["a fine film", "a dull film", "a great film"], [1, 0, 1]
    voters = EnsembleVoters(None, CharTokenizer(), "Classify the input text as positive or negative.", texts, labels,
                            ("negative", "positive"), lambda idx: np.ones(len(idx), dtype=int), 0.7, None)
    row = voters.meta_prompt(np.array([0, 1, 2]), BACKWARD_MESSAGES[0])
    # typed from the released backward template (template, success/failure demo formats, "\n\n" joins, [APE] = "")
    expected = (
        "A student is completing a task that requires producing a text output from a text input. The student "
        "receives an instruction that describes how to produce the output given each input. The student has made "
        "some errors. Your task is to improve the instruction such that the student can fix the errors.\n"
        "This was the instruction.\n\n"
        "Instruction: Classify the input text as positive or negative.\n\n"
        "# Student successes\n"
        "Input: a fine film\nCorrect Output: positive\n\n"
        "Input: a great film\nCorrect Output: positive\n\n"
        "# Student errors\n"
        "Input: a dull film\nStudent Output: positive\nCorrect Ouput: negative\n\n"
        "Improve the instruction to fix the student errors. Clarify the instruction by adding few words or a short "
        "sentence. Be concise\n"
        "Improved Instruction: "
    )
    assert "".join(map(chr, row)) == expected


def tiny_task():
    words = ["good", "bad", "fine", "awful"]
    examples = [Example(f"{words[i % 4]} film {i}", int(i % 2 == 0)) for i in range(60)]
    return TaskData("sst2", tuple(examples[:40]), tuple(examples[40:48]), tuple(examples[48:]))


SETTINGS = DLN1Settings(steps=2, num_candidates=2, num_demos=3, max_new_tokens=3, patience=2)


def run(tiny_lm, seed):
    model, tokenizer = tiny_lm
    return dln1(model, tokenizer, tiny_task(), TASKS["sst2"], SETTINGS, seed, ScoringOptions(batch_size=8))


def test_dln1_smoke_returns_a_prompt_and_an_accuracy(tiny_lm):
    result = run(tiny_lm, 0)
    assert isinstance(result.selected, str)
    assert 0.0 <= result.holdout_accuracy <= 1.0
    assert 1 <= len(result.steps) <= SETTINGS.steps
    for step in result.steps:
        assert len(step["generated"]) == SETTINGS.num_candidates
        assert len(step["holdout_accuracies"]) == len(step["candidates"])
    adopted = [s for s in result.steps if s["adopted"]]
    if not adopted:  # nothing improved: the init instruction stays
        assert result.selected == TASKS["sst2"].init_instruction


def test_dln1_is_deterministic_for_a_seed(tiny_lm):
    first, second = run(tiny_lm, 3), run(tiny_lm, 3)
    assert first.selected == second.selected and first.holdout_accuracy == second.holdout_accuracy
    assert [s["generated"] for s in first.steps] == [s["generated"] for s in second.steps]


def test_dln1_adopts_improvements_and_stops_after_patience(tiny_lm, monkeypatch):
    import dp_opt.pipeline as pipeline

    init = TASKS["sst2"].init_instruction

    def fake_accuracy(model, tokenizer, prompt, examples, label_words, options):
        assert options.item_names is False  # DLN-1's template (rm_eval_item_name)
        return (0.5 if prompt == init else 1.0), 0

    monkeypatch.setattr(pipeline, "accuracy", fake_accuracy)
    model, tokenizer = tiny_lm
    settings = DLN1Settings(steps=5, num_candidates=2, num_demos=3, max_new_tokens=3, patience=2)
    result = dln1(model, tokenizer, tiny_task(), TASKS["sst2"], settings, 0, ScoringOptions(batch_size=8))
    # step 1 improves on π0 (adopted), steps 2 and 3 do not improve on 1.0: early stop after 3 of 5 steps
    assert [s["adopted"] for s in result.steps] == [True, False, False]
    assert result.selected == result.steps[0]["candidates"][0] == result.steps[1]["instruction"]
    assert result.holdout_accuracy == 1.0
