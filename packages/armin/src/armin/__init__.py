"""Reproduction package `armin` of the trustworthy-ML reproduction suite (see README.md)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("armin")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
