"""Writing a mixture's rows: train-00000-of-0000N shards (JSONL and/or Parquet) with the fields OUTPUT_FIELDS, the
JSONL lines built by hand (json.dumps' bytes, faster: the writer is on the build's hot path)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flanlab.data.mix_plan import PlannedTask

OUTPUT_FIELDS = ("inputs", "targets", "task", "category", "template_id", "format", "source")


class ShardWriter:
    """Writes rows to train-NNNNN shards (JSONL and/or Parquet); final names get '-of-NNNNN' at close."""

    def __init__(self, folder: Path, kinds: list[str], shard_size: int):
        self.folder, self.kinds, self.shard_size = folder, kinds, max(1, shard_size)
        self.shard = -1
        self.left = 0  # rows the open shard still takes
        self.files: list[tuple[str, int]] = []  # (temporary stem, rows)
        self.jsonl = None
        self.lines: list[str] = []  # JSONL lines not yet written (written 1,000 at a time)
        self.parquet = None
        self.to_parquet = "parquet" in kinds
        self.batch: list[dict] = []

    def _open(self) -> None:
        self._close_shard()
        self.shard += 1
        self.left = self.shard_size
        stem = f"train-{self.shard:05d}"
        self.files.append((stem, 0))
        if "jsonl" in self.kinds:
            self.jsonl = open(self.folder / f"{stem}.jsonl", "w", encoding="utf-8")

    def write(self, pt: PlannedTask, ex: tuple) -> None:
        if not self.left:
            self._open()
        self.left -= 1
        if self.jsonl is not None:
            self.lines.append(json_line(pt, ex))
            if len(self.lines) >= 1000:
                self._flush_jsonl()
        if self.to_parquet:
            self.batch.append(row(pt, ex))
            if len(self.batch) >= 10_000:
                self._flush_parquet()

    def _flush_jsonl(self) -> None:
        self.jsonl.write("".join(self.lines))
        self.lines = []

    def _flush_parquet(self) -> None:
        if not self.batch:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(self.batch, schema=pa.schema([(f, pa.string()) for f in OUTPUT_FIELDS]))
        if self.parquet is None:
            self.parquet = pq.ParquetWriter(self.folder / f"train-{self.shard:05d}.parquet", table.schema)
        self.parquet.write_table(table)
        self.batch = []

    def _close_shard(self) -> None:
        if self.files:
            stem, _ = self.files[-1]
            self.files[-1] = (stem, self.shard_size - self.left)
        if self.jsonl is not None:
            self._flush_jsonl()
            self.jsonl.close()
            self.jsonl = None
        self._flush_parquet()
        if self.parquet is not None:
            self.parquet.close()
            self.parquet = None

    def close(self) -> list[dict]:
        """Close and rename the shards to train-00000-of-0000N; returns [{file, rows}]."""
        self._close_shard()
        if not self.files:  # an empty mixture still gets one (empty) shard
            self._open()
            self._close_shard()
        n = len(self.files)
        out = []
        for stem, rows in self.files:
            for kind in self.kinds:
                final = f"{stem}-of-{n:05d}.{kind}"
                tmp = self.folder / f"{stem}.{kind}"
                if kind == "parquet" and not tmp.exists():  # a shard with no rows
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    pq.write_table(pa.Table.from_pylist([], schema=pa.schema([(f, pa.string()) for f in OUTPUT_FIELDS])), tmp)
                tmp.rename(self.folder / final)
                out.append({"file": final, "rows": rows})
        return out


_encode = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept (as json.dumps(ensure_ascii=False))


def json_line(pt: PlannedTask, ex: tuple) -> str:
    """json.dumps(row(pt, ex), ensure_ascii=False) + newline: the same bytes, built faster."""
    inputs, targets, tid, fmt = ex
    if not pt.json_task:  # the task's constant fields, encoded once
        t = pt.task
        pt.json_task = f", {_encode('task')}: {_encode(t.name)}, {_encode('category')}: {_encode(t.category)}, "
    tail = pt.json_tail.get((tid, fmt))
    if tail is None:  # template id, format and source: few combinations per task
        tail = pt.json_tail[tid, fmt] = (f'"template_id": {_encode(tid)}, "format": {_encode(fmt)}, '
                                         f'"source": {_encode(pt.task.source)}}}\n')
    return f'{{"inputs": {_encode(inputs)}, "targets": {_encode(targets)}{pt.json_task}{tail}'


def row(pt: PlannedTask, ex: tuple) -> dict:
    inputs, targets, tid, fmt = ex
    return {"inputs": inputs, "targets": targets, "task": pt.task.name, "category": pt.task.category,
            "template_id": tid, "format": fmt, "source": pt.task.source}
