"""Many runs in a row (``repro run --all``, ``repro reproduce``): each one isolated from the others' failures.

Every planned run is started with resume semantics: a complete run is skipped, an interrupted or failed one continues
from its last checkpoint, a new one starts. A run that raises — any exception type, not only bad input — is recorded
as failed and the batch goes on; the runs root's report is rewritten after every run, listing failed and missing
runs; the batch's outcome names them so that the command can exit with status 1.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ReproError
from .experiments import Experiment
from .logging import get_logger
from .runs import RunDir, RunOptions

log = get_logger(__name__)


@dataclass(frozen=True)
class PlannedRun:
    """One run of a batch: the experiment and its options (scale, seed, out, ...)."""

    experiment: Experiment
    options: RunOptions

    @property
    def run_dir(self) -> RunDir:
        return RunDir.for_experiment(self.options.out, self.experiment, self.options.run_name())

    @property
    def label(self) -> str:
        return f"{self.experiment.id} ({self.options.run_name()})"


@dataclass
class BatchOutcome:
    """What a batch did: the run directories that completed, and the runs that failed with their one-line reason."""

    completed: list[Path] = field(default_factory=list)
    failed: list[tuple[PlannedRun, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


Runner = Callable[[PlannedRun], Path]


def run_batch(plan: Sequence[PlannedRun], out: Path, runner: Runner | None = None) -> BatchOutcome:
    """Run ``plan`` in order; survive any failure; rewrite ``out``'s report after every run."""
    from .report import write_report

    runner = runner or _run_here
    outcome = BatchOutcome()
    expected = [planned.run_dir.path for planned in plan]
    started = time.monotonic()
    for index, planned in enumerate(plan, start=1):
        planned = dataclasses.replace(planned, options=dataclasses.replace(planned.options, resume=True))
        log.info("[%d/%d] %s", index, len(plan), planned.label)
        try:
            outcome.completed.append(runner(planned))
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # one broken experiment must not stop the others
            reason = _one_line(error)
            outcome.failed.append((planned, reason))
            print(f"repro: {planned.label}: failed: {reason}", file=sys.stderr)
            log.debug("%s failed:\n%s", planned.label, traceback.format_exc())
        try:
            write_report(out, expected=expected)
        except Exception as error:  # the report must not end the batch either
            log.warning("could not write the report of %s: %s", out, error)
    outcome.seconds = time.monotonic() - started
    return outcome


def _run_here(planned: PlannedRun) -> Path:
    from .launch import build_run_config
    from .runs import execute

    config = build_run_config(planned.experiment, planned.options)
    return execute(planned.experiment, config, planned.options).path


def _one_line(error: BaseException) -> str:
    if isinstance(error, ReproError):
        return str(error)
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def failure_summary(outcome: BatchOutcome, total: int) -> str:
    """One line naming every failed run."""
    names = ", ".join(planned.label for planned, _ in outcome.failed)
    return f"{len(outcome.failed)} of {total} runs failed: {names}"
