"""``gnas status``'s facts about a store: per study, trials done / running / interrupted /
pending / errored, GPU-hours, the last change, and each errored or interrupted trial."""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.layout import PART, TUNE_DIR, driver_path, saved_spec, tune_folder

if TYPE_CHECKING:  # pragma: no cover
    from orchestrator.store import Store

# A trial's ``status`` in the trials table. Only TERMINATED means "ran to its end".
TERMINATED = "TERMINATED"  # finished: its final report and archs are stored
STOPPED = "STOPPED"  # ended early by the study's scheduler (ASHA): its last report is final
ERROR = "ERROR"  # failed after its retries; ``error`` holds the last line of its error
INTERRUPTED = "INTERRUPTED"  # the driver stopped before it finished; --resume continues it
FINAL_STATUSES = (TERMINATED, STOPPED, ERROR)  # statuses a resume never changes


@dataclass(frozen=True)
class StudyStatus:
    """One study at a glance (:meth:`Store.status`). Times are Unix seconds."""

    study: str
    done: int  # trials stored as TERMINATED (or STOPPED early by the study's scheduler)
    errored: int  # trials stored as ERROR
    running: int  # started by a driver that is still running, not yet stored
    pending: int  # planned by the study's spec, not started
    gpu_hours: float  # summed over the stored trials
    last_update: float | None  # the newest stored trial's finish, or Tune's last state save
    interrupted: int = 0  # started, unfinished, and their driver is gone: --resume continues them
    problems: tuple["TrialProblem", ...] = ()  # errored and interrupted trials, for gnas status NAME

    @property
    def trials(self) -> int:
        return self.done + self.errored

    @property
    def finished(self) -> bool:
        return self.running == self.pending == self.interrupted == 0


@dataclass(frozen=True)
class TrialProblem:
    """An errored or interrupted trial, as ``gnas status NAME`` shows it."""

    trial_id: str
    status: str
    iteration: int
    error: str | None  # the last line of its error (ERROR), else None


def study_status(store: "Store", details: bool = False) -> list[StudyStatus]:
    """Every study in the store at a glance, sorted by name.

    Done / errored / interrupted trials, GPU-hours and the newest finish come from the trials
    table (a few columns read, no file's schema). Running and pending come from Tune's
    experiment folder (``tune/<study>/``), without reading its experiment state (≈19 KB per
    trial, ~190 MB at 10,000 trials: seconds to parse): a trial folder Tune made whose trial
    is not yet stored is running while the study's driver lives (:data:`orchestrator.layout.DRIVER_FILE`), and
    interrupted once it is gone (a killed driver stores nothing); the trials the saved spec
    plans and neither stored nor started are pending. ``details``: also each errored or
    interrupted trial (:class:`TrialProblem`).
    """
    import pyarrow as pa

    columns = ("status", "gpu_hours", "finished_at", *(("iteration", "error") if details else ()))
    rows = store._scan("trials", None, columns=columns,
                      types={"gpu_hours": pa.float64(), "finished_at": pa.float64(), "iteration": pa.float64()})
    studies: dict[str, dict[str, Any]] = {}
    # a plain loop, not Table.group_by: that imports pyarrow.acero and with it pandas (~0.4 s),
    # where this loop takes 6 ms for 10,000 rows (measured, both cores busy)
    names = ("study", "status", "trial_id", "gpu_hours", "finished_at")
    extra = zip(*(rows.column(c).to_pylist() for c in ("iteration", "error"))) if details else None
    for study, status, trial_id, gpu_hours, finished_at in zip(*(rows.column(c).to_pylist() for c in names)):
        entry = studies.setdefault(study, _new_entry())
        entry[_STATUS_COUNT.get(status, "errored")] += 1
        if status != INTERRUPTED:
            entry["stored"].add(trial_id)
        else:
            entry["interrupted_ids"].add(trial_id)
        entry["gpu_hours"] += gpu_hours or 0.0
        entry["last"] = _latest(entry["last"], finished_at)
        if extra is not None:
            iteration, error = next(extra)
            if status in (ERROR, INTERRUPTED):
                entry["problems"].append(TrialProblem(trial_id, status, int(iteration or 0), error))
    for study in _tune_studies(store):
        entry = studies.setdefault(study, _new_entry())
        running, pending, tune_last = _tune_progress(store, study, entry["stored"], entry["interrupted_ids"])
        if driver_alive(store, study):  # an interrupted trial of a resumed study runs again
            running += entry["interrupted"]
            entry["interrupted"] = 0
        else:  # its driver was stopped or killed: nothing runs
            entry["interrupted"] += running
            running = 0
        entry.update(running=running, pending=pending)
        entry["last"] = _latest(entry["last"], tune_last)
    return [StudyStatus(study=name, done=e["done"], errored=e["errored"], running=e["running"],
                        pending=e["pending"], gpu_hours=e["gpu_hours"], last_update=e["last"],
                        interrupted=e["interrupted"], problems=tuple(e["problems"]))
            for name, e in sorted(studies.items())]

