"""flanlab/log.py and the CLI's --quiet / --verbose: a command's result on stdout, its status lines on stderr."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from flanlab import log
from flanlab.cli import main


@pytest.fixture(autouse=True)
def default_level():
    yield
    log.setup("normal")


def test_lines_look_as_the_prints_did(capsys, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    logger = log.get_logger("flanlab.some.module")
    assert logger.name == "flanlab.some.module" and log.get_logger("train").name == "flanlab.train"
    logger.info("resuming from %s (step %d)", "ck", 3)
    logger.warning("checkpoint %s is damaged", "ck2")
    logger.debug("not shown by default")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "[flanlab] resuming from ck (step 3)\n[flanlab] warning: checkpoint ck2 is damaged\n"


def test_setup_levels(capsys):
    logger = log.get_logger("flanlab.t")
    log.setup("quiet")
    logger.info("chatter")
    logger.warning("a warning")
    logger.error("an error")
    assert capsys.readouterr().err == "[flanlab] warning: a warning\n[flanlab] error: an error\n"
    log.setup("verbose")
    logger.debug("cache hit")
    assert capsys.readouterr().err == "[flanlab] cache hit\n"
    log.setup("normal")
    logger.debug("cache hit")
    logger.info("status")
    assert capsys.readouterr().err == "[flanlab] status\n"
    with pytest.raises(ValueError, match="verbosity must be one of quiet, normal, verbose"):
        log.setup("loud")


def test_info_from_the_main_process_only(capsys, monkeypatch):
    logger = log.get_logger("flanlab.t")
    for variable in log.RANK_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("RANK", "1")
    logger.info("every process would say this")
    logger.warning("process 1 has a problem")
    assert capsys.readouterr().err == "[flanlab rank 1] warning: process 1 has a problem\n"
    monkeypatch.setenv("RANK", "0")
    logger.info("the main process says this")
    assert capsys.readouterr().err == "[flanlab] the main process says this\n"
    monkeypatch.delenv("RANK")
    monkeypatch.setenv("PMI_RANK", "2")  # an MPI launcher's rank, as accelerate reads it
    logger.info("not shown")
    assert capsys.readouterr().err == ""


def test_a_line_under_a_progress_bar_starts_its_own_line(capsys):
    from tqdm.auto import tqdm

    bar = tqdm(total=4, desc="working", file=sys.stderr, mininterval=0)
    bar.update(1)
    log.get_logger("flanlab.t").info("a status line")
    bar.update(1)
    bar.close()
    segments = re.split(r"[\r\n]", capsys.readouterr().err)
    assert "[flanlab] a status line" in segments  # not "working:  25%|...|[flanlab] a status line"
    assert any(s.startswith("working:  50%") for s in segments)  # the bar carried on


def test_propagate_hands_records_to_the_program(capsys):
    class Keep(logging.Handler):
        def __init__(self):
            super().__init__()
            self.messages: list[str] = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    logger, program, keep = log.get_logger("flanlab.t"), logging.getLogger(), Keep()
    program.addHandler(keep)
    try:
        logger.info("flanlab's own handler")
        log.propagate(True)
        logger.info("to the program's handlers")
        log.propagate(False)
        logger.info("back on stderr")
    finally:
        program.removeHandler(keep)
        log.propagate(False)
    assert keep.messages == ["to the program's handlers"]
    assert capsys.readouterr().err == "[flanlab] flanlab's own handler\n[flanlab] back on stderr\n"


def test_the_flags_before_or_after_the_command(capsys):
    from flanlab.cli import build_parser

    parser = build_parser(only="tasks")
    assert parser.parse_args(["tasks"]).verbosity == "normal"
    assert parser.parse_args(["--quiet", "tasks"]).verbosity == "quiet"
    assert parser.parse_args(["tasks", "--quiet"]).verbosity == "quiet"
    assert parser.parse_args(["-v", "tasks"]).verbosity == "verbose"
    assert parser.parse_args(["tasks", "--verbose"]).verbosity == "verbose"
    with pytest.raises(SystemExit):
        parser.parse_args(["tasks", "--quiet", "--verbose"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_flags_after_a_subcommand(tmp_path, capsys):
    """-q / -v / --debug after a nested subcommand (`flanlab eval score ... -q`) as after a command; one given before
    the subcommand is kept (the subcommand's parser does not reset it to its default)."""
    from flanlab.cli import build_parser

    parser = build_parser(only="eval")
    score = ["eval", "score", "--benchmark", "synthetic", "--predictions", "p.jsonl"]
    assert parser.parse_args(score).verbosity == "normal"
    assert parser.parse_args(score + ["-q"]).verbosity == "quiet"
    assert parser.parse_args(score + ["--verbose"]).verbosity == "verbose"
    assert parser.parse_args(["-q"] + score).verbosity == "quiet"
    assert parser.parse_args(["eval", "-v"] + score[1:]).verbosity == "verbose"
    assert parser.parse_args(score + ["--debug"]).debug is True
    assert parser.parse_args(["eval", "--debug"] + score[1:]).debug is True
    assert parser.parse_args(score).debug is False
    # through main: an error line (exit 1), not argparse's "unrecognized arguments" (exit 2)
    assert main(score[:-1] + [str(tmp_path / "missing.jsonl"), "-q"]) == 1
    assert "missing.jsonl" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------
# a command: its result on stdout whatever the verbosity, its status lines on stderr by level

REPO = Path(__file__).resolve().parents[1]


def mix_args(out: Path) -> list[str]:
    """`flanlab mix` on the demo config, small: offline its cot submixture finds no tasks (a warning)."""
    return ["mix", str(REPO / "configs" / "mixtures" / "demo.yaml"), "size=60", "validation_size=10",
            "-o", str(out), "--no-progress"]


def run_mix(tmp_path: Path, name: str, flags: list[str], capsys) -> tuple[str, str]:
    out = tmp_path / name
    stale = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=tmp_path)  # left by a "killed" build
    assert main(flags + mix_args(out)) == 0
    assert not Path(stale).exists()
    captured = capsys.readouterr()
    result = [line for line in captured.out.splitlines() if not line.startswith("wrote ")]  # its time varies
    return "\n".join(result), captured.err


