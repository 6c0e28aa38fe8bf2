"""Held-out decontamination: drop training records that share a long n-gram with a benchmark item.

Tokens are lower-cased whitespace-separated words (`text.lower().split()`). A training record is contaminated
when one of its text fields (question, answer, rationale, options; NIV2 definition and examples) shares an
n-gram (n = 13 by default) with a benchmark item, or when its question equals a benchmark item shorter than
n words (normalised the same way; no n-gram can catch those).

Benchmark items are read here, straight from their raw files in the data dir (BENCHMARK_FILES, a literal
dict), independently of the evaluation code:
    mmlu     mmlu/data/{test,dev}/*.csv     the question column
    bbh      bbh/bbh/*.json                 every example's input; bbh/cot-prompts/*.txt, the published prompts
    tydiqa   tydiqa_goldp/*.json            every question
    mgsm     mgsm/mgsm_*.tsv                the question column; mgsm/exemplars.json, the exemplar questions
plus "synthetic": the held-out synthetic families' evaluation items (split "eval", seed 0, as the synthetic
benchmark draws them).

The index of the files' n-grams is built once and cached under FLANLAB_CACHE/decontam/, keyed by the files'
SHA-256 and the settings (as word ids: the hash tables are rebuilt on load, ~2 s for the full data dir); the
synthetic part is cheap and rebuilt every time; a process keeps the index it built for later builds.
Checking a record costs its split plus about one hash look-up per STRIDE words (see NgramIndex).
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flanlab.data.generators import FAMILIES, generate
from flanlab.fileio import atomic_write_npz, read_npz
from flanlab.log import get_logger
from flanlab.settings import cache_dir

log = get_logger(__name__)

DECONTAM_VERSION = 4
SYNTHETIC_EVAL_ITEMS = 200  # per held-out family; the synthetic benchmark uses the first 50 of split "eval", seed 0
STRIDE = 4  # a text's m-grams are tested at every STRIDE-th word (see NgramIndex)


def words(text: str) -> list[str]:
    return text.lower().split()


# --- raw benchmark readers (errors name the file and line) ------------------------------------------------------


def _read_csv_first_column(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        try:
            for row in reader:
                if row and row[0].strip():
                    yield row[0]
        except csv.Error as e:
            raise ValueError(f"{path}:{reader.line_num}: {e}") from None


def _read_tsv_first_column(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            q = line.rstrip("\n").split("\t")[0]
            if q.strip():
                yield q


def _read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def _read_bbh(path: Path) -> Iterator[str]:
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("examples"), list):
        raise ValueError(f"{path}: a BBH task file must be an object with an 'examples' list")
    for i, ex in enumerate(doc["examples"]):
        if not isinstance(ex, dict) or "input" not in ex:
            raise ValueError(f"{path}: examples[{i}] has no 'input'")
        yield str(ex["input"])


def _read_text(path: Path) -> Iterator[str]:
    yield path.read_text(encoding="utf-8")


def _read_tydiqa(path: Path) -> Iterator[str]:
    doc = _read_json(path)
    for article in doc.get("data", []) if isinstance(doc, dict) else []:
        for para in article.get("paragraphs", []):
            for qa in para.get("qas", []):
                if qa.get("question"):
                    yield qa["question"]


def _read_mgsm_exemplars(path: Path) -> Iterator[str]:
    doc = _read_json(path)
    for lang in doc.values() if isinstance(doc, dict) else []:
        for ex in lang.values() if isinstance(lang, dict) else []:
            if isinstance(ex, dict) and ex.get("q"):
                yield ex["q"]


# benchmark -> [(glob under the data dir, reader of one file)]
BENCHMARK_FILES: dict[str, list[tuple[str, Callable[[Path], Iterable[str]]]]] = {
    "mmlu": [("mmlu/data/test/*.csv", _read_csv_first_column), ("mmlu/data/dev/*.csv", _read_csv_first_column)],
    "bbh": [("bbh/bbh/*.json", _read_bbh), ("bbh/cot-prompts/*.txt", _read_text)],
    "tydiqa": [("tydiqa_goldp/*.json", _read_tydiqa)],
    "mgsm": [("mgsm/mgsm_*.tsv", _read_tsv_first_column), ("mgsm/exemplars.json", _read_mgsm_exemplars)],
}


def benchmark_files(data_dir: Path | None) -> list[tuple[str, Path, Callable]]:
    """(benchmark, file, reader) for every benchmark file present in the data dir, in a fixed order."""
    if data_dir is None:
        return []
    out = []
    for bench, patterns in BENCHMARK_FILES.items():
        for pattern, reader in patterns:
            for path in sorted(Path(data_dir).glob(pattern)):
                out.append((bench, path, reader))
    return out


def synthetic_eval_items(n: int = SYNTHETIC_EVAL_ITEMS) -> Iterator[str]:
    """Question (+ options) texts of the held-out synthetic families' evaluation items."""
    for fam in FAMILIES.values():
        if fam.held_out:
            for rec in generate(fam, n, seed=0, split="eval"):
                yield rec["question"] + ("\n" + "\n".join(rec["options"]) if rec.get("options") else "")


