"""W&B as a view of the store: every trial gets exactly one complete offline run, rebuilt from
the store whenever the run a worker logged is missing or incomplete.

The Parquet store (with Tune's per-iteration results, see :func:`trial_history`) is the source
of truth. After each part of a study, and on ``--report-only`` / ``--resume``,
:func:`complete_runs` reads every trial of a study from the store, reads the offline run its
W&B id names (:func:`read_transcript`, W&B's own record format), and writes the run again
from the store when it lacks its run, history or exit record, or holds fewer iterations than
the store. Run ids derive from trial ids (``<study>-<trial_id>``), so a rebuild completes the
same run and never adds a second one: incomplete copies of the run are deleted first.

Why worker-logged runs get lost (measured; see ``docs/dashboards.md``): a trainable whose last
report carries ``done: True`` is stopped by Tune as soon as that report arrives; Tune gives the
trial's thread 2 s (``TUNE_FUNCTION_THREAD_TIMEOUT_S``) before it reuses the actor, and none
before it ends an actor it no longer needs. W&B's service process buffers a run's records
until ``finish()``; when the actor dies first the service dies with it, the client's pending
request is abandoned (``HandleAbandonedError``) and the run's file keeps only its 7-byte header.

Reading a run: 0.31 ships no reader, so :func:`read_records` parses the file — a 7-byte W&B
header, then LevelDB-log framing (32 KiB blocks; chunks with a CRC-32, a length and a type)
around :class:`wandb.proto.wandb_internal_pb2.Record` messages.
"""
from __future__ import annotations

import json
import math
import shutil
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from wandb.proto.wandb_internal_pb2 import Record

    from orchestrator.tracking import WandbSettings

HEADER = struct.Struct("<4sHB")  # ":W&B", magic 0xBEE1, version 0
HEADER_IDENT, HEADER_MAGIC = b":W&B", 0xBEE1
BLOCK = 32 * 1024
CHUNK = struct.Struct("<IHB")  # CRC-32 of type byte + data, data length, chunk type
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class TranscriptError(ValueError):
    """A ``.wandb`` file that is not a W&B transcript at all (wrong header)."""


def read_records(path: str | Path) -> tuple[list["Record"], bool]:
    """The records of the ``.wandb`` file at ``path`` and whether the file ended cleanly.

    A torn tail (a chunk cut short, a CRC mismatch, a record whose last chunk never came) ends
    the reading: what came before is returned with ``False``.
    """
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    if len(data) < HEADER.size:
        raise TranscriptError(f"{path}: {len(data)} bytes, shorter than the W&B header")
    ident, magic, _version = HEADER.unpack_from(data)
    if ident != HEADER_IDENT or magic != HEADER_MAGIC:
        raise TranscriptError(f"{path}: not a W&B transcript (header {data[:HEADER.size]!r})")
    records: list[Record] = []
    for payload in _payloads(data, HEADER.size):
        if payload is None:
            return records, False
        record = wandb_internal_pb2.Record()
        try:
            record.ParseFromString(payload)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError: a damaged record ends the file
            return records, False
        records.append(record)
    return records, True


def _payloads(data: bytes, offset: int) -> Iterator[bytes | None]:
    """Reassembled record payloads; ``None`` once, for a torn or damaged tail."""
    pending: list[bytes] | None = None
    while offset < len(data):
        room = BLOCK - offset % BLOCK
        if room < CHUNK.size:  # the block's padding
            offset += room
            continue
        if len(data) - offset < CHUNK.size:
            yield None
            return
        crc, length, kind = CHUNK.unpack_from(data, offset)
        start = offset + CHUNK.size
        chunk = data[start:start + length]
        if len(chunk) < length or zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != crc:
            yield None
            return
        offset = start + length
        if kind == FULL and pending is None:
            yield chunk
        elif kind == FIRST and pending is None:
            pending = [chunk]
        elif kind == MIDDLE and pending is not None:
            pending.append(chunk)
        elif kind == LAST and pending is not None:
            yield b"".join([*pending, chunk])
            pending = None
        else:
            yield None
            return
    if pending is not None:
        yield None


