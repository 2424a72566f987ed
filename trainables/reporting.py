"""The one door between a trainable and whatever runs it.

A trainable (``train(config) -> None``) reports progress, checkpoints and asks for its device
through this module only. Inside a Ray Tune trial the calls go to ``ray.tune.report`` /
``ray.tune.get_checkpoint``; called plainly (a test, a notebook) they go to an in-memory
:class:`PlainSession` that records every report, so trainables never need Ray to run.

This module imports neither the orchestrator nor (unless a Tune session is active) Ray: the
runner of a trial installs a :class:`TrialContext` (extra fields merged into every report,
listeners such as experiment tracking) and trainables stay ignorant of it.

Typical trainable::

    from trainables import reporting

    def train(config):
        start = 0
        if (ckpt := reporting.load_checkpoint()) is not None:
            start = json.loads(Path(ckpt, "state.json").read_text())["step"]
        for step in range(start, config["steps"]):
            ...
            with reporting.checkpoint_dir() as d:
                Path(d, "state.json").write_text(json.dumps({"step": step + 1}))
                reporting.report({"iteration": step + 1, ...}, d)
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

log = logging.getLogger(__name__)

Listener = Callable[[Mapping[str, Any]], None]

__all__ = [
    "PlainSession",
    "Report",
    "TrialContext",
    "checkpoint_dir",
    "device",
    "in_tune_session",
    "load_checkpoint",
    "plain_session",
    "report",
    "trial_context",
]


@dataclass(frozen=True)
class Report:
    """One recorded report of a plain (non-Tune) run."""

    metrics: dict[str, Any]
    checkpoint: str | None  # a persistent copy of the reported checkpoint directory


@dataclass
class PlainSession:
    """Where reports go outside Tune: recorded in memory, checkpoints copied to a temp dir.

    ``restore_from`` plays the role of ``tune.get_checkpoint()``: set it to a directory to
    make :func:`load_checkpoint` return it (tests of resuming a trainable).
    """

    reports: list[Report] = field(default_factory=list)
    restore_from: str | None = None
    _root: str | None = None

    @property
    def last_checkpoint(self) -> str | None:
        """Directory of the most recent checkpoint reported, if any."""
        for rep in reversed(self.reports):
            if rep.checkpoint is not None:
                return rep.checkpoint
        return None

    def record(self, metrics: Mapping[str, Any], checkpoint_dir: str | None) -> None:
        kept = None
        if checkpoint_dir is not None:
            if self._root is None:
                self._root = tempfile.mkdtemp(prefix="plain-checkpoints-")
                _plain_roots.append(self._root)
            kept = f"{self._root}/checkpoint_{len(self.reports):06d}"
            shutil.copytree(checkpoint_dir, kept)
        self.reports.append(Report(dict(metrics), kept))


@dataclass
class TrialContext:
    """Installed by the runner of a trial for its duration (see :func:`trial_context`).

    ``extras`` are merged into every reported metrics dict, ``computed`` ones too, evaluated
    at each report (e.g. the device in use); ``listeners`` are called with each merged dict
    after it was reported. A listener that raises is logged once and dropped: observers never
    fail a trial.
    """

    extras: dict[str, Any] = field(default_factory=dict)
    computed: dict[str, Callable[[], Any]] = field(default_factory=dict)
    listeners: list[Listener] = field(default_factory=list)
    tune: bool = True  # the trial runs inside a Tune session


_plain_roots: list[str] = []  # copied checkpoints of every plain session, removed at exit
_plain = PlainSession()
_context: TrialContext | None = None


@atexit.register
def _remove_plain_checkpoints() -> None:
    for root in _plain_roots:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def plain_session(restore_from: str | None = None) -> Iterator[PlainSession]:
    """A fresh :class:`PlainSession` for the duration of the block (tests).

    Its records stay readable after the block; the copied checkpoints last until the process
    exits.
    """
    global _plain
    previous, _plain = _plain, PlainSession(restore_from=restore_from)
    try:
        yield _plain
    finally:
        _plain = previous


@contextlib.contextmanager
def trial_context(ctx: TrialContext) -> Iterator[TrialContext]:
    """Install ``ctx`` for the duration of one trial (used by the orchestrator's runner)."""
    global _context
    previous, _context = _context, ctx
    try:
        yield ctx
    finally:
        _context = previous


def in_tune_session() -> bool:
    """True inside a Ray Tune trial. Never imports Ray when it is not already loaded."""
    if _context is not None:
        return _context.tune
    if "ray" not in sys.modules:
        return False
    try:  # a trainable passed to Tune directly, without the orchestrator's runner
        from ray.train._internal.session import get_session
    except ImportError:  # pragma: no cover - Ray moved its session; assume plain
        return False
    session = get_session()
    return bool(session) and getattr(session, "world_rank", None) is None


def report(metrics: Mapping[str, Any], checkpoint_dir: str | None = None) -> None:
    """Report one iteration's metrics, optionally with a checkpoint directory.

    In Tune the directory is persisted by Ray (copied), so the caller may delete it after
    this returns (:func:`checkpoint_dir` does). Outside Tune it is copied into the plain
    session's temp folder and recorded with the metrics.
    """
    merged = dict(metrics)
    if _context is not None:
        merged.update(_context.extras)
        merged.update({key: compute() for key, compute in _context.computed.items()})
    if in_tune_session():
        from ray import tune

        checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report(merged, checkpoint=checkpoint)
    else:
        _plain.record(merged, checkpoint_dir)
    if _context is not None:
        for listener in list(_context.listeners):
            try:
                listener(merged)
            except Exception as exc:  # an observer must never fail the trial
                log.warning("report listener %r failed and was removed: %s", listener, exc)
                _context.listeners.remove(listener)


def load_checkpoint() -> str | None:
    """Local directory of the checkpoint to resume from, or ``None`` for a fresh start.

    Read it, do not modify it: on a local or shared filesystem it is Tune's own copy.
    """
    if in_tune_session():
        from ray import tune

        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        if os.path.isabs(checkpoint.path) and os.path.isdir(checkpoint.path):
            return checkpoint.path  # a local or shared filesystem: Tune's own copy
        return checkpoint.to_directory()  # remote storage (S3, GCS): download it
    return _plain.restore_from


@contextlib.contextmanager
def checkpoint_dir() -> Iterator[str]:
    """A fresh temporary directory to fill and pass to :func:`report`; removed afterwards."""
    path = tempfile.mkdtemp(prefix="checkpoint-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def device() -> str:
    """``'cuda'`` when a GPU is usable by this trial, else ``'cpu'``.

    In Tune a trial may use CUDA only when Tune assigned it a GPU (``ray.get_gpu_ids()``,
    fractional shares included); outside Tune, whenever CUDA is available.
    """
    if in_tune_session():
        import ray

        if not ray.get_gpu_ids():  # checked first: spares CPU trials a torch import
            return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
