"""Open-ended generation and blind pairwise human rating (the paper's human-preference study, section 6).

  prompts.jsonl  our own open-ended prompt set: 5 categories x 20 zero-shot prompts, chain-of-thought
                 trigger variants of the reasoning, planning and explanation prompts, and few-shot inputs
  opengen.py     load/validate prompt files; answer every prompt with two or more models (`flanlab open-gen`)
  store.py       the SQLite store of raters, sessions and ratings (each write committed at once, WAL)
  stats.py       win/tie/loss per model pair and category, Wilson confidence intervals, the PNG plot, exports
  app.py         the local web app for blind pairwise rating (`flanlab rate`), standard library only
"""
