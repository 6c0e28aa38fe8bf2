"""Shared fixtures. Tests are hermetic: HF_HUB_OFFLINE=1, a private FLANLAB_CACHE per session unless the
caller set one (the converted SmolLM2 folder is then reused), tiny models built in code."""

from __future__ import annotations

import functools
import http.server
import os
import socket
import threading
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` skip, saying why, where torch sees no CUDA device (bench/cuda_check.sh runs them on a GPU)."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: torch.cuda.is_available() is False here (bench/cuda_check.sh runs "
                                   "these on a GPU machine)")
    for item in marked:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data dir (FLANLAB_DATA_DIR); tests that need it skip, saying why, where it is absent."""
    value = os.environ.get("FLANLAB_DATA_DIR")
    if not value:
        pytest.skip("real data not available: set FLANLAB_DATA_DIR (make test sets it to ../shared/data when present)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"FLANLAB_DATA_DIR={value} is not a folder")
    return path


@pytest.fixture(scope="session")
def tiny_llama():
    from flanlab.models import load

    return load("tiny-llama", device="cpu")


@pytest.fixture(scope="module")
def lively_tiny_llama():
    """A fresh UNTRAINED tiny-llama per test module, its weights scaled x4 so that its outputs vary with the
    prompt (a module may change it, e.g. give its tokenizer a chat template, without touching the others)."""
    import torch

    from flanlab.models import load

    lm = load("tiny-llama", device="cpu")
    with torch.no_grad():
        for p in lm.model.parameters():
            p.mul_(4.0)
    return lm


@pytest.fixture(scope="session")
def tiny_t5():
    from flanlab.models import load

    return load("tiny-t5", device="cpu")


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M-Instruct preset (converted once into FLANLAB_CACHE). Mark tests using it slow."""
    from flanlab.models import PRESETS, load, preset_available

    ok, why = preset_available(PRESETS["smollm2-135m-instruct"])
    if not ok:
        pytest.skip(f"SmolLM2 preset not available: {why}")
    return load("smollm2-135m-instruct", device="cpu", verbose=False)


@pytest.fixture
def loopback_server(tmp_path):
    """For remote-URL sources, tested here without the internet: an HTTP server on 127.0.0.1 (ephemeral port) serving tmp_path/www; stopped at the end of the test."""
    root = tmp_path / "www"
    root.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=root))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    assert not thread.is_alive()


def hub_unreachable(monkeypatch) -> None:
    """The hub switched on (HF_HUB_OFFLINE=0) but unreachable: HF_ENDPOINT is a loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port}")


@pytest.fixture
def one_thread():
    """torch on one thread for the test, restored afterwards (tiny models: threads only add overhead)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
