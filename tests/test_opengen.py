"""Open-ended generation (flanlab/rate/opengen.py, `flanlab open-gen`): the built-in prompt set, validation of
user prompt files, batched generation against the one-prompt path, answers/settings files and resume."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from flanlab.cli import main as cli_main
from flanlab.models import LoadedModel, generate_one
from flanlab.rate.opengen import (
    CATEGORIES, builtin_prompts_path, generate_batch, load_prompts, open_gen, read_answers, select_prompts,
)

# ----------------------------------------------------------------------------------------------------------
# the built-in prompt set


def test_builtin_prompt_set_has_the_papers_design():
    prompts = load_prompts()
    assert builtin_prompts_path().is_file()
    zero = Counter(p.category for p in prompts if p.variant == "zero_shot")
    assert set(zero) == set(CATEGORIES) and min(zero.values()) >= 20
    by_id = {p.id: p for p in prompts}
    cot = [p for p in prompts if p.variant == "cot"]
    for category in ("contextual_reasoning", "complex_reasoning", "planning", "explanation"):
        originals = [p for p in prompts if p.category == category and p.variant == "zero_shot"]
        variants = {p.base for p in cot if p.category == category}
        assert variants == {p.id for p in originals}, category  # every one of them has a CoT variant
    for p in cot:
        base = by_id[p.base]
        assert p.prompt.startswith(base.prompt) and "step" in p.prompt[len(base.prompt):].lower()
    few = Counter(p.category for p in prompts if p.variant == "few_shot")
    assert set(few) == set(CATEGORIES)
    assert all(p.prompt.count("\n\n") >= 2 for p in prompts if p.variant == "few_shot")  # examples + query
    assert len({p.prompt for p in prompts}) == len(prompts)


def test_select_prompts_takes_categories_round_robin():
    prompts = load_prompts()
    chosen = select_prompts(prompts, 7)
    assert [p.category for p in chosen[:5]] == list(CATEGORIES)
    assert len(chosen) == 7 and len({p.id for p in chosen}) == 7
    assert select_prompts(prompts, None) == prompts
    with pytest.raises(ValueError, match="at least 1"):
        select_prompts(prompts, 0)


# ----------------------------------------------------------------------------------------------------------
# user prompt files: every error names the file and the line

GOOD = '{"id": "a", "category": "creativity", "variant": "zero_shot", "prompt": "Write."}'


@pytest.mark.parametrize("line, message", [
    ('{"id": "b", "category": "x", "variant": "zero_shot", "prompt": "P"', "not valid JSON"),
    ('{"id": "b", "category": "x", "variant": "zero_shot"}', "missing key 'prompt'"),
    ('{"id": "b", "category": "x", "variant": "zeroshot", "prompt": "P"}', "Did you mean 'zero_shot'"),
    ('{"id": "b", "category": "x", "variant": "cot", "promt": "P"}', "unknown key 'promt'. Did you mean 'prompt'"),
    ('{"id": "a", "category": "x", "variant": "cot", "prompt": "P"}', "duplicate id 'a' (first used on line 1)"),
    ('{"id": "b", "category": "x", "variant": "cot", "prompt": "  "}', "'prompt' must be a non-empty string"),
    ('{"id": "b", "category": "x", "variant": "cot", "prompt": 3}', "'prompt' must be a non-empty string"),
    ('{"id": "b", "category": "x", "variant": "cot", "prompt": "P", "base": "zz"}', "base 'zz' is not the id"),
    ('["a list"]', "expected a JSON object"),
])
def test_bad_prompt_files_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "mine.jsonl"
    path.write_text(GOOD + "\n\n" + line + "\n")
    with pytest.raises(ValueError) as err:
        load_prompts(path)
    assert f"{path}:3:" in str(err.value) and message in str(err.value)


def test_user_prompt_file_loads_and_missing_file_is_named(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(GOOD + "\n" + GOOD.replace('"a"', '"a-cot"').replace("zero_shot", "cot")[:-1] + ', "base": "a"}\n')
    prompts = load_prompts(path)
    assert [p.id for p in prompts] == ["a", "a-cot"] and prompts[1].base == "a"
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_prompts(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no prompts"):
        load_prompts(tmp_path / "empty.jsonl")


# ----------------------------------------------------------------------------------------------------------
# batched generation equals the one-prompt path


def _lively_tiny(kind: str) -> LoadedModel:
    """A tiny random model with large initial weights, so greedy decoding writes varied bytes (the preset tiny
    models, with small weights, emit end-of-sequence or padding at once and would make this test vacuous)."""
    import torch
    from transformers import ByT5Tokenizer, LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

    tok = ByT5Tokenizer()
    torch.manual_seed(0)
    if kind == "causal":
        config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=4, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id, bos_token_id=None, initializer_range=0.5)
        model = LlamaForCausalLM(config)
    else:
        config = T5Config(vocab_size=len(tok), d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2,
                          num_heads=4, dropout_rate=0.0, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                          decoder_start_token_id=tok.pad_token_id, initializer_factor=20.0)
        model = T5ForConditionalGeneration(config)
    return LoadedModel(model=model.eval(), tokenizer=tok, kind=kind, name=f"lively-{kind}", untrained=True)


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_generate_batch_matches_generate_one(kind):
    lm = _lively_tiny(kind)
    prompts = ["Hello there, how are you?", "Write a poem about the sea and the sky.", "2+2=?"]
    batch = generate_batch(lm, prompts, max_new_tokens=12)
    single = [generate_one(lm, p, max_new_tokens=12) for p in prompts]
    assert [b["answer"] for b in batch] == single
    assert sum(len(s) for s in single) > 0  # not vacuous
    assert all(1 <= b["new_tokens"] <= 12 and b["stopped"] in ("eos", "max_new_tokens") for b in batch)
    assert lm.tokenizer.padding_side == "right"  # restored after the left-padded batch


# ----------------------------------------------------------------------------------------------------------
# the run: files, labels, resume


def test_open_gen_writes_answers_and_settings_and_resumes(tmp_path, capsys):
    out = tmp_path / "og"
    summary = open_gen(["tiny-llama", "tiny-t5"], out, limit=3, max_new_tokens=4, device="cpu")
    logs = capsys.readouterr().err.splitlines()  # its status lines (flanlab/log.py)
    assert summary["answered"] == {"tiny-llama": 3, "tiny-t5": 3}
    rows = read_answers(out)
    assert Counter(r["model"] for r in rows) == {"tiny-llama": 3, "tiny-t5": 3}
    assert all(r["untrained"] for r in rows) and {r["category"] for r in rows} == set(CATEGORIES[:3])
    settings = json.loads((out / "settings.json").read_text())
    assert settings["generation"] == {"decoding": "greedy", "max_new_tokens": 4, "chat_template": True}
    assert settings["models"]["tiny-t5"]["untrained"] is True and settings["prompt_sources"][0]["builtin"] is True
    assert any("UNTRAINED" in line for line in logs)

    before = (out / "answers.jsonl").read_bytes()
    again = open_gen(["tiny-llama", "tiny-t5"], out, limit=3, max_new_tokens=4, device="cpu")
    assert again["answered"] == {"tiny-llama": 0, "tiny-t5": 0} and again["skipped"] == {"tiny-llama": 3, "tiny-t5": 3}
    assert (out / "answers.jsonl").read_bytes() == before

    # A killed writer: the last two answers lost, a torn line left behind. The rerun cuts the torn line and
    # answers exactly the missing pairs.
    lines = before.decode().splitlines(keepends=True)
    (out / "answers.jsonl").write_text("".join(lines[:4]) + lines[4][:20])
    resumed = open_gen(["tiny-llama", "tiny-t5"], out, limit=3, max_new_tokens=4, device="cpu")
    assert sum(resumed["answered"].values()) == 2
    rows = read_answers(out)
    assert len(rows) == 6 and len({(r["model"], r["prompt_id"]) for r in rows}) == 6

    # A larger limit answers only the new prompts.
    more = open_gen(["tiny-llama", "tiny-t5"], out, limit=4, max_new_tokens=4, device="cpu")
    assert more["answered"] == {"tiny-llama": 1, "tiny-t5": 1}


def test_open_gen_refuses_mixed_settings_and_bad_model_lists(tmp_path):
    out = tmp_path / "og"
    open_gen(["tiny-llama", "tiny-t5"], out, limit=1, max_new_tokens=4, device="cpu")
    with pytest.raises(ValueError, match="different settings|under different settings"):
        open_gen(["tiny-llama", "tiny-t5"], out, limit=1, max_new_tokens=5, device="cpu")
    with pytest.raises(ValueError, match="at least two models"):
        open_gen(["tiny-llama"], tmp_path / "x", limit=1)
    with pytest.raises(ValueError, match="more than once: tiny-llama"):
        open_gen(["tiny-llama", "tiny-llama"], tmp_path / "x", limit=1)
    changed = tmp_path / "changed.jsonl"
    first = read_answers(out)[0]
    changed.write_text(json.dumps({"id": first["prompt_id"], "category": first["category"], "variant": "zero_shot",
                                   "prompt": first["prompt"] + " (edited)"}) + "\n")
    with pytest.raises(ValueError, match="differs from the one already answered"):
        open_gen(["tiny-llama", "tiny-t5"], out, prompts_file=changed, max_new_tokens=4, device="cpu")


def test_open_gen_cli_with_a_user_prompt_file(tmp_path, capsys):
    prompts = tmp_path / "mine.jsonl"
    prompts.write_text(GOOD + "\n" + GOOD.replace('"a"', '"b"') + "\n")
    out = tmp_path / "og"
    assert cli_main(["open-gen", "--model", "tiny-llama", "--model", "tiny-t5", "--prompts", str(prompts),
                     "--max-new-tokens", "3", "--device", "cpu", "-o", str(out)]) == 0
    assert "4 new answers, 0 already there" in capsys.readouterr().out
    assert {r["prompt_id"] for r in read_answers(out)} == {"a", "b"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(GOOD + "\n{oops\n")
    assert cli_main(["open-gen", "--model", "tiny-llama", "--model", "tiny-t5", "--prompts", str(bad),
                     "-o", str(tmp_path / "og2")]) == 1
    assert f"{bad}:2: not valid JSON" in capsys.readouterr().err
    assert not Path(tmp_path / "og2" / "answers.jsonl").exists()


def test_quiet_keeps_the_untrained_note(tmp_path, capsys):
    """--quiet drops open-gen's info lines but not the note that a model is UNTRAINED (its answers are noise)."""
    out = tmp_path / "og"
    assert cli_main(["open-gen", "--model", "tiny-llama", "--model", "tiny-t5", "--limit", "1",
                     "--max-new-tokens", "2", "--device", "cpu", "-o", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    for name in ("tiny-llama", "tiny-t5"):
        assert f"[flanlab] warning: open-gen {name} is UNTRAINED: random weights, answers are meaningless" in err
    assert "prompts to answer" not in err  # the info line: dropped by --quiet
