"""The `flanlab` console script.

COMMANDS is the one registry of subcommands: name -> (module, one-line help). Each module under
flanlab/commands/ defines `add_arguments(parser)` and `run(args) -> int`, parses nothing else, and calls one
public function of the library. Modules are imported only when their command runs, so `flanlab --help`
stays fast and a missing optional dependency breaks only the command that needs it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import traceback

from flanlab import log
from flanlab.errors import bug_message, debug_requested, user_message

DEBUG_HELP = "show the full traceback of an error (also: FLANLAB_DEBUG=1)"
QUIET_HELP = "say only warnings and errors on stderr (the command's result on stdout is unchanged)"
VERBOSE_HELP = "add debug lines on stderr (cache hits, resolved paths)"
OUTPUT_ARGS = ("output", "out", "output_dir", "out_dir", "score_out", "export", "export_ratings")  # commands' -o

COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("flanlab.commands.models", "list the model presets and whether each is available here"),
    "generate": ("flanlab.commands.generate", "answer one prompt with a model"),
    "tasks": ("flanlab.commands.tasks", "list the task catalog with categories and counts"),
    "mix": ("flanlab.commands.mix", "build (or preview) an instruction-tuning mixture from a YAML config"),
    "train": ("flanlab.commands.train", "fine-tune a model on a mixture (YAML config + key=value overrides)"),
    "eval": ("flanlab.commands.eval", "evaluate a model on the held-out benchmarks; `eval score` rescores saved outputs"),
    "normavg": ("flanlab.commands.normavg", "print the paper's normalized average from saved results.json files"),
    "scale": ("flanlab.commands.scale", "run a scaling grid (models x mixtures): train and evaluate each cell"),
    "report": ("flanlab.commands.report", "write an HTML/Markdown report with plots from run folders"),
    "demo": ("flanlab.commands.demo", "the end-to-end offline demo: mix, evaluate, fine-tune, evaluate, report"),
    "open-gen": ("flanlab.commands.open_gen", "answer the open-ended prompt set with two or more models"),
    "rate": ("flanlab.commands.rate", "blind pairwise human rating of open-gen answers in a local web app"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flanlab", description=__doc__.splitlines()[0])
    from flanlab import __version__

    parser.add_argument("--version", action="version", version=f"flanlab {__version__}")
    parser.add_argument("--debug", action="store_true", dest="debug_all", help=DEBUG_HELP)
    _add_verbosity(parser, default="normal")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == only:
            importlib.import_module(module_name).add_arguments(p)
            _add_command_flags(p, debug_default=False)
    return parser


def _add_command_flags(parser: argparse.ArgumentParser, debug_default) -> None:
    """--debug, --quiet and --verbose after a command and after each of its subcommands (`flanlab eval score ...
    -q`). A subcommand's parser copies its defaults over what the parsers before it set, so its flags default to
    SUPPRESS: a flag given before the subcommand is kept."""
    with contextlib.suppress(argparse.ArgumentError):  # unless the command has its own --debug
        parser.add_argument("--debug", action="store_true", default=debug_default, help=DEBUG_HELP)
    _add_verbosity(parser, default=argparse.SUPPRESS)  # SUPPRESS keeps one given before the command
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in dict.fromkeys(action.choices.values()):  # an alias maps to the same parser
                _add_command_flags(subparser, debug_default=argparse.SUPPRESS)


def _add_verbosity(parser: argparse.ArgumentParser, default: str) -> None:
    """--quiet / --verbose (flanlab/log.py), into args.verbosity."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_const", const="quiet", dest="verbosity", default=default,
                       help=QUIET_HELP)
    group.add_argument("-v", "--verbose", action="store_const", const="verbose", dest="verbosity", default=default,
                       help=VERBOSE_HELP)


def _outputs(args) -> list[str]:
    """The output paths a command was given (its -o), to name where a write failed when the error does not."""
    return [str(v) for k in OUTPUT_ARGS if isinstance(v := getattr(args, k, None), (str, os.PathLike))]


def _fail(command: str, error: BaseException, args) -> int:
    """Print one line for a failure the user can cause or meet; a bug keeps its traceback and says it is one."""
    message = user_message(error, _outputs(args))
    if message is None:
        traceback.print_exception(error)
        print(f"flanlab {command}: {bug_message(error)}", file=sys.stderr)
        return 1
    # a check that names its caller "flanlab <command>" (EvalConfig.check's `where`) is not named twice
    message = message.removeprefix(f"flanlab {command}: ")
    print(f"flanlab {command}: error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command is not None and command not in COMMANDS:
        from flanlab.registry import did_you_mean

        print(f"flanlab: unknown command {command!r}.{did_you_mean(command, COMMANDS)} "
              f"Commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    debug = debug_requested("--debug" in argv)
    try:
        parser = build_parser(only=command)
    except Exception as e:  # the command's module failed to import (a missing dependency)
        if debug:
            raise
        return _fail(command or "", e, None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    level = log.level()
    log.setup(args.verbosity)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("flanlab: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if debug_requested(args.debug_all or getattr(args, "debug", False)):
            raise
        return _fail(args.command, e, args)
    finally:
        log.restore(level)  # -q / -v last as long as their command: a caller's later flanlab calls say what they do


if __name__ == "__main__":
    sys.exit(main())
