"""Studies end to end on one shared Ray: grid, Optuna search, retries, fractional GPUs, W&B."""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from ray.tune import Callback

from orchestrator.run import run_study
from orchestrator.spec import Objective, Resources, SearchParam, WandbSpec
from orchestrator_helpers import archs, ray_address, toy_spec, trials  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("ray_address")

METRIC_KEYS = ("validity", "uniqueness", "novelty", "top1_pct", "top5_pct", "top10_pct",
               "heldout_hit_pct", "acc_mean", "acc_best", "queries", "loss/total")


@pytest.fixture(scope="module")
def grid_study(tmp_path_factory):
    """2 levels x 3 seeds, W&B on (offline), run once for the tests below."""
    root = tmp_path_factory.mktemp("grid")
    spec = toy_spec(root, "grid", config={"steps": 3, "n_archs": 4}, grid={"level": [0.0, 0.5]},
                    seeds=(0, 1, 2), query_budget=20, wandb=WandbSpec(project="gnas-tests"))
    return spec, run_study(spec, verbose=0)


def test_grid_times_seeds_runs_every_combination_once(grid_study):
    spec, result = grid_study
    rows = trials(Path(spec.storage), spec.name)
    assert (result.trials, result.terminated, result.errored) == (6, 6, 0)
    assert len(rows) == 6 and rows["trial_id"].is_unique
    assert sorted(zip(rows["config/level"], rows["seed"])) == [(lv, s) for lv in (0.0, 0.5) for s in (0, 1, 2)]
    groups = rows.groupby("config_id")["seed"].apply(sorted).tolist()
    assert groups == [[0, 1, 2], [0, 1, 2]]  # seeds of a config share its config_id
    assert (rows["config/query_budget"] == 20).all() and (rows["queries"] <= 20).all()
    assert set(METRIC_KEYS) <= set(rows.columns) and (rows["iteration"] == 3).all()
    assert (rows["status"] == "TERMINATED").all() and (rows["device"] == "cpu").all()
    assert (rows["gpu_fraction"] == 0).all() and (rows["wall_s"] > 0).all()
    assert rows["git_commit"].notna().all() and rows["version/ray"].notna().all()


def test_archs_of_every_trial_are_ingested(grid_study):
    spec, _ = grid_study
    table = archs(Path(spec.storage), spec.name)
    assert len(table) == 6 * 4
    assert table.groupby("trial_id").size().tolist() == [4] * 6
    rows = trials(Path(spec.storage), spec.name).set_index("trial_id")
    assert (table["config_id"] == rows.loc[table["trial_id"], "config_id"].values).all()
    assert (table["seed"] == rows.loc[table["trial_id"], "seed"].values).all()


def test_wandb_offline_run_per_trial_with_reported_metrics(grid_study):
    spec, _ = grid_study
    root = Path(spec.storage)
    rows = trials(root, spec.name)
    runs = {p.parent.name.split("-", 3)[-1]: p for p in (root / "wandb" / spec.name).glob("wandb/offline-run-*/run-*.wandb")}
    assert sorted(runs) == sorted(rows["wandb_id"])  # offline-run-<date>_<time>-<run id>
    for path in runs.values():
        data = path.read_bytes()
        assert all(key.encode() in data for key in ("top5_pct", "loss/total", "acc_best"))


def test_optuna_search_groups_seeds_and_follows_its_seeded_sampler(tmp_path):
    params = (SearchParam("w_adv", "float", 0.0, 1.0), SearchParam("noise", "float", 0.001, 0.5, log=True))
    spec = toy_spec(tmp_path, "search", config={"steps": 2}, grid={"level": [0.0, 0.5]}, seeds=(0, 1),
                    search=params, samples=3, search_seed=7)
    result = run_study(spec, verbose=0)
    rows = trials(tmp_path, spec.name)
    assert result.trials == len(rows) == 3 * 2 * 2 and rows["trial_id"].is_unique
    assert rows.groupby("config_id")["seed"].apply(sorted).tolist() == [[0, 1]] * 6
    suggested = rows.groupby(["config/w_adv", "config/noise"])
    assert suggested.ngroups == 3 and suggested.size().tolist() == [4] * 3  # each: 2 levels x 2 seeds
    assert {len(g) for _, g in suggested["config/level"].unique().items()} == {2}
    # the suggestions are TPE's (seeded): the same as asking a fresh TPESampler(seed=7)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=7), direction="maximize")
    expected = [study.ask({p.name: p.distribution() for p in params}).params for _ in range(3)]
    assert sorted(suggested.groups) == sorted((e["w_adv"], e["noise"]) for e in expected)


def test_multi_objective_search_uses_nsga2(tmp_path):
    spec = toy_spec(tmp_path, "pareto", config={"steps": 1}, search=(SearchParam("w_adv", "float", 0.0, 1.0),),
                    samples=3, objectives=(Objective("top5_pct", "max"), Objective("queries", "min")))
    result = run_study(spec, verbose=0)
    assert result.terminated == 3 and len(trials(tmp_path, spec.name)["config/w_adv"].unique()) == 3
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch()
    searcher.restore_from_dir(str(tmp_path / "tune" / spec.name))
    assert isinstance(searcher._ot_study.sampler, optuna.samplers.NSGAIISampler)
    assert len(searcher._ot_study.directions) == 2 and len(searcher._ot_study.trials) == 3


