"""What every generator trial shares: config → benchmark access, seeding, final scoring.

A generator's ``train(config)`` does::

    trial = common.open_trial(config)            # oracle (training) + evaluator (statistics)
    ... fit the model, using only trial.oracle ...
    archs = model.sample(trial.config.n_samples)
    with reporting.checkpoint_dir() as d:
        metrics = common.finish(trial, archs, d, extra={"loss/g": ...})
        reporting.report(metrics, d)

``finish`` scores the generated architectures on the evaluation field and writes
``archs.parquet`` (one row per architecture, clean accuracy on every score field) into the
checkpoint directory, where the orchestrator's store picks it up. Its metrics include, for each
score field ``f`` other than the evaluation field, ``top5_pct@f`` etc. (:data:`TRANSFER_METRICS`).

Cross-space transfer: with ``transfer_space`` set (e.g. train on ``nb101``, ``transfer_space:
nb201``) every valid generated cell is also mapped into that space
(:mod:`trainables.spaces.transfer`) and scored on its table, as ``top5_pct@nb201:cifar10/test/200``
etc. plus ``uniqueness@nb201`` (the mapping merges cells); ``archs.parquet`` gains the mapped
key and accuracies. Training never sees the target table.

Selection and evaluation (docs/DESIGN.md, "Selection on validation"): three fields, three
uses. ``label_field`` is what the oracle answers to training; ``select_field`` is what a
searcher or a scheduler may rank trials by; ``eval_field`` is what the report states, and
nothing that chooses may read it. ``select_field`` defaults to ``label_field`` (training may
see it anyway): NB201 ``cifar10-valid/valid/200`` for cifar10, NAS-Bench-Graph
``<dataset>/valid/final``. NB101's sample table and ENAS-6 hold one field only, so there
selection and evaluation coincide; :func:`selection_problem` says so and preflight refuses
to search on it. Metric names:

* ``top5_pct``, ``acc_best``, … (:data:`EVALUATION_STATS`), ``best_found``, ``heldout_hit_pct``
  and every ``<metric>@<field>``: on the evaluation field (or another test field) — reports only;
* ``val_top5_pct``, ``val_acc_best``, … (:data:`SELECTION_METRICS`; ``val_`` + the statistic):
  the same statistics on ``select_field`` — what search and early stopping use;
* ``validity``, ``uniqueness``, ``novelty``, ``queries`` (:data:`FIELD_FREE_METRICS`): read
  no accuracy at all.

:func:`metric_role` classifies a name; :func:`reported_metrics` lists what a generator trial
reports, and is what a generator module declares. Intermediate reports carry selection and
field-free metrics only (:func:`progress_statistics`); the evaluation field is read once, by
:func:`finish`.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from trainables.arch import ArchGraph
from trainables.degrade import Degradation
from trainables.oracle import Evaluator, Oracle, open_benchmark

ARCHS_FILE = "archs.parquet"
# Reported for every score field besides the evaluation field, as "<metric>@<field>".
TRANSFER_METRICS = ("top1_pct", "top5_pct", "top10_pct", "acc_mean", "acc_best")
# Statistics of generated cells that read an accuracy field (trainables.stats.generation_stats).
EVALUATION_STATS = ("top1_pct", "top5_pct", "top10_pct", "top20_pct", "top50_pct", "acc_mean", "acc_median",
                    "acc_best")
SELECTION_PREFIX = "val_"
SELECTION_METRICS = tuple(SELECTION_PREFIX + m for m in EVALUATION_STATS)
FIELD_FREE_METRICS = ("validity", "uniqueness", "novelty", "queries")
# Read the evaluation field (or the held-out set, which is defined on it) besides EVALUATION_STATS.
_EVALUATION_EXTRA = ("heldout_hit_pct", "best_found", "best_found_acc")

# Default (label field, evaluation field) per space and dataset. NB201's shared table has
# 200-epoch validation accuracy only for cifar10-valid; cifar100/imagenet16 train on their
# 12-epoch validation labels (as GraphPNAS's authors did) and are evaluated on 200-epoch test.
_DEFAULT_FIELDS = {
    ("nb201", "cifar10"): ("cifar10-valid/valid/200", "cifar10/test/200"),
    ("nb201", "cifar100"): ("cifar100/valid/12", "cifar100/test/200"),
    ("nb201", "imagenet16"): ("imagenet16/valid/12", "imagenet16/test/200"),
    ("nb101", "cifar10"): ("cifar10/valid/108", "cifar10/valid/108"),
    ("enas6", "cifar10"): ("cifar10/valid/ws", "cifar10/valid/ws"),  # weight-sharing accuracy only
}
DEFAULT_DATASET = {"nb201": "cifar10", "nb101": "cifar10", "nbgraph": "cora", "enas6": "cifar10"}


def transfer_name(metric: str, field: str, space: str | None = None) -> str:
    """Name of ``metric`` scored on another field (``top5_pct@cifar100/test/200``) or on a field
    of another space (``top5_pct@nb201:cifar100/test/200``)."""
    return f"{metric}@{space}:{field}" if space else f"{metric}@{field}"


def default_fields(space: str, dataset: str) -> tuple[str, str]:
    if space == "nbgraph":
        return f"{dataset}/valid/final", f"{dataset}/test/final"
    try:
        return _DEFAULT_FIELDS[(space, dataset)]
    except KeyError:
        raise ValueError(f"no default accuracy fields for space {space!r} dataset {dataset!r}; "
                         "set label_field and eval_field") from None


def selection_name(metric: str) -> str:
    """Name of ``metric`` computed on the selection field: ``val_top5_pct``."""
    return SELECTION_PREFIX + metric


def metric_role(name: str) -> str:
    """``"selection"``, ``"evaluation"`` or ``"free"`` (reads no accuracy field) for a metric a
    generator trial reports; ``"other"`` for names this module does not define (losses…)."""
    if name in SELECTION_METRICS or name == selection_name("best_found"):
        return "selection"
    if name in EVALUATION_STATS or name in _EVALUATION_EXTRA or "@" in name or name.startswith("ascent/"):
        return "evaluation"
    if name in FIELD_FREE_METRICS:
        return "free"
    return "other"


def reported_metrics(config: dict[str, Any]) -> dict[str, str]:
    """Every metric a generator trial with ``config`` reports at its end → its role
    (:func:`metric_role`). Generator modules declare this (plus their own extra names)."""
    names = [*FIELD_FREE_METRICS, *EVALUATION_STATS, "heldout_hit_pct", *SELECTION_METRICS]
    return {n: metric_role(n) for n in names}


def selection_problem(config: dict[str, Any]) -> str | None:
    """Why a trial with ``config`` cannot be selected on honestly (``None`` when it can): the
    selection field is the evaluation field (a table with one accuracy field)."""
    cfg = BenchmarkConfig.from_config(config)
    if cfg.select_field == cfg.eval_field:
        return (f"space {cfg.space!r} selects on {cfg.select_field!r}, the field the report states "
                "(its table has no separate validation field); set select_field and eval_field to different fields")
    return None


def dataset_fields(space: str, fields: Sequence[str]) -> list[tuple[str, str]]:
    """``(dataset, evaluation field)`` of every dataset of a table with ``fields`` that has a
    default field pair (NB201's ``cifar10-valid`` is a split of cifar10, not another task)."""
    out = []
    for name in dict.fromkeys(f.split("/")[0] for f in fields):
        try:
            _, eval_field = default_fields(space, name)
        except ValueError:
            continue
        if eval_field in fields:
            out.append((name, eval_field))
    return out


MAX_SAMPLES = 1_000_000  # architectures one trial samples, scores and writes
MAX_QUERY_BUDGET = 10_000_000  # NAS-Bench-101, the largest table, has 423,624 cells


@dataclass(frozen=True)
class BenchmarkConfig:
    """The benchmark part of every generator's config (the rest is the generator's own).

    ``label_field`` is what training sees (through the oracle); ``select_field`` (default:
    ``label_field``) is what the ``val_*`` metrics that search ranks by are computed on;
    ``eval_field`` is what the statistics report; ``score_fields`` are scored too in ``archs.parquet`` (cross-dataset
    transfer; default: every field of the table with the evaluation field's split and
    fidelity). ``transfer_space`` scores the generated cells in another space too, through
    :func:`trainables.spaces.transfer.mapping`, on ``transfer_fields`` (default: each of its
    datasets' default evaluation field) of its table, read from ``transfer_data_dir``
    (default: ``data_dir``).
    """

    space: str = "nbgraph"
    data_dir: str | None = None
    dataset: str | None = None
    label_field: str | None = None
    eval_field: str | None = None
    select_field: str | None = None
    score_fields: tuple[str, ...] = ()
    seed: int = 0
    query_budget: int | None = None
    holdout_top_pct: float = 0.0
    train_fraction: float = 1.0
    label_noise: float = 0.0
    n_samples: int = 1000
    transfer_space: str | None = None
    transfer_data_dir: str | None = None
    transfer_fields: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "BenchmarkConfig":
        """The benchmark keys of a trial config, parsed by the one parser
        (:func:`trainables.config.parse_config`); the generator's own keys are its run's."""
        from trainables.config import parse_config

        names = {f.name for f in fields(cls)}
        cfg = parse_config(cls, {k: v for k, v in config.items() if k in names}, "benchmark")
        from trainables.spaces import SPACES

        if cfg.space not in SPACES:
            raise ValueError(f"unknown search space {cfg.space!r}; expected one of {', '.join(SPACES)}")
        dataset = cfg.dataset or DEFAULT_DATASET.get(cfg.space, "")
        lf, ef = (cfg.label_field, cfg.eval_field)
        if lf is None or ef is None:
            dl, de = default_fields(cfg.space, dataset)
            lf, ef = lf or dl, ef or de
        if cfg.query_budget is not None and cfg.query_budget < 0:
            raise ValueError(f"query_budget must be >= 0, got {cfg.query_budget}")
        if cfg.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {cfg.n_samples}")
        if cfg.n_samples > MAX_SAMPLES:
            raise ValueError(f"n_samples {cfg.n_samples:,} is more than {MAX_SAMPLES:,} architectures a trial"
                             " scores and stores (each is a graph in memory and a row of archs.parquet)")
        if cfg.query_budget is not None and cfg.query_budget > MAX_QUERY_BUDGET:
            raise ValueError(f"query_budget {cfg.query_budget:,} is above {MAX_QUERY_BUDGET:,}, more cells than any"
                             " benchmark holds; leave it out for no limit")
        return cls(**{**cfg.__dict__, "dataset": dataset, "label_field": lf, "eval_field": ef,
                      "select_field": cfg.select_field or lf})

    @property
    def degradation(self) -> Degradation:
        return Degradation(self.holdout_top_pct, self.train_fraction, self.label_noise)


def validate_benchmark(config: dict[str, Any]) -> BenchmarkConfig:
    """Check the benchmark part of a config before anything launches: space, data path,
    field names, degradation knobs. Raises ``ValueError`` with one clear line."""
    from trainables.spaces import SPACES, load_table

    cfg = BenchmarkConfig.from_config(config)
    if cfg.space not in SPACES:
        raise ValueError(f"unknown search space {cfg.space!r}; expected one of {', '.join(SPACES)}")
    cfg.degradation  # noqa: B018 - validates the knobs
    table = load_table(cfg.space, cfg.data_dir)  # missing data → ValueError naming the path
    for f in dict.fromkeys((cfg.label_field, cfg.eval_field, cfg.select_field, *cfg.score_fields)):
        col = table.column(f)
        if not np.isfinite(col).any():
            raise ValueError(f"field {f!r} of {table.source or cfg.space} has no values (every row is empty)")
    if cfg.transfer_space is not None:
        open_transfer(cfg)
    elif cfg.transfer_fields or cfg.transfer_data_dir:
        raise ValueError("transfer_fields / transfer_data_dir need transfer_space")
    return cfg


@dataclass(frozen=True)
class Transfer:
    """Generated cells mapped into ``space`` and scored there (cross-space transfer)."""

    space: str
    map: Callable[[ArchGraph], ArchGraph]
    evaluator: Evaluator
    fields: tuple[str, ...]

    def score(self, archs: Sequence[ArchGraph], source_valid: Sequence[bool], queries: int
              ) -> tuple[dict[str, Any], dict[str, list]]:
        """(metrics, archs-table columns) of the mapped cells; invalid source cells stay invalid."""
        from trainables.stats import generation_stats

        valid = np.asarray(source_valid, dtype=bool)
        mapped = [self.map(a) for a, v in zip(archs, valid) if v]
        space = self.evaluator.space
        keys_valid = [space.key(m) for m in mapped]
        keys: list[str | None] = [None] * len(archs)
        for i, k in zip(np.flatnonzero(valid), keys_valid):
            keys[i] = k
        metrics: dict[str, Any] = {}
        cols: dict[str, list] = {f"key@{self.space}": keys}
        for f in self.fields:
            acc = np.full(len(archs), np.nan)
            acc[valid] = self.evaluator.values(mapped, f)
            stats = generation_stats(valid, keys, acc, seen_keys=set(), heldout_keys=(),
                                     thresholds=self.evaluator.thresholds(f), queries=queries)
            metrics.update({transfer_name(k, f, self.space): stats[k] for k in TRANSFER_METRICS})
            cols[f"acc:{self.space}:{f}"] = acc.tolist()
        metrics[f"uniqueness@{self.space}"] = stats["uniqueness"]  # the same for every field (fields ≥ 1)
        return metrics, cols


def open_transfer(cfg: BenchmarkConfig) -> Transfer:
    """The :class:`Transfer` of a config with ``transfer_space`` (``ValueError``: one line)."""
    from trainables.spaces import SPACES, load_table
    from trainables.spaces.transfer import mapping

    target = cfg.transfer_space
    if target not in SPACES:
        raise ValueError(f"unknown transfer_space {target!r}; expected one of {', '.join(SPACES)}")
    fn = mapping(cfg.space, target)
    table = load_table(target, cfg.transfer_data_dir or cfg.data_dir)
    fields = cfg.transfer_fields or tuple(f for _, f in dataset_fields(target, table.fields))
    if not fields:
        raise ValueError(f"transfer_space {target!r}: no default evaluation fields; set transfer_fields")
    for f in fields:
        table.column(f)  # unknown name → ValueError listing the table's fields
    return Transfer(target, fn, Evaluator(table, fields[0], np.zeros(len(table), dtype=bool)), tuple(fields))


@dataclass
class Trial:
    config: BenchmarkConfig
    oracle: Oracle
    evaluator: Evaluator
    rng: np.random.Generator
    device: str
    score_fields: list[str] = field(default_factory=list)
    transfer: Transfer | None = None


def seed_everything(seed: int) -> None:
    """Python, numpy's legacy global and torch (CPU and CUDA) from one seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def open_trial(config: dict[str, Any], device: str | None = None) -> Trial:
    """Parse the benchmark part of ``config``, open (oracle, evaluator), seed everything."""
    from trainables import reporting, spaces

    cfg = BenchmarkConfig.from_config(config)
    with spaces._unsealed():  # a trial opened while another trains in this thread (a crashed one)
        table = spaces.load_table(cfg.space, cfg.data_dir)
        transfer = open_transfer(cfg) if cfg.transfer_space is not None else None
    oracle, evaluator = open_benchmark(table, cfg.label_field, cfg.eval_field, degradation=cfg.degradation,
                                       budget=cfg.query_budget, seed=cfg.seed, select_field=cfg.select_field)
    seed_everything(cfg.seed)
    if cfg.score_fields:
        score = list(cfg.score_fields)
    else:
        _, split, fidelity = cfg.eval_field.split("/")
        score = [f for f in table.fields if f.split("/")[1:] == [split, fidelity]]
    for f in score:
        table.column(f)
    trial = Trial(cfg, oracle, evaluator, np.random.default_rng(cfg.seed), device or reporting.device(), score,
                  transfer)
    spaces.seal_while(trial)  # until finish: no table for training code
    return trial


def selection_statistics(trial: Trial, archs: Sequence[ArchGraph]) -> dict[str, float]:
    """The ``val_*`` statistics of ``archs``: computed on the selection field only."""
    stats = trial.evaluator.statistics(archs, trial.oracle.seen_keys(), trial.oracle.queries,
                                       field=trial.config.select_field)
    return {selection_name(k): stats[k] for k in EVALUATION_STATS}


def progress_statistics(trial: Trial, archs: Sequence[ArchGraph]) -> dict[str, float]:
    """What an intermediate report may carry about ``archs``: field-free and selection
    statistics; never the evaluation field (schedulers read intermediate reports)."""
    stats = trial.evaluator.statistics(archs, trial.oracle.seen_keys(), trial.oracle.queries,
                                       field=trial.config.select_field)
    out = {k: stats[k] for k in FIELD_FREE_METRICS}
    out.update({selection_name(k): stats[k] for k in EVALUATION_STATS})
    return out


def finish(trial: Trial, archs: Sequence[ArchGraph], checkpoint_dir: str | Path,
           extra: dict[str, float] | None = None) -> dict[str, Any]:
    """Score ``archs`` and write ``archs.parquet`` into ``checkpoint_dir``; return metrics."""
    seen = trial.oracle.seen_keys()
    metrics: dict[str, Any] = trial.evaluator.statistics(archs, seen, trial.oracle.queries)
    metrics.update(selection_statistics(trial, archs))
    for f in trial.score_fields:  # the same samples scored on other datasets (transfer studies)
        if f != trial.config.eval_field:
            other = trial.evaluator.statistics(archs, seen, trial.oracle.queries, field=f)
            metrics.update({transfer_name(k, f): other[k] for k in TRANSFER_METRICS})
    cols = trial.evaluator.rows(archs, seen, trial.score_fields)
    if trial.transfer is not None:
        more, more_cols = trial.transfer.score(archs, cols["valid"], trial.oracle.queries)
        metrics.update(more)
        cols.update(more_cols)
    metrics.update(extra or {})
    metrics["label_field"] = trial.config.label_field
    metrics["eval_field"] = trial.config.eval_field
    metrics["select_field"] = trial.config.select_field
    from trainables import spaces

    spaces.unseal()  # training is over: scoring and reports may read tables again
    cols["label_field"] = [trial.config.label_field] * len(archs)
    cols["eval_field"] = [trial.config.eval_field] * len(archs)
    write_archs(checkpoint_dir, cols)
    return metrics


def _archs_type(name: str):
    """The Arrow type of a known ``archs.parquet`` column (``None``: inferred from the values)."""
    import pyarrow as pa

    if name in ("key", "ops", "edges", "label_field", "eval_field", "arch", "kind") or name.startswith("key@"):
        return pa.string()
    if name in ("valid", "novel", "heldout"):
        return pa.bool_()
    if name == "index":
        return pa.int64()
    if name.startswith("acc:"):
        return pa.float64()
    return None


def write_archs(directory: str | Path, columns: dict[str, list], types: dict[str, Any] | None = None) -> Path:
    """Write ``archs.parquet`` (one row per architecture) into ``directory``, atomically.

    The one writer of the file the store reads: known columns get their type whatever their
    values (a ``key`` column of invalid cells only is all null, yet still a string column);
    ``types`` (column → Arrow type) types a trainable's own columns the same way.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trainables.atomic import atomic_write

    types = types or {}
    arrays = {name: pa.array(values, type=types.get(name, _archs_type(name))) for name, values in columns.items()}
    table = pa.table(arrays)
    return atomic_write(Path(directory) / ARCHS_FILE, lambda tmp: pq.write_table(table, tmp))
