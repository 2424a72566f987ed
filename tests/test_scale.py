"""What a 10,000-trial study relies on, at test size: the FIFO scheduler that looks only at live
trials, and a driver that forgets what no one reads about finished trials (bench/scale.py
measures the sizes)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from ray.tune import Callback
from ray.tune.experiment import Trial

from orchestrator import search
from orchestrator.fifo import LiveFIFOScheduler
from orchestrator.run import run_study
from orchestrator.spec import SchedulerSpec, SearchParam
from orchestrator.store import Store
from orchestrator_helpers import ray_address, toy_spec  # noqa: F401 - fixture


@dataclass(eq=False)  # hashable by identity, as Tune's trials are
class _Trial:
    trial_id: str
    status: str


def _trial(trial_id: str, status: str) -> _Trial:
    return _Trial(trial_id, status)


def test_live_fifo_picks_the_oldest_pending_then_paused_trial_among_live_ones_only():
    scheduler = LiveFIFOScheduler()
    trials = {i: _trial(i, Trial.PENDING) for i in ("a", "b", "c", "d")}
    live = set()
    controller = SimpleNamespace(get_live_trials=lambda: live,
                                 get_trials=lambda: (_ for _ in ()).throw(AssertionError("scanned every trial")))
    for t in trials.values():
        scheduler.on_trial_add(controller, t)
        live.add(t)
    assert scheduler.choose_trial_to_run(controller) is trials["a"]
    trials["a"].status = Trial.RUNNING
    trials["b"].status = Trial.PAUSED
    assert scheduler.choose_trial_to_run(controller) is trials["c"]  # pending before paused
    trials["c"].status = trials["d"].status = Trial.RUNNING
    assert scheduler.choose_trial_to_run(controller) is trials["b"]
    trials["b"].status = Trial.RUNNING
    assert scheduler.choose_trial_to_run(controller) is None
    trials["a"].status = Trial.TERMINATED
    scheduler.on_trial_complete(controller, trials["a"], {})
    live.discard(trials["a"])
    assert "a" not in scheduler._order  # nothing kept per finished trial
    restored = _trial("z", Trial.PENDING)  # restored without on_trial_add: counts as oldest
    live.add(restored)
    trials["d"].status = Trial.PENDING
    assert scheduler.choose_trial_to_run(controller) is restored


class _LastLook(Callback):
    """Records, at the experiment's end, what Tune still holds about each trial."""

    held: dict = {}

    def on_experiment_end(self, trials, **info):
        for t in trials:
            meta = t.run_metadata
            _LastLook.held[t.trial_id] = (dict(meta.metric_analysis), dict(meta.metric_n_steps), dict(t.last_result))


@pytest.mark.usefixtures("ray_address")
def test_finished_trials_keep_only_their_objectives_statistics(tmp_path):
    _LastLook.held.clear()
    spec = toy_spec(tmp_path, "trim", config={"steps": 3, "n_archs": 4}, seeds=(0, 1))
    result = run_study(spec, verbose=0, callbacks=[_LastLook()])
    assert result.terminated == 2 and len(_LastLook.held) == 2
    for analysis, steps, last in _LastLook.held.values():
        assert set(analysis) == {"top5_pct"} and set(analysis["top5_pct"]) >= {"max", "last", "last-5-avg"}
        assert set(steps) == {"top5_pct"}
        assert {"acc_mean", "uniqueness", "config"} <= set(last)  # the last result stays whole


def test_a_trimmed_trial_that_runs_again_goes_on_updating_its_statistics():
    from ray.tune.trainable.metadata import _TrainingRunMetadata

    from orchestrator.callbacks import trim_statistics

    meta = _TrainingRunMetadata()
    for step, value in enumerate((1.0, 3.0), start=1):
        meta.update_metric("top5_pct", value, step=step)
        meta.update_metric("loss", -value, step=step)
    trim_statistics(SimpleNamespace(run_metadata=meta), ["top5_pct"])
    assert set(meta.metric_analysis) == set(meta.metric_n_steps) == {"top5_pct"}
    # an errored trial resumed (--resume retries it): Tune updates every key again
    meta.update_metric("top5_pct", 5.0, step=3)
    meta.update_metric("loss", -5.0, step=3)
    assert meta.metric_analysis["top5_pct"]["max"] == 5.0
    assert meta.metric_analysis["top5_pct"]["last-5-avg"] == 3.0  # (1 + 3 + 5) / 3: the deque was kept
    assert meta.metric_analysis["loss"]["last"] == -5.0


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 7, 12, 29, 30, 1000])
def test_experiment_grids_hold_every_replicate_once_in_order_within_the_limit(tmp_path, limit):
    spec = toy_spec(tmp_path, "parts", variants={"a": {}, "b": {"noise": 0.2}}, grid={"level": [0.0, 0.5, 1.0]},
                    seeds=(0, 1, 2, 3, 4), trials_per_experiment=limit)
    grids = search.experiment_grids(spec)
    boxes = [[dict(zip(g, point)) for point in itertools.product(*g.values())] for g in grids]
    assert [r for box in boxes for r in box] == search.replicates(spec)  # each once, in replicate order
    assert all(1 <= len(box) <= limit for box in boxes)
    assert (len(grids) == 1) == (limit >= 30)  # 30 trials: one experiment when they fit
    assert all(list(g) == ["variant", "level", "seed"] for g in grids)


def test_a_study_that_searches_or_stops_early_is_one_experiment(tmp_path):
    searched = toy_spec(tmp_path, "s", search=(SearchParam("w_adv", "float", 0.0, 1.0),), samples=5,
                        seeds=(0, 1), trials_per_experiment=2)
    asha = toy_spec(tmp_path, "a", grid={"level": [0.0, 0.5, 1.0]}, seeds=(0, 1), trials_per_experiment=2,
                    scheduler=SchedulerSpec(kind="asha"))
    assert len(search.experiment_grids(searched)) == len(search.experiment_grids(asha)) == 1


@pytest.mark.usefixtures("ray_address")
def test_a_grid_larger_than_trials_per_experiment_runs_as_parts_into_one_study(tmp_path):
    spec = toy_spec(tmp_path, "parted", config={"steps": 1, "n_archs": 2}, grid={"level": [0.0, 1.0]},
                    seeds=(0, 1, 2), trials_per_experiment=4)
    result = run_study(spec, verbose=0)
    assert (result.trials, result.terminated) == (6, 6)
    rows = Store(tmp_path).read_pandas("trials", studies=["parted"])
    assert sorted(zip(rows["config/level"], rows["seed"])) == [(lv, s) for lv in (0.0, 1.0) for s in (0, 1, 2)]
    assert sorted(p.name for p in (tmp_path / "tune" / "parted").iterdir() if p.is_dir()) == ["part-0000",
                                                                                               "part-0001"]
    again = run_study(spec, resume=True, verbose=0)  # finished parts: restored, nothing reruns
    assert (again.trials, again.terminated) == (6, 6)
    assert set(Store(tmp_path).read_pandas("trials", studies=["parted"])["trial_id"]) == set(rows["trial_id"])
