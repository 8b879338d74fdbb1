"""Reproduction package `certified-pruning` of the trustworthy-ML reproduction suite (see README.md)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("certified-pruning")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
