"""Weights & Biases tracking: W&B is a view of the store, offline by default.

Every trial gets exactly one complete run, written from the Parquet store by the driver after
each study (:func:`orchestrator.wandb_runs.complete_study_runs`): config, per-iteration
history, summary and generated architectures, under a run id derived from the trial id. Offline
runs land under ``<store root>/wandb/<study>/wandb/offline-run-*``; ``gnas wandb sync`` uploads
them later (:mod:`orchestrator.wandb_commands`).

With ``mode: online`` a trial also logs live from its worker (:class:`TrialTracker`), for people
watching; that run may be cut short when Tune ends the actor (see :mod:`orchestrator.wandb_runs`
for the measured cause), and the driver then completes the same run from the store. Offline,
nobody watches, so workers log nothing: the store is written anyway and the run is built from it.

Tracking never fails a trial or a study: a W&B error is one warning line, and the store keeps
everything needed to complete the runs later (``gnas wandb complete``).
"""
from __future__ import annotations

import atexit
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

log = logging.getLogger(__name__)

ENV_MODE = "WANDB_MODE"
LOCAL_WANDB_DIR = Path(tempfile.gettempdir()) / "gnas-wandb"  # offline runs of object-store roots


@dataclass(frozen=True)
class WandbSettings:
    """Where and how a study's trials are tracked (resolved on the driver, used on workers)."""

    project: str
    mode: str  # offline | online | disabled
    directory: str  # W&B puts its own "wandb/" folder inside
    entity: str | None = None
    group: str | None = None  # None: one W&B group per config (the config id)


def wandb_dir(store_root: str, study: str) -> Path:
    """Where the offline runs of ``study`` go (the ``dir=`` of ``wandb.init``):
    ``<root>/wandb/<study>`` for a local or NFS root; W&B writes only local files, so for an
    object-store root ``<tmp>/gnas-wandb/<study>`` on the driver (use online W&B there)."""
    from orchestrator.storage import resolve_root

    location = resolve_root(store_root)
    if location.is_local:
        return Path(location.join("wandb", study))
    return LOCAL_WANDB_DIR / study


_teardown_registered = False


def _teardown_quietly_at_exit() -> None:
    """Shut W&B's service down before W&B's own exit hook, swallowing its errors.

    A trial actor outlives many trials (``reuse_actors``) and keeps one W&B service; when Ray
    ends the actor the service may already be gone, and W&B's own hook then prints a
    ``ConnectionResetError`` traceback per actor. ``atexit`` runs hooks last-in first-out, so
    this one (registered after W&B's) runs first; ``wandb.teardown`` unregisters W&B's hook.
    """
    global _teardown_registered
    if _teardown_registered:
        return
    _teardown_registered = True

    def teardown() -> None:
        try:
            import wandb

            wandb.teardown()
        except BaseException:  # noqa: BLE001 - the process is exiting anyway
            pass

    atexit.register(teardown)


class TrialTracker:
    """The W&B run of one trial. Every method is safe to call after a failure (a no-op)."""

    def __init__(self, settings: WandbSettings, *, run_id: str, name: str, group: str,
                 job_type: str, tags: Sequence[str], config: Mapping[str, Any]) -> None:
        self.settings = settings
        self._init_kwargs = dict(
            project=settings.project, entity=settings.entity, mode=settings.mode,
            dir=settings.directory, id=run_id, name=name, group=group, job_type=job_type,
            tags=list(tags), config=dict(config), resume="allow", save_code=False,
        )
        self._run = None
        self.failed = False

    def start(self) -> bool:
        """Create the run; ``False`` (after one warning) when W&B is unusable."""
        try:
            import wandb

            settings = wandb.Settings(silent=True, console="off", disable_git=True, x_disable_stats=True)
            self._run = wandb.init(settings=settings, **self._init_kwargs)
            _teardown_quietly_at_exit()
        except BaseException as exc:  # noqa: BLE001 - W&B must never fail a trial
            self._fail("start", exc)
        return self._run is not None

    def log(self, metrics: Mapping[str, Any]) -> None:
        """Log the numeric entries of one report."""
        if self._run is None:
            return
        numbers = {k: v for k, v in metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        try:
            self._run.log(numbers)
        except BaseException as exc:  # noqa: BLE001
            self._fail("log", exc)

    def finish(self, failed: bool = False) -> None:
        """Close the run (exit code 1 when the trial raised)."""
        if self._run is None:
            return
        run, self._run = self._run, None
        try:
            run.finish(exit_code=1 if failed else 0)
        except BaseException as exc:  # noqa: BLE001
            self._fail("finish", exc)

    def _fail(self, step: str, exc: BaseException) -> None:
        if isinstance(exc, KeyboardInterrupt):
            raise exc
        if not self.failed:
            log.warning("W&B tracking disabled for run %s (%s failed: %s: %s); the trial goes on",
                        self._init_kwargs["id"], step, type(exc).__name__, exc)
        self.failed = True
        self._run = None