@dataclass(frozen=True)
class Transcript:
    """What one offline run's file holds, as far as completeness goes."""

    path: Path
    run_id: str | None  # from the run record
    config: dict[str, Any]  # config keys → values (JSON-decoded)
    steps: tuple[int, ...]  # the ``_step`` of every history record, in order
    history_keys: frozenset[str]
    summary_keys: frozenset[str]
    exit_code: int | None  # None: no exit record
    clean: bool  # the file ended at a record boundary

    @property
    def finished(self) -> bool:
        return self.run_id is not None and self.exit_code is not None and self.clean


def read_transcript(path: str | Path) -> Transcript:
    """Read the offline run file at ``path`` (``…/offline-run-*/run-<id>.wandb``)."""
    try:
        records, clean = read_records(path)
    except TranscriptError:
        records, clean = [], False
    run_id, exit_code = None, None
    config: dict[str, Any] = {}
    steps: list[int] = []
    history: set[str] = set()
    summary: set[str] = set()
    for r in records:
        kind = r.WhichOneof("record_type")
        if kind == "run":
            run_id = r.run.run_id
            config.update(_items(r.run.config.update))
            summary.update(_keys(r.run.summary.update))
        elif kind == "config":
            config.update(_items(r.config.update))
        elif kind == "history":
            items = _items(r.history.item)
            step = items.pop("_step", None)
            if step is None and r.history.HasField("step"):
                step = r.history.step.num
            steps.append(int(step) if step is not None else -1)
            history.update(k for k in items if not k.startswith("_"))
            # media and tables arrive flattened (figure/x/_type, figure/x/path…): name them whole
            history.update(k[:-len("/_type")] for k in items if k.endswith("/_type"))
        elif kind == "summary":
            summary.update(_keys(r.summary.update))
            summary.update(k[:-len("/_type")] for k in _keys(r.summary.update) if k.endswith("/_type"))
        elif kind == "exit":
            exit_code = r.exit.exit_code
    return Transcript(Path(path), run_id, config, tuple(steps), frozenset(history), frozenset(summary),
                      exit_code, clean)


def _key(item) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def _keys(items) -> set[str]:
    return {_key(i) for i in items}


def _items(items) -> dict[str, Any]:
    out = {}
    for i in items:
        try:
            out[_key(i)] = json.loads(i.value_json)
        except ValueError:
            out[_key(i)] = i.value_json
    return out


# ----------------------------------------------------------------------------- what a run holds
@dataclass(frozen=True)
class RunContent:
    """Everything one trial's W&B run shows, taken from the store."""

    run_id: str
    name: str
    group: str
    job_type: str
    tags: tuple[str, ...]
    config: dict[str, Any]
    history: list[dict[str, float]]  # one dict per iteration, with "iteration"
    summary: dict[str, Any]  # the trial's final metrics
    exit_code: int  # 0: TERMINATED or STOPPED, 1: ERROR
    archs: Any = None  # a pandas DataFrame of the generated architectures, or None

    @property
    def iterations(self) -> tuple[int, ...]:
        return tuple(int(h["iteration"]) for h in self.history)


def run_id(study: str, trial_id: str) -> str:
    """The W&B run id of a trial: stable, so a rebuild completes the run instead of adding one."""
    return f"{study}-{trial_id}"


def is_complete(transcript: Transcript | None, content: RunContent) -> bool:
    """Whether ``transcript`` already shows all of ``content``: its run record with the same
    config, every iteration as a history record, and the exit record with the trial's exit code."""
    return (transcript is not None and transcript.finished and transcript.run_id == content.run_id
            and transcript.exit_code == content.exit_code
            and set(content.iterations) <= set(transcript.steps)
            and all(transcript.config.get(k) == v for k, v in json.loads(json.dumps(content.config, default=str)).items()))


# ----------------------------------------------------------------------------- offline run files
RUN_FILE_GLOB = "offline-run-*/run-*.wandb"
ARCHS_KEY = "archs"  # the summary key of a run's generated-architectures table


def run_files(wandb_dir: str | Path) -> dict[str, list[Path]]:
    """Offline runs under ``wandb_dir`` (the ``dir=`` given to ``wandb.init``), by run id;
    several files per id when a run was written more than once (newest last)."""
    runs: dict[str, list[Path]] = {}
    base = Path(wandb_dir) / "wandb"
    for path in sorted(base.glob(RUN_FILE_GLOB)) if base.is_dir() else ():
        runs.setdefault(path.name[len("run-"):-len(".wandb")], []).append(path)
    return runs


