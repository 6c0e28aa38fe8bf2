"""Loading benchmark data from the Hugging Face hub by name, for when no data dir is given.

The data dir (original formats) is the primary source; the hub is the fallback, through `datasets`. Where the
hub is unreachable (offline, HF_HUB_OFFLINE=1) the error says to pass --data-dir instead.
"""

from __future__ import annotations


def load_hub(benchmark: str, path: str, name: str | None, split: str):
    """datasets.load_dataset(path, name, split=split), or FileNotFoundError naming --data-dir when unreachable."""
    try:
        import datasets

        return datasets.load_dataset(path, name, split=split)
    except Exception as e:  # offline mode, no network, missing config: all mean "use the data dir"
        what = f"{path}" + (f" ({name})" if name else "") + f" split {split!r}"
        raise FileNotFoundError(
            f"{benchmark}: no data dir given and the Hugging Face hub copy {what} could not be loaded "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Pass --data-dir DIR or set "
            f"FLANLAB_DATA_DIR to a folder holding the original files (see the benchmark's data_files)."
        ) from None


def need_data_dir(benchmark: str, what: str) -> FileNotFoundError:
    """The error for parts that exist only in the data dir (published prompt files not mirrored on the hub)."""
    return FileNotFoundError(
        f"{benchmark}: {what} is read from the data dir only (it is not on the Hugging Face hub in this form). "
        f"Pass --data-dir DIR or set FLANLAB_DATA_DIR."
    )
