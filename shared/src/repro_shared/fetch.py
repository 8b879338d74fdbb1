"""``repro data fetch``: build the data-dir layout the packages read, from public sources, every file SHA-256 verified.

A package declares the files of each dataset (``DataFile``): the path under the dataset folder, the SHA-256 of the file
as the package reads it, and where it comes from: raw files of a public repository at a pinned commit (``Url``) or a
file of a Hugging Face Hub repo at a pinned revision (``HubFile``), turned into the file by an optional recipe (a
subset, a concatenation: deterministic code, so that the hash of its result can be recorded). A file whose public
source is unknown says so (``no_source``): only a local mirror (``--from DIR``, the same layout) can supply it.

Every file is produced and verified before the first one is written, and each is written atomically: a hash mismatch
is one error naming the file, and the target is left as it was.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, DataIntegrityError, NotFoundError
from .io import atomic_write_bytes
from .logging import get_logger

if TYPE_CHECKING:
    from .data import DatasetSpec

log = get_logger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Url:
    """A file at a fixed URL (for a repository: its raw file at a pinned commit, never a branch)."""

    url: str

    def describe(self) -> str:
        return self.url


@dataclass(frozen=True)
class HubFile:
    """One file of a Hugging Face Hub repo at a pinned revision (a commit hash)."""

    repo_id: str
    filename: str
    revision: str
    repo_type: str = "dataset"

    def describe(self) -> str:
        return f"Hub {self.repo_type} {self.repo_id}@{self.revision}: {self.filename}"


Source = Url | HubFile


# Recipes: deterministic functions from the source files' bytes (in the declared order) to the file's bytes.

@dataclass(frozen=True)
class HeadLines:
    """The first ``n`` lines of one file, as they are (JSON lines)."""

    n: int

    def __call__(self, inputs: Sequence[bytes]) -> bytes:
        (data,) = inputs
        return b"".join(data.splitlines(keepends=True)[: self.n])


@dataclass(frozen=True)
class HeadCsvRows:
    """The first ``n`` records of a CSV file (after its header, if it has one), rewritten by Python's csv writer."""

    n: int
    header: bool = True
    lineterminator: str = "\r\n"

    def __call__(self, inputs: Sequence[bytes]) -> bytes:
        (data,) = inputs
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        out = io.StringIO()
        csv.writer(out, lineterminator=self.lineterminator).writerows(rows[: self.n + int(self.header)])
        return out.getvalue().encode("utf-8")


@dataclass(frozen=True)
class HeadJson:
    """At most ``n`` items of a JSON document, re-serialised with ``json.dumps(indent, ensure_ascii)``.

    A list keeps its first ``n`` items; an object whose values are all lists keeps the first ``n`` items of each; an
    object of plain values (strings, numbers) keeps its first ``n`` keys; anything else is kept whole.
    """

    n: int
    indent: int | None = 1
    ensure_ascii: bool = True

    def __call__(self, inputs: Sequence[bytes]) -> bytes:
        (data,) = inputs
        return json.dumps(_head(json.loads(data), self.n), indent=self.indent,
                          ensure_ascii=self.ensure_ascii).encode("utf-8")


def _head(value: Any, n: int) -> Any:
    if isinstance(value, list):
        return value[:n]
    if isinstance(value, dict) and value and all(isinstance(item, list) for item in value.values()):
        return {key: item[:n] for key, item in value.items()}
    if isinstance(value, dict) and not any(isinstance(item, (list, dict)) for item in value.values()):
        return dict(list(value.items())[:n])
    return value


@dataclass(frozen=True)
class ConcatTables:
    """Delimited text files with one header line, concatenated: the first whole, the others without their header."""

    def __call__(self, inputs: Sequence[bytes]) -> bytes:
        first, *rest = inputs
        return first + b"".join(data.split(b"\n", 1)[1] if b"\n" in data else b"" for data in rest)


