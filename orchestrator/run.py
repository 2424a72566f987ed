"""Run a study: preflight, Ray Tune (search, scheduling, retries, resume), store, summary.

:func:`run_study` is the Python entry point (``python -m orchestrator run`` calls it):

1. :func:`preflight` validates everything it can *before* anything starts or is written —
   the trainable resolves and accepts every config, the study does not already exist (or,
   with ``resume``, exists with the same spec) — and :func:`check_cluster_resources` that the
   cluster has the CPUs/GPUs a trial asks for. Each problem raises
   :class:`~orchestrator.spec.SpecError` with one line.
2. A ``Tuner`` is built (or, with ``resume``, ``Tuner.restore``-d: finished trials stay
   finished, unfinished ones continue from their checkpoints, errored ones are retried, and
   the pickled search algorithm — Optuna included — is restored with its state).
3. :class:`orchestrator.callbacks.StoreCallback` writes each trial to the Parquet store as it
   finishes; :func:`summarise` reads the study back from the store for the summary line.

Layout of a store root: ``trials/`` and ``archs/`` (see :mod:`orchestrator.store`),
``tune/<study>/`` (Ray Tune's experiment: trial checkpoints, searcher state; written through
:mod:`orchestrator.storage` so that a killed driver cannot leave it half-written) and
``wandb/<study>/`` (offline W&B runs). The root must be storage every node reaches: a local
folder for one machine, NFS or an object store (``s3://bucket/prefix``, ``gs://…``) for a
cluster — :func:`orchestrator.storage.resolve_root` resolves it once for the store, Tune
(``storage_path`` + ``storage_filesystem``) and the store callback. W&B writes to local disk
only: with an object-store root, offline runs go to ``<tmp>/gnas-wandb/<study>/`` on the node
that ran the trial (:data:`orchestrator.tracking.LOCAL_WANDB_DIR`; use online W&B on such clusters).
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import socket
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from orchestrator import search
from orchestrator.spec import SpecError, StudySpec, resolve_trainable, thaw
from orchestrator.storage import StorageError, StorageRoot
from orchestrator.layout import driver_path, part_folder, saved_spec, spec_path, tune_folder
from orchestrator.status import ERROR, INTERRUPTED, STOPPED, TERMINATED
from orchestrator.store import Store
from orchestrator.ray_session import cluster_resources, connect_ray, driver_env, start_local_ray
from orchestrator.stopping import StopSignals, StudyInterrupted  # noqa: F401 - StudyInterrupted: run_study's to raise
from orchestrator.tracking import ENV_MODE, WandbSettings, wandb_dir
from orchestrator.trial import TrialEntry, make_trainable

# Spec fields that may differ between a study's first run and its resume.
RESUMABLE_CHANGES = ("storage", "wandb")


@dataclass(frozen=True)
class Experiment:
    """One Tune experiment of a study: the whole study, or one box of its grid (``part-0003``)."""

    path: str  # Tune's experiment folder, on the store's filesystem
    grid: Mapping[str, list[Any]] | None = None  # the box it runs (None: the study's whole grid or search)
    resuming: bool = False  # Tune left a state there to continue from

    @property
    def storage_path(self) -> str:
        return self.path.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]


@dataclass(frozen=True)
class Plan:
    """A validated study, ready to launch (the output of :func:`preflight`)."""

    spec: StudySpec
    target: str  # the trainable, "package.module:function"
    store: Store
    resuming: bool
    experiments: tuple[Experiment, ...] = ()  # in the order they run

    @property
    def location(self) -> StorageRoot:
        return self.store.location

    @property
    def experiment_path(self) -> str:
        """The study's Tune folder, on :attr:`location`'s filesystem: Tune's experiment, or the
        folders of its parts (:func:`experiments_of`)."""
        return tune_folder(self.location, self.spec.name)

    def experiment_exists(self) -> bool:
        return self.location.exists(self.experiment_path)

    @property
    def wandb_dir(self) -> Path:
        return wandb_dir(self.store.root, self.spec.name)


@dataclass(frozen=True)
class StudyResult:
    """What a finished :func:`run_study` call leaves: counts, cost, best config, where."""

    study: str
    root: str  # the store root: an absolute path or a URI
    trials: int
    terminated: int
    errored: int
    seconds: float  # wall-clock time of this run_study call
    gpu_hours: float  # summed over the study's trials (all runs of it)
    best: dict[str, Any] | None  # {metric, mode, value, config_id, seeds} (first objective)

    interrupted: int = 0  # trials stored as INTERRUPTED (a stopped driver; --resume continues them)

    def summary(self) -> str:
        best = ""
        if self.best:
            b = self.best
            best = (f"; best {b['metric']} ({b['mode']}) = {b['value']:.4g}"
                    f" at config {b['config_id']} (mean of {b['seeds']} seeds)")
        left = f", {self.interrupted} interrupted" if self.interrupted else ""
        return (f"study {self.study}: {self.trials} trials ({self.terminated} done, {self.errored} errored{left})"
                f" in {self.seconds:.1f} s, {self.gpu_hours:.4f} GPU-h{best}; store {self.root}")


# ----------------------------------------------------------------------------- preflight
def preflight(spec: StudySpec, *, resume: bool = False) -> Plan:
    """Check everything about ``spec`` that needs neither Ray nor the cluster; no side effects.

    In order: the trainable resolves and is registered or declares the contract; every
    config is accepted by it (any exception it raises becomes one line); the objectives are
    metrics it declares, and what a searcher or scheduler ranks by is not computed on the
    evaluation field (:func:`trainables.common.metric_role`); the store root can be written.
    """
    entry = resolve_trainable(spec.trainable)
    module = _check_contract(spec, entry)
    _check_trainable_config(spec, entry)
    _check_metrics(spec, entry, module)
    try:
        store = Store(spec.storage)
        plan = Plan(spec=spec, target=entry.target, store=store, resuming=False)
        exists = plan.experiment_exists() or store.has_study(spec.name)
    except (StorageError, OSError) as exc:  # a bad URI, a missing bucket, no access
        raise SpecError(f"store {spec.storage}: {exc}".splitlines()[0]) from None
    _check_output_root(store)
    if not exists:
        return dataclasses.replace(plan, experiments=experiments_of(plan))
    if not resume:
        raise SpecError(f"study {spec.name!r} already exists in {store.root}; pass --resume to continue it,"
                        " or choose another name or store (--out)")
    _check_same_spec(spec, plan)
    experiments = experiments_of(plan, restoring=True)
    if any(e.resuming for e in experiments):
        return dataclasses.replace(plan, resuming=True, experiments=experiments)
    if store.has_study(spec.name):  # rows, but no Tune state to continue them from
        raise SpecError(f"study {spec.name!r} has results in {store.root} but no restorable Tune state"
                        f" in {plan.location.uri_of(plan.experiment_path)}; start it under another name or store")
    return dataclasses.replace(plan, experiments=experiments)  # interrupted before Tune saved anything: start afresh


def experiments_of(plan: Plan, restoring: bool = False) -> tuple[Experiment, ...]:
    """The Tune experiments ``plan``'s study runs as: one in the study's Tune folder, or, for a
    grid larger than ``trials_per_experiment`` (:func:`orchestrator.search.experiment_grids`),
    one per box in ``part-0000``, ``part-0001``… below it, run one after another — the driver
    then holds one part's trials at a time. ``restoring``: mark those Tune can continue (a study
    that started as one experiment stays one, whatever its size)."""
    location, folder = plan.location, plan.experiment_path
    grids = search.experiment_grids(plan.spec)
    one = restoring and _can_restore(location, folder)
    if len(grids) == 1 or one:
        return (Experiment(folder, resuming=one),)
    paths = [part_folder(location, plan.spec.name, k) for k in range(len(grids))]
    return tuple(Experiment(path, grid, restoring and _can_restore(location, path)) for path, grid in zip(paths, grids))


def _check_output_root(store: Store) -> None:
    """A local store root must be a folder (or not exist yet) that this process can write in;
    checked without creating anything (object stores answer for themselves when written)."""
    if not store.location.is_local:
        return
    root = Path(store.location.uri)
    if root.exists() and not root.is_dir():
        raise SpecError(f"output root {root} is a file, not a folder; choose a folder (--out)")
    existing = next(p for p in (root, *root.parents) if p.exists())
    if not existing.is_dir():
        raise SpecError(f"output root {root}: {existing} is a file, not a folder; choose a folder (--out)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SpecError(f"output root {root}: {existing} cannot be written (read-only or no permission);"
                        " choose another folder (--out)")


def _check_contract(spec: StudySpec, entry):
    """The trainable's module; refuses a target that is neither registered nor declares the
    trainable contract (a module-level ``reported_metrics(config)``), e.g. ``os:system``."""
    from trainables import REGISTRY

    module = entry.import_module()
    if not entry.registered and not callable(getattr(module, "reported_metrics", None)):
        raise SpecError(f"trainable {spec.trainable!r} is not registered ({', '.join(sorted(REGISTRY))}) and its "
                        "module does not declare the trainable contract (reported_metrics(config))")
    return module


def _distinct_configs(spec: StudySpec) -> Iterator[dict[str, Any]]:
    """One example config per distinct config (seeds differ only in the seed)."""
    checked: set[str] = set()
    for config in search.example_configs(spec):
        if (cid := search.config_id(config)) not in checked:
            checked.add(cid)
            yield config


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text and not isinstance(exc, (TypeError, KeyError, AttributeError)) else \
        f"{type(exc).__name__}: {text[0] if text else 'no message'}"


def _check_trainable_config(spec: StudySpec, entry) -> None:
    for config in _distinct_configs(spec):
        try:
            entry.validate(config)
        except Exception as exc:  # any wrong value or type, anywhere in the config: one line
            raise SpecError(f"trainable {spec.trainable!r} rejects the config: {_one_line(exc)}") from None


def _check_metrics(spec: StudySpec, entry, module) -> None:
    """Each objective is a metric the trainable declares (the registry's entry, or the module's
    ``reported_metrics`` for an unregistered target); a searched or scheduled one is not
    computed on the evaluation field (its role: the module's ``reported_metrics``, else
    :func:`trainables.common.metric_role`), and its selection field differs from that field."""
    from trainables import common

    declare = getattr(module, "reported_metrics", None)
    registered = entry.registered
    ranks = bool(spec.search) or spec.scheduler_kind == "asha"
    for config in _distinct_configs(spec):
        try:
            roles = dict(declare(config)) if callable(declare) else {}
        except Exception as exc:
            raise SpecError(f"trainable {spec.trainable!r} rejects the config: {_one_line(exc)}") from None
        for objective in spec.objectives:
            metric = objective.metric
            known = entry.declares(metric) if registered else metric in roles
            if not known:
                names = roles or {m: "" for m in entry.metrics}
                close = difflib.get_close_matches(metric, names, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"it reports: {', '.join(sorted(names))}"
                raise SpecError(f"metric {metric!r}: trainable {spec.trainable!r} does not report it; {hint}")
            if not ranks:
                continue
            role = roles.get(metric) or common.metric_role(metric)
            if role == "evaluation":
                alt = common.selection_name(metric)
                selection = sorted(k for k, r in roles.items() if r == "selection")
                fix = f"rank by {alt!r} (the same statistic on the validation field)" if alt in roles else \
                    f"rank by a selection metric ({', '.join(selection) or 'none declared'})"
                raise SpecError(f"metric {metric!r} is computed on the evaluation (test) field, which search and "
                                f"early stopping must not see; {fix}; the report states {metric!r}")
            if metric in common.SELECTION_METRICS or metric == common.selection_name("best_found"):
                if problem := common.selection_problem(config):
                    raise SpecError(f"metric {metric!r}: {problem}")


def spec_changes(before: Mapping[str, Any], spec: StudySpec) -> list[str]:
    """Keys of ``spec`` that differ from the saved ``before`` (storage and W&B may change)."""
    now = json.loads(json.dumps(spec.to_dict(), default=str))
    # a key the saved spec predates had its default then
    defaults = {f.name: f.default for f in dataclasses.fields(StudySpec) if f.default is not dataclasses.MISSING}
    return sorted(k for k in set(before) | set(now)
                  if k not in RESUMABLE_CHANGES and before.get(k, defaults.get(k)) != now.get(k))


def _check_same_spec(spec: StudySpec, plan: Plan) -> None:
    before = saved_spec(plan.location, spec.name)
    if before is None:
        return
    changed = spec_changes(before, spec)
    if changed:
        raise SpecError(f"cannot resume study {spec.name!r}: the spec changed since it started "
                        f"({', '.join(changed)}); restore those values or start a new study")


def check_cluster_resources(spec: StudySpec, cluster: Mapping[str, float]) -> None:
    """Raise :class:`SpecError` when a trial asks for more than ``cluster`` has (or any GPU)."""
    gpus, cpus = float(cluster.get("GPU", 0)), float(cluster.get("CPU", 0))
    want = spec.resources
    if want.gpu > 0 and gpus == 0:
        raise SpecError(f"resources.gpu={want.gpu:g} but the cluster has no GPUs"
                        " (set resources.gpu: 0, or run on a cluster with GPUs)")
    if want.gpu > gpus:
        raise SpecError(f"resources.gpu={want.gpu:g} per trial but the cluster has {gpus:g} GPUs")
    if want.cpu > cpus:
        raise SpecError(f"resources.cpu={want.cpu:g} per trial but the cluster has {cpus:g} CPUs")


def _can_restore(location: StorageRoot, path: str) -> bool:
    """Whether Tune left a state to restore in experiment folder ``path``; raises if that state
    is damaged.

    Tune itself, given a damaged state file, logs the error and silently restarts the whole
    study; a resume must continue it or say why it cannot.
    """
    from ray import tune

    if not tune.Tuner.can_restore(path, storage_filesystem=location.filesystem):
        return False
    check_state_trust(location, path)
    states = [p for p in location.files(path, "experiment_state-*.json") if p.count("/") == path.count("/") + 1]
    newest = max(states, default=None)
    try:
        json.loads(location.read_bytes(newest)) if newest else None
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot resume study at {location.uri_of(path)}: Tune's experiment state"
                        f" {newest.rsplit('/', 1)[-1]} is damaged ({exc}); start the study under another name") from None
    return True


TRUST_ENV = "GNAS_TRUST_STORE"  # "1": resume from state files this check would refuse (you vouch for them)


def check_state_trust(location: StorageRoot, path: str) -> None:
    """Refuse to resume from Tune state that another user could have written.

    ``Tuner.restore`` unpickles ``tuner.pkl``, the experiment state and the searcher state from
    the experiment folder: whoever can write them runs code on the driver. On a local or NFS
    root each such file must belong to the user resuming and be writable by no one else;
    an object store has no owners to check (its bucket policy is the only guard — see
    docs/DESIGN.md, "Trust"). ``GNAS_TRUST_STORE=1`` skips the check.
    """
    if not location.is_local or os.environ.get(TRUST_ENV) == "1":
        return
    uid = os.getuid()
    with os.scandir(path) as entries:
        entries = list(entries)
    for entry in entries:
        if not entry.is_file(follow_symlinks=False) and not entry.is_symlink():
            continue
        st = entry.stat(follow_symlinks=False)
        if entry.is_symlink() or st.st_uid != uid or st.st_mode & 0o022:
            why = ("is a symbolic link" if entry.is_symlink() else f"belongs to uid {st.st_uid}, not {uid}"
                   if st.st_uid != uid else "is writable by other users")
            raise SpecError(f"cannot resume from {entry.path}: it {why}, and resuming unpickles Tune's state"
                            f" (its writer could run code here); check it, then set {TRUST_ENV}=1 to resume anyway")


# ----------------------------------------------------------------------------- running
def run_study(
    spec: StudySpec,
    *,
    resume: bool = False,
    wandb: bool | None = None,
    storage: str | os.PathLike | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    check_resources: bool = True,
    callbacks: Sequence[Any] = (),
    verbose: int = 1,
    progress: Any = None,
    run_config: Any = None,
    trim_finished: bool = True,
) -> StudyResult:
    """Run ``spec`` (or continue it with ``resume``) and return its :class:`StudyResult`.

    ``wandb=False`` turns W&B off; ``storage`` overrides the spec's store root. Ray: an
    initialised Ray is used as is; otherwise ``address`` is connected to, or a local Ray is
    started (``num_cpus``/``num_gpus``, logical GPUs allowed) and left running for later
    calls. ``callbacks`` are extra Ray Tune callbacks. Raises :class:`SpecError` — with
    nothing started or written — when the spec cannot run.

    ``verbose``: 0 prints nothing; 1 shows the study's progress (``progress``, an
    :class:`orchestrator.progress.StudyProgress` the caller owns — a study of several parts
    passes one view to each — or else a view of its own) and, without a caller's view, the
    summary line; 2 adds Ray Tune's trial tables and Ray's log lines, the trials' output
    included. Below 2 a Ray this call starts sends no worker output to the driver.

    With W&B on, every trial of the study then has one complete W&B run, written from the
    store (:func:`orchestrator.wandb_runs.complete_study_runs`); ``run_config(row)`` adds keys to
    a trial's run config (the published studies: method, role, degradation kind and level).

    ``trim_finished``: drop a finished trial's Tune statistics other than the objectives'
    (:class:`orchestrator.callbacks.TrimFinishedTrials`: less driver memory per trial);
    ``bench/scale.py --no-trim`` measures without it.
    """
    started = time.perf_counter()
    spec = _with_overrides(spec, wandb=wandb, storage=storage)
    plan = preflight(spec, resume=resume)
    stops = StopSignals()
    try:
        wandb_settings = _wandb_settings(plan)
        connect_ray(address, wandb_settings, verbose)  # starts nothing: joins a running cluster, if asked
        if check_resources:
            check_cluster_resources(spec, cluster_resources(num_cpus, num_gpus))
        start_local_ray(num_cpus, num_gpus, wandb_settings, verbose)
        with stops:  # after ray.init, which sets its own SIGTERM handler (sys.exit, no clean-up)
            try:
                _run_experiments(plan, wandb_settings, callbacks, verbose, progress, resume, stops, trim_finished)
                if not stops.received:
                    plan.store.compact(studies=[spec.name])  # a handful of files to read, however many trials
                    if wandb_settings is not None:
                        from orchestrator.wandb_runs import complete_study_runs

                        complete_study_runs(wandb_settings, plan.store.root, spec.name, per_trial=run_config)
            except KeyboardInterrupt:
                stops.caught("SIGINT")
            if stops.received:
                stops.leaving = True  # on the way out: a further signal changes nothing
                raise StudyInterrupted(spec.name, stops.received[0], plan.store.finished_trials(spec.name),
                                       spec.num_trials, plan.store.root)
    except KeyboardInterrupt:  # before the experiments started (joining or starting Ray)
        raise StudyInterrupted(spec.name, "SIGINT", plan.store.finished_trials(spec.name), spec.num_trials,
                               plan.store.root) from None
    result = summarise(plan, time.perf_counter() - started)
    if progress is None and verbose >= 1:
        print(result.summary(), flush=True)
    return result


def _run_experiments(plan: Plan, wandb_settings: WandbSettings | None, callbacks: Sequence[Any], verbose: int,
                     progress: Any, resume: bool, stops: "StopSignals", trim_finished: bool = True) -> None:
    """Run ``plan``'s Tune experiments one after another, until one is stopped by a signal."""
    spec = plan.spec
    _write_json(plan, spec.to_dict())
    if spec.search:  # optuna-dashboard shows the objectives in words, with their unit
        from orchestrator.dashboards import name_optuna_objectives

        name_optuna_objectives(spec)
    own_view = progress is None and verbose >= 1
    if own_view:
        from orchestrator.progress import Objective, StudyProgress

        progress = StudyProgress(Objective.of(spec.objectives[0].metric, spec.objectives[0].mode))
        progress.start_part(spec.name, spec.num_trials)
    if verbose and resume:
        say = progress.write if progress is not None else print
        say(f"resuming study {spec.name} from {plan.location.uri_of(plan.experiment_path)}" if plan.resuming
            else f"nothing to resume for study {spec.name}; starting it")
    driver_file = driver_path(plan.location, spec.name)
    plan.location.write_bytes(driver_file, json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode())
    try:
        for experiment in plan.experiments:  # one after another: the driver drops a finished part whole
            tuner, store_callback = _tuner(plan, experiment, wandb_settings, callbacks, verbose,
                                           progress if verbose else None, trim_finished)
            with driver_env(), stops.during_fit():
                tuner.fit()
            if store_callback is not None and store_callback.unfinished and not stops.received:
                stops.caught("stopped by Ray Tune")  # e.g. Tune's own SIGUSR1, or a stop nobody here sent
            if stops.received:
                break
        if not stops.received:
            search.settle_searcher(plan.spec)
    finally:
        plan.location.remove(driver_file)
        if own_view:
            progress.close()


