"""Compression half of decoding-comp-trust: GPTQ, AWQ, AutoRound, RTN, SparseGPT, Wanda and magnitude pruning."""

from .api import MANIFEST, STORAGES, CompressionResult, compress, resolve_backend, save_compressed
from .calibration import CalibrationConfig, calibration_windows, load_texts, token_windows
from .settings import METHODS, CompressSettings, parse_setting

__all__ = ["MANIFEST", "METHODS", "STORAGES", "CalibrationConfig", "CompressSettings", "CompressionResult",
           "calibration_windows", "compress", "load_texts", "parse_setting", "resolve_backend", "save_compressed",
           "token_windows"]
