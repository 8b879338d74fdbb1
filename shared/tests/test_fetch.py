"""`repro data fetch`: files from their sources or a mirror, every one SHA-256 verified, nothing half-written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from repro_shared import data, fetch
from repro_shared.cli import main
from repro_shared.data import DatasetSpec
from repro_shared.errors import ConfigError, DataIntegrityError, NotFoundError
from repro_shared.fetch import (
    ConcatTables,
    DataFile,
    HeadCsvRows,
    HeadJson,
    HeadLines,
    HubFile,
    Url,
    fetch_datasets,
    merge_specs,
    select_specs,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
RAW = f"https://raw.example.org/owner/repo/{COMMIT}"
TRAIN = b'{"t": "a"}\n{"t": "b"}\n{"t": "c"}\n'
TEST = b"sentence\tlabel\nx\t1\n"
EXTRA = b"sentence\tlabel\ny\t0\nz\t1\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeTransport(fetch.Transport):
    """Serves fixed bytes per source and records what was asked for (there is no network in tests)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__()
        self.files, self.asked = files, []

    def get(self, source: fetch.Source) -> bytes:
        key = source.url if isinstance(source, Url) else f"{source.repo_id}@{source.revision}:{source.filename}"
        self.asked.append(key)
        return self.files[key]


def demo_spec(concat_sha: str | None = None) -> DatasetSpec:
    """Two derived files: the first two JSON lines of train.jsonl, and two TSV files concatenated."""
    return DatasetSpec("demo/task", required_files=("train.jsonl",), files=(
        DataFile("train.jsonl", sha(b'{"t": "a"}\n{"t": "b"}\n'), (Url(f"{RAW}/train.jsonl"),),
                 HeadLines(2)),
        DataFile("sub/all.tsv", concat_sha or sha(b"sentence\tlabel\nx\t1\ny\t0\nz\t1\n"),
                 (Url(f"{RAW}/test.tsv"), Url(f"{RAW}/extra.tsv")), ConcatTables()),
    ))


def transport() -> FakeTransport:
    return FakeTransport({f"{RAW}/train.jsonl": TRAIN, f"{RAW}/test.tsv": TEST, f"{RAW}/extra.tsv": EXTRA})


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_fetch_derives_files_from_their_sources_and_verifies_them(tmp_path: Path) -> None:
    fake = transport()
    [result] = fetch_datasets([demo_spec()], tmp_path / "data", transport=fake)
    folder = tmp_path / "data" / "demo" / "task"
    assert (folder / "train.jsonl").read_bytes() == b'{"t": "a"}\n{"t": "b"}\n'
    assert (folder / "sub" / "all.tsv").read_bytes() == b"sentence\tlabel\nx\t1\ny\t0\nz\t1\n"
    assert result.written == ["train.jsonl", "sub/all.tsv"] and fake.asked == [
        f"{RAW}/train.jsonl", f"{RAW}/test.tsv", f"{RAW}/extra.tsv"]
    assert data.locate_dataset(demo_spec(), tmp_path / "data") == folder  # the layout the packages read


def test_second_fetch_keeps_verified_files_and_downloads_nothing(tmp_path: Path) -> None:
    fetch_datasets([demo_spec()], tmp_path, transport=transport())
    again = transport()
    [result] = fetch_datasets([demo_spec()], tmp_path, transport=again)
    assert again.asked == [] and result.written == [] and len(result.already_present) == 2


def test_a_damaged_local_file_is_fetched_again(tmp_path: Path) -> None:
    fetch_datasets([demo_spec()], tmp_path, transport=transport())
    (tmp_path / "demo" / "task" / "train.jsonl").write_bytes(b"damaged\n")
    [result] = fetch_datasets([demo_spec()], tmp_path, transport=transport())
    assert result.written == ["train.jsonl"]
    assert (tmp_path / "demo" / "task" / "train.jsonl").read_bytes() == b'{"t": "a"}\n{"t": "b"}\n'


