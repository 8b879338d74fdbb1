"""``repro doctor``: what this machine offers a run, stated as found (not as configured)."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from importlib import metadata

from .experiments import discover

LIBRARIES = ("torch", "numpy", "transformers", "diffusers", "peft", "datasets", "accelerate", "auto-round",
             "llmcompressor", "auto-lirpa", "scikit-learn", "scipy", "submitit", "gguf")


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def diagnose() -> dict[str, dict[str, str]]:
    """Sections of ``name: finding`` lines."""
    return {
        "system": _system(),
        "device": _device(),
        "libraries": {name: _version(name) or "not installed" for name in LIBRARIES},
        "reproduction packages": _packages(),
        "sources": _sources(),
        "datasets (per experiment)": _datasets(),
    }


def _system() -> dict[str, str]:
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": str(os.cpu_count())}


def _device() -> dict[str, str]:
    import torch

    from .device import DeviceInfo, default_dtype, select_device

    device = select_device("auto")
    info = DeviceInfo.describe(device, default_dtype(device))
    rows = {"selected (--device auto)": f"{info.device} ({info.device_name})", "dtype policy": info.dtype,
            "torch threads": str(info.threads),
            "torch build": f"{torch.__version__}, CUDA {torch.version.cuda or 'none (CPU build)'}",
            "CUDA devices": str(torch.cuda.device_count())}
    return rows


def _packages() -> dict[str, str]:
    rows = {}
    for name, entry in discover().items():
        state = f"FAILED: {entry.error}" if entry.error else f"{len(entry.experiments)} experiment(s)"
        rows[name] = f"{entry.version}, {state}"
    return rows or {"(none)": "install one: pip install ./shared ./packages/<name>"}


def _sources() -> dict[str, str]:
    from .data import available_image_datasets
    from .models import offline_llm_status
    from .sources import cache_dir, data_dir, hub_status

    local = data_dir()
    if local is None:
        data = "not set (REPRO_DATA_DIR or --data-dir)"
    elif local.is_dir():
        data = f"{local} ({', '.join(sorted(p.name for p in local.iterdir() if p.is_dir())) or 'empty'})"
    else:
        data = f"{local} (MISSING)"
    images = available_image_datasets()
    return {
        "Hugging Face Hub": hub_status(),
        "data dir": data,
        "offline LLM": offline_llm_status(),
        "bundled image sets": ", ".join(f"{name} ({'yes' if ok else 'no'})" for name, ok in images.items()),
        "cache dir": str(cache_dir()),
        "SLURM (sbatch)": shutil.which("sbatch") or "not found (local and submitit-local launchers only)",
    }


def _datasets() -> dict[str, str]:
    """Which datasets each experiment reads (present or not), then where each dataset is or how to get it."""
    from .data import dataset_status

    needs, status = {}, {}
    for entry in discover().values():
        for experiment in entry.experiments:
            for spec in experiment.datasets:
                status.setdefault(spec.name, dataset_status(spec))
            if experiment.datasets:
                needs[experiment.id] = ", ".join(f"{spec.name} ({status[spec.name].split(' ')[0]})"
                                                 for spec in experiment.datasets)
    if not needs:
        return {"(none)": "no installed experiment declares datasets"}
    return {**needs, **dict(sorted(status.items()))}
