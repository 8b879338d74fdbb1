"""Templates verbatim from the released code (typed here independently)."""

from dp_opt.templates import (
    BACKWARD_MESSAGES,
    TASKS,
    Demo,
    backward_meta_prompt,
    backward_prefix,
    backward_suffix,
    fill_eval_template,
    icl_instruction,
)


def test_eval_template():
    expected = "Instruction: Do it.\n\nInput: a film\n\nOutput: positive"
    assert fill_eval_template("Do it.", "a film", "positive") == expected
    assert fill_eval_template("Do it.", "a film", "").rstrip() == "Instruction: Do it.\n\nInput: a film\n\nOutput:"
    assert fill_eval_template("P", "x", "y", item_names=False) == "P\n\nx\n\nOutput: y"


def test_backward_meta_prompt_exact():
    demos = [Demo("great", "positive", "positive"), Demo("bad", "positive", "negative"), Demo("ok", "negative",
                                                                                            "negative")]
    expected = (
        "A student is completing a task that requires producing a text output from a text input. The student "
        "receives an instruction that describes how to produce the output given each input. The student has made "
        "some errors. Your task is to improve the instruction such that the student can fix the errors.\n"
        "This was the instruction.\n\nInstruction: Classify.\n\n# Student successes\n"
        "Input: great\nCorrect Output: positive\n\nInput: ok\nCorrect Output: negative\n\n"
        "# Student errors\nInput: bad\nStudent Output: positive\nCorrect Ouput: negative\n\n"
        "Improve the instruction to fix the student errors. Shorten the instruction by removing superflous words or "
        "sentences.\nImproved Instruction: So far"
    )
    assert backward_meta_prompt("Classify.", demos, BACKWARD_MESSAGES[2], "So far") == expected
    assert backward_prefix("Classify.") + backward_suffix(demos, BACKWARD_MESSAGES[2], "So far") == expected


def test_messages_and_tasks():
    assert BACKWARD_MESSAGES == (
        "Clarify the instruction by adding few words or a short sentence. Be concise",
        "Improve the instruction by providing examples on how to solve the task. Be concise.",
        "Shorten the instruction by removing superflous words or sentences.",
        "Rewrite the instruction by providing detailed information to avoid ambiguity. Be concise",
    )
    assert TASKS["sst2"].init_instruction == "Classify the input text as positive or negative."
    assert TASKS["trec"].label_words == ("description", "entity", "expression", "human", "location", "number")
    assert TASKS["disaster"].label_words == ("no", "yes")
    assert TASKS["mpqa"].init_instruction == ("Read the following review, then choose whether it is negative or "
                                              "positive.")


def test_icl_instruction():
    assert icl_instruction([("a", "yes"), ("b", "no")]) == ("Predict based on the following input-output pairs:\n\n"
                                                            "Input: a\nOutput: yes\n\nInput: b\nOutput: no")