def _with_overrides(spec: StudySpec, *, wandb: bool | None, storage: Any) -> StudySpec:
    if storage is not None:
        spec = dataclasses.replace(spec, storage=str(storage))
    if wandb is not None:
        spec = dataclasses.replace(spec, wandb=dataclasses.replace(spec.wandb, enabled=wandb))
    return spec


def _wandb_settings(plan: Plan) -> WandbSettings | None:
    w = plan.spec.wandb
    mode = os.environ.get(ENV_MODE) or w.mode  # the environment wins, as W&B users expect
    if not w.enabled or mode == "disabled":
        return None
    return WandbSettings(project=w.project, entity=w.entity, mode=mode, directory=str(plan.wandb_dir),
                         group=w.group)


def _tuner(plan: Plan, experiment: Experiment, wandb_settings: WandbSettings | None, callbacks: Sequence[Any],
           verbose: int, progress: Any = None, trim_finished: bool = True):
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from orchestrator.callbacks import ProgressCallback, StoreCallback, TrimFinishedTrials

    spec = plan.spec
    entry = TrialEntry(target=plan.target, study=spec.name, trainable=spec.trainable, wandb=wandb_settings,
                       variants=thaw(spec.variants))
    resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    trainable = tune.with_resources(make_trainable(entry), resources)
    if experiment.resuming:
        tuner = tune.Tuner.restore(experiment.path, trainable=trainable,
                                   resume_unfinished=True, resume_errored=True,
                                   storage_filesystem=plan.location.filesystem)
        return tuner, _point_store_callbacks(tuner, plan.store.root, progress)
    # Tune needs the metric only to search or schedule by it; naming it otherwise would make
    # Tune reject the intermediate reports of trainables that compute it only at the end.
    ranks = bool(spec.search) or spec.scheduler_kind == "asha"
    single = None if spec.multi_objective or not ranks else spec.objectives[0]
    tune_config = tune.TuneConfig(
        metric=single.metric if single else None,
        mode=single.mode if single else None,
        search_alg=search.search_algorithm(spec),
        scheduler=_scheduler(spec),
        num_samples=spec.num_trials if spec.search else 1,
        max_concurrent_trials=spec.concurrency,
        reuse_actors=True,
        trial_dirname_creator=_trial_dirname,
    )
    store_callback = StoreCallback(spec.name, spec.trainable, spec.resources.cpu, spec.resources.gpu,
                                   wandb=wandb_settings is not None, variants=thaw(spec.variants), root=plan.store.root)
    run_config = tune.RunConfig(
        name=experiment.name,
        storage_path=experiment.storage_path,  # a path on storage_filesystem (no scheme)
        storage_filesystem=plan.location.filesystem,  # see orchestrator.storage
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        callbacks=[store_callback, JsonLoggerCallback(), CSVLoggerCallback(), ProgressCallback(progress), *callbacks,
                   *([TrimFinishedTrials([o.metric for o in spec.objectives])] if trim_finished else [])],
        # Tune's own tables only when asked for (verbose 2): the study's view is ProgressCallback's
        progress_reporter=_reporter(spec, sort=single is None) if verbose >= 2 else None,
        verbose=1 if verbose >= 2 else 0,
    )
    return tune.Tuner(trainable, param_space=search.param_space(spec, experiment.grid), tune_config=tune_config,
                      run_config=run_config), store_callback


