"""Atomic file output: every result file is written to a temporary sibling, flushed, then renamed into place.

An interrupted process therefore leaves either the previous file or the new one, never a half-written file.
Append-only JSON-lines logs (``append_jsonl``/``read_jsonl``) fsync each batch and skip a torn last line on reading.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success fsync and rename it over ``path``; on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes the file private; results are ordinary files
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (``os.umask`` can only set and return)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path) as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_write(path) as handle:
        json.dump(obj, handle, indent=2, sort_keys=False, default=json_default)
        handle.write("\n")


def atomic_write_yaml(path: str | os.PathLike, obj: Any) -> None:
    with atomic_write(path) as handle:
        yaml.safe_dump(obj, handle, sort_keys=False)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    import torch

    with atomic_write(path, "wb") as handle:
        torch.save(obj, handle)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; rename it to ``path`` only if the block succeeds.

    For artefacts made of several files (a ``save_pretrained`` folder): an interrupted save leaves no ``path``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~current_umask())  # mkdtemp makes it private; the finished directory should look like any other
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """Every complete record of a JSON-lines file; a torn line (a process killed mid-write) is skipped.

    A missing file has no records.
    """
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def append_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> None:
    """Append records as JSON lines and fsync them, so that a record is either on disk whole or not at all.

    A torn last line left by a killed writer is closed with a newline first, so it stays a skipped line of its own.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = path.exists() and path.stat().st_size > 0 and not ends_with_newline(path)
    with open(path, "a", encoding="utf-8") as handle:
        if torn:
            handle.write("\n")
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, default=json_default) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def ends_with_newline(path: Path) -> bool:
    """Whether a non-empty file's last byte is a newline (False: a writer was killed mid-line)."""
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def json_default(obj: Any) -> Any:
    """Serialise numpy/torch scalars and arrays and paths, which experiments naturally return."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
