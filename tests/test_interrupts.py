"""A study stopped by Ctrl-C, SIGTERM or a second Ctrl-C stores only what ran; --resume completes
exactly the rest (the SIGKILL path: tests/test_orchestrator_resume.py).

Every interruption happens at a known point, whatever the machine's load: the toy's "held"
trials wait before their second step while a hold file exists, so when the test signals, the
three "free" trials have finished, two held ones are mid-run and one has not started.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ray.tune import Callback

from orchestrator.run import StudyInterrupted, run_study
from orchestrator.spec import load_spec
from orchestrator.store import Store
from orchestrator_helpers import ray_address, trials  # noqa: F401 - fixture

SPEC = """
name: stopped
trainable: toy
config: {{steps: 3, trace_dir: {trace}, hold_dir: {hold}}}
variants:
  free: {{}}
  held: {{hold_at_step: 2}}
seeds: [0, 1, 2]
metric: top5_pct
mode: max
concurrency: 2
storage: {store}
wandb: {{enabled: false}}
{extra}
"""
DEADLINE_S = 600  # a fail-safe only: every wait below ends on an event


def _setup(tmp_path: Path, extra: str = ""):
    trace, hold, store = tmp_path / "trace", tmp_path / "hold", tmp_path / "store"
    trace.mkdir()
    hold.mkdir()
    (hold / "hold").touch()
    spec_file = tmp_path / "stopped.yaml"
    spec_file.write_text(SPEC.format(trace=trace, hold=hold, store=store, extra=extra))
    return load_spec(spec_file), spec_file, trace, hold, store


def _traces(trace: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in trace.iterdir()}


def _wait_for(condition, what: str, driver: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert driver is None or driver.poll() is None, f"the driver ended before {what}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def _held_point(trace: Path) -> bool:
    """Three trials finished and two held mid-run (the sixth cannot start: two slots)."""
    texts = _traces(trace).values()
    return sum(t.endswith("done\n") for t in texts) == 3 and sum("held" in t for t in texts) == 2


def _assert_only_what_ran(store: Path, study: str, stored_interrupted: bool) -> None:
    rows = trials(store, study)
    finished = rows[rows["status"] == "TERMINATED"]
    assert len(finished) == 3 and all(math.isfinite(v) for v in finished["top5_pct"])
    assert set(finished["config/variant"]) == {"free"} and (finished["iteration"] == 3).all()
    stopped = rows[rows["status"] != "TERMINATED"]
    if stored_interrupted:  # Tune stopped them: rows with the iteration they reached
        assert sorted(stopped["status"]) == ["INTERRUPTED"] * 2 and (stopped["iteration"] == 1).all()
    assert set(stopped["status"]) <= {"INTERRUPTED"}
    status = {s.study: s for s in Store(store).status()}[study]
    assert (status.done, status.errored, status.running, status.interrupted, status.pending) == (3, 0, 0, 2, 1)


def _assert_resumed_exactly(spec, store: Path, trace: Path, before: dict[str, str], forced: bool = False) -> None:
    """``forced``: the driver was stopped at once (a second Ctrl-C skips Tune's last save, as a
    SIGKILL does), so Tune resumes from the last state it had saved: a held trial continues from
    its step-1 checkpoint or the start, and a trial that finished after that save runs its last
    steps again from its checkpoint — to the same row (same seed, same result), never a second
    row. (A graceful stop saves first: nothing finished reruns.)"""
    stored = trials(store, spec.name).set_index("trial_id")
    result = run_study(spec, resume=True, verbose=0)
    rows = trials(store, spec.name)
    assert (result.trials, result.terminated, result.interrupted) == (6, 6, 0)
    assert len(rows) == 6 and rows["trial_id"].is_unique and (rows["status"] == "TERMINATED").all()
    assert all(math.isfinite(v) for v in rows["top5_pct"])
    after = _traces(trace)
    assert len(after) == 6 and all(t.endswith("done\n") for t in after.values())
    for name, text in before.items():
        if text.endswith("done\n") and not forced:
            assert after[name] == text  # finished: not rerun
        elif text.endswith("done\n"):  # rerun at most from a checkpoint, to the same end
            assert after[name] == text or after[name][len(text):].startswith("start "), after[name]
        else:  # held at step 2: continued from its step-1 checkpoint, not from scratch
            starts = ("start 1\n", "start 0\n") if forced else ("start 1\n",)
            assert after[name][len(text):].startswith(starts), after[name]
    finished_before = stored[stored["status"] == "TERMINATED"]
    again = rows.set_index("trial_id").loc[finished_before.index]
    assert (again["top5_pct"] == finished_before["top5_pct"]).all()  # a finished row never changes
    status = {s.study: s for s in Store(store).status()}[spec.name]
    assert (status.done, status.running, status.interrupted, status.pending, status.finished) == (6, 0, 0, 0, True)


def _stop_driver(spec_file: Path, ray_address: str, log: Path, ready, signals) -> tuple[int, dict[str, str]]:
    """Run ``gnas run SPEC`` as a user would; once ``ready()``, send ``signals`` one by one (each
    after the driver took the last: its "stopping the study" line); (exit status, traces then)."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        driver = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", str(spec_file), "--address",
                                   ray_address, "--quiet"], cwd=spec_file.parent, env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        _wait_for(ready, "the moment to stop", driver)
        before = _traces(spec_file.parent / "trace")
        for k, sig in enumerate(signals):
            if k:
                _wait_for(lambda: "stopping the study" in log.read_text(), "the first signal taken", driver)
            driver.send_signal(sig)
        return driver.wait(timeout=DEADLINE_S), before
    finally:
        if driver.poll() is None:
            driver.kill()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_gnas_run_stopped_mid_study_stores_only_what_ran_and_resumes_exactly(tmp_path, ray_address, sig):
    spec, spec_file, trace, hold, store = _setup(tmp_path)
    log = tmp_path / "driver.log"
    code, before = _stop_driver(spec_file, ray_address, log, lambda: _held_point(trace), [sig])
    out = log.read_text()
    assert code == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], out
    last = out.strip().splitlines()[-1]
    assert last.startswith("interrupted: study stopped") and "3 of 6 trials finished" in last, out
    assert last.endswith(f"resume with: gnas run {spec_file} --resume"), out
    assert "Traceback" not in out, out
    _assert_only_what_ran(store, spec.name, stored_interrupted=True)
    (hold / "hold").unlink()
    _assert_resumed_exactly(spec, store, trace, before)


