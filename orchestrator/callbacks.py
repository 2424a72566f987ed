"""``StoreCallback``: Ray Tune → the Parquet store, one trial at a time, as trials finish.

Kept apart from :mod:`orchestrator.run` because it subclasses Ray's ``Callback`` (importing
Ray); :func:`orchestrator.run.run_study` imports it at launch.

Why this cannot lose or duplicate rows across a driver crash and ``--resume``:

* Tune calls ``on_trial_complete`` / ``on_trial_error`` *before* it saves the experiment state
  that marks the trial finished, so a trial that a restored study skips as finished already
  has its rows; a trial finished after the last saved state is simply run again from its last
  checkpoint and written again.
* Writes replace the trial's one file per table (:class:`orchestrator.store.Store`), so writing
  a trial twice leaves one row. ``on_experiment_end`` writes any finished trial still missing.

Callbacks run in the driver. The store root is given explicitly as a string (a path or a URI
such as ``s3://bucket/prefix``) and resolved there, lazily: the callback is pickled into Tune's
experiment state, which must hold neither a filesystem object nor credentials.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any, Iterator

from ray.tune import Callback

from orchestrator.search import config_id
from orchestrator.spec import apply_variant
from orchestrator.rows import provenance
from orchestrator.status import ERROR, INTERRUPTED, STOPPED, TERMINATED
from orchestrator.store import Store, TrialRecord


def completed(trial) -> bool:
    """Whether ``trial`` ran to its end: Tune marks the last result of a trainable that returned
    (or reported ``done``) with ``done: True``; a trial stopped early by the scheduler, or by
    the driver on its way out, has none."""
    return bool((trial.last_result or {}).get("done"))

class StoreCallback(Callback):
    """Writes each finished trial's row (and its ``archs.parquet``) to the store.

    ``root`` is the store root; ``Tuner.restore`` unpickles this callback with the root of the
    study's first run, and :func:`orchestrator.run.run_study` points it at the current one
    (:meth:`set_root`: the root may have moved).
    """

    def __init__(self, study: str, trainable: str, cpus: float, gpu_fraction: float, wandb: bool,
                 variants: dict[str, dict[str, Any]] | None = None, *, root: str) -> None:
        self.study = study
        self.root = str(root)
        self._store: Store | None = None
        self.variants = variants or {}  # rows carry each variant's overlay as config columns
        self.trainable = trainable
        self.cpus = cpus
        self.gpu_fraction = gpu_fraction
        self.wandb = wandb
        self._provenance: dict[str, Any] | None = None
        self.unfinished = 0  # trials the last experiment left unfinished (on_experiment_end)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_store": None}  # the filesystem is resolved again where needed

    def set_root(self, root: str) -> None:
        self.root, self._store = str(root), None

    @property
    def store(self) -> Store:
        if getattr(self, "_store", None) is None:
            self._store = Store(self.root)
        return self._store

    def setup(self, **info: Any) -> None:
        self._provenance = provenance()  # per run of the driver: a resume may run newer code

    def on_trial_complete(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self.write(trial, TERMINATED if completed(trial) else STOPPED)

    def on_trial_error(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self.write(trial, ERROR)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """The experiment ends: finished, or stopped by the driver (Ctrl-C, SIGTERM).

        On its way out Tune marks every trial it stops ``TERMINATED``, finished or not — a
        trial stopped mid-run or never started among them. Only a trial whose last result says
        ``done`` finished; one that reported iterations is written ``INTERRUPTED`` (its last
        iteration, for ``gnas status``; ``--resume`` continues it from its checkpoint and
        replaces the row); one that never reported is left out (pending).
        :attr:`unfinished` counts both kinds for the driver.
        """
        written = self.store.final_trial_ids(self.study)
        self.unfinished = 0
        for trial in trials:
            if trial.trial_id in written:
                continue
            if trial.status == "ERROR":
                self.write(trial, ERROR)
            elif completed(trial):
                self.write(trial, TERMINATED)
            else:
                self.unfinished += 1
                if (trial.last_result or {}).get("training_iteration"):
                    self.write(trial, INTERRUPTED)

    def write(self, trial, status: str) -> None:
        checkpoint = trial.checkpoint
        record = TrialRecord(
            trial_id=trial.trial_id,
            trial_name=str(trial),
            config=apply_variant(trial.config, getattr(self, "variants", {})),
            result=dict(trial.last_result or {}),
            status=status,
            config_id=config_id(trial.config),
            error=_error_text(trial) if status == ERROR else None,
            cpus=self.cpus,
            gpu_fraction=self.gpu_fraction,
            extra={"wandb_id": f"{self.study}-{trial.trial_id}" if self.wandb else None},
            history=_tune_history(trial),
        )
        if self._provenance is None:
            self._provenance = provenance()
        with _local_directory(checkpoint) as directory:
            record = dataclasses.replace(record, checkpoint_dir=directory)
            self.store.write_trial(self.study, self.trainable, record, self._provenance)


@contextlib.contextmanager
def _local_directory(checkpoint) -> Iterator[str | None]:
    """The checkpoint as a local directory: itself on a local or shared disk, else (object
    store) a download to a temporary folder."""
    if checkpoint is None:
        yield None
    elif os.path.isabs(checkpoint.path) and os.path.isdir(checkpoint.path):
        yield checkpoint.path
    else:
        with checkpoint.as_directory() as directory:
            yield directory


def _tune_history(trial) -> list[dict[str, Any]]:
    """Every result Tune logged for ``trial``: its ``result.json`` (one JSON object a line,
    written and flushed by Tune's JSON logger in the driver, appended to on resume)."""
    import json

    path = Path(trial.local_path or "", "result.json")
    results = []
    try:
        lines = path.read_text().splitlines() if trial.local_path else []
    except OSError:
        return []
    for line in lines:
        try:
            results.append(json.loads(line))
        except ValueError:  # a line cut short by a killed driver
            continue
    return results


def _error_text(trial) -> str | None:
    path = trial.error_file
    try:
        lines = [line for line in Path(path).read_text().splitlines() if line.strip()] if path else []
    except OSError:
        lines = []
    return lines[-1][:500] if lines else "error (no message recorded)"


class ProgressCallback(Callback):
    """Ray Tune's trial events → a :class:`orchestrator.progress.StudyProgress` (in the driver).

    Pickled into Tune's experiment state with the study, it drops its view (a stream, a live
    bar: no part of the study's state); :func:`orchestrator.run.run_study` attaches the current
    one, also to a restored study's copy.
    """

    def __init__(self, progress=None) -> None:
        self.progress = progress

    def __getstate__(self) -> dict[str, Any]:
        return {"progress": None}

    def attach(self, progress) -> None:
        self.progress = progress

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self.progress is not None:
            self.progress.running_now(sum(t.status == "RUNNING" for t in trials))

    def on_trial_complete(self, iteration: int, trials: list, trial, **info: Any) -> None:
        if self.progress is not None:
            self.progress.trial_finished(trial.trial_id, "TERMINATED", trial.last_result)

    def on_trial_error(self, iteration: int, trials: list, trial, **info: Any) -> None:
        if self.progress is not None:
            self.progress.trial_finished(trial.trial_id, "ERROR", trial.last_result)


class TrimFinishedTrials(Callback):
    """Drops what Tune keeps in the driver about a finished trial that nothing will read again.

    Tune keeps every trial of the experiment in the driver, and with each its running
    statistics of *every* numeric key it ever reported (max/min/avg/last and last-5/10 averages,
    plus the two deques behind those averages): ~10 KB of JSON and several times that in Python
    objects per trial, rewritten into every experiment-state snapshot (``bench/scale_results.md``).
    Once a trial has finished, its rows are in the store and its statistics never change again,
    so this keeps the statistics of the study's objectives (``ResultGrid.get_best_result`` reads
    them) and drops every other key's. Must run after the callbacks that read the trial
    (:class:`StoreCallback`, :class:`ProgressCallback`: they read ``last_result``, kept whole).
    """

    def __init__(self, metrics: list[str]) -> None:
        self.metrics = list(metrics)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info: Any) -> None:
        trim_statistics(trial, self.metrics)

    def on_trial_error(self, iteration: int, trials: list, trial, **info: Any) -> None:
        trim_statistics(trial, self.metrics)


def trim_statistics(trial, keep: list[str]) -> None:
    """Keep ``trial``'s Tune statistics of ``keep`` only, each whole (its last-n deques too: an
    errored trial runs again on ``--resume`` and goes on updating them); drop every other key's."""
    meta = getattr(trial, "run_metadata", None)  # Ray 2.x: ray.tune.trainable.metadata._TrainingRunMetadata
    if meta is None:
        return
    meta.metric_analysis = {m: meta.metric_analysis[m] for m in keep if m in meta.metric_analysis}
    meta.metric_n_steps = {m: meta.metric_n_steps[m] for m in keep if m in meta.metric_n_steps}
