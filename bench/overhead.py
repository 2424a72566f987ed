"""Orchestrator overhead: N trials that each sleep S seconds, on 2 CPUs, 2 at a time.

Runs through the path a real study takes — spec → preflight → Tuner (actor reuse, FIFO,
checkpoints, retries armed) → Parquet store — with the toy trainable (``steps: 1``,
``sleep_s: S``; its archs.parquet is ingested too). Ray is started first and not counted,
nor is loading the Ray Tune library into this process (``import ray.tune``, ~1.3 s here): both
are paid once per process, not per study; the time-to-first-trial line includes them.

Prints the time from process start to the first trial running, the study's time,
``overhead ratio: X.XX`` = study time ÷ ideal (N·S / 2; goal ≤ 1.10), and where the excess
goes: until the first trial runs (Tune's actor start-up), between trials, after the last.

    python bench/overhead.py [--trials 64] [--sleep 1.0] [--wandb]
"""
from __future__ import annotations

import time

BENCH_IMPORTED = time.time()

import argparse  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

SLOTS = 2


def process_start() -> float:
    """Wall-clock time this process started (Linux ``/proc``; else when this module loaded)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return BENCH_IMPORTED


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--trials", type=int, default=64)
    args.add_argument("--sleep", type=float, default=1.0)
    args.add_argument("--wandb", action="store_true", help="track every trial in W&B (offline)")
    opts = args.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    import ray

    from orchestrator.run import run_study
    from orchestrator.spec import StudySpec
    from orchestrator.store import Store

    ray.init(num_cpus=SLOTS, include_dashboard=False)
    import ray.tune  # noqa: F401 - process set-up, like ray.init (see the module docstring)
    with tempfile.TemporaryDirectory(prefix="overhead-") as root:
        spec = StudySpec.from_dict({
            "name": "overhead", "trainable": "toy", "metric": "top5_pct", "mode": "max",
            "config": {"steps": 1, "sleep_s": opts.sleep},
            "seeds": list(range(opts.trials)), "concurrency": SLOTS, "resources": {"cpu": 1},
            "storage": root, "wandb": {"enabled": opts.wandb},
        })
        start = time.time()
        result = run_study(spec, verbose=0)
        end = time.time()
        rows = Store(Path(root)).read_pandas("trials")
    ray.shutdown()

    assert result.terminated == opts.trials == len(rows), result.summary()
    ideal = opts.trials * opts.sleep / SLOTS
    first, last = rows["started_at"].min(), (rows["started_at"] + rows["wall_s"]).max()
    between = (last - first) - ideal
    print(f"time to first trial: {first - process_start():.2f} s (process start -> first trial running)")
    print(f"study: {end - start:.2f} s for {opts.trials} trials x {opts.sleep:g} s on {SLOTS} slots"
          f" (ideal {ideal:.1f} s): {first - start:.2f} s until the first trial ran,"
          f" {between:.2f} s between trials ({1000 * between * SLOTS / opts.trials:.0f} ms per trial),"
          f" {end - last:.2f} s after the last")
    print(f"overhead ratio: {(end - start) / ideal:.2f}")


if __name__ == "__main__":
    main()
