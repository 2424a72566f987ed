"""The rows the store writes for a trial: its trials row (identity, metrics, flattened config,
cost and provenance) and its history rows (one per reported iteration)."""
from __future__ import annotations

import functools
import importlib.metadata
import json
import platform
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from orchestrator.store import TrialRecord

VERSIONED_PACKAGES = ("gnas-orchestrator", "ray", "optuna", "pyarrow", "torch", "torch-geometric", "wandb")

# Keys Ray Tune adds to every result: bookkeeping, not metrics of the trainable.
TUNE_RESULT_KEYS = frozenset({
    "config", "date", "done", "episodes_total", "experiment_id", "experiment_tag", "hostname",
    "iterations_since_restore", "node_ip", "pid", "should_checkpoint", "time_since_restore",
    "time_this_iter_s", "time_total_s", "timestamp", "timesteps_since_restore", "timesteps_total",
    "training_iteration", "trial_id", "checkpoint_dir_name",
})
# Keys the orchestrator's trial runner merges into every report (see orchestrator.trial).
RUNNER_KEYS = frozenset({"device", "gpu_ids", "trial_started_at"})


def trial_row(record: TrialRecord, provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The trials-table row of ``record`` (column order: identity, metrics, config, cost)."""
    result = dict(record.result)
    wall = float(result.get("time_total_s") or 0.0)
    row: dict[str, Any] = {
        "trial_id": record.trial_id,
        "trial_name": record.trial_name,
        "config_id": record.config_id,
        "seed": record.config.get("seed"),
        "status": record.status,
        "error": record.error,
        "iteration": int(result.get("training_iteration") or 0),
    }
    for key, value in result.items():
        if key not in TUNE_RESULT_KEYS and key not in RUNNER_KEYS and key not in row:
            row[key] = _cell(value)
    for key, value in _flatten(record.config).items():
        row[f"config/{key}"] = _cell(value)
    row.update({
        "wall_s": wall,
        "cpus": float(record.cpus),
        "gpu_fraction": float(record.gpu_fraction),
        "cpu_hours": wall * record.cpus / 3600.0,
        "gpu_hours": wall * record.gpu_fraction / 3600.0,
        "device": result.get("device"),
        "gpu_ids": result.get("gpu_ids"),
        "host": result.get("hostname"),
        "node_ip": result.get("node_ip"),
        "started_at": result.get("trial_started_at"),
        "finished_at": result.get("timestamp"),
    })
    row.update({k: _cell(v) for k, v in record.extra.items()})
    row.update(provenance)
    return row


def history_rows(record: TrialRecord) -> list[dict[str, Any]]:
    """One row per reported iteration of ``record`` (the last report of a repeated iteration):
    its identity, ``iteration``, ``time_total_s`` and the numeric metrics (columns are the
    union over iterations; a metric reported only at the end is null before)."""
    by_iteration: dict[int, Mapping[str, Any]] = {}
    for result in record.history:
        if result.get("training_iteration") is not None:
            by_iteration[int(result["training_iteration"])] = result
    metrics = sorted({k for r in by_iteration.values() for k, v in r.items()
                      if k not in TUNE_RESULT_KEYS and k not in RUNNER_KEYS and _is_number(v)})
    return [{"trial_id": record.trial_id, "config_id": record.config_id, "seed": record.config.get("seed"),
             "iteration": i, "time_total_s": float(r.get("time_total_s") or 0.0),
             **{k: float(r[k]) if _is_number(r.get(k)) else None for k in metrics}}
            for i, r in sorted(by_iteration.items())]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def provenance() -> dict[str, Any]:
    """Driver-side provenance shared by every row of a study run."""
    info: dict[str, Any] = {
        "git_commit": git_commit(),
        "driver_host": socket.gethostname(),
        "version/python": platform.python_version(),
    }
    for package in VERSIONED_PACKAGES:
        info[f"version/{package}"] = _version(package)
    return info


@functools.lru_cache(maxsize=None)
def git_commit(start: str | None = None) -> str | None:
    """Commit checked out in the repository holding this package (read from ``.git``)."""
    here = Path(start) if start else Path(__file__).resolve().parent
    for directory in (here, *here.parents):
        git = directory / ".git"
        if git.is_file():  # a worktree: "gitdir: <path>"
            text = git.read_text().strip()
            if text.startswith("gitdir:"):
                git = (directory / text.split(":", 1)[1].strip()).resolve()
        if git.is_dir():
            return _read_head(git)
    return None


def _read_head(git: Path) -> str | None:
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None
        ref = head.split(":", 1)[1].strip()
        common = git
        if (git / "commondir").is_file():
            common = (git / (git / "commondir").read_text().strip()).resolve()
        for base in (git, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip()
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    except OSError:
        return None
    return None  # a fresh repository without commits


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def partition_value(value: str) -> str:
    """A path-safe partition value ("pkg.mod:fn" targets carry a colon)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in value)


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}/"))
        else:
            flat[name] = value
    return flat


def _cell(value: Any) -> Any:
    """A Parquet-friendly scalar: containers become JSON text, numpy scalars Python ones."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    try:  # numpy scalars and the like
        return value.item()
    except AttributeError:
        return str(value)
