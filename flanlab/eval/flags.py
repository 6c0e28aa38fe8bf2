"""The numeric evaluation options with their valid ranges, declared once.

`flanlab eval` builds its flags from these fields (argparse checks each value through flanlab.config.arg_type),
and `flanlab.eval.runner.evaluate` checks the same fields when it is called from Python, so the API refuses
`limit=-1` or `batch_size=0` with the same message as the command line. A leaf module: the CLI imports it
while parsing, before torch is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from flanlab.config import Count, Count0, Range, Seed


@dataclass
class EvalFlags:
    """The numeric flags with their valid ranges: argparse checks each through flanlab.config (arg_type)."""

    limit: Count | None = None  # at most N items per subtask (the first N)
    shots: Count0 | None = None  # override the benchmarks' number of exemplars
    self_consistency: Count = 1  # K samples per CoT item, majority vote
    temperature: Annotated[float, Range(ge=0, note="0 = greedy")] = 0.7  # sampling temperature for self-consistency
    batch_size: Count = 8
    seed: Seed = 0
