"""The Parquet result store: one queryable record of every study.

Layout under one root (hive partitioning, so a single ``pyarrow.dataset`` scan reads all)::

    ROOT/trials/study=S/trainable=T/<trial_id>.parquet   one row per trial
    ROOT/archs/study=S/trainable=T/<trial_id>.parquet    one row per generated architecture
    ROOT/history/study=S/trainable=T/<trial_id>.parquet  one row per reported iteration

**Trials** rows hold the trial's identity (``trial_id``, ``config_id``, ``seed``), its config
flattened under ``config/…``, its final reported metrics, ``status``/``error``, and provenance:
``iteration``, ``wall_s``, ``cpus``, ``gpu_fraction``, ``gpu_hours``, ``device``, ``host``,
``git_commit``, ``version/<package>``… — the cost ledger (:meth:`Store.cost_ledger`).
**Archs** rows are the trial's ``archs.parquet`` (written by the trainable into its final
checkpoint) plus ``trial_id``, ``config_id`` and ``seed``. **History** rows are the trial's
numeric reports, one per ``iteration`` (Tune's ``training_iteration``), read from Tune's own
``result.json`` of the trial (a resumed trial's repeated iterations: the last report counts) —
what the W&B runs are rebuilt from (:mod:`orchestrator.wandb_runs`).

The root is a local (or NFS) folder or an object-store URI (``s3://bucket/prefix``,
``gs://…``), resolved by :func:`orchestrator.storage.resolve_root`; everything goes through its
pyarrow filesystem, and readers use ``pyarrow.dataset`` over it.

No duplicates, none lost: a trial is written as one file per table, named after the trial id
and replaced atomically whenever the trial is written again — after a retry, or after a resumed
study finishes it. Locally that is a hidden temp file + ``os.replace``; on an object store, one
upload of the whole encoded file (an object appears only when its upload completes, so a reader
sees the old file or the new one). The file holds the trial's final iteration. Writers never
append.

**Compaction** (:meth:`Store.compact`; the writing store runs it every :data:`COMPACT_EVERY`
trials it writes to a partition, and :func:`orchestrator.run.run_study` at a study's end) merges a
partition's per-trial files into one ``compacted-<generation>-<id>.parquet`` file, so that a
10,000-trial study reads as a handful of files instead of 20,000. Readers see each trial exactly
once at every moment, because they rank a trial's copies: its own per-trial file beats any
compacted copy, and a newer compaction generation beats an older one (:meth:`Store.read`). So the
compacted file is written first (atomically), and only then are the per-trial files it holds
removed — each *claimed* first by an atomic rename to a hidden name, and removed only if the
claimed file is the very file compaction read (same inode, size and mtime); a file a writer
replaced in the meantime is put back. A compaction killed half-way leaves duplicates readers
rank away, or a claimed file that the next compaction puts back first. Compactions of one
partition are serialised with a lock file; on an object store (no rename, no lock) a file is
removed only if its modification time is still the one compaction read, and one process should
compact at a time (the study's driver).

This module imports neither Ray nor the trainables: the runner hands it :class:`TrialRecord`.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from orchestrator.layout import FORMAT_FILE, TABLES
from orchestrator.rows import history_rows, partition_value, trial_row
from orchestrator.status import FINAL_STATUSES, STOPPED, TERMINATED, StudyStatus, study_status
from orchestrator.storage import StorageRoot, resolve_root

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd
    import pyarrow as pa

ARCHS_FILE = "archs.parquet"
PARTITIONS = ("study", "trainable")
DATA_FILES = "*.parquet"  # what readers see (names starting with "." or "_" never: writers' temp files)
COMPACTED_PREFIX = "compacted-"  # compacted-<generation>-<id>.parquet; trial ids never start so
COMPACTED_NAME = re.compile(r"compacted-(\d+)-[0-9a-f]+\.parquet")
CLAIMED_PREFIX = ".claimed-"  # a per-trial file taken by a compaction, until it is removed
LOCK_FILE = "_compaction.lock"
COMPACT_EVERY = 64  # per-trial files one store writes to a partition before it compacts it
MAX_COMPACTED = 16  # compacted files in a partition before they are merged into one
STORE_FORMAT = 1  # in FORMAT_FILE; raised when a change of layout or columns would mislead an older reader





@dataclass(frozen=True)
class TrialRecord:
    """What the store needs to know about one finished (or failed) trial."""

    trial_id: str
    trial_name: str
    config: Mapping[str, Any]
    result: Mapping[str, Any]  # the last result reported to Tune (may be empty)
    status: str  # one of TERMINATED, STOPPED, ERROR, INTERRUPTED
    config_id: str
    error: str | None = None
    checkpoint_dir: str | None = None  # local directory of the latest checkpoint
    cpus: float = 0.0
    gpu_fraction: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)  # more columns (e.g. wandb_id)
    history: Sequence[Mapping[str, Any]] = ()  # every result reported to Tune, in order


class StoreDamaged(OSError):
    """A file of a study that was asked for by name cannot be read; ``str()`` is one line
    naming the file and its study."""


class DamagedFileWarning(UserWarning):
    """A damaged file was left out of a read of the whole store (its study named)."""


@dataclass(frozen=True)
class Store:
    """A store root (a path or an ``s3://`` / ``gs://`` URI). Cheap to create; creates
    nothing until something is written. ``root`` is the root as a string (local: absolute)."""

    root: str
    location: StorageRoot = field(init=False, repr=False, compare=False)
    _writes: dict = field(init=False, repr=False, compare=False)  # partition -> files written

    def __init__(self, root: "str | os.PathLike[str] | StorageRoot") -> None:
        location = resolve_root(root)
        object.__setattr__(self, "location", location)
        object.__setattr__(self, "root", location.uri)
        object.__setattr__(self, "_writes", {})

    # ---------------------------------------------------------------- layout
    def partition(self, table: str, study: str, trainable: str) -> str:
        """The folder (on the store's filesystem) of one study and trainable's ``table`` files."""
        return self.location.join(table, f"study={study}", f"trainable={partition_value(trainable)}")

    def has_study(self, study: str) -> bool:
        """Whether any rows of ``study`` were written (under any trainable)."""
        return any(self.location.exists(self.location.join(t, f"study={study}")) for t in TABLES)

    # ---------------------------------------------------------------- writing
    def write_trial(self, study: str, trainable: str, record: TrialRecord,
                    provenance: Mapping[str, Any]) -> tuple[int, int]:
        """Write (or replace) ``record``'s trials row and archs rows. Returns the row counts.

        Every :data:`COMPACT_EVERY` trials this store writes to a partition, it compacts it.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._writes.get(FORMAT_FILE):
            self.check_format()
            if not self.location.exists(self.location.join(FORMAT_FILE)):
                self.location.write_bytes(self.location.join(FORMAT_FILE), json.dumps({"format": STORE_FORMAT}).encode())
            self._writes[FORMAT_FILE] = True
        row = trial_row(record, provenance)
        self._replace(self.partition("trials", study, trainable), record.trial_id, pa.Table.from_pylist([row]))
        n_archs = 0
        archs_file = Path(record.checkpoint_dir, ARCHS_FILE) if record.checkpoint_dir else None
        if archs_file is not None and archs_file.is_file():
            archs = pq.ParquetFile(archs_file).read()  # ~2x faster than read_table on a small file
            n_archs = archs.num_rows
            for name, value in (("trial_id", record.trial_id), ("config_id", record.config_id),
                                ("seed", record.config.get("seed"))):
                if name in archs.column_names:
                    archs = archs.drop_columns([name])
                archs = archs.append_column(name, pa.array([value] * n_archs))
            self._replace(self.partition("archs", study, trainable), record.trial_id, archs)
        if rows := history_rows(record):
            self._replace(self.partition("history", study, trainable), record.trial_id, pa.Table.from_pylist(rows))
        written = self._writes[(study, trainable)] = self._writes.get((study, trainable), 0) + 1
        if written % COMPACT_EVERY == 0:
            for table in TABLES:
                if self.location.exists(directory := self.partition(table, study, trainable)):  # none: no archs/history
                    self._compact_partition(directory)
        return 1, n_archs

    def _replace(self, directory: str, trial_id: str, table: "pa.Table") -> None:
        """Encode ``table`` in memory, then put it as ``<directory>/<trial_id>.parquet`` at once."""
        self.location.write_bytes(f"{directory}/{trial_id}.parquet", _encode(table))

    def trial_ids(self, study: str) -> set[str]:
        """Ids of the trials of ``study`` that have a trials row."""
        return set(self._scan("trials", [study], columns=("trial_id",)).column("trial_id").to_pylist())

    def final_trial_ids(self, study: str) -> set[str]:
        """Ids of the trials of ``study`` stored in a final status (:data:`FINAL_STATUSES`)."""
        rows = self._scan("trials", [study], columns=("trial_id", "status"))
        return {t for t, s in zip(rows.column("trial_id").to_pylist(), rows.column("status").to_pylist())
                if s in FINAL_STATUSES}

    def finished_trials(self, study: str) -> int:
        """How many trials of ``study`` ran to their end or were stopped early by its scheduler."""
        rows = self._scan("trials", [study], columns=("status",))
        return sum(s in (TERMINATED, STOPPED) for s in rows.column("status").to_pylist())

    def _data_files(self, base: str) -> list[str]:
        """The data files under ``base`` at partition depth (``…/trainable=T/<file>``)."""
        return [p for p in self.location.files(base, DATA_FILES)
                if p.rsplit("/", 2)[-2].startswith("trainable=")]

    def check_format(self) -> None:
        """Raise :class:`StoreDamaged` if a newer gnas wrote this store (its :data:`FORMAT_FILE`):
        this one could misread it. Checked once per :class:`Store` object."""
        if self._writes.get("format checked"):
            return
        try:
            found = json.loads(self.location.read_bytes(self.location.join(FORMAT_FILE))).get("format", 1)
        except FileNotFoundError:
            found = STORE_FORMAT  # a store from before the marker, or an empty one
        except (OSError, ValueError, AttributeError) as exc:
            raise StoreDamaged(f"{self.location.uri_of(self.location.join(FORMAT_FILE))} is unreadable ({exc})") from None
        if not isinstance(found, int) or found > STORE_FORMAT:
            raise StoreDamaged(f"store {self.root} was written by a newer gnas (store format {found}; this gnas reads"
                               f" {STORE_FORMAT}): upgrade gnas to read it")
        self._writes["format checked"] = True

    def _table_files(self, table: str, studies: Iterable[str] | None) -> tuple[str, list[str]]:
        """``table``'s folder and its data files (of ``studies`` only, when given)."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
        self.check_format()
        base = self.location.join(table)
        if studies is None:
            return base, [p for p in self._data_files(base) if p.rsplit("/", 3)[-3].startswith("study=")]
        return base, [p for study in dict.fromkeys(studies)
                      for p in self._data_files(self.location.join(table, f"study={study}"))]

    # ---------------------------------------------------------------- compaction
    def compact(self, studies: Iterable[str] | None = None) -> int:
        """Merge the per-trial files of every partition (of ``studies``) into compacted files.

        Safe while a writer writes and against being killed (module docstring). Returns the
        number of per-trial files merged.
        """
        merged = 0
        for table in TABLES:
            _, files = self._table_files(table, studies)
            for directory in sorted({f.rsplit("/", 1)[0] for f in files}):
                merged += self._compact_partition(directory)
        return merged

    def _compact_partition(self, directory: str) -> int:
        import pyarrow as pa

        if not self.location.exists(directory):  # e.g. a study whose trials wrote no archs
            return 0
        with self._partition_lock(directory):
            self._put_back_claimed(directory)
            files = self.location.files(directory, DATA_FILES)
            singles = [f for f in files if not _is_compacted(f)]
            compacted = sorted((f for f in files if _is_compacted(f)), key=_generation, reverse=True)
            merge = len(compacted) + bool(singles) > MAX_COMPACTED
            if not singles and not merge:
                return 0
            read = [(f, self._guarded(f, False, self._read_identified, f)) for f in singles]
            singles = [f for f, got in read if got is not None]  # a damaged file stays where it is
            read = [got for _, got in read if got is not None]
            if not singles and not merge:
                return 0
            tables = [table for table, _ in read]
            if merge:  # newest first: the first copy of a trial is the one that counts
                merged = [(f, self._guarded(f, False, lambda f: _read_parquet(self.location.read_bytes(f)), f))
                          for f in compacted]
                compacted = [f for f, table in merged if table is not None]  # a damaged one stays
                tables += [table for _, table in merged if table is not None]
            generation = max((_generation(f) for f in compacted), default=0) + 1
            out = _first_copies(tables) if merge else pa.concat_tables(tables, promote_options="permissive")
            name = f"{COMPACTED_PREFIX}{generation:08d}-{uuid.uuid4().hex[:8]}.parquet"
            self.location.write_bytes(f"{directory}/{name}", _encode(out))
            for path, (_, identity) in zip(singles, read):
                self._remove_if_unchanged(path, identity)
            for path in compacted if merge else ():
                with contextlib.suppress(FileNotFoundError):
                    self.location.filesystem.delete_file(path)
        return len(singles)

    @contextlib.contextmanager
    def _partition_lock(self, directory: str) -> Iterator[None]:
        """One compaction of ``directory`` at a time (local roots; see the module docstring)."""
        if not self.location.is_local:
            yield
            return
        import fcntl

        with open(os.path.join(directory, LOCK_FILE), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_identified(self, path: str) -> "tuple[pa.Table, tuple]":
        """A per-trial file's table, and the identity of the very file read."""
        if self.location.is_local:
            with open(path, "rb") as handle:
                st = os.fstat(handle.fileno())
                return _read_parquet(handle.read()), (st.st_ino, st.st_size, st.st_mtime_ns)
        info = self.location.filesystem.get_file_info(path)
        return _read_parquet(self.location.read_bytes(path)), (None, info.size, info.mtime_ns)

    def _remove_if_unchanged(self, path: str, identity: tuple) -> None:
        """Remove the per-trial file at ``path`` if it is still the one compaction read."""
        if not self.location.is_local:
            info = self.location.filesystem.get_file_info(path)
            if (None, info.size, info.mtime_ns) == identity:
                self.location.filesystem.delete_file(path)
            return
        directory, name = os.path.split(path)
        claimed = os.path.join(directory, f"{CLAIMED_PREFIX}{uuid.uuid4().hex[:8]}-{name}")
        try:
            os.rename(path, claimed)  # atomic: from here on a writer's replacement is a new file
        except FileNotFoundError:
            return
        st = os.stat(claimed)
        if (st.st_ino, st.st_size, st.st_mtime_ns) == identity:
            os.unlink(claimed)
        else:  # a writer replaced it after compaction read it: the newer file stays
            _put_back(claimed, path)

    def _put_back_claimed(self, directory: str) -> None:
        """Files a killed compaction claimed but never removed go back (readers rank them)."""
        if not self.location.is_local:
            return
        for name in os.listdir(directory):
            if name.startswith(CLAIMED_PREFIX):
                original = name[len(CLAIMED_PREFIX):].split("-", 1)[1]
                _put_back(os.path.join(directory, name), os.path.join(directory, original))

    # ---------------------------------------------------------------- reading
    def read(self, table: str = "trials", studies: Iterable[str] | None = None) -> "pa.Table":
        """The whole history of ``table`` across studies, in one ``pyarrow.dataset`` scan;
        each trial's rows once (from its newest copy: see the module docstring).

        Files written by different studies may carry different columns (configs differ):
        their schemas are unified (missing columns read as null, ints widen to floats).
        """
        return self._scan(table, studies)

    def _scan(self, table: str, studies: Iterable[str] | None, columns: "Iterable[str] | None" = None,
              types: "Mapping[str, pa.DataType] | None" = None) -> "pa.Table":
        """Rows of ``table``: all columns (schemas unified), or only ``columns`` (read as
        ``types`` says, string by default; read file by file, without ``pyarrow.dataset``, whose
        import alone — it imports pandas — costs more than a status read)."""
        import pyarrow as pa

        base, files = self._table_files(table, studies)
        schema = pa.schema([(c, (types or {}).get(c, pa.string()))
                            for c in dict.fromkeys([*(columns or ()), "trial_id"] if columns is not None else [])])
        asked = studies is not None
        if columns is None:
            files = [f for f in files if self._readable(f, asked)]
        if not files:
            return pa.table({**{f.name: pa.nulls(0, f.type) for f in schema},
                             **{p: pa.nulls(0, pa.string()) for p in PARTITIONS}})
        if columns is None:
            rows = self._scan_dataset(base, files)
        else:
            read = [(f, self._guarded(f, asked, self._read_file_columns, f, schema)) for f in files]
            files = [f for f, table in read if table is not None]
            rows = pa.concat_tables([table for _, table in read if table is not None] or [self._read_nothing(schema)])
        if not any(_is_compacted(f) for f in files):  # one file per trial: nothing to rank
            return rows.drop_columns(["__filename"])
        keep = _newest_copies(rows.column("trial_id"), rows.column("__filename"), files)
        return rows.drop_columns(["__filename"]).filter(keep)

    def _readable(self, path: str, asked: bool) -> bool:
        """Whether ``path``'s footer reads (see :meth:`_guarded`)."""
        import pyarrow.parquet as pq

        return self._guarded(path, asked, pq.read_metadata, path, filesystem=self.location.filesystem) is not None

    def _guarded(self, path: str, asked: bool, read, *args: Any, **kwargs: Any):
        """``read(*args)``, or, when ``path`` is damaged (truncated, not Parquet, unreadable):
        :class:`StoreDamaged` if its study was ``asked`` for by name, else a
        :class:`DamagedFileWarning` naming the file and its study, and ``None`` — one bad
        file costs its own rows, never the rest of the store."""
        import pyarrow as pa

        try:
            return read(*args, **kwargs)
        except (OSError, ValueError, pa.ArrowException) as exc:
            study = next((seg.split("=", 1)[1] for seg in path.split("/") if seg.startswith("study=")), "?")
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            where = f"{self.location.uri_of(path)} (study {study}) is unreadable: {reason}"
            if asked:
                raise StoreDamaged(f"{where}; restore or move it away to read study {study}") from None
            warnings.warn(f"{where}; its rows are left out", DamagedFileWarning, stacklevel=4)
            return None

    @staticmethod
    def _read_nothing(schema: "pa.Schema") -> "pa.Table":
        import pyarrow as pa

        return pa.table({**{f.name: pa.nulls(0, f.type) for f in schema},
                         **{p: pa.nulls(0, pa.string()) for p in PARTITIONS}, "__filename": pa.nulls(0, pa.string())})

    def _scan_dataset(self, base: str, files: list[str]) -> "pa.Table":
        """Every column of ``files``, schemas unified, in one ``pyarrow.dataset`` scan."""
        import pyarrow as pa
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        fs = self.location.filesystem
        partitioning = ds.partitioning(pa.schema([(p, pa.string()) for p in PARTITIONS]), flavor="hive")
        schema = pa.unify_schemas([pq.read_schema(f, filesystem=fs) for f in files] + [partitioning.schema],
                                  promote_options="permissive")
        dataset = ds.dataset(files, schema=schema, format="parquet", filesystem=fs,
                             partitioning=partitioning, partition_base_dir=base)
        return dataset.to_table(columns=[*schema.names, "__filename"])

    def _read_file_columns(self, path: str, schema: "pa.Schema") -> "pa.Table":
        """``schema``'s columns of one file (absent ones null), its partition values and name."""
        from urllib.parse import unquote

        import pyarrow as pa
        import pyarrow.parquet as pq

        with self.location.filesystem.open_input_file(path) as handle:
            data = pq.ParquetFile(handle)
            present = set(data.schema_arrow.names)
            read = data.read(columns=[c for c in schema.names if c in present])
        n = read.num_rows
        columns = {f.name: read.column(f.name).cast(f.type) if f.name in present else pa.nulls(n, f.type)
                   for f in schema}
        for name, segment in zip(PARTITIONS, path.rsplit("/", 3)[-3:-1]):
            columns[name] = _repeated(unquote(segment.split("=", 1)[1]), n)
        columns["__filename"] = _repeated(path, n)
        return pa.table(columns)

    def read_pandas(self, table: str = "trials", studies: Iterable[str] | None = None) -> "pd.DataFrame":
        """:meth:`read` as a pandas DataFrame."""
        return self.read(table, studies).to_pandas()

    def status(self, details: bool = False) -> "list[StudyStatus]":
        """Every study in the store at a glance (:func:`orchestrator.status.study_status`)."""
        return study_status(self, details)

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

def _encode(table: "pa.Table") -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _read_parquet(data: bytes) -> "pa.Table":
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.ParquetFile(pa.BufferReader(data)).read()  # read_table builds a dataset: ~2x slower here


def _is_compacted(path: str) -> bool:
    return path.rsplit("/", 1)[-1].startswith(COMPACTED_PREFIX)


def _generation(path: str) -> int:
    match = COMPACTED_NAME.fullmatch(path.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else 0


def _put_back(claimed: str, path: str) -> None:
    """Give ``path`` the claimed file again, unless a writer has written a newer one there."""
    with contextlib.suppress(FileExistsError):
        os.link(claimed, path)  # unlike a rename, never replaces
    os.unlink(claimed)


def _precedence(files: list[str]) -> "tuple[np.ndarray, np.ndarray]":
    """Per file: its partition's index and its rank there (0: a per-trial file, the best;
    then compacted files, newest generation first)."""
    import numpy as np

    partitions = {f.rsplit("/", 1)[0] for f in files}
    index = {d: i for i, d in enumerate(sorted(partitions))}
    part = np.array([index[f.rsplit("/", 1)[0]] for f in files], dtype=np.int64)
    rank = np.array([(1 << 40) - _generation(f) if _is_compacted(f) else 0 for f in files], dtype=np.int64)
    return part, rank


# pyarrow imports pandas (~0.4 s) the first time pa.array or pa.scalar sees Python objects or
# numpy arrays (to test for pandas types): more than a whole status read. The read path builds
# its few arrays from buffers instead.
def _strings(values: Sequence[str]) -> "pa.Array":
    """``values`` as a pyarrow string array, built from buffers (see above)."""
    import numpy as np
    import pyarrow as pa

    data = [v.encode() for v in values]
    offsets = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in data], out=offsets[1:])
    return pa.LargeStringArray.from_buffers(len(data), pa.py_buffer(offsets), pa.py_buffer(b"".join(data))
                                            ).cast(pa.string())


def _repeated(value: str, n: int) -> "pa.Array":
    """``n`` copies of ``value`` as a string array (see :func:`_strings`)."""
    import numpy as np
    import pyarrow as pa

    indices = pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(np.zeros(n, dtype=np.int64))])
    return _strings([value]).take(indices)