def _point_store_callbacks(tuner, root: str, progress: Any = None):
    """Point the restored tuner's store callbacks at ``root``, its progress callback at ``progress``;
    returns its store callback (``None`` under Ray Client).

    ``Tuner.restore`` brings back the callbacks pickled when the study started, with the root
    of that time; a study may be resumed from a copy of its root elsewhere (``--out``). The
    progress view is never pickled (it is this run's terminal).
    """
    from orchestrator.callbacks import ProgressCallback, StoreCallback

    internal = getattr(tuner, "_local_tuner", None)  # Ray 2.60 keeps the restored RunConfig here
    if internal is None:  # Ray Client: the tuner lives remotely (and so do its callbacks)
        return None
    run_config = internal.get_run_config()
    store_callback = None
    for callback in run_config.callbacks or ():
        if isinstance(callback, StoreCallback):
            callback.set_root(root)
            store_callback = callback
        elif isinstance(callback, ProgressCallback):
            callback.attach(progress)
            progress = None
    if progress is not None:  # a study started before progress callbacks existed
        run_config.callbacks = [*(run_config.callbacks or ()), ProgressCallback(progress)]
    return store_callback


def _scheduler(spec: StudySpec):
    if spec.scheduler_kind != "asha":
        from orchestrator.fifo import LiveFIFOScheduler

        return LiveFIFOScheduler()  # Tune's FIFO order without its scan of every trial
    from ray.tune.schedulers import ASHAScheduler

    s = spec.scheduler
    return ASHAScheduler(time_attr="training_iteration", max_t=s.max_t, grace_period=s.grace_period,
                         reduction_factor=s.reduction_factor)


