"""Weights & Biases tracking: one run per trial, grouped by config, offline by default.

Runs are created inside the trial (on the worker), not by a driver-side callback: that costs
~0.1 s per trial against ~4 s for Ray's ``WandbLoggerCallback`` here, and it keeps working on a
multi-node cluster. Offline runs land under ``<store root>/wandb/<study>/wandb/offline-run-*``;
``wandb sync`` uploads them later, with an account and a network.

Tracking never fails a trial: the first W&B error (no disk space, bad key, missing package…)
logs one warning and turns the tracker off for the rest of the trial.
"""
from __future__ import annotations

import atexit
import logging
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

log = logging.getLogger(__name__)

ENV_MODE = "WANDB_MODE"


@dataclass(frozen=True)
class WandbSettings:
    """Where and how a study's trials are tracked (resolved on the driver, used on workers)."""

    project: str
    mode: str  # offline | online | disabled
    directory: str  # W&B puts its own "wandb/" folder inside
    entity: str | None = None
    group: str | None = None  # None: one W&B group per config (the config id)


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
