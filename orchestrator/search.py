"""Spec → what Tune samples: grid axes × seeds expanded exactly, searched parameters by Optuna.

Two shapes, one rule — *every* config runs on every grid point with every seed:

* no searched parameters: the Tune ``param_space`` carries ``tune.grid_search`` over each grid
  axis and over ``seed``; Tune's default generator expands it exactly.
* searched parameters: Ray Tune's ``OptunaSearch`` (TPE seeded; NSGA-II with several
  objectives) suggests them, and :class:`ReplicateSearcher` turns each suggestion into one trial
  per (grid point, seed), reporting the mean over that group back to Optuna when the group is
  done. Optuna thus sees one trial per distinct config, and the seeds of a config are grouped.

``config_id`` names a config without its seed: the key by which seeds are aggregated.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from orchestrator.spec import VARIANT_KEY, StudySpec, apply_variant, thaw

if TYPE_CHECKING:  # pragma: no cover
    from ray.tune.search import Searcher

SEED_KEY = "seed"


def config_id(config: Mapping[str, Any]) -> str:
    """Stable 12-hex-digit id of ``config`` without its seed (seeds of one config share it)."""
    rest = {k: v for k, v in config.items() if k != SEED_KEY}
    text = json.dumps(thaw(rest), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def grid_axes(spec: StudySpec) -> dict[str, list[Any]]:
    """The axes a study's replicates vary along, in replicate order (seed last: fastest) → their
    values: the variant's name (``variant``), each grid axis, the seed."""
    axes: dict[str, list[Any]] = {VARIANT_KEY: list(spec.variants)} if spec.variants else {}
    axes.update({axis: thaw(list(values)) for axis, values in spec.grid.items()})
    axes[SEED_KEY] = list(spec.seeds)
    return axes


def replicates(spec: StudySpec) -> list[dict[str, Any]]:
    """Every (variant, grid point, seed) as the config keys it sets, in a fixed order (seed
    fastest). A variant appears by name (``variant``); :meth:`StudySpec.with_variant` expands it."""
    axes = grid_axes(spec)
    return [dict(zip(axes, point)) for point in itertools.product(*axes.values())]


def experiment_grids(spec: StudySpec) -> list[dict[str, list[Any]]]:
    """The grid of each Tune experiment the study runs as, in order: boxes of :func:`grid_axes`
    of at most ``spec.trials_per_experiment`` trials that hold every replicate once, in replicate
    order. The whole grid, one experiment, for a study that fits in one or that searches or stops
    trials early (Optuna's state and ASHA's rungs span the whole study)."""
    axes = grid_axes(spec)
    limit = spec.trials_per_experiment
    if spec.search or spec.scheduler_kind == "asha" or spec.num_trials <= limit:
        return [axes]
    names = list(axes)

    def boxes(i: int, fixed: dict[str, list[Any]]) -> Iterator[dict[str, list[Any]]]:
        inner = math.prod(len(axes[a]) for a in names[i + 1:])
        values = axes[names[i]]
        if inner > limit:  # one value of this axis at a time, and the inner axes split further
            for value in values:
                yield from boxes(i + 1, {**fixed, names[i]: [value]})
            return
        step = limit // inner
        for start in range(0, len(values), step):
            yield {**fixed, names[i]: values[start:start + step], **{a: axes[a] for a in names[i + 1:]}}

    return list(boxes(0, {}))


def example_configs(spec: StudySpec) -> list[dict[str, Any]]:
    """One full config per replicate, searched parameters at a representative value.

    Used to let a trainable's ``validate_config`` reject a study before anything launches; the
    configs are what the trainable receives (variant overlay merged, no ``variant`` key).
    """
    searched = {p.name: p.representative() for p in spec.search}
    return [trainable_config(spec, {**spec.base_config(), **searched, **rep}) for rep in replicates(spec)]


def trainable_config(spec: StudySpec, config: Mapping[str, Any]) -> dict[str, Any]:
    """What the trainable receives for Tune's ``config``: the variant's overlay merged in, the
    variant's name removed (trainables know nothing of variants)."""
    return apply_variant(config, spec.variants, keep_name=False)


def param_space(spec: StudySpec, grid: Mapping[str, list[Any]] | None = None) -> dict[str, Any]:
    """Tune ``param_space``: the fixed config, plus grid searches when nothing is searched — over
    ``grid`` (one experiment's box, :func:`experiment_grids`) or else the study's whole grid."""
    from ray import tune

    space = spec.base_config()
    if not spec.search:
        for axis, values in (grid or grid_axes(spec)).items():
            space[axis] = tune.grid_search(list(values))
    return space


def search_algorithm(spec: StudySpec) -> "Searcher | None":
    """``None`` for grid-only studies, else Optuna wrapped in a :class:`ReplicateSearcher`."""
    if not spec.search:
        return None
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from orchestrator.replicate import ReplicateSearcher

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per created study
    if spec.multi_objective:
        sampler = optuna.samplers.NSGAIISampler(seed=spec.search_seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=spec.search_seed)
    metrics = [o.metric for o in spec.objectives]
    modes = [o.mode for o in spec.objectives]
    optuna_search = OptunaSearch(
        space={p.name: p.distribution() for p in spec.search},
        metric=metrics if spec.multi_objective else metrics[0],
        mode=modes if spec.multi_objective else modes[0],
        sampler=sampler,
        study_name=spec.name,
        storage=optuna_storage(spec),
    )
    return ReplicateSearcher(optuna_search, replicates(spec))




def optuna_journal(spec: StudySpec) -> "str | None":
    """Path of the Optuna journal of ``spec``'s search in its store, or ``None`` for an
    object-store root (Optuna's file journal needs a file system; the search then stays in
    memory, saved with Tune's experiment state as before)."""
    from orchestrator.layout import optuna_journal_path
    from orchestrator.storage import resolve_root

    location = resolve_root(spec.storage)
    return optuna_journal_path(location, spec.name) if location.is_local else None


def optuna_storage(spec: StudySpec):
    """The Optuna storage of ``spec``'s search, so ``optuna-dashboard <root>/optuna/<study>.log``
    shows it: a journal file (append-only, file-locked: safe with a reader such as the dashboard
    beside the writing driver, and on NFS, where SQLite's locking is unreliable)."""
    path = optuna_journal(spec)
    if path is None:
        return None
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))


def settle_searcher(spec: StudySpec) -> int:
    """Fail every Optuna trial of ``spec``'s finished search still marked RUNNING; returns how many.

    The journal is live while Tune's searcher state is a snapshot: a config asked after the
    last snapshot of a driver that was then stopped or killed stays RUNNING in the journal,
    and the resumed searcher asks for that trial again. Once every Tune trial of the study is
    final, nothing can tell such a trial any more, so it is failed (the dashboard would show it
    running forever). Called only after a study's last experiment finished.
    """
    path = optuna_journal(spec) if spec.search else None
    if path is None or not Path(path).is_file():
        return 0
    import optuna
    from optuna.trial import TrialState

    storage = optuna_storage(spec)
    study = optuna.load_study(study_name=spec.name, storage=storage)
    orphans = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in orphans:
        storage.set_trial_system_attr(trial._trial_id, "gnas:failed_because",
                                      "asked before its driver stopped; the resumed search asked again")
        storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    return len(orphans)
