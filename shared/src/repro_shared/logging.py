"""Console logging, the per-run JSONL metrics file, and progress bars."""

from __future__ import annotations

import contextlib
import json
import logging as _logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tqdm.auto import tqdm

from .io import ends_with_newline, json_default, read_jsonl

T = TypeVar("T")

_FORMAT = "%(asctime)s %(levelname).1s %(name)s: %(message)s"


def setup_logging(verbosity: int = 0) -> _logging.Logger:
    """Configure the ``repro`` logger hierarchy's console output: INFO (``-v``: DEBUG, ``-q``: WARNING)."""
    level = {-1: _logging.WARNING, 0: _logging.INFO}.get(verbosity, _logging.DEBUG if verbosity > 0 else _logging.ERROR)
    root = _logging.getLogger("repro")
    root.setLevel(_logging.DEBUG)
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    console = _logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(_logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    root.addHandler(console)
    return root


@contextlib.contextmanager
def log_to_file(path: str | os.PathLike) -> Iterator[_logging.Handler]:
    """Also write every ``repro`` record (DEBUG and up) to ``path`` while the block runs: a run's ``run.log``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = _logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(_logging.DEBUG)
    handler.setFormatter(_logging.Formatter(_FORMAT))
    root = _logging.getLogger("repro")
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        handler.close()


def log_failure(handler: _logging.Handler, error: BaseException) -> None:
    """Write ``error`` with its traceback to one handler (the run's log file), not to the console.

    The console keeps the CLI's one-line error; ``run.log`` keeps what is needed to debug it.
    """
    record = _logging.LogRecord("repro.run", _logging.ERROR, __file__, 0, "run failed: %s: %s",
                                (type(error).__name__, error), (type(error), error, error.__traceback__))
    handler.handle(record)


def get_logger(name: str) -> _logging.Logger:
    """A child of the ``repro`` logger: ``get_logger(__name__)`` in every module."""
    if name == "repro" or name.startswith("repro."):
        return _logging.getLogger(name)
    return _logging.getLogger(f"repro.{name.removeprefix('repro_shared.')}")


class MetricsLogger:
    """Appends one JSON object per line to ``metrics.jsonl``: ``{"step": ..., "time": ..., <metric>: <value>}``.

    Each line is written with a single ``write`` and flushed, so a killed process loses at most the line in flight;
    ``read_metrics`` skips a torn last line, and a new logger closes it with a newline before appending, so that
    the next record is not glued to it.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = self.path.exists() and self.path.stat().st_size > 0 and not ends_with_newline(self.path)
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the logger
        if torn:
            self._handle.write("\n")
            self._handle.flush()
        self._start = time.monotonic()

    def log(self, step: int | None = None, **metrics: Any) -> None:
        record = {"step": step, "time": round(time.monotonic() - self._start, 3), **metrics}
        self._handle.write(json.dumps(record, default=json_default) + "\n")
        self._handle.flush()

    def size(self) -> int:
        self._handle.flush()
        return self.path.stat().st_size

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All complete records of a metrics file (a torn final line from a killed process is skipped)."""
    return read_jsonl(path)


def progress(iterable: Iterable[T], desc: str, total: int | None = None, disable: bool | None = None,
             **kwargs: Any) -> Iterator[T]:
    """A tqdm bar on stderr; shown on a terminal, and also in logs when ``REPRO_PROGRESS=1`` (CI, SLURM).

    ``disable=True`` hides it whatever the environment says (a caller's own quiet mode).
    """
    forced = os.environ.get("REPRO_PROGRESS")
    if disable is None and forced is not None:
        disable = forced in ("0", "false", "no")
    return tqdm(iterable, desc=desc, total=total, disable=disable, dynamic_ncols=True, leave=False, **kwargs)

