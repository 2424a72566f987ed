"""Ray Tune glue for generative-NAS studies: spec → trials → one Parquet record.

The Python API (what ``gnas run`` does)::

    from orchestrator import StudySpec, run_study, Store
    spec = StudySpec.from_dict({...})          # or orchestrator.spec.load_spec("study.yaml")
    result = run_study(spec)                   # StudyResult: counts, cost, best config
    Store(spec.storage).read_pandas("trials")  # every trial of every study in the store

It knows nothing about architectures. Modules: :mod:`~orchestrator.spec` (study specs),
:mod:`~orchestrator.search` (grid × seeds, Optuna; :mod:`~orchestrator.replicate`),
:mod:`~orchestrator.run` (preflight, Tuner, resume; :mod:`~orchestrator.callbacks`),
:mod:`~orchestrator.progress` (the study-level progress view), :mod:`~orchestrator.trial`
(what runs in each trial actor), :mod:`~orchestrator.store` (Parquet), :mod:`~orchestrator.tracking`
(W&B), :mod:`~orchestrator.cli` (the ``gnas`` command). The names above are imported on first
use, so ``import orchestrator`` (and ``gnas --help``) stays fast.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from orchestrator.run import StudyResult, run_study
    from orchestrator.spec import SpecError, StudySpec, load_spec
    from orchestrator.store import Store

# public name -> the module that defines it
API = {
    "StudySpec": "orchestrator.spec",
    "SpecError": "orchestrator.spec",
    "load_spec": "orchestrator.spec",
    "run_study": "orchestrator.run",
    "StudyResult": "orchestrator.run",
    "Store": "orchestrator.store",
}
__all__ = sorted(API)


def __getattr__(name: str) -> Any:
    if name not in API:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    value = getattr(importlib.import_module(API[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *API})