def _int_numpy(values: "pa.Array | pa.ChunkedArray") -> "np.ndarray":
    """A null-free integer array as numpy, read from its data buffer (``to_numpy`` imports
    pandas, see :func:`_strings`)."""
    import numpy as np
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count:
        raise ValueError("expected no nulls")
    dtype = np.dtype(f"int{values.type.bit_width}")
    return np.frombuffer(values.buffers()[1], dtype=dtype, count=len(values), offset=values.offset * dtype.itemsize)


def _newest_copies(trial_ids: "pa.ChunkedArray", filenames: "pa.ChunkedArray", files: list[str]) -> "pa.Array":
    """A mask keeping, of each trial's rows, those of its best-ranked file (:func:`_precedence`)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    part_of, rank_of = _precedence(files)
    file_index = _int_numpy(pc.index_in(filenames, value_set=_strings(files)))
    ids = pc.dictionary_encode(trial_ids).combine_chunks()
    key = _int_numpy(ids.indices).astype(np.int64) * len(files) + part_of[file_index]
    _, group = np.unique(key, return_inverse=True)
    rank = rank_of[file_index]
    best = np.full(group.max(initial=-1) + 1, np.iinfo(np.int64).max)
    np.minimum.at(best, group, rank)
    keep = np.packbits(rank == best[group], bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(rank), [None, pa.py_buffer(keep)])


def _first_copies(tables: "list[pa.Table]") -> "pa.Table":
    """``tables`` (of one partition) merged, each trial's rows from the first table holding it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    seen: set[str] = set()
    kept = []
    for table in tables:
        ids = table.column("trial_id")
        if seen:
            table = table.filter(pc.invert(pc.is_in(ids, value_set=pa.array(sorted(seen), pa.string()))))
        seen.update(ids.unique().to_pylist())
        kept.append(table)
    return pa.concat_tables(kept, promote_options="permissive")
