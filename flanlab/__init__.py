"""flanlab: build Flan-style instruction-tuning mixtures, fine-tune, evaluate on the held-out suite, chart scaling.

The package's folders follow the flow of the method:
    data/    task sources, templates, the task catalog and mixtures
    train/   the fine-tuning loop, packing and checkpoints
    eval/    the held-out benchmarks, the evaluation engine and metrics
    report/  results -> HTML/Markdown pages and plots

Imports between flanlab modules sit at the top of each module and form no cycle (tests/test_imports.py). One
inside a function is kept only to keep the CLI fast (a command's module is loaded when the command runs) or to
load a heavy library (torch, transformers, matplotlib) late, and says so.
"""

__version__ = "0.1.0"