def _reporter(spec: StudySpec, sort: bool):
    """Tune's trial table (``--verbose``), sorted by the first objective. ``sort``: TuneConfig
    names no metric (it does only when it ranks by one), so the reporter must name it itself."""
    from ray.tune import CLIReporter

    first = spec.objectives[0]
    sort = {"metric": first.metric, "mode": first.mode} if sort else {}
    return CLIReporter(
        metric_columns=[o.metric for o in spec.objectives],
        parameter_columns=[*(["variant"] if spec.variants else []), *spec.grid, *(p.name for p in spec.search), "seed"],
        max_progress_rows=10,
        max_error_rows=5,
        max_column_length=30,  # variant names such as label_noise-10 whole
        max_report_frequency=30,
        print_intermediate_tables=True,
        sort_by_metric=True,
        **sort,
    )


def _trial_dirname(trial) -> str:
    return f"{trial.trainable_name}_{trial.trial_id}"


def _write_json(plan: Plan, data: Any) -> None:
    """The study's spec beside Tune's experiment (compared on ``--resume``), written at once."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    plan.location.write_bytes(spec_path(plan.location, plan.spec.name), text.encode())


# ----------------------------------------------------------------------------- results
def summarise(plan: Plan, seconds: float) -> StudyResult:
    """The :class:`StudyResult` of ``plan``'s study, read back from the store."""
    spec = plan.spec
    rows = plan.store.read("trials", studies=[spec.name]).to_pylist()
    done = [r for r in rows if r["status"] in (TERMINATED, STOPPED)]
    objective = spec.objectives[0]
    by_config: dict[str, list[float]] = {}
    for r in done:
        value = r.get(objective.metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            by_config.setdefault(r["config_id"], []).append(float(value))
    best = None
    if by_config:
        pick = max if objective.mode == "max" else min
        cid = pick(by_config, key=lambda c: statistics.fmean(by_config[c]))
        best = {"metric": objective.metric, "mode": objective.mode, "config_id": cid,
                "value": statistics.fmean(by_config[cid]), "seeds": len(by_config[cid])}
    return StudyResult(
        study=spec.name, root=plan.store.root, trials=len(rows), terminated=len(done),
        errored=sum(r["status"] == ERROR for r in rows), seconds=seconds,
        interrupted=sum(r["status"] == INTERRUPTED for r in rows),
        gpu_hours=sum(r.get("gpu_hours") or 0.0 for r in rows), best=best,
    )
