"""flanlab/log.py and the CLI's --quiet / --verbose: a command's result on stdout, its status lines on stderr."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

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


def test_propagate_hands_records_to_the_program(caplog, capsys):
    logger = log.get_logger("flanlab.t")
    log.propagate(True)
    try:
        with caplog.at_level(logging.INFO):
            logger.info("to the program's handlers")
        assert "to the program's handlers" in caplog.text and capsys.readouterr().err == ""
    finally:
        log.propagate(False)
    logger.info("back on stderr")
    assert capsys.readouterr().err == "[flanlab] back on stderr\n"


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
