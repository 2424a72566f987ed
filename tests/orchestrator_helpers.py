"""Shared pieces of the orchestrator tests: one Ray per session, small toy specs, readers."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator.spec import Objective, Resources, StudySpec, WandbSpec
from orchestrator.store import Store

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # every Ray process of the tests agrees


@pytest.fixture(scope="session")
def ray_address() -> str:
    """One Ray for the whole session (2 CPUs, 1 logical GPU); yields its GCS address.

    The logical GPU lets the fractional-GPU test run on CPU-only machines; trials that ask
    for no GPU are unaffected. Subprocess drivers connect to it with ``--address``.
    """
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    if started:
        ray.shutdown()


def toy_spec(root: Path, name: str, **fields: Any) -> StudySpec:
    """A toy study storing under ``root``; W&B off unless ``wandb=`` is given."""
    defaults: dict[str, Any] = dict(
        name=name, trainable="toy", objectives=(Objective("top5_pct", "max"),),
        storage=str(root), wandb=WandbSpec(enabled=False), resources=Resources(cpu=1),
        concurrency=2,
    )
    return StudySpec(**{**defaults, **fields})


def trials(root: Path, study: str):
    """The study's trials rows as a DataFrame."""
    return Store(root).read_pandas("trials", studies=[study])


def archs(root: Path, study: str):
    return Store(root).read_pandas("archs", studies=[study])
