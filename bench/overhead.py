"""Orchestrator overhead: N trials that each sleep S seconds, on 2 CPUs, 2 at a time — beside
plain Ray Tune running the same N sleeps in the same process.

The gnas path is the one a real study takes — spec → preflight → Tuner (actor reuse, FIFO,
checkpoints, retries armed) → Parquet store (compacted at the end) — with the toy trainable
(``steps: 1``, ``sleep_s: S``; its archs.parquet is ingested too). Plain Ray Tune is what a user
would write by hand: a function trainable that sleeps and reports once, a grid over N seeds,
``max_concurrent_trials=2``, ``reuse_actors=True``, Tune's default loggers. Ray is started once,
first, and not counted; the two run interleaved (ABBA order over ``--rounds``).

Prints, per run, the study's time, ``overhead ratio`` = study time ÷ ideal (N·S / 2) and where the
excess goes (until the first trial ran, between trials, after the last); then the median ratio of
each path (goal for gnas: ≤ 1.05). Then the time to the first trial of ``python -m orchestrator
run SPEC`` in a fresh process (``--first-trial``: from launching ``python`` to the first trial
running; goal ≤ 5 s), beside the same without the driver's background import of Ray Tune while
``ray.init`` runs, and its parts: Python and the orchestrator's imports, ``ray.init``, and from
there to the first trial.

    python bench/overhead.py [--trials 64] [--sleep 1.0] [--rounds 2] [--wandb] [--first-trial-runs 4]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SLOTS = 2
REPO = Path(__file__).resolve().parents[1]


def plain_tune(trials: int, sleep: float, root: str) -> tuple[float, list[tuple[float, float]], float]:
    """Plain Ray Tune: returns (study seconds, [(trial start, trial wall)], study start)."""
    from ray import tune

    def sleeper(config):
        started = time.time()
        time.sleep(config["sleep_s"])
        tune.report({"score": float(config["seed"]), "started_at": started, "slept_s": time.time() - started})

    tuner = tune.Tuner(
        sleeper,
        param_space={"seed": tune.grid_search(list(range(trials))), "sleep_s": sleep},
        tune_config=tune.TuneConfig(max_concurrent_trials=SLOTS, reuse_actors=True),
        run_config=tune.RunConfig(name="plain", storage_path=root, verbose=0),
    )
    start = time.time()
    grid = tuner.fit()
    seconds = time.time() - start
    frame = grid.get_dataframe()
    assert len(frame) == trials and not grid.errors, grid.errors
    return seconds, list(zip(frame["started_at"], frame["slept_s"])), start


def gnas(trials: int, sleep: float, root: str, wandb: bool) -> tuple[float, list[tuple[float, float]], float]:
    """The orchestrator's path: returns (study seconds, [(trial start, trial wall)], study start)."""
    from orchestrator.run import run_study
    from orchestrator.spec import StudySpec
    from orchestrator.store import Store

    spec = StudySpec.from_dict({
        "name": "overhead", "trainable": "toy", "metric": "top5_pct", "mode": "max",
        "config": {"steps": 1, "sleep_s": sleep},
        "seeds": list(range(trials)), "concurrency": SLOTS, "resources": {"cpu": 1},
        "storage": root, "wandb": {"enabled": wandb},
    })
    start = time.time()
    result = run_study(spec, verbose=0)
    seconds = time.time() - start
    rows = Store(root).read_pandas("trials")
    assert result.terminated == trials == len(rows), result.summary()
    return seconds, list(zip(rows["started_at"], rows["wall_s"])), start


def describe(label: str, seconds: float, spans: list[tuple[float, float]], start: float, trials: int,
             sleep: float) -> float:
    ideal = trials * sleep / SLOTS
    first = min(s for s, _ in spans)
    last = max(s + w for s, w in spans)
    between = (last - first) - ideal
    ratio = seconds / ideal
    print(f"{label:<16} {seconds:6.2f} s for {trials} x {sleep:g} s on {SLOTS} slots (ideal {ideal:.1f} s):"
          f" ratio {ratio:.3f}; {first - start:.2f} s until the first trial ran,"
          f" {between:.2f} s between trials ({1000 * between * SLOTS / trials:.0f} ms per trial),"
          f" {start + seconds - last:.2f} s after the last", flush=True)
    return ratio


