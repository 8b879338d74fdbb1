"""Devices, dtypes, threads and seeds: one place decides where and how a run computes.

``select_device("auto")`` takes the GPU when there is one (``cuda:$LOCAL_RANK`` under ``accelerate launch`` or
``torchrun``), Apple's ``mps`` next, the CPU otherwise; so a run on a CUDA machine uses it without code changes.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import ReproError

if TYPE_CHECKING:
    import torch

DeviceSpec = Literal["auto", "cpu", "cuda", "mps"] | str


def select_device(spec: DeviceSpec = "auto") -> torch.device:
    """Resolve ``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` to an available ``torch.device``, or fail with a reason."""
    import torch

    spec = (spec or "auto").strip().lower()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            raise ReproError(
                f"--device {spec}: CUDA is not available (torch {torch.__version__} is {build})",
                "use --device cpu or --device auto",
            )
        index = int(spec.split(":", 1)[1]) if ":" in spec else local_rank
        if index >= torch.cuda.device_count():
            raise ReproError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return torch.device("cuda", index)
    if spec == "mps":
        if not _mps_available():
            raise ReproError("--device mps: Apple MPS is not available here", "use --device cpu or --device auto")
        return torch.device("mps")
    raise ReproError(f"unknown device {spec!r}", "use auto, cpu, cuda, cuda:N or mps")


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def default_dtype(device: torch.device) -> torch.dtype:
    """The compute dtype policy: bf16 on GPUs that support it, fp32 everywhere else (CPU, MPS, older GPUs)."""
    import torch

    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


# Every spelling of a dtype that --dtype accepts, mapped to torch's name for it.
DTYPE_NAMES = {
    "float32": "float32", "fp32": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16",
    "float64": "float64", "fp64": "float64",
}


def canonical_dtype(name: str) -> str:
    """``fp32``/``float32`` → ``float32`` (and so on) without importing torch; unknown names are an error."""
    if name not in DTYPE_NAMES:
        raise ReproError(f"unknown dtype {name!r}", f"use auto or one of {', '.join(DTYPE_NAMES)}")
    return DTYPE_NAMES[name]


def parse_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto`` (the policy above), ``float32``/``fp32``, ``bfloat16``/``bf16``, ``float16``/``fp16``,
    ``float64``/``fp64``."""
    import torch

    if name == "auto":
        return default_dtype(device)
    return getattr(torch, canonical_dtype(name))


def set_threads(num_threads: int | None) -> int:
    """Set torch's intra-op thread count (``None``: leave torch's default); return the count in force."""
    import torch

    if num_threads is not None:
        if num_threads < 1:
            raise ReproError(f"--threads {num_threads}: must be at least 1")
        torch.set_num_threads(num_threads)
    return torch.get_num_threads()


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (all devices), so the same seed gives the same numbers."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool = True) -> None:
    """Ask torch for deterministic kernels (slower on GPU; CPU kernels are deterministic for a fixed thread count)."""
    import torch

    if enabled:
        # cuBLAS needs a fixed workspace for reproducible matmuls; must be set before the first CUDA call.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.benchmark = not enabled
    torch.backends.cudnn.deterministic = enabled


@dataclass(frozen=True)
class DeviceInfo:
    """What a run computes on: recorded in every run's config for provenance."""

    device: str
    dtype: str
    threads: int
    torch_version: str
    cuda_version: str | None
    device_name: str

    @classmethod
    def describe(cls, device: torch.device, dtype: torch.dtype) -> DeviceInfo:
        import platform

        import torch

        if device.type == "cuda":
            name = torch.cuda.get_device_name(device)
        elif device.type == "mps":
            name = "Apple MPS"
        else:
            name = platform.processor() or platform.machine()
        return cls(
            device=str(device),
            dtype=str(dtype).removeprefix("torch."),
            threads=torch.get_num_threads(),
            torch_version=str(torch.__version__),
            cuda_version=torch.version.cuda,
            device_name=name,
        )
