"""The Parquet result store: one queryable record of every study.

Layout under one root (hive partitioning, so a single ``pyarrow.dataset`` scan reads all)::

    ROOT/trials/study=S/trainable=T/<trial_id>.parquet   one row per trial
    ROOT/archs/study=S/trainable=T/<trial_id>.parquet    one row per generated architecture

**Trials** rows hold the trial's identity (``trial_id``, ``config_id``, ``seed``), its config
flattened under ``config/…``, its final reported metrics, ``status``/``error``, and provenance:
``iteration``, ``wall_s``, ``cpus``, ``gpu_fraction``, ``gpu_hours``, ``device``, ``host``,
``git_commit``, ``version/<package>``… — the cost ledger (:meth:`Store.cost_ledger`).
**Archs** rows are the trial's ``archs.parquet`` (written by the trainable into its final
checkpoint) plus ``trial_id``, ``config_id`` and ``seed``.

The root is a local (or NFS) folder or an object-store URI (``s3://bucket/prefix``,
``gs://…``), resolved by :func:`orchestrator.storage.resolve_root`; everything goes through its
pyarrow filesystem, and readers use ``pyarrow.dataset`` over it.

No duplicates, none lost: a trial's rows live in exactly one file per table, named after the
trial id and replaced atomically whenever the trial is written again — after a retry, or after
a resumed study finishes it. Locally that is a hidden temp file + ``os.replace``; on an object
store, one upload of the whole encoded file (an object appears only when its upload completes,
so a reader sees the old file or the new one). The file holds the trial's final iteration, so
the (trial id, iteration) key is unique by construction. Writers never append.

This module imports neither Ray nor the trainables: the runner hands it :class:`TrialRecord`.
"""
from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import platform
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from orchestrator.storage import StorageRoot, resolve_root

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

TABLES = ("trials", "archs")
ARCHS_FILE = "archs.parquet"
PARTITIONS = ("study", "trainable")
DATA_FILES = "*.parquet"  # what readers see (names starting with "." or "_" never: writers' temp files)
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


@dataclass(frozen=True)
class TrialRecord:
    """What the store needs to know about one finished (or failed) trial."""

    trial_id: str
    trial_name: str
    config: Mapping[str, Any]
    result: Mapping[str, Any]  # the last result reported to Tune (may be empty)
    status: str  # TERMINATED or ERROR
    config_id: str
    error: str | None = None
    checkpoint_dir: str | None = None  # local directory of the latest checkpoint
    cpus: float = 0.0
    gpu_fraction: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)  # more columns (e.g. wandb_id)


@dataclass(frozen=True)
class Store:
    """A store root (a path or an ``s3://`` / ``gs://`` URI). Cheap to create; creates
    nothing until something is written. ``root`` is the root as a string (local: absolute)."""

    root: str
    location: StorageRoot = field(init=False, repr=False, compare=False)

    def __init__(self, root: "str | os.PathLike[str] | StorageRoot") -> None:
        location = resolve_root(root)
        object.__setattr__(self, "location", location)
        object.__setattr__(self, "root", location.uri)

    # ---------------------------------------------------------------- layout
    def partition(self, table: str, study: str, trainable: str) -> str:
        """The folder (on the store's filesystem) of one study and trainable's ``table`` files."""
        return self.location.join(table, f"study={study}", f"trainable={_partition_value(trainable)}")

    def has_study(self, study: str) -> bool:
        """Whether any rows of ``study`` were written (under any trainable)."""
        return any(self.location.exists(self.location.join(t, f"study={study}")) for t in TABLES)

    # ---------------------------------------------------------------- writing
    def write_trial(self, study: str, trainable: str, record: TrialRecord,
                    provenance: Mapping[str, Any]) -> tuple[int, int]:
        """Write (or replace) ``record``'s trials row and archs rows. Returns the row counts."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        row = trial_row(record, provenance)
        self._replace(self.partition("trials", study, trainable), record.trial_id, pa.Table.from_pylist([row]))
        n_archs = 0
        archs_file = Path(record.checkpoint_dir, ARCHS_FILE) if record.checkpoint_dir else None
        if archs_file is not None and archs_file.is_file():
            archs = pq.read_table(archs_file)
            n_archs = archs.num_rows
            for name, value in (("trial_id", record.trial_id), ("config_id", record.config_id),
                                ("seed", record.config.get("seed"))):
                if name in archs.column_names:
                    archs = archs.drop_columns([name])
                archs = archs.append_column(name, pa.array([value] * n_archs))
            self._replace(self.partition("archs", study, trainable), record.trial_id, archs)
        return 1, n_archs

    def _replace(self, directory: str, trial_id: str, table: "pa.Table") -> None:
        """Encode ``table`` in memory, then put it as ``<directory>/<trial_id>.parquet`` at once."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self.location.write_bytes(f"{directory}/{trial_id}.parquet", sink.getvalue().to_pybytes())

    def trial_ids(self, study: str) -> set[str]:
        """Ids of the trials of ``study`` that have a trials row."""
        base = self.location.join("trials", f"study={study}")
        return {Path(p).stem for p in self._data_files(base)}

    def _data_files(self, base: str) -> list[str]:
        """The data files under ``base`` at partition depth (``…/trainable=T/<file>``)."""
        return [p for p in self.location.files(base, DATA_FILES)
                if p.rsplit("/", 2)[-2].startswith("trainable=")]

    # ---------------------------------------------------------------- reading
    def read(self, table: str = "trials", studies: Iterable[str] | None = None) -> "pa.Table":
        """The whole history of ``table`` across studies, in one ``pyarrow.dataset`` scan.

        Files written by different studies may carry different columns (configs differ):
        their schemas are unified (missing columns read as null, ints widen to floats).
        """
        import pyarrow as pa
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
        base = self.location.join(table)
        files = [p for p in self._data_files(base) if p.rsplit("/", 3)[-3].startswith("study=")]
        partitioning = ds.partitioning(pa.schema([(p, pa.string()) for p in PARTITIONS]), flavor="hive")
        if not files:
            return pa.table({p: pa.array([], pa.string()) for p in PARTITIONS})
        fs = self.location.filesystem
        schema = pa.unify_schemas([pq.read_schema(f, filesystem=fs) for f in files] + [partitioning.schema],
                                  promote_options="permissive")
        dataset = ds.dataset(files, schema=schema, format="parquet", filesystem=fs,
                             partitioning=partitioning, partition_base_dir=base)
        wanted = None if studies is None else ds.field("study").isin(list(studies))
        return dataset.to_table(filter=wanted)

    def read_pandas(self, table: str = "trials", studies: Iterable[str] | None = None) -> "pd.DataFrame":
        """:meth:`read` as a pandas DataFrame."""
        return self.read(table, studies).to_pandas()

    def cost_ledger(self) -> "pd.DataFrame":
        """Per study and trainable: trials, wall seconds, CPU-hours and GPU-hours spent."""
        frame = self.read_pandas("trials")
        columns = ["study", "trainable", "trials", "wall_s", "cpu_hours", "gpu_hours"]
        if frame.empty:
            import pandas as pd

            return pd.DataFrame(columns=columns)
        ledger = frame.groupby(["study", "trainable"], as_index=False).agg(
            trials=("trial_id", "count"), wall_s=("wall_s", "sum"),
            cpu_hours=("cpu_hours", "sum"), gpu_hours=("gpu_hours", "sum"))
        return ledger[columns]


# --------------------------------------------------------------------------- rows
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


def _partition_value(value: str) -> str:
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
