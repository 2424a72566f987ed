"""A study whose driver is SIGKILLed resumes with --resume: exact rows, no reruns, Optuna intact."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from orchestrator.run import run_study
from orchestrator.spec import load_spec
from orchestrator.store import Store
from orchestrator_helpers import ray_address, trials  # noqa: F401 - fixture

SPEC = """
name: killed
trainable: toy
config: {{steps: 3, sleep_s: 0.4, trace_dir: {trace}}}
search:
  w_adv: {{type: float, low: 0.0, high: 1.0}}
seeds: [0, 1]
samples: 4
search_seed: 3
metric: top5_pct
mode: max
scheduler: fifo
concurrency: 2
storage: {store}
wandb: {{enabled: false}}
"""


def snapshot(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in directory.iterdir()}


def _run_and_kill(tmp_path: Path, spec_text: str, ray_address: str, at_least: int):
    """Start the study's driver as a subprocess, SIGKILL it once ``at_least`` trials are stored
    and the running ones have checkpointed, then resume it; the trace before and after."""
    trace, store = tmp_path / "trace", tmp_path / "store"
    trace.mkdir()
    spec_file = tmp_path / "killed.yaml"
    spec_file.write_text(spec_text.format(trace=trace, store=store))
    spec = load_spec(spec_file)
    # The driver saves Tune's experiment state on every loop (TUNE_GLOBAL_CHECKPOINT_S=0), so a
    # trial seen finished a moment before the kill is finished in the state the resume reads.
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "TUNE_GLOBAL_CHECKPOINT_S": "0"}
    with open(tmp_path / "driver.log", "w") as log:
        driver = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "run", str(spec_file), "--address", ray_address, "--quiet"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 600  # a fail-safe: the wait ends on an event
            while len(Store(store).trial_ids(spec.name)) < at_least:
                assert driver.poll() is None, (tmp_path / "driver.log").read_text()
                assert time.monotonic() < deadline, "the study made no progress"
                time.sleep(0.1)
            seen_finished = snapshot(trace)
            time.sleep(1.5)  # let the running trials checkpoint a step or two
        finally:
            driver.send_signal(signal.SIGKILL)
            driver.wait()
    at_kill = snapshot(trace)
    written_at_kill = Store(store).trial_ids(spec.name)
    assert at_least <= len(written_at_kill) < spec.num_trials, "kill the driver mid-way"
    result = run_study(spec, resume=True, verbose=0)
    return spec, result, store, seen_finished, at_kill, written_at_kill, snapshot(trace)


def _assert_resumed_exactly(spec, result, store, seen_finished, at_kill, written_at_kill, after) -> None:
    n = spec.num_trials
    rows = trials(store, spec.name)
    assert (result.trials, result.terminated) == (n, n)
    assert len(rows) == n and rows["trial_id"].is_unique and written_at_kill <= set(rows["trial_id"])
    assert rows.groupby("config_id")["seed"].apply(sorted).tolist() == [list(spec.seeds)] * (n // len(spec.seeds))
    finished = [name for name, text in seen_finished.items() if text.endswith("done\n")]
    assert finished and all(after[name] == seen_finished[name] for name in finished)  # not rerun
    for name, text in at_kill.items():  # unfinished: continued from a checkpoint, not from scratch
        steps = [int(line.split()[1]) for line in text.splitlines() if line.startswith("step")]
        if "done" not in text and steps and max(steps) >= 2:
            assert after[name][len(text):].startswith("start "), after[name]
            assert int(after[name][len(text):].split()[1]) >= 1
    assert len(after) == n and all(text.endswith("done\n") for text in after.values())


def test_killed_driver_resumes_exactly(tmp_path, ray_address):
    spec, result, store, *trace = _run_and_kill(tmp_path, SPEC, ray_address, at_least=3)
    _assert_resumed_exactly(spec, result, store, *trace)
    rows = trials(store, spec.name)

    # Optuna's state survived the restore: the 4 configs are exactly the seeded TPE sampler's
    # first 4 suggestions (a searcher restarted from scratch would repeat the first ones, and
    # Tune's old fallback to random search would not produce them at all) ...
    fresh = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3), direction="maximize")
    expected = sorted(fresh.ask({"w_adv": spec.search[0].distribution()}).params["w_adv"] for _ in range(4))
    assert sorted(rows["config/w_adv"].unique()) == pytest.approx(expected)
    # ... and the searcher state saved at the end holds one complete Optuna trial per config and
    # no orphan: a config asked after the last snapshot before the kill is failed, not RUNNING.
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch()
    searcher.restore_from_dir(str(store / "tune" / spec.name))
    states = [t.state for t in searcher._ot_study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 4
    assert set(states) <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL}


PARTS_SPEC = """
name: killed-parts
trainable: toy
config: {{steps: 3, sleep_s: 0.4, trace_dir: {trace}}}
grid: {{level: [0.0, 0.5, 1.0]}}
seeds: [0, 1]
trials_per_experiment: 2
metric: top5_pct
mode: max
concurrency: 2
storage: {store}
wandb: {{enabled: false}}
"""


def test_killed_driver_of_a_study_in_parts_resumes_exactly(tmp_path, ray_address):
    """A grid study run as three Tune experiments of 2 trials, killed after its first part: the
    finished parts are restored as finished, an interrupted one continues, the rest start."""
    spec, result, store, *trace = _run_and_kill(tmp_path, PARTS_SPEC, ray_address, at_least=3)
    _assert_resumed_exactly(spec, result, store, *trace)
    tune_dir = store / "tune" / spec.name
    assert sorted(p.name for p in tune_dir.iterdir() if p.is_dir()) == ["part-0000", "part-0001", "part-0002"]
    assert not list(tune_dir.glob("experiment_state-*.json"))  # no experiment of the whole study
    status = {s.study: s for s in Store(store).status()}[spec.name]
    assert (status.done, status.running, status.pending) == (6, 0, 0)
