"""The two shapes data takes on its way into a mixture.

A *record* is one raw task instance, a plain dict whose canonical fields are:
    question   str         the instance input (for NIV2: the instance input)
    answer     str         the gold output
    options    list[str]   answer options, for classification tasks (answer is one of them)   [optional]
    rationale  str         step-by-step reasoning that leads to the answer, for CoT             [optional]
Sources may add fields of their own (NIV2: definition, positive_examples); templates name the fields they use.

An *Example* is a record rendered through a template: the (inputs, targets) pair a model trains on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Example:
    inputs: str
    targets: str
    task: str
    template_id: str
    format: str  # zs_opt | zs_noopt | fs_opt | fs_noopt | cot_zs | cot_fs
    source: str = ""  # synthetic | niv2 | flan_cot | gsm8k | file | hf
    category: str = ""

    def to_dict(self) -> dict:
        return asdict(self)
