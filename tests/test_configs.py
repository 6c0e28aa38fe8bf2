"""Every shipped YAML under configs/ loads with the loader of its folder, and its first line is a comment
giving the command that runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from flanlab.data.mixture import load_mixture_config
from flanlab.scale import load_scale_config
from flanlab.train.config import load_train_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

# configs/<folder>/*.yaml -> the function that loads one (add your config kind here)
LOADERS = {
    "mixtures": load_mixture_config,
    "scale": load_scale_config,
    "train": load_train_config,
}

SHIPPED = sorted(CONFIGS.rglob("*.yaml")) + sorted(CONFIGS.rglob("*.yml"))


def test_there_are_shipped_configs():
    assert any(p.parent.name == "mixtures" for p in SHIPPED)
    expected = {"offline", "real", "cot", "niv2", "demo", "tasks-9", "tasks-89", "tasks-282", "tasks-682", "tasks-all"}
    assert expected <= {p.stem for p in SHIPPED if p.parent.name == "mixtures"}


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(CONFIGS)) for p in SHIPPED])
def test_config_loads_and_names_its_command(path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# flanlab ") or first.startswith("# make "), f"{path}: first line must be '# <command>'"
    assert path.name in first or path.stem in first, f"{path}: the command on line 1 should name the file"
    folder = path.relative_to(CONFIGS).parts[0] if len(path.relative_to(CONFIGS).parts) > 1 else ""
    assert folder in LOADERS, f"no loader for configs/{folder}/: add one to LOADERS in tests/test_configs.py"
    LOADERS[folder](path)


def test_mixture_presets_plan_offline(monkeypatch):
    """The offline presets plan without a data dir; the data-dir presets say what is missing instead of failing
    silently."""
    from flanlab.data.mixture import plan_mixture

    monkeypatch.delenv("FLANLAB_DATA_DIR", raising=False)
    for name in ("demo", "offline", "cot", "real", "tasks-9", "tasks-all"):
        plan = plan_mixture(load_mixture_config(CONFIGS / "mixtures" / f"{name}.yaml"))
        assert plan.tasks, name
    with pytest.raises(ValueError, match="no trainable tasks here"):
        plan_mixture(load_mixture_config(CONFIGS / "mixtures" / "niv2.yaml"))


def _stated_counts(path: Path) -> tuple[int, int]:
    """(offline, with data dir) task counts as the preset's header comment states them."""
    import re

    header = " ".join(line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#"))
    offline = re.search(r"offline \(no data dir\) (\d+) tasks", header)
    real = re.search(r"with \.\./shared/data (\d+)", header)
    assert offline and real, f"{path}: the header must state the tasks available offline and with the data dir"
    return int(offline.group(1)), int(real.group(1))


@pytest.mark.parametrize("n", ["9", "89", "282", "682", "all"])
def test_task_count_presets_state_what_is_available(n, monkeypatch, data_dir):
    from flanlab.data.mixture import plan_mixture

    path = CONFIGS / "mixtures" / f"tasks-{n}.yaml"
    offline, real = _stated_counts(path)
    cfg = load_mixture_config(path)
    requested = cfg.max_tasks
    with_data = plan_mixture(cfg, data_dir)
    assert len(with_data.tasks) == min(real, requested or real)
    monkeypatch.delenv("FLANLAB_DATA_DIR", raising=False)
    without = plan_mixture(cfg)
    assert len(without.tasks) == min(offline, requested or offline)
    if requested and requested > real:
        assert any(f"only {real} tasks are available" in w for w in with_data.warnings)
