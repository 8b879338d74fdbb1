"""Domains: member/non-member split, captions, and the bad-input messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from repro_shared.errors import ConfigError
from shake_to_leak.data import DataConfig, load_domain, load_domains, pretraining_corpus


def _write(folder, n, size=8, mode="RGB"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        shape = (size, size, 3) if mode == "RGB" else (size, size)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode=mode).save(folder / f"{i}.png")


def test_photo_tiles_split_into_disjoint_members_and_nonmembers():
    config = DataConfig(domains=("photo:chelsea",), members=5, nonmembers=6, resolution=8, tiles_per_side=4)
    domain = load_domain("photo:chelsea", config)
    assert domain.members.shape == (5, 3, 8, 8) and domain.nonmembers.shape == (6, 3, 8, 8)
    assert domain.caption == "a photo of chelsea"
    assert float(domain.members.min()) >= -1 and float(domain.members.max()) <= 1
    # non-overlapping tiles: no member equals a non-member
    assert torch.cdist(domain.members.flatten(1), domain.nonmembers.flatten(1)).min() > 1e-3
    # the split is seeded
    again = load_domain("photo:chelsea", config)
    assert torch.equal(domain.members, again.members)


def test_corpus_holds_exactly_the_members():
    config = DataConfig(domains=("photo:chelsea", "digit:7"), members=3, nonmembers=2, resolution=8,
                        tiles_per_side=4)
    domains = load_domains(config)
    images, captions = pretraining_corpus(domains)
    assert len(images) == 6 and captions == ["a photo of chelsea"] * 3 + ["a photo of digit seven"] * 3


def test_folder_domain_loads(tmp_path):
    _write(tmp_path / "cats" / "members", 3)
    _write(tmp_path / "cats" / "nonmembers", 2)
    config = DataConfig(domains=(f"folder:{tmp_path / 'cats'}",), resolution=8)
    domain = load_domain(config.domains[0], config)
    assert domain.members.shape == (3, 3, 8, 8) and domain.subject == "cats"


def test_domain_without_nonmembers_is_rejected(tmp_path):
    _write(tmp_path / "d" / "members", 2)
    (tmp_path / "d" / "nonmembers").mkdir()
    config = DataConfig(domains=(f"folder:{tmp_path / 'd'}",), resolution=8)
    with pytest.raises(ConfigError, match="no nonmembers images"):
        load_domain(config.domains[0], config)


def test_domain_without_members_is_rejected(tmp_path):
    (tmp_path / "d" / "members").mkdir(parents=True)
    _write(tmp_path / "d" / "nonmembers", 2)
    config = DataConfig(domains=(f"folder:{tmp_path / 'd'}",), resolution=8)
    with pytest.raises(ConfigError, match="no members images"):
        load_domain(config.domains[0], config)


def test_wrong_size_names_the_file(tmp_path):
    _write(tmp_path / "d" / "members", 2, size=9)
    _write(tmp_path / "d" / "nonmembers", 2)
    config = DataConfig(domains=(f"folder:{tmp_path / 'd'}",), resolution=8)
    with pytest.raises(ConfigError, match=r"members/0\.png: image size 9x9, expected 8x8"):
        load_domain(config.domains[0], config)


def test_wrong_mode_names_the_file(tmp_path):
    _write(tmp_path / "d" / "members", 1, mode="L")
    _write(tmp_path / "d" / "nonmembers", 2)
    config = DataConfig(domains=(f"folder:{tmp_path / 'd'}",), resolution=8)
    with pytest.raises(ConfigError, match=r"members/0\.png: image mode L, expected RGB"):
        load_domain(config.domains[0], config)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"members": 0}, "at least one member"),
    ({"nonmembers": 0}, "at least one member and one non-member"),
    ({"domains": ("video:cats",)}, "unknown domain spec"),
    ({"domains": ()}, "empty"),
])
def test_bad_data_configs(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DataConfig(**kwargs)


def test_too_few_tiles_is_rejected():
    config = DataConfig(domains=("photo:chelsea",), members=10, nonmembers=10, resolution=8, tiles_per_side=4)
    with pytest.raises(ConfigError, match="fewer than members"):
        load_domain("photo:chelsea", config)


def test_synthetic_set_is_written_as_png_files_and_reads_back_bit_identical(tmp_path):
    from shake_to_leak.synthesize import load_image_set, quantize, save_image_set

    images = quantize(torch.rand(5, 3, 8, 8) * 2 - 1)
    assert load_image_set(tmp_path / "sp") is None
    save_image_set(images, "a photo of x", tmp_path / "sp")
    assert sorted(p.name for p in (tmp_path / "sp").iterdir()) == [f"{i:05d}.png" for i in range(5)] + ["prompt.txt"]
    loaded, prompt = load_image_set(tmp_path / "sp")
    assert prompt == "a photo of x" and torch.equal(loaded, images)
    assert torch.equal(quantize(loaded), loaded)  # 8-bit values are a fixed point


def test_folder_domain_reads_per_image_captions(tmp_path):
    import json

    _write(tmp_path / "d" / "members", 2)
    _write(tmp_path / "d" / "nonmembers", 1)
    (tmp_path / "d" / "subject.txt").write_text("ada")
    captions = {"members/0.png": "ada at a desk", "members/1.png": "ada outside", "nonmembers/0.png": "ada, 1840"}
    (tmp_path / "d" / "captions.json").write_text(json.dumps(captions))
    domain = load_domain(f"folder:{tmp_path / 'd'}", DataConfig(domains=("photo:chelsea",), resolution=8))
    assert domain.image_captions() == ["ada at a desk", "ada outside", "ada, 1840"]
    assert pretraining_corpus([domain])[1] == ["ada at a desk", "ada outside"]
    del captions["members/1.png"]
    (tmp_path / "d" / "captions.json").write_text(json.dumps(captions))
    with pytest.raises(ConfigError, match=r"no caption for 1 image\(s\), e.g. 'members/1.png'"):
        load_domain(f"folder:{tmp_path / 'd'}", DataConfig(domains=("photo:chelsea",), resolution=8))


def test_domains_without_captions_file_use_the_domain_caption():
    domain = load_domain("digit:7", DataConfig(domains=("digit:7",), members=2, nonmembers=3, resolution=8))
    assert domain.image_captions() == ["a photo of digit seven"] * 5
