"""Shared layer of the reproduction suite. It knows no paper: packages import it, never the other way round.

Modules: ``device`` (devices, dtypes, seeds), ``logging`` (console, metrics JSONL, progress bars), ``data`` and
``models`` (named datasets and models: Hub, local directory, offline sources), ``runs`` (run directories, resume),
``experiments`` (the registry), ``report`` (Markdown + figures), ``launch`` (local or SLURM grids), ``cli`` (``repro``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("repro-shared")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
