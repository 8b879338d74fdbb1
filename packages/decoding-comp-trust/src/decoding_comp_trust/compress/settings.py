"""One compression setting of the paper's grid (§2, Table 1): method, bits / N:M pattern, group size, seed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from repro_shared.errors import ConfigError

from .algorithms import SUPPORTED_BITS, GroupQuantizer, SparsityPattern

# the ratio grids AWQ can search (see `library.awq_modifier`)
AWQ_GRIDS = ("llm-compressor", "llm-awq")

QUANT_METHODS = ("gptq", "awq", "autoround", "rtn")
PRUNE_METHODS = ("magnitude", "sparsegpt", "wanda")
METHODS = QUANT_METHODS + PRUNE_METHODS
DATA_FREE = ("rtn", "magnitude")
BACKENDS = ("auto", "library", "reference")
PATTERNS = ("2:4", "4:8", "1:2", "unstructured")


@dataclass(frozen=True)
class CompressSettings:
    """A checked setting. ``pattern`` is ``"N:M"`` (N kept of every M inputs) or ``"unstructured"``."""

    method: str
    bits: int | None = None
    group_size: int | None = None
    sparsity: float | None = None
    pattern: str | None = None
    symmetric: bool | None = None  # None: the method's default (GPTQ/AutoRound symmetric, AWQ/RTN asymmetric)
    seed: int = 0
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown compression method {self.method!r}", f"use one of {', '.join(METHODS)}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}", f"use one of {', '.join(BACKENDS)}")
        if self.is_quantization:
            self._check_quantization()
        else:
            self._check_pruning()

    def _check_quantization(self) -> None:
        if self.bits not in SUPPORTED_BITS:
            raise ConfigError(f"{self.method}: bits={self.bits} is not supported",
                              f"use one of {', '.join(map(str, SUPPORTED_BITS))} (the paper uses 3, 4 and 8)")
        if self.group_size is None or self.group_size < 1:
            raise ConfigError(f"{self.method}: group_size={self.group_size} must be a positive integer",
                              "the paper uses 128; use a group dividing the model's in-features (64 for SmolLM2)")
        if self.pattern is not None or self.sparsity is not None:
            raise ConfigError(f"{self.method} is a quantizer: pattern/sparsity do not apply", "drop them")

    def _check_pruning(self) -> None:
        if self.bits is not None or self.group_size is not None:
            raise ConfigError(f"{self.method} is a pruner: bits/group_size do not apply", "drop them")
        pattern = self.pattern or "unstructured"
        if pattern != "unstructured":
            match = re.fullmatch(r"(\d+):(\d+)", pattern)
            if match is None:
                raise ConfigError(f"pattern {pattern!r} is not N:M or 'unstructured'", "e.g. 2:4, 4:8, 1:2")
            n, m = int(match[1]), int(match[2])
            if not 0 < n < m:
                raise ConfigError(f"pattern {pattern}: N:M needs 0 < N < M (N kept of every M)",
                                  "e.g. 2:4 keeps 2 of every 4 weights (50% sparsity)")
            if self.sparsity is not None and abs(self.sparsity - (1 - n / m)) > 1e-9:
                raise ConfigError(f"pattern {pattern} fixes sparsity at {1 - n / m:g}, not {self.sparsity}",
                                  "omit sparsity for N:M patterns")
        elif self.sparsity is not None and not 0 < self.sparsity < 1:
            raise ConfigError(f"sparsity={self.sparsity} must lie in (0, 1)", "the paper uses 0.5")

    @property
    def is_quantization(self) -> bool:
        return self.method in QUANT_METHODS

    @property
    def needs_calibration(self) -> bool:
        return self.method not in DATA_FREE

    @property
    def is_symmetric(self) -> bool:
        return self.symmetric if self.symmetric is not None else self.method in ("gptq", "autoround")

    def quantizer(self) -> GroupQuantizer:
        assert self.bits is not None and self.group_size is not None
        return GroupQuantizer(self.bits, self.group_size, self.is_symmetric)

    def sparsity_pattern(self) -> SparsityPattern:
        pattern = self.pattern or "unstructured"
        if pattern == "unstructured":
            return SparsityPattern(0, 0, 0.5 if self.sparsity is None else self.sparsity)
        n, m = map(int, pattern.split(":"))
        return SparsityPattern(n, m, 1 - n / m)

    def name(self) -> str:
        """Folder: ``gptq-w4-g64-seed0``, ``sparsegpt-2of4-seed0``, ``rtn-w8-g64``, ``wanda-unstructured-seed1``"""
        if self.is_quantization:
            parts = [self.method, f"w{self.bits}", f"g{self.group_size}"]
        else:
            pattern = self.sparsity_pattern()
            label = f"{pattern.n}of{pattern.m}" if pattern.structured else "unstructured"
            if not pattern.structured and abs(pattern.sparsity - 0.5) > 1e-9:
                label += f"{round(pattern.sparsity * 100)}"
            parts = [self.method, label]
        if self.needs_calibration:
            parts.append(f"seed{self.seed}")
        return "-".join(parts)


def parse_setting(spec: str, *, group_size: int, seed: int = 0, backend: str = "auto") -> CompressSettings:
    """``"gptq-w4"`` / ``"awq-w3"`` / ``"wanda-2:4"`` / ``"magnitude-unstructured"`` → a checked setting."""
    method, sep, rest = spec.strip().partition("-")
    if not sep:
        raise ConfigError(f"setting {spec!r} is not METHOD-wBITS or METHOD-PATTERN", "e.g. gptq-w4, wanda-2:4")
    if method in QUANT_METHODS:
        if not re.fullmatch(r"w\d+", rest):
            raise ConfigError(f"setting {spec!r}: a quantizer needs wBITS", "e.g. gptq-w4")
        return CompressSettings(method, bits=int(rest[1:]), group_size=group_size, seed=seed, backend=backend)
    return CompressSettings(method, pattern=rest.replace("of", ":"), seed=seed, backend=backend)
