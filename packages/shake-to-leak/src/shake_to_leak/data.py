"""Offline private domains with known members (in pre-training) and held-out non-members.

A domain is named by a spec string:

* ``photo:<name>``: one of scikit-image's sample photos (``skimage.data.<name>``), centre-cropped, resized to
  ``tiles_per_side × resolution`` and cut into non-overlapping tiles (no pixel is shared across the split);
* ``digit:<0-9>``: one class of scikit-learn's 8×8 digits, upsampled;
* ``lfw:faces``: the 100 faces of scikit-image's ``lfw_subset`` (25×25 grey);
* ``folder:<path>``: ``<path>/members/*.png`` and ``<path>/nonmembers/*.png`` (RGB, resolution × resolution), with
  an optional ``<path>/captions.json`` giving every image its own caption (``{"members/<file>": caption, …}``), as
  the released SecMI attack reads each image's caption from ``captions.npy``.

Every domain's images are shuffled with the data seed and split into ``members`` (pre-training images, the private
set of the attack) and ``nonmembers`` (same distribution, never trained on). All images of a domain share one caption,
``"a photo of <subject>"``, for members and non-members alike (the paper's same-template rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from repro_shared.errors import ConfigError

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CAPTION = "a photo of {subject}"


def check_subject_template(field_name: str, template: str) -> None:
    """ConfigError unless ``template`` is a str.format template whose only field is ``{subject}``."""
    import string

    try:
        fields = sorted({name for _, name, _, _ in string.Formatter().parse(template) if name is not None})
    except ValueError as error:
        raise ConfigError(f"{field_name}={template!r} is not a format template: {error}",
                          "e.g. 'a photo of {subject}'") from None
    if fields != ["subject"]:
        raise ConfigError(f"{field_name}={template!r}: the only field allowed is {{subject}}, and it is needed "
                          f"(found {', '.join('{' + f + '}' for f in fields) or 'none'})",
                          "e.g. 'a photo of {subject}'")


@dataclass(frozen=True)
class DataConfig:
    """The pre-training corpus: domain specs, members/non-members per domain, image size."""

    domains: tuple[str, ...] = ("photo:chelsea", "photo:astronaut", "photo:coffee")
    members: int = 24
    nonmembers: int = 24
    resolution: int = 16
    tiles_per_side: int = 8  # photo domains: the photo becomes (tiles_per_side)^2 tiles
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.domains:
            raise ConfigError("data.domains is empty", "name at least one domain, e.g. photo:chelsea")
        if self.members < 1 or self.nonmembers < 1:
            raise ConfigError(f"data.members={self.members}, data.nonmembers={self.nonmembers}: a domain needs at "
                              "least one member and one non-member for membership inference")
        for spec in self.domains:
            kind = spec.partition(":")[0]
            if kind not in LOADERS:
                raise ConfigError(f"unknown domain spec {spec!r}", f"use one of {', '.join(k + ':…' for k in LOADERS)}")


@dataclass
class Domain:
    """One domain: its caption and its member / non-member images as float tensors (N, 3, R, R) in [-1, 1]."""

    spec: str
    subject: str
    members: torch.Tensor
    nonmembers: torch.Tensor
    sources: list[str] = field(default_factory=list)
    member_captions: list[str] | None = None  # per-image captions (folder domains with captions.json)
    nonmember_captions: list[str] | None = None

    def image_captions(self) -> list[str]:
        """The caption of every member, then of every non-member: its own where given, else the domain's."""
        return ((self.member_captions or [self.caption] * len(self.members))
                + (self.nonmember_captions or [self.caption] * len(self.nonmembers)))

    @property
    def name(self) -> str:
        return self.subject.replace(" ", "-")

    @property
    def caption(self) -> str:
        return CAPTION.format(subject=self.subject)


