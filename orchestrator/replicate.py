"""``ReplicateSearcher``: one searcher suggestion → one trial per (grid point, seed).

Kept apart from :mod:`orchestrator.search` because it subclasses Ray's ``Searcher`` (importing
Ray); :func:`orchestrator.search.search_algorithm` imports it only when a study searches.
"""
from __future__ import annotations

import logging
import math
from typing import Any

from ray.tune.search import Searcher

log = logging.getLogger(__name__)


class ReplicateSearcher(Searcher):
    """Runs each suggestion of ``searcher`` once per replicate (grid point × seed).

    The wrapped searcher sees one trial per group (the group's first trial id) and, once every
    member has completed, the mean of each objective over the members that reported it.
    Members that errored are left out of the mean; a group with no result at all is reported
    as an error. Intermediate results are not forwarded: a per-seed curve is not the group's.

    State: like Tune's own wrappers (``Repeater``, ``ConcurrencyLimiter``) this class keeps the
    wrapped searcher in ``self.searcher``. Tune's experiment checkpoint therefore stores this
    wrapper's bookkeeping (:meth:`get_state`) beside the wrapped searcher's own state (for
    ``OptunaSearch``: its Optuna study and sampler, pickled), and ``Tuner.restore`` — which
    unpickles this very object from the Tuner state — puts both back.
    """

    def __init__(self, searcher: Searcher, replicates: list[dict[str, Any]]):
        self.searcher = searcher
        self.replicates = [dict(r) for r in replicates]
        self.groups: dict[str, dict[str, Any]] = {}  # group id -> {params, members, results}
        self.trial_group: dict[str, str] = {}  # trial id -> group id
        self.open_group: str | None = None  # the group still handing out replicates
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict | str | None:
        group = self.groups.get(self.open_group) if self.open_group else None
        if group is None or len(group["members"]) == len(self.replicates):
            params = self.searcher.suggest(trial_id)
            if params is None or params == Searcher.FINISHED:
                return params
            group = {"params": dict(params), "members": [], "results": {}}
            self.groups[trial_id] = group
            self.open_group = trial_id
        index = len(group["members"])
        group["members"].append(trial_id)
        self.trial_group[trial_id] = self.open_group
        return {**group["params"], **self.replicates[index]}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        pass

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        group_id = self.trial_group.get(trial_id)
        if group_id is None:
            log.warning("trial %s completed but belongs to no replicate group", trial_id)
            return
        group = self.groups[group_id]
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        ok = result and not error and all(_finite(result.get(m)) for m in metrics)
        group["results"][trial_id] = {m: float(result[m]) for m in metrics} if ok else None
        if len(group["results"]) < len(self.replicates):
            return
        done = [r for r in group["results"].values() if r is not None]
        if not done:
            self.searcher.on_trial_complete(group_id, None, error=True)
            return
        self.searcher.on_trial_complete(group_id, result={m: sum(r[m] for r in done) / len(done) for m in metrics})

    def get_state(self) -> dict:
        state = self.__dict__.copy()
        del state["searcher"]
        return state

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
