"""What the user reads when a command fails: one line naming the file and what to do, or, for a bug, the traceback.

FlanlabError is the base of errors whose message is already complete: it names the file (or setting) at fault and
what to do about it. `user_message(exc, outputs)` turns any exception into that one line, or returns None where
the exception is not one a user can cause or meet (a bug in flanlab: the CLI then keeps the traceback and says
so). Failures of the machine rather than of the input (a full disk, a file without permission, an out-of-memory
error, a truncated weights file) are translated here, by type and errno, in one place for every command.

`outputs` are the output paths the command was given (its -o); they name where a write failed when the
operating system's error carries no file name (a `write()` on a full disk does not).
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import traceback


class FlanlabError(Exception):
    """A failure the user can fix; its message is complete: it names the file or setting and what to do."""


OUTPUT_HINT = "(-o; for train, output_dir)"
# errno -> (what happened, what to do); the file name goes between them
OS_ERRORS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on device", f"free some space or choose another output folder {OUTPUT_HINT}"),
    errno.EDQUOT: ("disk quota exceeded", f"free some space or choose another output folder {OUTPUT_HINT}"),
    errno.EFBIG: ("file too large for this file system", f"choose another output folder {OUTPUT_HINT}"),
    errno.EACCES: ("permission denied", "check its permissions, or choose another path"),
    errno.EPERM: ("operation not permitted", "check its permissions, or choose another path"),
    errno.EROFS: ("read-only file system", f"choose a writable output folder {OUTPUT_HINT}"),
    errno.ENOENT: ("no such file or folder", "check the path"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "check the path"),
    errno.EISDIR: ("is a folder, where a file was expected", "give a file path"),
    errno.EEXIST: ("already exists", "remove it or choose another path"),
    errno.ENAMETOOLONG: ("file name too long", "choose a shorter path"),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n) and run again"),
    errno.EIO: ("input/output error (the disk or network file system failed)", "check the device and run again"),
}

OUT_OF_MEMORY = ("out of memory: lower --batch-size (or the batch size in the config), shorten the inputs, "
                 "or use a smaller model")


def debug_requested(flag: bool = False) -> bool:
    """--debug, or FLANLAB_DEBUG set to anything but "" or "0": show tracebacks instead of one-line messages."""
    return flag or os.environ.get("FLANLAB_DEBUG", "") not in ("", "0")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _os_message(e: OSError, outputs: list[str]) -> str:
    if e.errno not in OS_ERRORS:  # e.g. a network error while downloading: its own text says what failed
        return _one_line(e)
    what, todo = OS_ERRORS[e.errno]
    writing = e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)
    if e.filename is not None:
        where = (" writing " if writing else ": ") + str(e.filename)
        where += f" -> {e.filename2}" if e.filename2 is not None else ""
    elif outputs:
        where = f" writing under {', '.join(outputs)}"
    else:
        where = ""
    return f"{what}{where}: {todo}"


def _file_being_read(e: BaseException) -> tuple[str | None, bool]:
    """The name of the text file open in the innermost frame of e's traceback that holds one (where a
    `for line in f`, f.read() or json.load(f) failed), or None; and whether that frame is json.load's own (then a
    JSONDecodeError's line and column are the file's, not those of one line of it)."""
    frames = [frame for frame, _ in traceback.walk_tb(e.__traceback__)]
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            if isinstance(value, io.TextIOWrapper) and isinstance(value.name, (str, os.PathLike)):
                whole = frame.f_code.co_name == "load" and frame.f_globals.get("__name__") == "json"
                return str(value.name), whole
    return None, False


def _is_out_of_memory(e: BaseException) -> bool:
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (CUDA, MPS)
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def user_message(e: BaseException, outputs: list[str] | None = None) -> str | None:
    """The one line to print for `e`, or None when `e` is a bug in flanlab (its traceback is what helps then)."""
    outputs = [str(o) for o in outputs or [] if o]
    if isinstance(e, FlanlabError):
        return str(e)
    if _is_out_of_memory(e):
        return OUT_OF_MEMORY
    if type(e).__name__ == "SafetensorError":  # safetensors' own error names no file; flanlab.models checks first
        found = re.search(r"\(os error (\d+)\)", str(e))  # 'I/O error: No space left on device (os error 28)'
        if found:
            code = int(found.group(1))
            return _os_message(OSError(code, os.strerror(code)), outputs)
        if "serializ" in str(e) and "deserializ" not in str(e):
            return f"writing a safetensors weights file failed: {_one_line(e)}"
        return (f"a weights file is not a valid safetensors file ({_one_line(e)}): "
                "it is truncated, empty or not safetensors; re-download or re-export it")
    if type(e).__module__.split(".")[0] == "yaml":  # yaml.YAMLError: its text names the file, line and column
        return f"invalid YAML: {_one_line(e)}"
    if isinstance(e, json.JSONDecodeError):
        where, whole = _file_being_read(e)
        if where is None:
            return str(e)
        if whole:
            return f"{where}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})"
        return f"{where}: not valid JSON ({e})"
    if isinstance(e, UnicodeDecodeError):  # raised while reading an open text file, which names no file
        where, _ = _file_being_read(e)
        return (f"{where or 'a file'} is not UTF-8 text (byte {e.object[e.start:e.start + 1]!r} cannot be decoded: "
                f"{e.reason}): save it as UTF-8, or check that it is the file you meant")
    if isinstance(e, ModuleNotFoundError):
        return f"the Python module {e.name!r} is missing: install the package that provides it, then run again"
    if isinstance(e, (FileNotFoundError, FileExistsError)) and e.errno is None:  # raised with flanlab's own message
        return str(e)
    if isinstance(e, OSError):
        return _os_message(e, outputs)
    if isinstance(e, KeyError):
        # flanlab's registries raise KeyError with a whole sentence (did-you-mean and the known names); a bare
        # key (KeyError('answer')) says nothing about which file or setting lacks it: a bug to report.
        text = e.args[0] if len(e.args) == 1 else None
        return text if isinstance(text, str) and " " in text.strip() else None
    if isinstance(e, (ValueError, RuntimeError)):  # flanlab's convention for bad input (ConfigError, ...)
        return str(e)
    return None


def bug_message(e: BaseException) -> str:
    """The line printed under the traceback of an error that is flanlab's fault."""
    return (f"internal error ({type(e).__name__}: {_one_line(e)[:200]}): this is a bug in flanlab, not in your "
            "input; please report it with the command you ran and the traceback above")