def test_source_hash_mismatch_is_named_and_writes_nothing(tmp_path: Path) -> None:
    """The first file is fine, the second is not: not even the good one is written."""
    wrong = "f" * 64
    with pytest.raises(DataIntegrityError) as caught:
        fetch_datasets([demo_spec(concat_sha=wrong)], tmp_path / "data", transport=transport())
    message = caught.value.message
    assert "sub/all.tsv" in message and wrong in message and sha(b"sentence\tlabel\nx\t1\ny\t0\nz\t1\n") in message
    assert f"{RAW}/extra.tsv" in message and "nothing was written" in caught.value.hint
    assert files_under(tmp_path / "data") == []


def make_mirror(root: Path, spec: DatasetSpec, contents: dict[str, bytes]) -> Path:
    for path, content in contents.items():
        (root / spec.name / path).parent.mkdir(parents=True, exist_ok=True)
        (root / spec.name / path).write_bytes(content)
    return root


GOOD = {"train.jsonl": b'{"t": "a"}\n{"t": "b"}\n', "sub/all.tsv": b"sentence\tlabel\nx\t1\ny\t0\nz\t1\n"}


def test_from_mirror_copies_the_layout_without_any_download(tmp_path: Path) -> None:
    mirror = make_mirror(tmp_path / "mirror", demo_spec(), GOOD)
    fake = transport()
    fetch_datasets([demo_spec()], tmp_path / "data", mirror=mirror, transport=fake)
    assert fake.asked == []
    assert files_under(tmp_path / "data") == files_under(mirror) == ["demo/task/sub/all.tsv", "demo/task/train.jsonl"]
    for path, content in GOOD.items():
        assert (tmp_path / "data" / "demo" / "task" / path).read_bytes() == content


def test_corrupted_mirror_file_fails_with_its_name_and_leaves_no_file(tmp_path: Path) -> None:
    mirror = make_mirror(tmp_path / "mirror", demo_spec(), {**GOOD, "sub/all.tsv": b"sentence\tlabel\nx\t1\n"})
    with pytest.raises(DataIntegrityError, match=r"SHA-256 mismatch for sub/all\.tsv from .*mirror"):
        fetch_datasets([demo_spec()], tmp_path / "data", mirror=mirror)
    assert files_under(tmp_path / "data") == []  # no file, no temporary left behind


def test_mirror_missing_a_file_says_where_it_looked(tmp_path: Path) -> None:
    mirror = make_mirror(tmp_path / "mirror", demo_spec(), {"train.jsonl": GOOD["train.jsonl"]})
    with pytest.raises(NotFoundError, match=r"the mirror lacks .*demo/task/sub/all\.tsv"):
        fetch_datasets([demo_spec()], tmp_path / "data", mirror=mirror)
    assert files_under(tmp_path / "data") == []


def test_file_without_public_source_needs_a_mirror_and_says_so_before_downloading(tmp_path: Path) -> None:
    spec = DatasetSpec("only-local", files=(
        DataFile("a.txt", sha(b"A"), (Url(f"{RAW}/a.txt"),)),
        DataFile("b.txt", sha(b"B"), no_source="written for the offline copy; no public original"),
    ))
    fake = FakeTransport({f"{RAW}/a.txt": b"A"})
    with pytest.raises(NotFoundError) as caught:
        fetch_datasets([spec], tmp_path / "data", transport=fake)
    assert "only-local/b.txt (written for the offline copy" in caught.value.message
    assert "repro data fetch only-local --from MIRROR --to DIR" in caught.value.hint
    assert fake.asked == [] and files_under(tmp_path / "data") == []
    mirror = make_mirror(tmp_path / "mirror", spec, {"a.txt": b"A", "b.txt": b"B"})
    fetch_datasets([spec], tmp_path / "data", mirror=mirror)
    assert (tmp_path / "data" / "only-local" / "b.txt").read_bytes() == b"B"