def test_a_trial_that_raises_once_is_retried_from_its_checkpoint(tmp_path):
    markers, trace = tmp_path / "markers", tmp_path / "trace"
    markers.mkdir(), trace.mkdir()
    spec = toy_spec(tmp_path, "retry", seeds=(0, 1), max_failures=1,
                    config={"steps": 3, "fail_at_step": 2, "marker_dir": str(markers), "trace_dir": str(trace)})
    result = run_study(spec, verbose=0)
    rows = trials(tmp_path, spec.name)
    assert (result.trials, result.terminated, result.errored) == (2, 2, 0)
    assert len(rows) == 2 and (rows["iteration"] == 3).all()
    assert len(list(markers.iterdir())) == 2  # every trial really failed once
    for log in trace.iterdir():  # ... and restarted from its step-1 checkpoint, not from scratch
        assert log.read_text().split("\n")[:4] == ["start 0", "step 1", "start 1", "step 2"]
    assert len(archs(tmp_path, spec.name)) == 2 * 8


def test_a_trial_failing_for_good_is_recorded_as_errored(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    spec = toy_spec(tmp_path, "broken", seeds=(0,), max_failures=0,
                    config={"steps": 2, "fail_at_step": 1, "marker_dir": str(markers)})
    result = run_study(spec, verbose=0)
    rows = trials(tmp_path, spec.name)
    assert (result.trials, result.errored) == (1, 1)
    assert rows["status"].tolist() == ["ERROR"] and "injected failure" in rows["error"].iloc[0]


class LiveTrials(Callback):
    """Counts the trials Tune runs at once (actors started and not yet finished)."""

    def __init__(self):
        self.live, self.most = 0, 0

    def on_trial_start(self, iteration, trials, trial, **info):
        self.live += 1
        self.most = max(self.most, self.live)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.live -= 1


def test_fractional_gpus_run_four_trials_at_once(tmp_path):
    import ray

    if ray.cluster_resources().get("GPU", 0) < 1:
        pytest.skip("the session's Ray was started without a (logical) GPU")
    # Each trial waits until all four have started (a rendezvous, not a sleep): they can only
    # finish if 4 x 0.25 GPU (and 4 x 0.5 CPU) run on the 1 GPU, 2 CPUs at once.
    config = {"steps": 2, "rendezvous_dir": str(tmp_path / "rendezvous"), "rendezvous_count": 4}
    spec = toy_spec(tmp_path, "gpu", seeds=(0, 1, 2, 3), config=config,
                    resources=Resources(cpu=0.5, gpu=0.25), concurrency=None)
    live = LiveTrials()
    result = run_study(spec, verbose=0, callbacks=[live])
    assert result.errored == 0 and live.most == 4
    rows = trials(tmp_path, spec.name)
    assert len(rows) == 4 and (rows["gpu_fraction"] == 0.25).all() and (rows["gpu_ids"] == "0").all()
    assert (rows["device"] == "cpu").all()  # the toy never touches torch, so it used no GPU
    assert rows["gpu_hours"].sum() == pytest.approx((rows["wall_s"] * 0.25).sum() / 3600)


def test_no_wandb_flag_writes_no_wandb_files(tmp_path):
    spec = toy_spec(tmp_path, "quiet", seeds=(0,), config={"steps": 1}, wandb=WandbSpec(project="x"))
    run_study(spec, wandb=False, verbose=0)
    assert not (tmp_path / "wandb").exists() and trials(tmp_path, "quiet")["wandb_id"].isna().all()


def test_variants_overlay_the_config_and_land_in_the_store(tmp_path):
    """Named config overlays run × seeds; the trainable never sees the variant's name (the toy
    rejects unknown keys), rows carry the overlay, and W&B runs share the study's group."""
    spec = toy_spec(tmp_path, "variants", config={"steps": 3, "n_archs": 4}, seeds=(0, 1),
                    variants={"low": {}, "high": {"level": 0.5, "steps": 2}},
                    wandb=WandbSpec(project="gnas-tests", group="my-published-study"))
    result = run_study(spec, verbose=0)
    rows = trials(tmp_path, "variants")
    assert (result.trials, result.errored) == (4, 0)
    by_variant = rows.groupby("config/variant")
    assert sorted(by_variant.groups) == ["high", "low"] and by_variant.size().tolist() == [2, 2]
    high = rows[rows["config/variant"] == "high"]
    assert (high["config/level"] == 0.5).all() and (high["iteration"] == 2).all()
    assert (rows.loc[rows["config/variant"] == "low", "iteration"] == 3).all()
    assert rows["config_id"].nunique() == 2
    runs = list((tmp_path / "wandb" / "variants").glob("wandb/offline-run-*/run-*.wandb"))
    assert len(runs) == 4 and all(b"my-published-study" in p.read_bytes() for p in runs)


def test_tunes_hints_about_short_driver_stalls_stay_off_the_terminal(caplog):
    import logging

    import ray.tune.utils.util as tune_util

    from orchestrator.ray_session import SLOW_HINT_S, TUNE_HINT_LOGGER, driver_env

    assert tune_util.logger.name == TUNE_HINT_LOGGER  # where warn_if_slow logs
    hint = "The `process_trial_result` operation took {:.3f} s, which may be a performance bottleneck."
    log = logging.getLogger(TUNE_HINT_LOGGER)
    with caplog.at_level(logging.WARNING):
        with driver_env():
            log.warning(hint.format(0.73))  # a busy machine: dropped
            log.warning(hint.format(SLOW_HINT_S + 1))  # a real stall: shown
            log.warning("something else")
        log.warning(hint.format(0.74))  # outside a study the filter is gone
    assert [r.getMessage() for r in caplog.records] == [hint.format(SLOW_HINT_S + 1), "something else",
                                                        hint.format(0.74)]
