"""The datasets this package reads, with every file's SHA-256 and public source, for `repro data fetch`.

* ``decodingtrust``: a reduced copy of the ``data/`` tree of the authors' DecodingTrust fork (GitHub
  ``decoding-comp-trust/DecodingTrust``, pinned commit), licence CC BY-SA 4.0 (its ``LICENSE`` is fetched with it).
  Files under 100 KB are whole; larger ones keep their first 60 records (JSON lines; CSV rows after the header,
  rewritten by Python's csv writer; JSON list items, or the first 60 items of every list of a JSON object, written
  with ``json.dumps(indent=1)``); model generations and code are left out. The manifest names each file's recipe.
* ``mmlu``: MMLU's CSV files (Hendrycks et al., MIT licence) as a public GitHub repository redistributes them
  (``HaeChan0305/MLILAB-FedLLM``, ``data/mmlu``, pinned commit): the five ``dev`` exemplars of all 57 subjects whole,
  and the first 20 ``test`` questions of each subject (1,140 of 14,042).
* ``dpopt/trec``, ``dpopt/sst2``: the calibration and held-out text sources (see ``compress/calibration.py``); the
  same files that the DP-OPT package declares, from the same sources (SST-2 and TREC as in Ordered-Prompt's
  repository, the SST-2 training sentences from the ALPS repository's split of the GLUE training set).

Every recipe is re-run by ``repro data fetch`` and its result checked against the recorded SHA-256.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import quote

from repro_shared.data import DatasetSpec
from repro_shared.fetch import ConcatTables, DataFile, HeadCsvRows, HeadJson, HeadLines, Url, files_from_manifest

DECODINGTRUST_REPO = "decoding-comp-trust/DecodingTrust"
DECODINGTRUST_COMMIT = "0cf3fc1e77c2c38bae358c57ff2efad76b396c7e"
MMLU_REPO = "HaeChan0305/MLILAB-FedLLM"
MMLU_COMMIT = "d92730e8bacd7b3a61e551e015e40588e10234b4"
ORDERED_PROMPT = ("yaolu/Ordered-Prompt", "975d1e2f70ecac895a7ae236ae1962ec748d51b2")
ALPS = ("forest-snow/alps", "3c7ef2c98249fc975a897b27f275695f97d5b7a9")
RECIPES = {"copy": None, "lines60": HeadLines(60), "csv60": HeadCsvRows(60), "csv20": HeadCsvRows(20, header=False),
           "json60": HeadJson(60), "json60-utf8": HeadJson(60, ensure_ascii=False)}


def github_raw(repo: str, commit: str, path: str) -> Url:
    """A file of a public GitHub repository at a pinned commit."""
    return Url(f"https://raw.githubusercontent.com/{repo}/{commit}/{quote(path)}")


def _manifest(name: str, make_source) -> tuple[DataFile, ...]:
    text = resources.files(__package__).joinpath("manifests", f"{name}.txt").read_text(encoding="utf-8")
    return files_from_manifest(text, lambda path: (make_source(path),), RECIPES)


def _decodingtrust_source(path: str) -> Url:
    return github_raw(DECODINGTRUST_REPO, DECODINGTRUST_COMMIT, path if path == "LICENSE" else f"data/{path}")


DECODINGTRUST = DatasetSpec(
    "decodingtrust", hub_id="AI-Secure/DecodingTrust",
    description="DecodingTrust data tree of the authors' fork (reduced: <= 60 records per large file)",
    files=_manifest("decodingtrust", _decodingtrust_source))
MMLU = DatasetSpec(
    "mmlu", description="MMLU CSVs: dev/<subject>_dev.csv (whole), test/<subject>_test.csv (first 20 questions)",
    files=_manifest("mmlu", lambda path: github_raw(MMLU_REPO, MMLU_COMMIT, f"data/mmlu/{path}")))


def _ordered_prompt(path: str) -> tuple[Url]:
    return (github_raw(*ORDERED_PROMPT, f"data/{path}"),)


TREC_TEXT = DatasetSpec(
    "dpopt/trec", required_files=("train.jsonl", "test.jsonl"),
    description="TREC questions (Ordered-Prompt's copy): calibration text",
    files=(DataFile("train.jsonl", "a0aeddb43e902809a167a198b0731fe83eedb2f8177dccd7fa9113e083e7bd54",
                    _ordered_prompt("trec/train.jsonl")),
           DataFile("test.jsonl", "1dcdbf856b9f0e561c6c75cac4587968f996ea0f83f82d00a0d893639bec389d",
                    _ordered_prompt("trec/test.jsonl"))))
SST2_TEXT = DatasetSpec(
    "dpopt/sst2", required_files=("train.tsv", "validation.jsonl"),
    description="SST-2 sentences: held-out text (validation) and calibration text (train)",
    files=(DataFile("train.tsv", "8621df47b79e9b3fa010405ef4dd506cbf483319cf851f20f2b6773f61d387b5",
                    (github_raw(*ALPS, "data/SST-2/train.tsv"), github_raw(*ALPS, "data/SST-2/dev.tsv")),
                    ConcatTables()),
           DataFile("validation.jsonl", "ae29625f0e2d8e9065a651f6a214d6ec569f8a475f1baf474ab779b09898f049",
                    _ordered_prompt("sst2/dev.jsonl"))))

TRUST_DATASETS = (DECODINGTRUST, MMLU)
COMPRESS_DATASETS = (TREC_TEXT, SST2_TEXT)
