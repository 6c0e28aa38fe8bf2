import json
import time

import pytest

from flanlab.models import PRESETS, ModelLoadError, generate_one, load


def test_tiny_models_are_labelled_untrained(tiny_llama, tiny_t5):
    assert tiny_llama.kind == "causal" and tiny_llama.untrained
    assert tiny_t5.kind == "seq2seq" and tiny_t5.untrained
    assert PRESETS["tiny-t5"].description.startswith("UNTRAINED")


def test_tiny_models_generate(tiny_llama, tiny_t5):
    for lm in (tiny_llama, tiny_t5):
        out = generate_one(lm, "hello", max_new_tokens=4)
        assert isinstance(out, str)


def test_tiny_build_is_deterministic():
    a, b = load("tiny-llama"), load("tiny-llama")
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert (pa == pb).all()


def test_local_folder_roundtrip(tmp_path, tiny_t5):
    tiny_t5.model.save_pretrained(tmp_path, safe_serialization=True)
    tiny_t5.tokenizer.save_pretrained(tmp_path)
    lm = load(str(tmp_path))
    assert lm.kind == "seq2seq"
    for pa, pb in zip(lm.model.parameters(), tiny_t5.model.parameters()):
        assert (pa == pb).all()


def test_folder_that_is_not_a_model_names_what_is_missing(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ModelLoadError, match="config.json.*safetensors.*tokenizer"):
        load(str(tmp_path))


def test_pickle_weights_are_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelLoadError, match="safetensors only"):
        load(str(tmp_path))


def test_hub_id_offline_fails_fast_naming_presets(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.time()
    with pytest.raises(ModelLoadError) as err:
        load("some-org/some-model-that-is-not-cached")
    assert time.time() - t0 < 10
    assert "smollm2-135m-instruct" in str(err.value) and "tiny-t5" in str(err.value)


@pytest.mark.parametrize("value", ["ON", "yes", "True", " 1 "])
def test_hub_offline_spellings_are_read_as_huggingface_hub_reads_them(monkeypatch, value):
    # models and dataset sources share one reading (settings.hub_offline): "ON" used to mean offline for
    # datasets but online for models
    from flanlab.data.sources import SourceUnavailableError, require_hub
    from flanlab.settings import hub_offline

    def datasets_offline() -> bool:  # dataset sources refuse the hub as switched off (not merely unreachable)
        try:
            require_hub("a dataset", "use a local copy")
        except SourceUnavailableError as e:
            return "switched off" in str(e)
        return False

    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert hub_offline() and datasets_offline()
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE is set"):
        load("some-org/some-model-that-is-not-cached")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", value)
    assert datasets_offline() and not hub_offline()


def test_misspelt_preset_gets_did_you_mean():
    with pytest.raises(ModelLoadError, match="Did you mean 'tiny-llama'"):
        load("tiny-lama")


@pytest.mark.slow
def test_smollm2_knows_the_capital_of_france(smollm2):
    assert smollm2.kind == "causal" and not smollm2.untrained
    answer = generate_one(smollm2, "What is the capital of France?", max_new_tokens=24)
    assert "Paris" in answer