def test_default_transport_downloads_urls_and_pinned_hub_files(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """The real Transport, with urllib and huggingface_hub replaced by fakes."""
    import huggingface_hub

    class Response:
        def __init__(self, url: str) -> None:
            self.body = f"body of {url}".encode()

        def __enter__(self):
            return self

        def __exit__(self, *args) -> None:
            pass

        def read(self) -> bytes:
            return self.body

    calls = []
    monkeypatch.setattr(fetch.urllib.request, "urlopen", lambda url, timeout: Response(url))

    def hub_download(**kwargs) -> str:
        calls.append(kwargs)
        (tmp_path / "hub.csv").write_bytes(b"q,a\n")
        return str(tmp_path / "hub.csv")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub_download)
    assert fetch.Transport().get(Url(f"{RAW}/x.txt")) == f"body of {RAW}/x.txt".encode()
    assert fetch.Transport().get(HubFile("org/set", "data/x.csv", COMMIT)) == b"q,a\n"
    assert calls == [{"repo_id": "org/set", "filename": "data/x.csv", "revision": COMMIT, "repo_type": "dataset"}]


def test_download_failure_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(url: str, timeout: float):
        raise fetch.urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(fetch.urllib.request, "urlopen", refuse)
    with pytest.raises(NotFoundError) as caught:
        fetch_datasets([demo_spec()], tmp_path / "data")
    assert f"downloading {RAW}/train.jsonl failed" in caught.value.message and "--from" in caught.value.hint
    assert files_under(tmp_path / "data") == []


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"path": "/abs/a.txt"}, "not a relative path"),
    ({"path": "../a.txt"}, "not a relative path"),
    ({"sha256": "ABC"}, "64 lowercase hex"),
    ({"sources": ()}, "give either its sources"),
    ({"no_source": "also this"}, "give either its sources"),
    ({"sources": (Url("u1"), Url("u2"))}, "need a recipe"),
])
def test_data_file_declarations_are_checked(kwargs: dict, problem: str) -> None:
    fields = {"path": "a.txt", "sha256": "0" * 64, "sources": (Url("u"),), **kwargs}
    with pytest.raises(ConfigError, match=problem):
        DataFile(**fields)


def test_head_csv_rows_keeps_header_and_quoted_multiline_records() -> None:
    source = b'label,input\r\n1,"line one\nline two"\r\n0,"say ""hi"""\r\n1,third\r\n'
    assert HeadCsvRows(2)([source]) == b'label,input\r\n1,"line one\nline two"\r\n0,"say ""hi"""\r\n'
    assert HeadCsvRows(1, header=False)([b"q1,A\nq2,B\n"]) == b"q1,A\r\n"


def test_head_json_by_shape() -> None:
    def head(value: object, n: int = 2, ensure_ascii: bool = True) -> object:
        return json.loads(HeadJson(n, ensure_ascii=ensure_ascii)([json.dumps(value).encode()]))

    assert head([1, 2, 3]) == [1, 2]
    assert head({"a": [1, 2, 3], "b": [4]}) == {"a": [1, 2], "b": [4]}
    assert head({"x@y": "X", "z@w": "Z", "q@r": "Q"}) == {"x@y": "X", "z@w": "Z"}
    assert head({"demo": {"base": [1, 2, 3]}}) == {"demo": {"base": [1, 2, 3]}}  # nested: kept whole
    assert HeadJson(1)([b'["\\u00e9", 2]']) == b'[\n "\\u00e9"\n]'
    assert HeadJson(1, ensure_ascii=False)([b'["\\u00e9", 2]']) == '[\n "é"\n]'.encode()


def test_manifest_lines_become_data_files() -> None:
    text = f"# comment\n{'a' * 64} copy dir/x y.txt\n\n{'b' * 64} head2 z.jsonl\n"
    files = fetch.files_from_manifest(text, lambda path: (Url(f"{RAW}/{path}"),), {"copy": None, "head2": HeadLines(2)})
    assert [(f.path, f.sha256[0], f.recipe, f.sources[0].url) for f in files] == [
        ("dir/x y.txt", "a", None, f"{RAW}/dir/x y.txt"), ("z.jsonl", "b", HeadLines(2), f"{RAW}/z.jsonl")]
    with pytest.raises(ConfigError, match="manifest line 1"):
        fetch.files_from_manifest(f"{'a' * 64} unknown x", lambda path: (), {"copy": None})