def remove_run_folder(path: Path) -> None:
    """Remove one ``offline-run-*`` folder (given it or its ``.wandb`` file)."""
    folder = path if path.is_dir() else path.parent
    if folder.name.startswith("offline-run-"):
        shutil.rmtree(folder, ignore_errors=True)


def write_run(content: RunContent, *, project: str, directory: str | Path, entity: str | None = None,
              mode: str = "offline") -> None:
    """Write ``content`` as one W&B run (``mode`` offline: a new ``offline-run-*`` folder under
    ``directory/wandb``; online: the run of that id, resumed). Raises on any W&B error."""
    import wandb

    Path(directory).mkdir(parents=True, exist_ok=True)
    settings = wandb.Settings(silent=True, console="off", disable_git=True, x_disable_stats=True,
                              x_disable_meta=True, x_save_requirements=False, save_code=False)
    run = wandb.init(project=project, entity=entity, mode=mode, dir=str(directory), id=content.run_id,
                     name=content.name, group=content.group, job_type=content.job_type, tags=list(content.tags),
                     config=content.config, resume="allow" if mode == "online" else None,
                     reinit="create_new", settings=settings)
    try:
        run.define_metric("iteration")
        run.define_metric("*", step_metric="iteration")
        for row in content.history:
            run.log({k: v for k, v in row.items() if _finite(v)}, step=int(row["iteration"]))
        run.summary.update({k: v for k, v in content.summary.items() if _finite(v) or isinstance(v, str)})
        if content.archs is not None and len(content.archs):
            # a table in the summary: its file lives in the run's folder, so it syncs from anywhere
            run.summary[ARCHS_KEY] = wandb.Table(dataframe=content.archs)
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish(exit_code=content.exit_code)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ----------------------------------------------------------------------------- from the store
IDENTITY = ("trial_id", "config_id", "seed", "study", "trainable")
NOT_SUMMARY = frozenset({*IDENTITY, "trial_name", "status", "error", "wandb_id", "driver_host", "host", "node_ip",
                         "gpu_ids", "started_at", "finished_at"})


@dataclass(frozen=True)
class Completion:
    """What :func:`complete_runs` did for one study (part)."""

    study: str
    trials: int  # trials in the store
    kept: int  # runs already complete
    written: int  # runs (re)written from the store
    removed: int  # incomplete or duplicate run folders deleted
    failed: list[str] = field(default_factory=list)  # "run id: error" of runs W&B could not write


def contents(store_root: str, study: str, *, group: str | None = None,
             extra_config: Mapping[str, Any] | None = None,
             per_trial: "Callable[[Mapping[str, Any]], Mapping[str, Any]] | None" = None) -> list[RunContent]:
    """The :class:`RunContent` of every trial of ``study`` in the store at ``store_root``.

    ``extra_config`` is added to every run's config (e.g. the study's method and role),
    ``per_trial(row)`` adds per-trial keys (e.g. a degradation's kind and level).
    """
    from orchestrator.store import Store

    store = Store(store_root)
    trials = store.read("trials", studies=[study]).to_pylist()
    history: dict[str, list[dict[str, Any]]] = {}
    for h in store.read("history", studies=[study]).to_pylist():
        history.setdefault(h["trial_id"], []).append(h)
    archs = store.read_pandas("archs", studies=[study])
    by_trial = dict(tuple(archs.groupby("trial_id", sort=False))) if "trial_id" in archs else {}
    out = []
    for row in sorted(trials, key=lambda r: r["trial_id"]):
        tid = row["trial_id"]
        config = {k[len("config/"):]: v for k, v in row.items() if k.startswith("config/") and v is not None}
        config.update({k: row.get(k) for k in ("study", "trainable", "trial_id", "config_id", "seed", "git_commit")})
        config.update(extra_config or {})
        if per_trial is not None:
            config.update(per_trial(row))
        summary = {k: v for k, v in row.items() if k not in NOT_SUMMARY and not k.startswith(("config/", "version/"))
                   and v is not None}
        steps = [{k: v for k, v in h.items() if k not in IDENTITY and v is not None}
                 for h in sorted(history.get(tid, []), key=lambda h: h["iteration"])]
        if not steps:  # a trial stored before per-iteration history existed: its final report only
            steps = [{"iteration": int(row.get("iteration") or 0),
                      **{k: v for k, v in summary.items() if _finite(v) and k != "iteration"}}]
        frame = by_trial.get(tid)
        if frame is not None:
            frame = frame.drop(columns=[c for c in ("study", "trainable") if c in frame]).reset_index(drop=True)
        out.append(RunContent(
            run_id=row.get("wandb_id") or run_id(study, tid), name=row.get("trial_name") or tid,
            group=group or row.get("config_id") or study, job_type=study,
            tags=tuple(t for t in (study, str(row.get("trainable")), f"config:{row.get('config_id')}") if t),
            config=_plain(config), history=steps, summary=_plain(summary),
            exit_code=0 if row.get("status") in ("TERMINATED", "STOPPED") else 1, archs=frame))
    return out


