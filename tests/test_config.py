from dataclasses import dataclass, field

import pytest

from flanlab.config import ConfigError, load_config


@dataclass
class Optim:
    lr: float = 1e-3
    name: str = "adamw"


@dataclass
class Cfg:
    model: str
    steps: int = 10
    optim: Optim = field(default_factory=Optim)
    tags: list[str] = field(default_factory=list)
    limit: int | None = None


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model: tiny-t5\noptim:\n  lr: 5e-4\n")
    cfg = load_config(Cfg, p, ["steps=3", "optim.name=adafactor", "tags=[a, b]", "limit=null"])
    assert cfg == Cfg(model="tiny-t5", steps=3, optim=Optim(lr=5e-4, name="adafactor"), tags=["a", "b"], limit=None)


def test_unknown_key_did_you_mean(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model: x\nstesp: 3\n")
    with pytest.raises(ConfigError, match=r"c.yaml: unknown key 'stesp'. Did you mean 'steps'"):
        load_config(Cfg, p)


def test_wrong_type_names_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model: x\noptim: {lr: fast}\n")
    with pytest.raises(ConfigError, match=r"optim.lr: expected a number"):
        load_config(Cfg, p)


def test_missing_required_and_bad_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("steps: 3\n")
    with pytest.raises(ConfigError, match="missing required key"):
        load_config(Cfg, p)
    p.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match=r"c.yaml:\d+: invalid YAML"):
        load_config(Cfg, p)