def test_select_by_name_or_folder_and_reject_unknown_names() -> None:
    specs = [DatasetSpec("dpopt/sst2"), DatasetSpec("dpopt/trec"), DatasetSpec("mmlu")]
    assert [s.name for s in select_specs(specs, ["dpopt"])] == ["dpopt/sst2", "dpopt/trec"]
    assert [s.name for s in select_specs(specs, ["mmlu", "dpopt/trec"])] == ["mmlu", "dpopt/trec"]
    assert select_specs(specs, []) == specs
    with pytest.raises(ConfigError, match="unknown dataset 'dpop'") as caught:
        select_specs(specs, ["dpop"])
    assert "dpopt/sst2, dpopt/trec, mmlu" in caught.value.hint


def test_packages_declaring_one_folder_are_merged_but_must_agree() -> None:
    a = DatasetSpec("dpopt/trec", files=(DataFile("train.jsonl", "1" * 64, (Url("u"),)),))
    b = DatasetSpec("dpopt/trec", files=(DataFile("train.jsonl", "1" * 64, (Url("u"),)),
                                         DataFile("test.jsonl", "2" * 64, (Url("v"),))))
    [merged] = merge_specs([a, b])
    assert [f.path for f in merged.files] == ["train.jsonl", "test.jsonl"]
    conflicting = DatasetSpec("dpopt/trec", files=(DataFile("train.jsonl", "3" * 64, (Url("u"),)),))
    with pytest.raises(ConfigError, match="two different SHA-256"):
        merge_specs([a, conflicting])


def test_missing_dataset_hint_names_repro_data_fetch(tmp_path: Path) -> None:
    spec = DatasetSpec("dpopt/mpqa", required_files=("train.jsonl",))  # no Hub copy
    with pytest.raises(NotFoundError) as caught:
        data.locate_dataset(spec, tmp_path)
    hint = caught.value.hint
    assert "repro data fetch dpopt/mpqa --to DIR" in hint and "network" not in hint and "Hub" not in hint


def test_cli_fetch_then_doctor_shows_the_dataset_present(demo_env, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path, capsys) -> None:
    from demo_experiments import DEMO_ROWS, DEMO_ROWS_URL

    assert main(["doctor"]) == 0
    before = capsys.readouterr().out
    assert "demo:needs-data" in before and "demo-set (MISSING)" in before
    assert "MISSING (repro data fetch demo-set --to DIR)" in before

    served: list[str] = []
    monkeypatch.setattr(fetch.Transport, "get", lambda self, source: served.append(source.url) or DEMO_ROWS)
    assert main(["data", "fetch", "demo-set", "--to", str(tmp_path / "data")]) == 0
    assert served == [DEMO_ROWS_URL]
    assert (tmp_path / "data" / "demo-set" / "rows.txt").read_bytes() == DEMO_ROWS

    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path / "data"))
    assert main(["doctor"]) == 0
    after = capsys.readouterr().out
    assert "demo-set (present)" in after and f"present (data dir: {tmp_path / 'data' / 'demo-set'})" in after
    assert main(["run", "demo:needs-data", "--scale", "smoke", "--out", str(tmp_path / "runs")]) == 0


def test_cli_fetch_errors_are_one_line(demo_env, tmp_path: Path, capsys) -> None:
    assert main(["data", "fetch", "no-such-set", "--to", str(tmp_path)]) == 2
    assert "unknown dataset 'no-such-set'" in capsys.readouterr().err
    assert main(["data", "fetch", "--from", str(tmp_path / "absent"), "--to", str(tmp_path / "d")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_cli_data_list_shows_files_and_sources(demo_env, capsys) -> None:
    from demo_experiments import DEMO_ROWS_URL

    assert main(["data", "list", "demo-set", "--files"]) == 0
    out = capsys.readouterr().out
    assert "demo-set: 1 file(s); five rows (demo)" in out and "rows.txt  sha256=" in out and DEMO_ROWS_URL in out
