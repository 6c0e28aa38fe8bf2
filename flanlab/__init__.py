"""flanlab: build Flan-style instruction-tuning mixtures, fine-tune, evaluate on the held-out suite, chart scaling.

The package's folders follow the flow of the method:
    data/    task sources, templates, the task catalog and mixtures
    train/   the fine-tuning loop, packing and checkpoints
    eval/    the held-out benchmarks, the evaluation engine and metrics
    report/  results -> HTML/Markdown pages and plots
"""

__version__ = "0.1.0"
