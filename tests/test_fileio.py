import pytest

from flanlab.fileio import atomic_dir, read_jsonl, read_jsonl_numbered


def test_jsonl_line_numbers_count_blank_lines(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n\n{"a": 2}\n{broken\n')
    rows = read_jsonl_numbered(p)
    assert next(rows) == (1, {"a": 1})
    assert next(rows) == (3, {"a": 2})
    with pytest.raises(ValueError, match=r"x.jsonl:4: not valid JSON"):
        next(rows)
    with pytest.raises(ValueError, match=r"x.jsonl:4"):
        list(read_jsonl(p))


def test_atomic_dir_leaves_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "half").write_text("written")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
