"""The datasets the packages declare: pinned public sources, and `repro data fetch --from MIRROR` rebuilding the layout.

The offline mirror (the data-dir layout with every declared file) is looked for in ``shared/data`` of the nearest
folder above the repository root that has one (CI puts it beside the checkout); without it those tests are skipped.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import pytest
from repro_shared.cli import main
from repro_shared.experiments import discover
from repro_shared.fetch import Url, declared_datasets
from workspace import ROOT

MIRROR = next((folder / "shared" / "data" for folder in ROOT.parents if (folder / "shared" / "data").is_dir()),
              ROOT.parent / "shared" / "data")
PINNED_RAW = re.compile(r"https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/\S+")
needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason="no offline data mirror (shared/data in a "
                                  "folder above the repository root)")


def experiments_by_id() -> dict:
    return {exp.id: exp for entry in discover().values() for exp in entry.experiments}


def test_llm_experiments_declare_the_datasets_they_read() -> None:
    declared = {exp_id: [spec.name for spec in exp.datasets] for exp_id, exp in experiments_by_id().items()}
    assert declared["decoding-comp-trust:trust"] == ["decodingtrust", "mmlu"]
    assert declared["decoding-comp-trust:compress"] == ["dpopt/trec", "dpopt/sst2"]
    tasks = ["dpopt/sst2", "dpopt/trec", "dpopt/mpqa", "dpopt/disaster"]
    assert declared["dp-opt:main-table"] == declared["dp-opt:transfer"] == tasks


def test_every_declared_file_has_a_pinned_public_source() -> None:
    specs = declared_datasets()
    assert [spec.name for spec in specs] == ["decodingtrust", "dpopt/disaster", "dpopt/mpqa", "dpopt/sst2",
                                             "dpopt/trec", "mmlu"]
    for spec in specs:
        assert len({file.path for file in spec.files}) == len(spec.files), spec.name
        assert set(spec.required_files) <= {file.path for file in spec.files}, spec.name
        for file in spec.files:
            assert file.sources, f"{spec.name}/{file.path}: {file.no_source}"
            for source in file.sources:  # a commit, never a branch: the bytes behind the hash cannot move
                assert isinstance(source, Url) and PINNED_RAW.fullmatch(source.url), source


@needs_mirror
def test_fetch_from_mirror_rebuilds_the_layout_the_packages_read(tmp_path: Path, capsys) -> None:
    target = tmp_path / "data"
    assert main(["data", "fetch", "--from", str(MIRROR), "--to", str(target)]) == 0  # no name: every dataset
    specs = declared_datasets()
    for spec in specs:
        for file in spec.files:
            written = (target / spec.name / file.path).read_bytes()
            assert hashlib.sha256(written).hexdigest() == file.sha256
            assert written == (MIRROR / spec.name / file.path).read_bytes()
    fetched = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert fetched == sorted(f"{spec.name}/{file.path}" for spec in specs for file in spec.files)
    assert len(fetched) == 282

    # the packages read what was fetched (record counts of the public sources)
    from decoding_comp_trust.trust.evaluate import locate_data
    from dp_opt.data import load_task, locate_task, read_task

    train, test = read_task("trec", locate_task("trec", target))
    assert (len(train), len(test)) == (5452, 500)
    assert len(load_task("disaster", target, holdout_ratio=0.1, seed=0).test) == 1000
    root, mmlu_root = locate_data(target)
    assert root == target / "decodingtrust" and mmlu_root == target / "mmlu"
    tests = sorted((mmlu_root / "test").glob("*_test.csv"))
    assert len(tests) == 57
    assert all(len(list(csv.reader(path.open(encoding="utf-8", newline="")))) == 20 for path in tests)


@needs_mirror
def test_corrupted_mirror_file_is_named_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    mirror = tmp_path / "mirror"
    for name in ("train.jsonl", "test.jsonl"):
        (mirror / "dpopt" / "trec").mkdir(parents=True, exist_ok=True)
        (mirror / "dpopt" / "trec" / name).write_bytes((MIRROR / "dpopt" / "trec" / name).read_bytes())
    with (mirror / "dpopt" / "trec" / "test.jsonl").open("ab") as handle:
        handle.write(b'{"sentence": "an extra question?", "label": 0}\n')
    assert main(["data", "fetch", "dpopt/trec", "--from", str(mirror), "--to", str(tmp_path / "data")]) == 2
    error = capsys.readouterr().err
    assert "SHA-256 mismatch for test.jsonl" in error and "dpopt/trec" in error
    assert not any(p.is_file() for p in (tmp_path / "data").rglob("*")) if (tmp_path / "data").exists() else True