def _tune_studies(store: "Store") -> list[str]:
    import pyarrow.fs as pafs

    selector = pafs.FileSelector(store.location.join(TUNE_DIR), allow_not_found=True)
    return [i.base_name for i in store.location.filesystem.get_file_info(selector)
            if i.type == pafs.FileType.Directory]

def _tune_progress(store: "Store", study: str, stored: set[str], interrupted: set[str]) -> tuple[int, int, float | None]:
    """(started and unstored, pending, last change) of ``study`` from its Tune folder (see
    :meth:`status`); ``stored``: its trials in a final status, ``interrupted``: stored as such."""
    import pyarrow.fs as pafs

    from orchestrator.spec import StudySpec

    folder = tune_folder(store.location, study)
    planned = None
    try:
        planned = StudySpec.from_dict(saved_spec(store.location, study)).num_trials
    except (OSError, ValueError, TypeError):  # no saved spec (yet), or one this version cannot read
        pass
    if planned is not None and len(stored) >= planned:  # finished: no need to list its trial folders
        info = store.location.filesystem.get_file_info(folder)
        return 0, 0, info.mtime.timestamp() if info.mtime is not None else None
    fs = store.location.filesystem
    entries = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    parts = [i.path for i in entries if i.type == pafs.FileType.Directory and PART.fullmatch(i.base_name)]
    for part in parts:  # a study run as several experiments (orchestrator.run.experiments_of)
        entries += fs.get_file_info(pafs.FileSelector(part))
    trial_dirs = [i.base_name for i in entries
                  if i.type == pafs.FileType.Directory and not PART.fullmatch(i.base_name)]
    started = sum(not _names_stored_trial(d, stored | interrupted) for d in trial_dirs)
    pending = max(planned - len(stored) - len(interrupted) - started, 0) if planned is not None else 0
    changed = [i.mtime.timestamp() for i in entries if i.mtime is not None]
    return started, pending, max(changed, default=None)

def driver_alive(store: "Store", study: str) -> bool:
    """Whether the driver that wrote ``study``'s :data:`orchestrator.layout.DRIVER_FILE` still runs. A driver on
    another host cannot be checked from here and counts as alive; no file: none runs."""
    try:
        driver = json.loads(store.location.read_bytes(driver_path(store.location, study)))
    except (OSError, ValueError):
        return False
    if driver.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(driver["pid"]), 0)
    except (ProcessLookupError, KeyError, ValueError, TypeError):
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


_STATUS_COUNT = {TERMINATED: "done", STOPPED: "done", ERROR: "errored", INTERRUPTED: "interrupted"}


def _new_entry() -> dict[str, Any]:
    return {"done": 0, "errored": 0, "interrupted": 0, "gpu_hours": 0.0, "last": None, "stored": set(),
            "interrupted_ids": set(), "running": 0, "pending": 0, "problems": []}


def _names_stored_trial(trial_dir: str, stored: set[str]) -> bool:
    """Whether Tune's trial folder ``<trainable>_<trial id>`` (ids hold "_" too) is of a stored trial."""
    parts = trial_dir.split("_")
    return any("_".join(parts[i:]) in stored for i in range(1, len(parts)))


def _latest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)