# --- the index -------------------------------------------------------------------------------------------------


@dataclass
class NgramIndex:
    """Benchmark n-grams and whole-question digests, each mapped to the benchmark's index in `names`.

    Keys are Python hashes of tuples of words. Checking a text: every n-gram it shares with a benchmark holds
    an m-gram (m = n - STRIDE + 1) starting at a multiple of STRIDE, so only those m-grams are looked up, in
    `filter` (every benchmark m-gram); a hit is confirmed on the n-grams around it, in `ngrams`. The words'
    hashes are computed once per word (Python caches a string's hash), so a text costs its split plus one
    tuple hash per STRIDE words. String hashes differ from process to process (PYTHONHASHSEED), so the hash
    tables are never stored: the cache holds the benchmark items as word ids and the tables are rebuilt from
    them on load (see _save / _load)."""

    n: int = 13
    names: list[str] = field(default_factory=list)  # benchmark names; values of the maps index this list
    ngrams: dict[int, int] = field(default_factory=dict)  # hash of an n-gram (tuple of words) -> benchmark index
    filter: set[int] = field(default_factory=set)  # hashes of every benchmark m-gram
    questions: dict[str, int] = field(default_factory=dict)  # item shorter than n words, normalised -> benchmark
    items: dict[str, int] = field(default_factory=dict)  # benchmark -> number of items indexed
    short_items: dict[str, int] = field(default_factory=dict)  # items shorter than n words (question match only)
    files: dict[str, str] = field(default_factory=dict)  # file -> sha256

    def add(self, bench: str, text: str) -> list[str] | None:
        """Index one benchmark item; returns its words when they went into the n-gram tables (None when the
        item is empty or shorter than n words, matched as a whole question)."""
        if bench not in self.names:
            self.names.append(bench)
        b = self.names.index(bench)
        toks = words(text)
        self.items[bench] = self.items.get(bench, 0) + 1
        if not toks:
            return None
        if len(toks) < self.n:  # no n-gram can match it: it is matched as a whole question
            self.short_items[bench] = self.short_items.get(bench, 0) + 1
            self.questions.setdefault(" ".join(toks), b)
            return None
        self._add_words(b, toks)
        return toks

    def _add_words(self, b: int, toks: list[str]) -> None:
        n, m = self.n, max(1, self.n - STRIDE + 1)
        # zip over k shifted copies yields the k-grams as tuples, hash(tuple(toks[i:i + k])) for each i, in C
        self.filter.update(map(hash, zip(*(toks[k:] for k in range(m)))))
        setdefault = self.ngrams.setdefault
        for h in map(hash, zip(*(toks[k:] for k in range(n)))):
            setdefault(h, b)  # the first benchmark to hold an n-gram keeps it

    def match(self, text: str) -> str | None:
        """The benchmark a text shares an n-gram with, or None."""
        if len(text) < 2 * self.n - 1 or not self.ngrams:  # fewer than n words
            return None
        return self._match_words(text.lower().split())

    def match_record(self, question: str, *others: str) -> str | None:
        """The benchmark a record overlaps: its question equals a benchmark item (normalised; this is what
        catches items shorter than n words), or the question or one of its other texts (answer, rationale,
        options, ...) shares an n-gram with one. No n-gram spans two texts, so a text shorter than n words is
        skipped before it is split: under 2n - 1 characters it cannot hold n words."""
        n = self.n
        q = question.lower().split()
        if len(q) < n:
            if self.questions:
                b = self.questions.get(" ".join(q))
                if b is not None:
                    return self.names[b]
        elif self.ngrams:
            hit = self._match_words(q)
            if hit:
                return hit
        if not self.ngrams:
            return None
        shortest = 2 * n - 1
        for text in others:
            if len(text) >= shortest:
                hit = self._match_words(text.lower().split())
                if hit:
                    return hit
        return None

    def _match_words(self, toks: list[str]) -> str | None:
        n = self.n
        last = len(toks) - n  # the last start of an n-gram
        if last < 0:
            return None
        m, flt = max(1, n - STRIDE + 1), self.filter
        for p in range(0, len(toks) - m + 1, STRIDE):
            if hash(tuple(toks[p:p + m])) in flt:
                for q in range(max(0, p - STRIDE + 1), min(p, last) + 1):
                    b = self.ngrams.get(hash(tuple(toks[q:q + n])))
                    if b is not None:
                        return self.names[b]
        return None

    def summary(self) -> dict:
        return {"n": self.n, "benchmarks": {b: {"items": self.items.get(b, 0), "shorter_than_n": self.short_items.get(b, 0)}
                                           for b in self.names},
                "ngrams": len(self.ngrams), "files": len(self.files)}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _cache_key(files: list[tuple[str, Path, Callable]], data_dir: Path, n: int) -> str:
    h = hashlib.sha256(f"v{DECONTAM_VERSION}|n={n}".encode())  # word ids: no stride, no Python hashes
    for bench, path, _ in files:
        h.update(f"|{bench}|{path.relative_to(data_dir)}|{_sha256(path)}".encode())
    return h.hexdigest()[:24]