def complete_runs(store_root: str, study: str, *, directory: str | Path, project: str, entity: str | None = None,
                  mode: str = "offline", group: str | None = None, extra_config: Mapping[str, Any] | None = None,
                  per_trial: "Callable[[Mapping[str, Any]], Mapping[str, Any]] | None" = None) -> Completion:
    """Give every trial of ``study`` exactly one complete W&B run under ``directory``.

    A run that is already complete is kept (the newest, if there are several); the others are
    deleted and the run is written again from the store. A run W&B fails to write is listed in
    :attr:`Completion.failed` (and stays incomplete until the next call): tracking never fails a
    study, and the store keeps everything needed to retry.
    """
    runs = run_files(directory)
    kept = 0
    failed, written = [], []
    todo = contents(store_root, study, group=group, extra_config=extra_config, per_trial=per_trial)
    removed = 0
    for content in todo:
        files = runs.get(content.run_id, [])
        complete = [f for f in files if is_complete(read_transcript(f), content)]
        keep = complete[-1:]  # newest (folder names start with the time)
        for f in files:
            if f not in keep:
                remove_run_folder(f)
                removed += 1
        if keep:
            kept += 1
            continue
        try:
            write_run(content, project=project, entity=entity, directory=directory, mode=mode)
            written.append(content)
        except Exception as exc:  # noqa: BLE001 - W&B must never fail a study; the store has it all
            failed.append(f"{content.run_id}: {type(exc).__name__}: {exc}")
    if written:
        flush_runs()
        now = run_files(directory)
        for content in written:
            if not any(is_complete(read_transcript(f), content) for f in now.get(content.run_id, [])):
                failed.append(f"{content.run_id}: written, but its file is incomplete")
    return Completion(study, len(todo), kept, len(written), removed, failed)


def flush_runs() -> None:
    """Make W&B's service write out every run it holds, and stop it.

    ``run.finish()`` returns before W&B's service has written the run's last records (measured:
    8 of 8 offline runs read right after ``finish()`` lacked their exit record; all had it a
    moment later). ``wandb.teardown()`` waits for the service to flush and exit; the next
    ``wandb.init`` starts a new one.
    """
    import wandb

    wandb.teardown()


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-friendly values (numpy scalars → Python; NaN dropped)."""
    out = {}
    for k, v in values.items():
        if hasattr(v, "item") and not isinstance(v, (str, bytes)):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            continue
        out[k] = v
    return out


# ----------------------------------------------------------------------------- published studies
REPORT_JOB = "report"


def report_run_id(study: str) -> str:
    """The stable id of a published study's report run (one per study, rebuilt in place)."""
    return f"{study}-report"


