"""Templates: the built-in sets are valid data; patterns allow plain fields only; rendering never evaluates;
unknown fields fail at load naming the template and field; few-shot pruning fits the length."""

from __future__ import annotations

import pytest

from flanlab.data.templates import (
    COT_TARGET, FORMATS, OPTION_STYLES, STYLES, TEMPLATE_SETS, TRIGGERS, Template, TemplateError, TemplateSet,
    check_template_set, estimate_tokens, fill, load_template_file, render_few_shot, render_niv2_examples,
)


def test_builtin_sets_are_valid_and_about_ten_each():
    for name, ts in TEMPLATE_SETS.items():
        check_template_set(ts)
        assert 8 <= len(ts.templates) <= 14, name
        assert len({t.id for t in ts.templates}) == len(ts.templates)
    ids = [t.id for ts in TEMPLATE_SETS.values() for t in ts.templates]
    assert len(ids) == len(set(ids)), "template ids are unique across sets"
    for style, groups in STYLES.items():
        for group, set_name in groups.items():
            assert set_name in TEMPLATE_SETS, (style, group)
    served = {f for ts in TEMPLATE_SETS.values() for f in ts.formats}
    assert served == set(FORMATS)


def test_cot_templates_end_with_so_the_answer_is():
    for ts in TEMPLATE_SETS.values():
        for t in ts.templates:
            if any(f.startswith("cot") for f in t.formats):
                assert t.target == COT_TARGET
                assert "trigger" in t.fields
    values = {"question": "q", "answer": "42", "rationale": "6 * 7 = 42.", "trigger": TRIGGERS[0]}
    t = TEMPLATE_SETS["cot"].templates[0]
    assert fill(t.target_parts, values) == "6 * 7 = 42. So the answer is 42."
    assert "Let's think step by step." in TRIGGERS


@pytest.mark.parametrize("pattern", ["{question.__class__}", "{question[0]}", "{0}", "{}", "{question!r}",
                                     "{question:>10}", "{Question}"])
def test_patterns_allow_plain_field_names_only(pattern):
    with pytest.raises(TemplateError, match="field"):
        Template(id="x/1", input=pattern, target="{answer}", formats=("zs_noopt",))


def test_unbalanced_brace_is_a_clear_error():
    with pytest.raises(TemplateError, match="cannot parse"):
        Template(id="x/1", input="Q: {question", target="{answer}", formats=("zs_noopt",))


def test_rendering_is_plain_substitution():
    t = Template(id="x/1", input="Q: {question} {{literal}}", target="{answer}", formats=("zs_noopt",))
    # a value that looks like a field or an expression stays text
    out = fill(t.input_parts, {"question": "{answer} {__import__('os')}", "answer": "A"})
    assert out == "Q: {answer} {__import__('os')} {literal}"


def test_unknown_field_fails_naming_template_and_field():
    ts = TemplateSet(name="qa", fields=("question", "answer"), formats=("zs_noopt", "fs_noopt"),
                     templates=(Template(id="mine/7", input="{questoin}", target="{answer}", formats=("zs_noopt",)),))
    with pytest.raises(TemplateError, match=r"mine/7.*\{questoin\}.*Did you mean 'question'"):
        check_template_set(ts)


def test_template_file_replaces_a_set_and_is_checked_at_load(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("qa:\n  - {id: my/1, input: 'Quiz: {question}', target: '{answer}'}\n")
    sets = load_template_file(good)
    assert [t.id for t in sets["qa"].templates] == ["my/1"]
    assert sets["classification"] is TEMPLATE_SETS["classification"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("qa:\n  - {id: my/2, input: 'Quiz: {question} {hint}', target: '{answer}'}\n")
    with pytest.raises(TemplateError, match=r"bad.yaml.*my/2.*\{hint\}"):
        load_template_file(bad)
    unknown_set = tmp_path / "set.yaml"
    unknown_set.write_text("qaa:\n  - {id: my/3, input: '{question}'}\n")
    with pytest.raises(TemplateError, match="unknown template set 'qaa'.*'qa'"):
        load_template_file(unknown_set)
    wrong_format = tmp_path / "fmt.yaml"
    wrong_format.write_text("qa:\n  - {id: my/4, input: '{question}', formats: [zs_opt]}\n")
    with pytest.raises(TemplateError, match="my/4.*zs_opt"):
        load_template_file(wrong_format)


def test_option_styles_show_every_option():
    opts = ["red", "green", "blue"]
    rendered = {name: fn(opts) for name, fn in OPTION_STYLES.items()}
    assert rendered["options_dash"] == "OPTIONS:\n- red\n- green\n- blue"
    assert rendered["letters_inline"] == "(A) red (B) green (C) blue"
    assert rendered["choices_comma"] == "Choices: red, green, blue"
    assert len(set(rendered.values())) == len(rendered) >= 5
    for text in rendered.values():
        assert all(o in text for o in opts)


def test_few_shot_prunes_exemplars_to_fit():
    t = TEMPLATE_SETS["qa"].templates[1]  # "Q: {question}\nA:"
    shots = [(f"Q: {'word ' * 30}{i}\nA:", f"{i}") for i in range(5)]
    query = ("Q: what?\nA:", "x")
    full, kept = render_few_shot(t, query, shots, max_input_tokens=None)
    assert kept == 5 and full.endswith("Q: what?\nA:") and full.count("\n\n") == 5
    assert "A: 0" in full  # an input ending ':' is followed by ' ' and its target
    limit = estimate_tokens("\n\n".join([shots[0][0] + " 0", shots[1][0] + " 1", query[0]]))
    pruned, kept = render_few_shot(t, query, shots, max_input_tokens=limit)
    assert kept == 2 and estimate_tokens(pruned) <= limit
    none, kept = render_few_shot(t, query, shots, max_input_tokens=1)
    assert kept == 0 and none == query[0]


def test_niv2_examples_render_like_the_paper():
    text = render_niv2_examples([{"input": "2+2", "output": "4"}, {"input": "3+3", "output": "6"}])
    assert text == "Positive Example 1 -\nInput: 2+2\nOutput: 4\n\nPositive Example 2 -\nInput: 3+3\nOutput: 6"
    fs = [t for t in TEMPLATE_SETS["niv2"].templates if "fs_noopt" in t.formats][0]
    out = fill(fs.input_parts, {"definition": "Add the numbers.", "examples": text, "question": "5+5"})
    assert out.index("Add the numbers.") < out.index("Positive Example 1") < out.index("5+5")
