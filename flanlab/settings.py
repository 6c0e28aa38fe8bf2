"""Where flanlab finds real data and keeps its cache.

Both are settings, never hard-coded paths:
- the data dir (``--data-dir`` or env ``FLANLAB_DATA_DIR``) holds real benchmark and task data in their original
  formats (MMLU CSV, BBH JSON, NIV2 task JSON, ...). Nothing requires it: without it flanlab runs on its built-in
  synthetic task families. The environment is read once, at an entry point (a command, run_demo, run_scale:
  `data_dir`); the library below them takes the folder, or None for none, as an argument (`given_data_dir`).
  NO_DATA_DIR says "none" explicitly to a function that still falls back on the environment (evaluate()).
- the cache dir (env ``FLANLAB_CACHE``, default ``~/.cache/flanlab``) holds converted model folders and
  evaluation caches.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse


class NoDataDir:
    """An explicit "no data dir": the built-in data only, whatever FLANLAB_DATA_DIR says (an offline scale grid)."""

    def __repr__(self) -> str:
        return "NO_DATA_DIR"


NO_DATA_DIR = NoDataDir()


def data_dir(explicit: str | os.PathLike | NoDataDir | None = None) -> Path | None:
    """At an entry point: the data dir from an explicit value, else FLANLAB_DATA_DIR, else None; None for
    NO_DATA_DIR. Raises if set but missing."""
    if isinstance(explicit, NoDataDir):
        return None
    value = explicit if explicit not in (None, "") else os.environ.get("FLANLAB_DATA_DIR") or None
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        source = "--data-dir" if explicit not in (None, "") else "FLANLAB_DATA_DIR"
        raise FileNotFoundError(f"data dir {path} (from {source}) does not exist or is not a folder")
    return path


def given_data_dir(value: str | os.PathLike | NoDataDir | None) -> Path | None:
    """In the library: the data dir an entry point passed down, None (or NO_DATA_DIR) for none; the environment is
    not read. Raises if the folder is missing."""
    if value is None or value == "" or isinstance(value, NoDataDir):
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data dir {path} does not exist or is not a folder")
    return path


def require_data_dir(explicit: str | os.PathLike | None, what: str) -> Path:
    """The data dir, or a clear error saying that `what` needs one."""
    path = data_dir(explicit)
    if path is None:
        raise FileNotFoundError(
            f"{what} needs real data: pass --data-dir DIR or set FLANLAB_DATA_DIR "
            "(a folder holding e.g. mmlu/, bbh/, mgsm/, tydiqa_goldp/ in their original formats)"
        )
    return path


def cache_dir() -> Path:
    """FLANLAB_CACHE, else $XDG_CACHE_HOME/flanlab, else ~/.cache/flanlab (created on first use)."""
    value = os.environ.get("FLANLAB_CACHE")
    if value:
        path = Path(value).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(base) / "flanlab"
    path.mkdir(parents=True, exist_ok=True)
    return path


def hub_endpoint() -> str:
    """The Hugging Face hub address: HF_ENDPOINT, else https://huggingface.co."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def hub_offline(datasets: bool = False) -> bool:
    """True when the user switched the Hugging Face hub off: HF_HUB_OFFLINE (and, for datasets,
    HF_DATASETS_OFFLINE) set to 1/ON/YES/TRUE, as huggingface_hub and datasets themselves read them."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if datasets else ("HF_HUB_OFFLINE",)
    return any(os.environ.get(var, "").strip().upper() in ("1", "ON", "YES", "TRUE") for var in names)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub endpoint opens within `timeout` seconds (fails fast offline)."""
    url = urlparse(hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False