def _to_rgb_tensor(images: np.ndarray, resolution: int) -> torch.Tensor:
    """(N, H, W[, 3]) floats in [0, 1] → (N, 3, R, R) in [-1, 1] (bilinear resize with antialiasing)."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    x = x[:, None].expand(-1, 3, -1, -1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = torch.nn.functional.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True,
                                            align_corners=False)
    return (x.clamp(0, 1) * 2 - 1).contiguous()


def _photo(name: str, config: DataConfig) -> tuple[str, np.ndarray]:
    import skimage.data
    from skimage.transform import resize

    loader = getattr(skimage.data, name, None)
    if loader is None or not callable(loader):
        raise ConfigError(f"domain photo:{name}: scikit-image has no sample photo {name!r}",
                          "e.g. chelsea, astronaut, coffee, rocket, camera, coins, brick, grass")
    img = np.asarray(loader(), dtype=np.float32)
    img = img / 255.0 if img.max() > 1.0 else img
    if img.ndim == 3 and img.shape[-1] == 4:
        img = img[..., :3]
    side = min(img.shape[:2])
    top, left = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
    size = config.tiles_per_side * config.resolution
    img = resize(img[top:top + side, left:left + side], (size, size), anti_aliasing=True)
    r, n = config.resolution, config.tiles_per_side
    tiles = [img[i * r:(i + 1) * r, j * r:(j + 1) * r] for i in range(n) for j in range(n)]
    return name, np.stack(tiles)


def _digit(label: str, config: DataConfig) -> tuple[str, np.ndarray]:
    from sklearn.datasets import load_digits

    if label not in {str(d) for d in range(10)}:
        raise ConfigError(f"domain digit:{label}: not a digit class", "use digit:0 … digit:9")
    bunch = load_digits()
    images = bunch.images[bunch.target == int(label)] / 16.0
    return f"digit {DIGIT_WORDS[int(label)]}", images


def _lfw(which: str, config: DataConfig) -> tuple[str, np.ndarray]:
    import skimage.data

    if which != "faces":
        raise ConfigError(f"domain lfw:{which}: only lfw:faces exists (the first 100 images of lfw_subset)")
    return "face", np.asarray(skimage.data.lfw_subset()[:100], dtype=np.float32)


def _folder_images(folder: Path, resolution: int) -> tuple[np.ndarray, list[str]]:
    from PIL import Image

    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    images = []
    for path in files:
        with Image.open(path) as img:
            if img.mode != "RGB":
                raise ConfigError(f"{path}: image mode {img.mode}, expected RGB", "convert it with PIL .convert('RGB')")
            if img.size != (resolution, resolution):
                raise ConfigError(f"{path}: image size {img.size[0]}x{img.size[1]}, expected {resolution}x{resolution}",
                                  "resize the images or set data.resolution")
            images.append(np.asarray(img, dtype=np.float32) / 255.0)
    stacked = np.stack(images) if images else np.zeros((0, resolution, resolution, 3), np.float32)
    return stacked, [str(f) for f in files]


def _load_folder(spec: str, path: str, config: DataConfig) -> Domain:
    root = Path(path)
    parts = {}
    for split in ("members", "nonmembers"):
        images, files = _folder_images(root / split, config.resolution)
        if not len(images):
            raise ConfigError(f"domain {spec}: no {split} images in {root / split}",
                              f"put RGB {config.resolution}x{config.resolution} PNGs in {root}/members and "
                              f"{root}/nonmembers")
        parts[split] = (images, files)
    prompt_file = root / "subject.txt"
    subject = prompt_file.read_text().strip() if prompt_file.exists() else root.name.replace("_", " ")
    captions = _folder_captions(root, {split: files for split, (_, files) in parts.items()})
    return Domain(spec, subject, _to_rgb_tensor(parts["members"][0], config.resolution),
                  _to_rgb_tensor(parts["nonmembers"][0], config.resolution), parts["members"][1],
                  captions.get("members"), captions.get("nonmembers"))


def _folder_captions(root: Path, files: dict[str, list[str]]) -> dict[str, list[str]]:
    """Per-image captions from ``root/captions.json`` ({"members/<file>": caption, ...}); {} if there is none."""
    import json

    path = root / "captions.json"
    if not path.exists():
        return {}
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON ({error})", '{"members/<file>": "<caption>", ...}') from None
    if not isinstance(table, dict) or not all(isinstance(v, str) and v.strip() for v in table.values()):
        raise ConfigError(f"{path}: must map image paths to non-empty caption strings",
                          '{"members/<file>": "<caption>", ...}')
    out = {}
    for split, names in files.items():
        keys = [f"{split}/{Path(name).name}" for name in names]
        missing = [k for k in keys if k not in table]
        if missing:
            raise ConfigError(f"{path}: no caption for {len(missing)} image(s), e.g. {missing[0]!r}",
                              "give every image under members/ and nonmembers/ a caption, or remove the file")
        out[split] = [table[k] for k in keys]
    return out


LOADERS = {"photo": _photo, "digit": _digit, "lfw": _lfw, "folder": None}


def load_domain(spec: str, config: DataConfig) -> Domain:
    """One domain's members and non-members (split with the data seed); ConfigError if either would be empty."""
    kind, _, arg = spec.partition(":")
    if kind == "folder":
        return _load_folder(spec, arg, config)
    subject, images = LOADERS[kind](arg, config)
    order = np.random.default_rng([config.seed, sum(map(ord, spec))]).permutation(len(images))
    need = config.members + config.nonmembers
    if len(images) < need:
        raise ConfigError(f"domain {spec} has {len(images)} images, fewer than members+nonmembers={need}",
                          "lower data.members/data.nonmembers" + (" or raise data.tiles_per_side"
                                                                   if kind == "photo" else ""))
    members = _to_rgb_tensor(images[order[:config.members]], config.resolution)
    nonmembers = _to_rgb_tensor(images[order[config.members:need]], config.resolution)
    return Domain(spec, subject, members, nonmembers, [f"{spec}#{i}" for i in order[:config.members]])


def load_domains(config: DataConfig) -> list[Domain]:
    domains = [load_domain(spec, config) for spec in config.domains]
    subjects = [d.subject for d in domains]
    if len(set(subjects)) != len(subjects):
        raise ConfigError(f"data.domains {config.domains} name the same subject twice")
    return domains


def domain_by_spec(domains: list[Domain], spec: str) -> Domain:
    for domain in domains:
        if domain.spec == spec:
            return domain
    raise ConfigError(f"target domain {spec!r} is not in data.domains", f"data.domains = {[d.spec for d in domains]}")


def pretraining_corpus(domains: list[Domain]) -> tuple[torch.Tensor, list[str]]:
    """All members of all domains with their captions: the pre-training set."""
    images = torch.cat([d.members for d in domains])
    captions = [c for d in domains for c in d.image_captions()[:len(d.members)]]
    return images, captions


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] → [0, 1] (the range of the extraction distance)."""
    return (images.clamp(-1, 1) + 1) / 2
