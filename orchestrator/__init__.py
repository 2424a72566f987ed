"""Ray Tune glue for generative-NAS studies: spec → trials → one Parquet record.

It knows nothing about architectures. Modules: :mod:`~orchestrator.spec` (study specs),
:mod:`~orchestrator.search` (grid × seeds, Optuna; :mod:`~orchestrator.replicate`),
:mod:`~orchestrator.run` (preflight, Tuner, resume; :mod:`~orchestrator.callbacks`),
:mod:`~orchestrator.trial` (what runs in each trial actor), :mod:`~orchestrator.store`
(Parquet), :mod:`~orchestrator.tracking` (W&B), :mod:`~orchestrator.cli`
(``python -m orchestrator``). Nothing heavy is imported here.
"""