Recipe = Callable[[Sequence[bytes]], bytes]


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: its path in the dataset folder, the SHA-256 of its bytes, and how to obtain them."""

    path: str
    sha256: str
    sources: tuple[Source, ...] = ()
    recipe: Recipe | None = None  # None: the one source, as is
    no_source: str = ""  # why no public source is given (then only --from can supply the file)

    def __post_init__(self) -> None:
        where = f"data file {self.path!r}"
        parts = PurePosixPath(self.path).parts
        if not self.path or PurePosixPath(self.path).is_absolute() or ".." in parts:
            raise ConfigError(f"{where}: not a relative path inside the dataset folder")
        if not _SHA256.fullmatch(self.sha256):
            raise ConfigError(f"{where}: sha256 {self.sha256!r} is not 64 lowercase hex digits")
        if bool(self.sources) == bool(self.no_source):
            raise ConfigError(f"{where}: give either its sources or, when none is known, no_source (the reason)")
        if self.recipe is None and len(self.sources) > 1:
            raise ConfigError(f"{where}: {len(self.sources)} sources need a recipe that combines them")

    def describe(self) -> str:
        if not self.sources:
            return f"only from a mirror (--from): {self.no_source}"
        inputs = " + ".join(source.describe() for source in self.sources)
        return f"{inputs} -> {self.recipe!r}" if self.recipe is not None else inputs


def files_from_manifest(text: str, make_sources: Callable[[str], tuple[Source, ...]],
                        recipes: dict[str, Recipe | None]) -> tuple[DataFile, ...]:
    """``DataFile``s from manifest lines ``<sha256> <recipe name> <path>`` ("#" starts a comment).

    ``make_sources(path)`` gives the sources of a path; ``recipes`` maps each recipe name to its recipe (None: copy).
    """
    files = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(maxsplit=2)
        if len(fields) != 3 or fields[1] not in recipes:
            raise ConfigError(f"manifest line {number}: {line!r}",
                              f"write '<sha256> <recipe> <path>' with a recipe among {', '.join(recipes)}")
        sha256, recipe, path = fields
        files.append(DataFile(path, sha256, make_sources(path), recipes[recipe]))
    return tuple(files)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Transport:
    """Downloads the bytes of a source (tests replace it with a fake: no network there)."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout

    def get(self, source: Source) -> bytes:
        try:
            if isinstance(source, HubFile):
                return self._hub_file(source)
            with urllib.request.urlopen(source.url, timeout=self.timeout) as response:
                return response.read()
        except (OSError, ValueError) as error:  # URLError, HTTPError, offline Hub, unknown repo or revision
            raise NotFoundError(f"downloading {source.describe()} failed: {error}",
                                "check the network, or copy from a local mirror with --from DIR") from error

    @staticmethod
    def _hub_file(source: HubFile) -> bytes:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(repo_id=source.repo_id, filename=source.filename, revision=source.revision,
                               repo_type=source.repo_type)
        return Path(path).read_bytes()


@dataclass
class FetchResult:
    """What one dataset's fetch did."""

    name: str
    folder: Path
    written: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)


def merge_specs(specs: Iterable[DatasetSpec]) -> list[DatasetSpec]:
    """One spec per dataset name: packages may declare the same folder; their file lists must agree."""
    import dataclasses

    merged: dict[str, DatasetSpec] = {}
    for spec in specs:
        known = merged.get(spec.name)
        if known is None:
            merged[spec.name] = spec
            continue
        files = {file.path: file for file in known.files}
        for file in spec.files:
            if file.path in files and files[file.path].sha256 != file.sha256:
                raise ConfigError(f"dataset {spec.name!r}: file {file.path} is declared with two different SHA-256")
            files.setdefault(file.path, file)
        required = tuple(dict.fromkeys(known.required_files + spec.required_files))
        merged[spec.name] = dataclasses.replace(known, files=tuple(files.values()), required_files=required,
                                                hub_id=known.hub_id or spec.hub_id)
    return sorted(merged.values(), key=lambda spec: spec.name)


def declared_datasets() -> list[DatasetSpec]:
    """Every dataset the installed packages' experiments declare (``Experiment.datasets``), merged by name."""
    from .experiments import discover

    return merge_specs(spec for entry in discover().values() for experiment in entry.experiments
                       for spec in experiment.datasets)