def _save(index: NgramIndex, path: Path, vocab: dict[str, int], sequences: list[tuple[int, list[int]]]) -> None:
    """The index, its long items as (benchmark, word ids) over `vocab` (its hash tables depend on the process:
    _load rebuilds them from the ids)."""
    import numpy as np

    lengths = [len(ids) for _, ids in sequences]
    atomic_write_npz(path, {
        "seq_bench": np.fromiter((b for b, _ in sequences), dtype=np.uint8, count=len(lengths)),
        "seq_lengths": np.asarray(lengths, dtype=np.int64),
        "seq_ids": np.fromiter(itertools.chain.from_iterable(ids for _, ids in sequences), dtype=np.int32,
                               count=sum(lengths)),
    }, {"n": index.n, "names": index.names, "vocab": list(vocab), "items": index.items,
        "short_items": index.short_items, "files": index.files, "questions": index.questions})


def _load(path: Path) -> NgramIndex:
    arrays, meta = read_npz(path)
    index = NgramIndex(n=meta["n"], names=meta["names"], items=meta["items"], short_items=meta["short_items"],
                       files=meta["files"], questions=meta["questions"])
    vocab = meta["vocab"]
    ids = arrays["seq_ids"].tolist()
    start = 0
    for b, length in zip(arrays["seq_bench"].tolist(), arrays["seq_lengths"].tolist()):
        index._add_words(b, list(map(vocab.__getitem__, ids[start:start + length])))
        start += length
    return index


_BUILT: dict[str, tuple[NgramIndex, str]] = {}  # per process: settings + files + synthetic items -> (index, how)


def build_index(data_dir: Path | None, n: int = 13, synthetic_items: int = SYNTHETIC_EVAL_ITEMS,
                use_cache: bool = True) -> tuple[NgramIndex, str]:
    """The n-gram index of the benchmarks in the data dir (cached on disk) plus the held-out synthetic items.

    Returns (index, how it was obtained: 'cache <file>', 'built <file>' or 'no benchmark files'). With
    use_cache, the index is also kept for the rest of the process, and a second call with the same files,
    items and settings returns the same object: treat it as read-only."""
    files = benchmark_files(data_dir)
    synthetic = list(synthetic_eval_items(synthetic_items))
    disk_key = _cache_key(files, Path(data_dir), n) if files else ""
    key = hashlib.sha256("\x00".join([disk_key, str(n), str(cache_dir())] + synthetic).encode("utf-8")).hexdigest()
    if use_cache and key in _BUILT:
        log.debug("decontamination index: kept from earlier in this process (%s)", _BUILT[key][1])
        return _BUILT[key]
    how = "no benchmark files in the data dir" if data_dir is not None else "no data dir"
    index = NgramIndex(n=n)
    if files:
        cache = cache_dir() / "decontam" / f"ngrams-{disk_key}.npz"
        if use_cache and cache.is_file():
            index = _load(cache)
            how = f"cache {cache}"
            log.debug("decontamination index: %d-grams of %d benchmark files, cached at %s", n, len(files), cache)
        else:
            log.info("decontamination: indexing the %d-grams of %d benchmark files (once%s)", n, len(files),
                     f", cached in {cache}" if use_cache else "")
            vocab: dict[str, int] = {}  # word -> id, and each long item's ids: what the cache file holds
            sequences: list[tuple[int, list[int]]] = []
            for bench, path, reader in files:
                index.files[str(Path(path).relative_to(data_dir))] = _sha256(path)
                for text in reader(path):
                    toks = index.add(bench, text)
                    if toks is not None and use_cache:
                        sequences.append((index.names.index(bench), [vocab.setdefault(w, len(vocab)) for w in toks]))
            if use_cache:
                _save(index, cache, vocab, sequences)
            how = f"built {cache}" if use_cache else "built (cache off)"
    for text in synthetic:
        index.add("synthetic", text)
    if use_cache:
        _BUILT[key] = (index, how)
    return index, how
