from __future__ import annotations

import json

import numpy as np
import pytest
from repro_shared import io


class Boom(Exception):
    pass


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "r.json"
    io.atomic_write_json(target, {"a": np.float32(1.5), "b": np.arange(3)})
    assert json.loads(target.read_text()) == {"a": 1.5, "b": [0, 1, 2]}


def test_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(Boom), io.atomic_write(target) as handle:
        handle.write("half of the new con")
        raise Boom
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_unserialisable_object_leaves_nothing(tmp_path):
    target = tmp_path / "x.json"
    with pytest.raises(TypeError):
        io.atomic_write_json(target, {"x": object()})
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(Boom), io.atomic_directory(target) as tmp:
        (tmp / "weights").write_text("partial")
        raise Boom
    assert list(tmp_path.iterdir()) == []
    with io.atomic_directory(target) as tmp:
        (tmp / "weights").write_text("full")
    assert (target / "weights").read_text() == "full"
    with pytest.raises(FileExistsError), io.atomic_directory(target):
        pass


def test_jsonl_append_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "log" / "records.jsonl"
    assert io.read_jsonl(path) == []
    io.append_jsonl(path, [{"a": 1}, {"b": [2, 3]}])
    with open(path, "a", encoding="utf-8") as handle:  # a writer killed mid-record
        handle.write('{"c": ')
    assert io.read_jsonl(path) == [{"a": 1}, {"b": [2, 3]}]
    io.append_jsonl(path, [{"d": 4}])  # starts on a fresh line, so the new record is readable
    assert io.read_jsonl(path) == [{"a": 1}, {"b": [2, 3]}, {"d": 4}]
    assert path.read_text().count("\n") == 4


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_files_and_directories_follow_the_umask(tmp_path, umask):
    import os
    import stat

    old = os.umask(umask)
    try:
        io.atomic_write_text(tmp_path / "f.txt", "x")
        with io.atomic_directory(tmp_path / "d"):
            pass
        assert io.current_umask() == umask
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o777 & ~umask