def select_specs(specs: Sequence[DatasetSpec], names: Sequence[str]) -> list[DatasetSpec]:
    """The specs named (a folder name also selects the datasets under it: ``a`` → ``a/x``, ``a/y``); all if none."""
    if not names:
        return list(specs)
    chosen: dict[str, DatasetSpec] = {}
    for name in names:
        key = name.strip("/")
        matches = [spec for spec in specs if spec.name == key or spec.name.startswith(key + "/")]
        if not matches:
            raise ConfigError(f"unknown dataset {name!r}",
                              f"the installed packages declare: {', '.join(s.name for s in specs) or 'none'}")
        chosen.update((spec.name, spec) for spec in matches)
    return list(chosen.values())


def fetch_datasets(specs: Sequence[DatasetSpec], target: Path, mirror: Path | None = None,
                   transport: Transport | None = None) -> list[FetchResult]:
    """Write every file of ``specs`` under ``target/<name>/`` from their sources (or ``mirror/<name>/``), verified.

    Files already there with the right hash are kept. Everything is checked before anything is downloaded, and
    produced and verified before anything is written.
    """
    _check_fetchable(specs, mirror)
    transport = transport or Transport()
    results, pending = [], []
    for spec in specs:
        result = FetchResult(spec.name, target / spec.name)
        for file in spec.files:
            destination = result.folder / file.path
            if destination.is_file() and sha256_of(destination.read_bytes()) == file.sha256:
                result.already_present.append(file.path)
                continue
            data, origin = _produce(spec, file, mirror, transport)
            _verify(spec, file, data, origin)
            pending.append((destination, data))
            result.written.append(file.path)
        results.append(result)
    for destination, data in pending:
        atomic_write_bytes(destination, data)
    return results


def _check_fetchable(specs: Sequence[DatasetSpec], mirror: Path | None) -> None:
    """Fail before any download: a dataset that declares no files, a mirror that is missing, files with no source."""
    empty = [spec.name for spec in specs if not spec.files]
    if empty:
        raise ConfigError(f"dataset(s) {', '.join(empty)} declare no files to fetch",
                          "put their files into the data dir by hand (see the package README)")
    if mirror is not None:
        if not mirror.is_dir():
            raise NotFoundError(f"--from {mirror}: no such directory")
        return
    unsourced = [f"{spec.name}/{file.path} ({file.no_source})" for spec in specs for file in spec.files
                 if not file.sources]
    if unsourced:
        shown = "; ".join(unsourced[:5]) + (f"; and {len(unsourced) - 5} more" if len(unsourced) > 5 else "")
        names = " ".join(dict.fromkeys(spec.name for spec in specs))
        raise NotFoundError(f"no public source is known for: {shown}",
                            f"only a local copy can supply them: repro data fetch {names} --from MIRROR --to DIR")


def _produce(spec: DatasetSpec, file: DataFile, mirror: Path | None, transport: Transport) -> tuple[bytes, str]:
    """The file's bytes and where they came from (for messages)."""
    if mirror is not None:
        path = mirror / spec.name / file.path
        if not path.is_file():
            raise NotFoundError(f"dataset {spec.name!r}: the mirror lacks {path}",
                                f"a mirror holds the data-dir layout: MIRROR/{spec.name}/{file.path}")
        return path.read_bytes(), str(path)
    log.info("%s/%s <- %s", spec.name, file.path, file.describe())
    inputs = [transport.get(source) for source in file.sources]
    data = file.recipe(inputs) if file.recipe is not None else inputs[0]
    return data, file.describe()


def _verify(spec: DatasetSpec, file: DataFile, data: bytes, origin: str) -> None:
    actual = sha256_of(data)
    if actual != file.sha256:
        raise DataIntegrityError(
            f"dataset {spec.name!r}: SHA-256 mismatch for {file.path} from {origin}: expected {file.sha256}, "
            f"got {actual}",
            "the source changed or the copy is damaged; nothing was written",
        )
