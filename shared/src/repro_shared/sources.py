"""Where datasets and models come from: local directories, the user cache, and whether the Hugging Face Hub answers.

Every check here is quick and never retries, so a machine without network fails in well under a second
instead of waiting out the Hub client's retry loop.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

_TRUE = {"1", "true", "yes", "on"}
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")  # the variables huggingface_hub itself honours
_DEFAULT_ENDPOINT = "https://huggingface.co"


def data_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """The local dataset root: ``--data-dir`` wins over ``REPRO_DATA_DIR``; None when neither is set."""
    return _dir_setting(explicit, "REPRO_DATA_DIR")


def model_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """The local model root: ``--model-dir`` wins over ``REPRO_MODEL_DIR``; None when neither is set."""
    return _dir_setting(explicit, "REPRO_MODEL_DIR")


def _dir_setting(explicit: str | os.PathLike | None, env_var: str) -> Path | None:
    value = explicit if explicit not in (None, "") else os.environ.get(env_var)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """The suite's own cache (converted models): ``REPRO_CACHE_DIR``, else ``$XDG_CACHE_HOME/repro``."""
    explicit = os.environ.get("REPRO_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "repro"


def _offline_var() -> str | None:
    """The name of the set offline variable, if any."""
    return next((var for var in _OFFLINE_VARS if os.environ.get(var, "").strip().lower() in _TRUE), None)


def hub_offline() -> bool:
    """True when the user switched the Hub off (``HF_HUB_OFFLINE=1``): then nothing may touch the network."""
    return _offline_var() is not None


def hub_endpoint() -> tuple[str, int]:
    """Host and port of the Hub (``HF_ENDPOINT`` or huggingface.co:443)."""
    url = urlsplit(os.environ.get("HF_ENDPOINT") or _DEFAULT_ENDPOINT)
    host = url.hostname or "huggingface.co"
    return host, url.port or (80 if url.scheme == "http" else 443)


def hub_reachable(timeout: float = 2.0) -> bool:
    """One TCP connect to the Hub, answered once per process: the Hub client would retry for ~50 s instead."""
    if hub_offline():
        return False
    host, port = hub_endpoint()
    return _tcp_connects(host, port, timeout)


@functools.cache
def _tcp_connects(host: str, port: int, timeout: float) -> bool:
    """Connect in a daemon thread so that a hanging DNS lookup (no timeout of its own) also ends after ``timeout``."""
    answer: list[bool] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            answer.append(True)
        except OSError:  # DNS failure, refusal, timeout
            answer.append(False)

    thread = threading.Thread(target=attempt, name="hub-reachable", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer) and answer[0]


def hub_unreachable_reason() -> str:
    """Why the Hub cannot be used, for error messages ("" when it can)."""
    var = _offline_var()
    if var is not None:
        return f"offline mode is on ({var}={os.environ[var]})"
    if not hub_reachable():
        host, port = hub_endpoint()
        return f"{host}:{port} is unreachable"
    return ""


def hub_status() -> str:
    """One line for ``repro doctor``."""
    var = _offline_var()
    if var is not None:
        return f"offline ({var}={os.environ[var]})"
    host, port = hub_endpoint()
    return "reachable" if hub_reachable() else f"unreachable ({host}:{port})"


def hub_cached_snapshot(repo_id: str, repo_type: str = "model") -> Path | None:
    """The folder of a Hub repo already in the local HF cache, without any network access; None if absent."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=repo_id, repo_type=repo_type, local_files_only=True))
    except (OSError, ValueError):  # not cached (LocalEntryNotFoundError), or not a valid repo id
        return None
