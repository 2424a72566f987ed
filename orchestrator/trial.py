"""What runs inside each trial actor: the trainable, wrapped with the study's trial services.

:func:`make_trainable` returns the function Tune runs. For each trial it resolves the
trainable by its target (importing it from the installed package on the worker), installs a
:class:`trainables.reporting.TrialContext` — every report gets the device in use, the GPU
ids Tune assigned and the trial's start time; with online W&B, a live run (see
:mod:`orchestrator.tracking`) sees every report — and calls ``train(config)`` with the trial's config, untouched.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from orchestrator.spec import apply_variant
from orchestrator.tracking import TrialTracker, WandbSettings


@dataclass(frozen=True)
class TrialEntry:
    """The picklable description of what each trial of a study runs."""

    target: str  # "package.module:function"
    study: str
    trainable: str  # the name in the spec (for W&B tags)
    wandb: WandbSettings | None
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # the spec's, thawed


def make_trainable(entry: TrialEntry) -> Callable[[dict[str, Any]], None]:
    """The Tune function trainable for ``entry`` (named after the trainable)."""

    def trial(config: dict[str, Any]) -> None:
        run_trial(entry, config)

    trial.__name__ = trial.__qualname__ = _tune_name(entry.trainable)
    return trial


def _quiet_shutdown() -> None:
    """In a trial's worker: a shutdown's SIGTERM is not an error to print.

    When the study's driver exits, Ray ends its workers with SIGTERM, and Ray's handler raises
    ``SystemExit`` wherever the worker is. Landing inside a weakref or ``__del__`` callback (a
    loaded machine makes that likely), Python prints it as an "Exception ignored" traceback,
    which ``--verbose`` forwards to the user's terminal: noise about a worker being stopped as
    intended. Everything else still goes to the default hook.
    """
    if getattr(sys.unraisablehook, "gnas_quiet", False):
        return
    default = sys.unraisablehook

    def hook(unraisable) -> None:
        if not isinstance(unraisable.exc_value, SystemExit):
            default(unraisable)

    hook.gnas_quiet = True
    sys.unraisablehook = hook


def run_trial(entry: TrialEntry, config: dict[str, Any]) -> None:
    """Run one trial of ``entry`` inside a Tune session."""
    import ray
    from ray import tune

    from orchestrator.search import config_id
    from trainables import reporting, resolve

    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)  # a line per checkpoint
    _quiet_shutdown()
    train = resolve(entry.target).load()
    context = tune.get_context()
    gpu_ids = ray.get_gpu_ids()
    ctx = reporting.TrialContext(extras={
        "gpu_ids": ",".join(str(g) for g in gpu_ids),
        "trial_started_at": time.time(),
    })
    tracker = None
    if entry.wandb is not None and entry.wandb.mode == "online":  # offline: the driver writes runs from the store
        trial_id, cid = context.get_trial_id(), config_id(config)
        tracker = TrialTracker(
            entry.wandb, run_id=f"{entry.study}-{trial_id}", name=context.get_trial_name(),
            group=entry.wandb.group or cid, job_type=entry.study,
            tags=[entry.study, entry.trainable, f"config:{cid}"],
            config={**apply_variant(config, entry.variants), "study": entry.study, "trainable": entry.trainable, "trial_id": trial_id},
        )
        if tracker.start():
            ctx.listeners.append(tracker.log)
    ctx.computed["device"] = _device_in_use
    with reporting.trial_context(ctx):
        try:
            train(apply_variant(config, entry.variants, keep_name=False))
        except SystemExit as stop:  # Tune stopping the trial's thread (a report with done: True)
            if tracker is not None:
                tracker.finish(failed=stop.code not in (None, 0))
            raise
        except BaseException:
            if tracker is not None:
                tracker.finish(failed=True)
            raise
    if tracker is not None:
        tracker.finish()


def _device_in_use() -> str:
    """The trial's device, as far as it can have used one: a trainable that never imported
    torch ran on the CPU (and is spared a torch import just to say so)."""
    from trainables import reporting

    return reporting.device() if "torch" in sys.modules else "cpu"


def _tune_name(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)