def first_trial(root: str, runs: int) -> None:
    """Time from launching ``python`` (the orchestrator's command line) to its first trial running;
    beside it the same without the driver's background import of Tune during ``ray.init``
    (:func:`orchestrator.ray_session._import_in_background`), interleaved ABBA, each in a fresh process."""
    spec = Path(root, "first.yaml")
    spec.write_text(json.dumps({
        "name": "first", "trainable": "toy", "metric": "top5_pct", "mode": "max",
        "config": {"steps": 1}, "seeds": [0, 1], "concurrency": SLOTS, "resources": {"cpu": 1},
    }))
    from orchestrator.store import Store

    launch = "import sys; from orchestrator.cli import main; sys.exit(main(sys.argv[1:]))"
    variants = {"gnas": launch,
                "gnas, Tune imported after ray.init": "import orchestrator.ray_session as r;"
                " r._import_in_background = lambda modules: None; " + launch}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(runs):
        for label in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
            out = Path(root, f"first-{r}-{list(variants).index(label)}")
            launched = time.time()
            done = subprocess.run([sys.executable, "-c", variants[label], "run", str(spec), "--out", str(out),
                                   "--no-wandb", "--quiet"], cwd=REPO, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"error: the orchestrator failed:\n{done.stderr[-2000:]}")
            times[label].append(Store(out).read_pandas("trials")["started_at"].min() - launched)
    imports = _fresh_python("import orchestrator.cli, orchestrator.run, orchestrator.spec")
    ray_init = _fresh_python("import ray", f"ray.init(num_cpus={SLOTS}, include_dashboard=False, log_to_driver=False)")
    for label, values in times.items():
        print(f"time to first trial, {label}: {statistics.median(values):.2f} s (median of {runs};"
              f" {', '.join(f'{v:.2f}' for v in values)})")
    total = statistics.median(times["gnas"])
    print(f"time to first trial: {total:.2f} s (launching python -> first trial running; goal <= 5 s);"
          f" in fresh processes alike: python + the driver's imports {imports:.2f} s,"
          f" ray.init {ray_init:.2f} s, so {total - imports - ray_init:.2f} s from Ray up to the first trial")


def _fresh_python(setup: str, timed: str | None = None) -> float:
    """Seconds a fresh ``python`` takes to run ``setup`` (from launch), or only ``timed`` after it."""
    code = (f"import time; t = time.time(); {timed}; print(time.time() - t)" if timed
            else f"{setup}; import time; print(time.time())")
    launched = time.time()
    out = subprocess.run([sys.executable, "-c", f"{setup}; {code}" if timed else code], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.split()[-1]
    return float(out) if timed else float(out) - launched


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--trials", type=int, default=64)
    args.add_argument("--sleep", type=float, default=1.0)
    args.add_argument("--rounds", type=int, default=2, help="runs of each path, interleaved ABBA")
    args.add_argument("--wandb", action="store_true", help="track every gnas trial in W&B (offline)")
    args.add_argument("--first-trial-runs", type=int, default=4, help="fresh processes per time-to-first-trial variant"
                      " (0: skip)")
    opts = args.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("WANDB_MODE", "offline")
    with tempfile.TemporaryDirectory(prefix="overhead-") as root:
        if opts.first_trial_runs:  # first: fresh processes, with no Ray of this one running yet
            first_trial(root, opts.first_trial_runs)
        import ray

        ray.init(num_cpus=SLOTS, include_dashboard=False, log_to_driver=False)
        import ray.tune  # noqa: F401 - process set-up, like ray.init (see the module docstring)
        ratios: dict[str, list[float]] = {"plain Ray Tune": [], "gnas": []}
        for r in range(opts.rounds):
            order = ["plain Ray Tune", "gnas"] if r % 2 == 0 else ["gnas", "plain Ray Tune"]
            for label in order:
                folder = tempfile.mkdtemp(prefix=f"{label[:5]}-", dir=root)
                if label == "gnas":
                    seconds, spans, start = gnas(opts.trials, opts.sleep, folder, opts.wandb)
                else:
                    seconds, spans, start = plain_tune(opts.trials, opts.sleep, folder)
                ratios[label].append(describe(label, seconds, spans, start, opts.trials, opts.sleep))
        ray.shutdown()
    plain, ours = statistics.median(ratios["plain Ray Tune"]), statistics.median(ratios["gnas"])
    print(f"overhead ratio: {ours:.2f} (plain Ray Tune in the same run: {plain:.2f};"
          f" medians of {opts.rounds} runs each; goal <= 1.05)")


if __name__ == "__main__":
    main()
