import json

import pytest
import torch
from dp_opt.models import tiny_random_lm


@pytest.fixture(scope="session")
def tiny_lm():
    torch.manual_seed(0)
    return tiny_random_lm(0)


@pytest.fixture
def data_dir(tmp_path):
    """A miniature SST-2 in the offline copy's format (TSV train, JSONL validation)."""
    folder = tmp_path / "dpopt" / "sst2"
    folder.mkdir(parents=True)
    words = ["good", "bad", "fine", "awful", "great", "poor", "nice", "dull"]
    rows = [f"{words[i % 8]} film number {i}\t{(i % 8) % 2 == 0:d}" for i in range(300)]
    (folder / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    (folder / "validation.jsonl").write_text("".join(
        json.dumps({"sentence": f"{words[i % 8]} movie {i}", "label": int((i % 8) % 2 == 0)}) + "\n"
        for i in range(40)))
    return tmp_path