def test_mix_quiet_and_verbose(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FLANLAB_DATA_DIR", raising=False)
    for variable in log.RANK_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    out, err = run_mix(tmp_path, "normal", [], capsys)
    assert "60 training examples from" in out and "submixture" in out  # the tables: the result
    assert "warning" not in out
    assert "[flanlab] warning: submixture cot" in err  # a warning: on stderr
    assert "[flanlab] removed " in err and "left by an interrupted run" in err  # info
    assert "data dir:" not in err and "locked" not in err  # debug: not by default

    quiet_out, quiet_err = run_mix(tmp_path, "quiet", ["--quiet"], capsys)
    assert quiet_out == out  # the same result
    assert [line.split(":")[0] for line in quiet_err.splitlines()] == ["[flanlab] warning"] * len(quiet_err.splitlines())
    assert "[flanlab] warning: submixture cot" in quiet_err and "removed" not in quiet_err

    verbose_out, verbose_err = run_mix(tmp_path, "verbose", ["--verbose"], capsys)
    assert verbose_out == out
    assert "[flanlab] mixture demo: data dir none" in verbose_err and f"{tmp_path / 'verbose'}: locked" in verbose_err
    assert "[flanlab] warning: submixture cot" in verbose_err and "left by an interrupted run" in verbose_err

    # the flag after the command; and a level does not outlive its command (main called again in this process)
    stale = tempfile.mkdtemp(prefix=".quiet-after.", suffix=".tmp", dir=tmp_path)
    assert main(mix_args(tmp_path / "quiet-after") + ["-q"]) == 0
    assert not Path(stale).exists() and "removed" not in capsys.readouterr().err
    assert "left by an interrupted run" in run_mix(tmp_path, "normal-again", [], capsys)[1]


def test_train_quiet_and_verbose(tmp_path, capsys):
    data = tmp_path / "mix"
    data.mkdir()
    rows = [{"inputs": f"Reverse: {i} {i + 1}", "targets": f"{i + 1} {i}", "task": "r", "category": "s",
             "template_id": "t0", "format": "zs_noopt", "source": "s"} for i in range(32)]
    (data / "train-00000-of-00001.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (data / "validation.jsonl").write_text("", encoding="utf-8")

    def train(name: str, *flags: str) -> tuple[dict, str]:
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump({
            "model": "tiny-llama", "data": str(data), "output_dir": str(tmp_path / name), "steps": 2, "batch_size": 8,
            "lr": 1e-2, "max_input_len": 64, "max_target_len": 32, "pack_len": 128, "pack_target_len": 48,
            "save_every": 1, "threads": 1}), encoding="utf-8")
        assert main(["train", str(config), "--no-progress", *flags]) == 0
        captured = capsys.readouterr()
        summary, folder_line = captured.out.rstrip("\n").rsplit("\n", 1)  # the summary (JSON), then the folder
        assert folder_line.startswith("model folder: ")
        # transformers' own bar while the model is written ("Writing model shards"), shown despite --no-progress
        return json.loads(summary), re.sub(r"[^\r\n]*?\d+%\|[^|\r\n]*\|[^\]\r\n]*\][\r\n]*", "", captured.err)

    summary, err = train("normal")
    assert summary["steps"] == 2 and "[flanlab] training tiny-llama" in err and "[flanlab] training done: 2 steps" in err
    assert "checkpoint of step" not in err
    summary, err = train("quiet", "--quiet")
    assert summary["steps"] == 2 and err.strip() == ""
    summary, err = train("verbose", "-v")
    assert summary["steps"] == 2 and "[flanlab] data: " in err and "[flanlab] checkpoint of step 2 saved in" in err
    assert "[flanlab] training done: 2 steps" in err


def test_quiet_never_silences_an_error(tmp_path, capsys):
    assert main(["--quiet", "mix", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "x")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("flanlab mix: error: ") and "missing.yaml" in captured.err


def test_console_script_streams(tmp_path):
    """The real process: `flanlab tasks` prints its listing on stdout, with or without its debug lines."""
    env = {k: v for k, v in os.environ.items() if k not in ("FLANLAB_DATA_DIR", *log.RANK_VARIABLES)}
    env["HF_HUB_OFFLINE"] = "1"

    def tasks(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flanlab.cli", *flags, "tasks"], env=env, capture_output=True,
                              text=True, timeout=120)

    normal, quiet, verbose = tasks(), tasks("--quiet"), tasks("--verbose")
    assert normal.returncode == quiet.returncode == verbose.returncode == 0
    assert "anagram_check" in normal.stdout and normal.stdout == quiet.stdout == verbose.stdout
    assert normal.stderr == quiet.stderr == ""
    assert verbose.stderr.splitlines() == ["[flanlab] data dir: none (the synthetic families only)"]


# ----------------------------------------------------------------------------------------------------------
# several processes: accelerate's ranks and ours agree; info once, warnings from each rank

PROCESSES = """
import torch
from accelerate import PartialState
from flanlab import log
from flanlab.cli import main

state = PartialState(cpu=not torch.cuda.is_available())  # as flanlab.eval.runner.distributed_state starts it
assert state.num_processes == 2
assert log.process_rank() == state.process_index, (log.process_rank(), state.process_index)
logger = log.get_logger("flanlab.test")
logger.info("info from process %d", state.process_index)
logger.warning("warning from process %d", state.process_index)
state.wait_for_everyone()
main(["--verbose", "tasks", "--json"])
"""


def test_info_once_under_accelerate_launch(tmp_path):
    accelerate = Path(sys.executable).parent / "accelerate"
    if not accelerate.is_file():
        pytest.skip(f"no accelerate launcher next to {sys.executable}")
    script = tmp_path / "processes.py"
    script.write_text(PROCESSES, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "FLANLAB_DATA_DIR"}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    # --multi_gpu starts the processes through torch.distributed.run; without CUDA they use gloo on the CPU
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", str(script)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("[flanlab")]
    assert lines.count("[flanlab] info from process 0") == 1
    assert not any("info from process 1" in line for line in lines)
    assert lines.count("[flanlab] warning: warning from process 0") == 1
    assert lines.count("[flanlab rank 1] warning: warning from process 1") == 1
    assert lines.count("[flanlab] data dir: none (the synthetic families only)") == 1  # debug: the main process
    assert proc.stdout.count('"name": "anagram_check"') == 2  # each process's result is its own


def test_quiet_lasts_as_long_as_its_command(capsys):
    """`flanlab -q CMD` run in-process (a notebook, a test) silences that command only: the caller's later
    library calls say what they do (the level leaked before: a test calling a stage after a CLI -q test saw no
    status line)."""
    from flanlab.cli import main

    main(["-q", "tasks"])  # its outcome is not the point: the level after it is
    capsys.readouterr()
    log.get_logger("flanlab.t").info("status after the command")
    assert capsys.readouterr().err == "[flanlab] status after the command\n"
