"""The driver's Ray: joining a cluster or starting a local Ray, what the workers are told, and the
environment ``Tuner.fit`` runs in. Imports Ray only inside its functions."""
from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

from orchestrator.tracking import ENV_MODE, WandbSettings


def connect_ray(address: str | None, wandb_settings: WandbSettings | None, verbose: int = 1) -> None:
    """Join the cluster at ``address`` (unless Ray is up), passing W&B's mode to its workers."""
    import ray

    if address is None or ray.is_initialized():
        return
    env = _worker_env(wandb_settings)
    ray.init(address=address, runtime_env={"env_vars": env} if env else None, **_ray_output(verbose))


def start_local_ray(num_cpus: int | None, num_gpus: int | None, wandb_settings: WandbSettings | None,
                     verbose: int = 1) -> None:
    """Start a local Ray unless one is up, passing W&B's mode to its workers."""
    import ray

    if ray.is_initialized():
        return
    env = _worker_env(wandb_settings)
    _import_in_background(TUNER_MODULES)
    with _auth_notice_hidden(verbose):
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False,
                 runtime_env={"env_vars": env} if env else None, **_ray_output(verbose))
    from orchestrator import reaper

    reaper.watch()  # this Ray ends with the driver, even a killed one (Ray's agents alone take ~60 s)


# What the driver imports between ray.init and its first trial: Ray Tune, and the W&B integration
# that Tune's usage telemetry imports in every fit (ray.air._internal.usage.tag_callbacks).
TUNER_MODULES = ("ray.tune", "ray.air.integrations.wandb")


def _import_in_background(modules: Sequence[str]) -> None:
    """Import ``modules`` on a daemon thread, while ``ray.init`` mostly waits on the processes it
    starts: they are loaded by the time the Tuner needs them (bench/overhead.py measures the
    time to the first trial with and without). A failure is left to the later, real import."""
    import importlib
    import threading

    def load() -> None:
        for name in modules:
            with contextlib.suppress(Exception):
                importlib.import_module(name)

    threading.Thread(target=load, name="gnas-import-tune", daemon=True).start()


@contextlib.contextmanager
def _auth_notice_hidden(verbose: int) -> Iterator[None]:
    """Below ``verbose`` 2, drop Ray's WARNING that it turned token authentication on.

    With ``RAY_AUTH_MODE`` unset, Ray 2.60 secures a new local Ray with a token (kept: the
    safe default) and says so as a WARNING on every study's stderr. Setting the mode ourselves
    is no cure: Ray reads it when imported, before a study starts.
    """
    logger = logging.getLogger("ray._private.authentication.authentication_token_setup")
    notice = _DropMessage("Token authentication is enabled for this Ray cluster")
    if verbose < 2:
        logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


class _DropMessage(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.start)


def _ray_output(verbose: int) -> dict[str, Any]:
    """``ray.init`` arguments: below ``verbose`` 2, the trials' stdout/stderr stay in Ray's log
    files (``/tmp/ray/session_latest/logs``) and Ray's own INFO lines are not shown."""
    return {"log_to_driver": verbose >= 2, "logging_level": logging.INFO if verbose >= 2 else logging.WARNING}


def _worker_env(wandb_settings: WandbSettings | None) -> dict[str, str]:
    return {ENV_MODE: wandb_settings.mode, "WANDB_SILENT": "true"} if wandb_settings else {}


def cluster_resources(num_cpus: int | None, num_gpus: int | None) -> dict[str, float]:
    """The running cluster's resources, or what a local Ray would get (starting nothing)."""
    import ray

    if ray.is_initialized():
        return dict(ray.cluster_resources())
    return {"CPU": float(num_cpus or os.cpu_count() or 1),
            "GPU": float(num_gpus if num_gpus is not None else local_gpu_count())}


def local_gpu_count() -> int:
    """GPUs a local Ray would see, without importing torch or starting anything."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [v for v in visible.split(",") if v.strip() and v.strip() != "-1"]
        return len(ids)
    gpus = Path("/proc/driver/nvidia/gpus")
    return len(list(gpus.iterdir())) if gpus.is_dir() else 0


DRIVER_ENV = {
    # Ray ignores a configured ``progress_reporter`` unless its new output engine is off.
    "RAY_AIR_NEW_OUTPUT": "0",
    # Trainables checkpoint every iteration (the contract), so Tune snapshots the experiment
    # state every ``num_to_keep`` checkpoints of a trial — wanted (fresh resume state), and
    # cheap here (~10 ms); its warning about frequent snapshots would only be noise.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # No automatic TensorBoard logger (it imports torch into the driver: ~2.7 s here); the JSON
    # and CSV loggers Tune's own result readers rely on are passed explicitly (_tuner).
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # Trials run where the driver was started (Tune passes this on to trial actors), so a
    # relative path in a config (data_dir: ../shared/data) means what it meant at validation.
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    # SIGINT and SIGTERM take one path, StopSignals (Tune's SIGUSR1 handler stays on).
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
}


class _ShortStallHints(logging.Filter):
    """Drops Ray Tune's hint that a driver operation "took X s, which may be a performance
    bottleneck" when X is under :data:`SLOW_HINT_S`. Tune gives it past 0.5 s, which a busy machine
    reaches in every study, and its advice (report results less often) does not apply: trials
    report once per iteration by contract. Longer stalls still show."""

    took = re.compile(r"took (\d+(?:\.\d+)?) s")

    def filter(self, record: logging.LogRecord) -> bool:
        match = self.took.search(record.getMessage())
        return match is None or float(match.group(1)) >= SLOW_HINT_S


SLOW_HINT_S = 5.0
TUNE_HINT_LOGGER = "ray.tune.utils.util"  # where Tune's warn_if_slow logs


@contextlib.contextmanager
def driver_env() -> Iterator[None]:
    """Set :data:`DRIVER_ENV` for the duration of ``Tuner.fit`` (Tune reads it at run time), and
    keep Tune's hints about short driver stalls off the user's terminal (:class:`_ShortStallHints`)."""
    previous = {k: os.environ.get(k) for k in DRIVER_ENV}
    os.environ.update(DRIVER_ENV)
    hints = _ShortStallHints()
    logging.getLogger(TUNE_HINT_LOGGER).addFilter(hints)
    try:
        yield
    finally:
        logging.getLogger(TUNE_HINT_LOGGER).removeFilter(hints)
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