def part_run_config(study: str, entry: Mapping[str, Any], variants: Mapping[str, Mapping[str, Any]],
                    conditions: Mapping[str, str]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """What a published study adds to the run config of each trial of one part: the study,
    the part's method and role (a reference part's rows name their method), its tags and, for
    a degradation condition, ``degradation/kind`` and ``degradation/level`` (the overlay's value;
    ``clean`` has kind ``clean`` and no level).

    ``entry`` is the part's manifest entry, ``variants`` its spec's overlays, ``conditions``
    the manifest's variant → degradation kind map (empty for other studies).
    """
    def config(row: Mapping[str, Any]) -> dict[str, Any]:
        variant = row.get("config/variant")
        out: dict[str, Any] = {"published_study": study, "part": entry["name"], "role": entry.get("role"),
                               "method": row.get("config/method") or entry.get("method"),
                               **{f"tag/{k}": v for k, v in (entry.get("tags") or {}).items()}}
        kind = conditions.get(variant) if variant is not None else None
        if kind is not None:
            overlay = dict(variants.get(variant) or {})
            out["degradation/kind"] = kind
            out["degradation/level"] = next(iter(overlay.values())) if len(overlay) == 1 else None
        return out

    return config


def complete_published_study(manifest: Mapping[str, Any], *, store_root: str, project: str,
                             entity: str | None = None, mode: str = "offline") -> list[Completion]:
    """:func:`complete_runs` for every part of a published study's manifest (``study.json``)."""
    from orchestrator.layout import saved_spec
    from orchestrator.store import Store
    from orchestrator.tracking import wandb_dir

    store = Store(store_root)
    conditions = (manifest.get("settings") or {}).get("conditions") or {}
    done = []
    for entry in manifest["parts"]:
        if not store.has_study(entry["name"]):
            continue
        spec = saved_spec(store.location, entry["name"]) or {}
        config = part_run_config(manifest["study"], entry, spec.get("variants") or {}, conditions)
        done.append(complete_runs(store.root, entry["name"], directory=wandb_dir(store.root, entry["name"]),
                                  project=project, entity=entity, mode=mode, group=manifest["study"],
                                  per_trial=config))
    return done


def write_report_run(study: str, settings: Mapping[str, Any], tables: Mapping[str, Any], figures: Sequence[Path],
                     *, directory: str | Path, project: str, entity: str | None = None, mode: str = "offline",
                     series: Sequence[Mapping[str, float]] = ()) -> Path:
    """Write the study's report run (id :func:`report_run_id`: every rebuild replaces it): the
    manifest's settings as config, the report's tables and figures at step 0, then ``series``
    (one step each: what the dashboards plot, :func:`orchestrator.dashboards.report_series`);
    returns its ``.wandb`` file. Raises when W&B fails or the written file is incomplete."""
    import wandb

    rid = report_run_id(study)
    for old in run_files(directory).get(rid, []):
        remove_run_folder(old)
    Path(directory).mkdir(parents=True, exist_ok=True)
    wsettings = wandb.Settings(silent=True, console="off", disable_git=True, x_disable_stats=True,
                               x_disable_meta=True, x_save_requirements=False, save_code=False)
    run = wandb.init(project=project, entity=entity, mode=mode, dir=str(directory), id=rid, name=rid,
                     group=study, job_type=REPORT_JOB, tags=[study, REPORT_JOB],
                     config=_plain({"published_study": study, **_flat(settings)}),
                     resume="allow" if mode == "online" else None, reinit="create_new", settings=wsettings)
    try:
        run.define_metric("table/*", summary="none")
        run.define_metric("figure/*", summary="none")
        run.log({**{f"table/{name}": wandb.Table(dataframe=frame) for name, frame in tables.items()},
                 **{f"figure/{Path(p).stem}": wandb.Image(str(p)) for p in figures}}, step=0)
        for i, step in enumerate(series, 1):
            run.log(dict(step), step=i)
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()
    flush_runs()
    files = run_files(directory).get(rid, [])
    if len(files) != 1 or not read_transcript(files[0]).finished:
        raise RuntimeError(f"report run {rid}: written, but its file is incomplete")
    return files[0]


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def complete_study_runs(settings: "WandbSettings", store_root: str, study: str, *, per_trial=None,
                        quiet: bool = False):
    """Give every trial of ``study`` in the store one complete run under ``settings.directory``
    (:func:`complete_runs`); a run W&B could not write is one warning
    line. Returns the :class:`Completion`, or ``None`` when W&B failed."""
    try:
        done = complete_runs(store_root, study, directory=settings.directory, project=settings.project,
                             entity=settings.entity, mode=settings.mode, group=settings.group, per_trial=per_trial)
    except Exception as exc:  # noqa: BLE001 - the study's results are in the store either way
        print(f"warning: W&B runs of {study} not completed ({type(exc).__name__}: {exc});"
              " the store has them: gnas wandb complete", file=sys.stderr)
        return None
    if done.failed and not quiet:
        print(f"warning: {len(done.failed)} W&B runs of {study} could not be written (first: {done.failed[0]});"
              " the store has them: gnas wandb complete", file=sys.stderr)
    return done