def test_a_second_ctrl_c_stops_at_once_and_still_resumes_exactly(tmp_path, ray_address):
    spec, spec_file, trace, hold, store = _setup(tmp_path)
    log = tmp_path / "driver.log"
    code, before = _stop_driver(spec_file, ray_address, log, lambda: _held_point(trace),
                                [signal.SIGINT, signal.SIGINT])
    out = log.read_text()
    assert code == 130 and "resume with: gnas run" in out.strip().splitlines()[-1], out
    _assert_only_what_ran(store, spec.name, stored_interrupted=False)  # rows if Tune got that far
    (hold / "hold").unlink()
    _assert_resumed_exactly(spec, store, trace, before, forced=True)


def test_gnas_run_stopped_before_any_trial_finished_resumes_exactly(tmp_path, ray_address):
    spec, spec_file, trace, hold, store = _setup(tmp_path)
    log = tmp_path / "driver.log"
    # the driver announces itself just before Tune starts the first trial
    code, _ = _stop_driver(spec_file, ray_address, log,
                           lambda: (store / "tune" / spec.name / "driver.json").is_file(), [signal.SIGTERM])
    assert code == 143, log.read_text()
    rows = trials(store, spec.name) if Store(store).has_study(spec.name) else None
    if rows is not None:  # whatever is stored as finished really finished
        finished = rows[rows["status"] == "TERMINATED"]
        assert all(math.isfinite(v) for v in finished["top5_pct"]) and (finished["iteration"] == 3).all()
    (hold / "hold").unlink()
    result = run_study(spec, resume=True, verbose=0)
    rows = trials(store, spec.name)
    assert (result.trials, result.terminated) == (6, 6) and rows["trial_id"].is_unique
    assert all(t.endswith("done\n") for t in _traces(trace).values()) and len(_traces(trace)) == 6


class _SignalAtFirstExperimentEnd(Callback):
    """Sends the driver ``sig`` as its first Tune experiment (part) ends: between two parts.
    Once only, across the resume too (Tune restores a pickled copy of this callback)."""

    def __init__(self, sig: int, sent: Path) -> None:
        self.sig, self.sent = sig, sent

    def on_experiment_end(self, trials, **info) -> None:
        if not self.sent.exists():
            self.sent.touch()
            os.kill(os.getpid(), self.sig)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_study_in_parts_stopped_between_parts_starts_no_next_part(tmp_path, ray_address, sig):
    spec, spec_file, trace, hold, store = _setup(tmp_path, extra="trials_per_experiment: 3")
    (hold / "hold").unlink()  # nothing held: the stop comes between the parts
    with pytest.raises(StudyInterrupted) as stop:
        run_study(spec, verbose=0, callbacks=[_SignalAtFirstExperimentEnd(sig, tmp_path / "sent")])
    assert stop.value.signal_name == signal.Signals(sig).name and stop.value.finished == 3
    tune = store / "tune" / spec.name
    assert not list((tune / "part-0001").glob("toy_*")) if (tune / "part-0001").exists() else True
    rows = trials(store, spec.name)
    assert len(rows) == 3 and (rows["status"] == "TERMINATED").all()
    status = {s.study: s for s in Store(store).status()}[spec.name]
    assert (status.done, status.running, status.interrupted, status.pending) == (3, 0, 0, 3)
    before = _traces(trace)
    result = run_study(spec, resume=True, verbose=0)
    assert (result.trials, result.terminated) == (6, 6) and trials(store, spec.name)["trial_id"].is_unique
    after = _traces(trace)
    assert all(after[name] == text for name, text in before.items()) and len(after) == 6


