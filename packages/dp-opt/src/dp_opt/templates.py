"""Templates of DP-OPT, verbatim from the released code (``utils/template.py``, DLN's backward template).

The forward template F(x, π) is the evaluation template; the backward meta-template B_π(S, π, z) asks the LLM to
improve the instruction π given student successes and failures on the demos S, and continues after
"Improved Instruction: " with the text z generated so far. The "Correct Ouput" typo is the code's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EVAL_TEMPLATE = "Instruction: [PROMPT]\n\nInput: [INPUT]\n\nOutput: [OUTPUT]"
# DLN-1 runs with rm_eval_item_name: no "Instruction:"/"Input:" labels
EVAL_TEMPLATE_NO_ITEM_NAMES = "[PROMPT]\n\n[INPUT]\n\nOutput: [OUTPUT]"

BACKWARD_TEMPLATE = (
    "A student is completing a task that requires producing a text output from a text input. The student receives an "
    "instruction that describes how to produce the output given each input. The student has made some errors. Your "
    "task is to improve the instruction such that the student can fix the errors.\n"
    "This was the instruction.\n\n"
    "Instruction: [INSTRUCT]\n\n"
    "# Student successes\n"
    "[full_SUC_DEMO]\n\n"
    "# Student errors\n"
    "[full_FAIL_DEMO]\n\n"
    "Improve the instruction to fix the student errors. [MSG]\n"
    "Improved Instruction: [APE]"
)
SUCCESS_DEMO = "Input: [INPUT]\nCorrect Output: [OUTPUT]"
FAILURE_DEMO = "Input: [INPUT]\nStudent Output: [OUTPUT]\nCorrect Ouput: [TARGET]"
DEMO_SEPARATOR = "\n\n"
BACKWARD_MESSAGES = (
    "Clarify the instruction by adding few words or a short sentence. Be concise",
    "Improve the instruction by providing examples on how to solve the task. Be concise.",
    "Shorten the instruction by removing superflous words or sentences.",
    "Rewrite the instruction by providing detailed information to avoid ambiguity. Be concise",
)
ICL_INSTRUCTION_HEAD = "Predict based on the following input-output pairs:\n\n"
ICL_DEMO = "Input: [INPUT]\nOutput: [OUTPUT]"


@dataclass(frozen=True)
class TaskTemplate:
    """A task's init instruction π0 (the 0-shot prompt) and its label words, index = class id."""

    init_instruction: str
    label_words: tuple[str, ...]


TASKS: dict[str, TaskTemplate] = {
    "sst2": TaskTemplate("Classify the input text as positive or negative.", ("negative", "positive")),
    "trec": TaskTemplate(
        "Read the following question, then choose whether it is about a description, entity, expression, human, "
        "location or number.",
        ("description", "entity", "expression", "human", "location", "number"),
    ),
    "mpqa": TaskTemplate("Read the following review, then choose whether it is negative or positive.",
                         ("negative", "positive")),
    "disaster": TaskTemplate("Read the following sentence, then choose whether it is relevant to a disaster.",
                             ("no", "yes")),
}


def fill_eval_template(prompt: str, text: str, output: str, item_names: bool = True) -> str:
    """The forward template F(x, π) with the label word (or '' for the scoring context)."""
    template = EVAL_TEMPLATE if item_names else EVAL_TEMPLATE_NO_ITEM_NAMES
    return template.replace("[PROMPT]", prompt).replace("[INPUT]", text).replace("[OUTPUT]", output)


@dataclass(frozen=True)
class Demo:
    """One demonstration for the backward template: input, predicted label word ŷ and true label word y."""

    text: str
    predicted: str
    target: str

    @property
    def correct(self) -> bool:
        return self.predicted == self.target


def format_demo(demo: Demo) -> str:
    """A success demo when ŷ = y, a failure demo otherwise."""
    if demo.correct:
        return SUCCESS_DEMO.replace("[INPUT]", demo.text).replace("[OUTPUT]", demo.target)
    return (FAILURE_DEMO.replace("[INPUT]", demo.text).replace("[OUTPUT]", demo.predicted)
            .replace("[TARGET]", demo.target))


def backward_prefix(instruction: str) -> str:
    """The part of B_π that no demo changes (shared by all J meta-prompts; its KV cache is reused)."""
    return BACKWARD_TEMPLATE.split("[full_SUC_DEMO]")[0].replace("[INSTRUCT]", instruction)


def backward_suffix(demos: Sequence[Demo], message: str, generated: str = "") -> str:
    """The demo-dependent rest of B_π(S, π, z): successes, errors, message and the text generated so far."""
    successes = DEMO_SEPARATOR.join(format_demo(d) for d in demos if d.correct)
    failures = DEMO_SEPARATOR.join(format_demo(d) for d in demos if not d.correct)
    rest = "[full_SUC_DEMO]" + BACKWARD_TEMPLATE.split("[full_SUC_DEMO]")[1]
    return (rest.replace("[full_SUC_DEMO]", successes).replace("[full_FAIL_DEMO]", failures)
            .replace("[MSG]", message).replace("[APE]", generated))


def backward_meta_prompt(instruction: str, demos: Sequence[Demo], message: str, generated: str = "") -> str:
    """The full backward meta-prompt B_π(S, π, z) (prefix + suffix)."""
    return backward_prefix(instruction) + backward_suffix(demos, message, generated)


def icl_instruction(demos: Sequence[tuple[str, str]]) -> str:
    """The ICL baseline's instruction: a head line and "Input: x\\nOutput: label" demos (eval_opt.py --mode=ICL)."""
    body = DEMO_SEPARATOR.join(ICL_DEMO.replace("[INPUT]", x).replace("[OUTPUT]", y) for x, y in demos)
    return ICL_INSTRUCTION_HEAD + body