def test_a_finished_search_fails_the_configs_its_stopped_driver_asked_and_never_told(tmp_path):
    """The Optuna journal is live while Tune's searcher state is a snapshot: a config asked after
    the last snapshot stays RUNNING in the journal forever unless the finished study fails it."""
    import optuna

    from orchestrator.search import optuna_storage, settle_searcher
    from orchestrator.spec import StudySpec

    spec = StudySpec.from_dict({"name": "searched", "trainable": "toy", "metric": "top5_pct", "mode": "max",
                                "search": {"w_adv": {"type": "float", "low": 0.0, "high": 1.0}},
                                "samples": 2, "seeds": [0], "storage": str(tmp_path), "wandb": {"enabled": False}})
    study = optuna.create_study(study_name=spec.name, storage=optuna_storage(spec), direction="maximize")
    told = study.ask()
    study.tell(told, 0.5)
    study.ask()  # the orphan
    assert settle_searcher(spec) == 1
    states = [t.state for t in optuna.load_study(study_name=spec.name, storage=optuna_storage(spec)).trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]
    assert settle_searcher(spec) == 0  # nothing left to settle


def test_gnas_study_stopped_mid_study_reports_unfinished_then_resumes_exactly(tmp_path, ray_address):
    """The published-study path: SIGTERM once a trial is stored; no fabricated rows; the report
    of the stopped study says it is unfinished in its first line; --resume completes it."""
    out = tmp_path / "store"
    argv = ["study", "degradation", "--preset", "smoke", "--kinds", "holdout_top", "--trainables", "graphpnas",
            "--no-wandb", "--quiet", "--out", str(out), "--address", ray_address]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "WANDB_MODE": "offline"}
    log = tmp_path / "study.log"
    with log.open("w") as sink:
        driver = subprocess.Popen([sys.executable, "-m", "orchestrator", *argv], cwd=tmp_path, env=env,
                                  stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: any(s.done for s in Store(out).status()) if (out / "trials").exists() else False,
                  "a finished trial in the store", driver)
        driver.send_signal(signal.SIGTERM)
        code = driver.wait(timeout=DEADLINE_S)
    finally:
        if driver.poll() is None:
            driver.kill()
    text = log.read_text()
    last = text.strip().splitlines()[-1]
    assert code == 143 and last.startswith("interrupted: study degradation-smoke-nbgraph-"), text
    assert last.endswith("resume with: gnas study degradation " + " ".join(argv[2:]) + " --resume"), last
    rows = Store(out).read_pandas("trials")
    finished = rows[rows["status"] == "TERMINATED"]
    assert len(finished) < 10 and all(math.isfinite(v) for v in finished["top5_pct"])
    assert set(rows["status"]) <= {"TERMINATED", "INTERRUPTED"}

    env_argv = [sys.executable, "-m", "orchestrator"]
    rebuilt = subprocess.run([*env_argv, "report", "degradation-smoke-nbgraph", "--out", str(out), "--no-wandb"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=DEADLINE_S)
    assert rebuilt.returncode == 0, rebuilt.stderr
    report = (out / "studies" / "degradation-smoke-nbgraph" / "report.md").read_text()
    assert report.startswith(f"> **Unfinished study:** {len(finished)} of "), report[:300]

    resumed = subprocess.run([*env_argv, *argv, "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=DEADLINE_S)
    assert resumed.returncode == 0, resumed.stderr
    rows = Store(out).read_pandas("trials")
    assert len(rows) == 10 and rows["trial_id"].is_unique and (rows["status"] == "TERMINATED").all()
    assert set(finished["trial_id"]) <= set(rows["trial_id"])
    report = (out / "studies" / "degradation-smoke-nbgraph" / "report.md").read_text()
    assert not report.startswith(">") and "Unfinished" not in report


@pytest.mark.parametrize("tamper", ["other owner", "group writable", "symlink"])
def test_resume_refuses_tune_state_another_user_could_have_written(tmp_path, ray_address, monkeypatch, tamper):
    """Resuming unpickles Tune's state: a state file someone else could have written is refused."""
    from orchestrator.run import preflight
    from orchestrator.spec import SpecError

    spec, spec_file, trace, hold, store = _setup(tmp_path)
    (hold / "hold").unlink()
    run_study(spec, verbose=0)
    state = store / "tune" / spec.name / "tuner.pkl"
    if tamper == "other owner":
        os.chown(state, 12345, -1) if os.getuid() == 0 else pytest.skip("changing a file's owner needs root")
    elif tamper == "group writable":
        state.chmod(0o664)
    else:
        state.rename(state.with_name("elsewhere.pkl"))
        state.symlink_to(state.with_name("elsewhere.pkl"))
    with pytest.raises(SpecError, match="cannot resume from .*tuner.pkl: it .* unpickles Tune's state"):
        preflight(spec, resume=True)
    monkeypatch.setenv("GNAS_TRUST_STORE", "1")  # the user vouches for it
    assert preflight(spec, resume=True).resuming
