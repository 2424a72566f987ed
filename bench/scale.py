"""A 10,000-trial study on this machine: does it finish, does the driver's memory stay bounded,
how fast do the store and the report read it back.

The study is the real path (spec → preflight → Ray Tune → StoreCallback → Parquet store) with the
toy trainable at one step per trial (a few milliseconds of work, a checkpoint, 8 archs rows),
4 variants × 5 noise levels × 5 degradation levels × N/100 seeds. While it runs, a thread samples
the driver's resident memory (RSS) and the trials finished so far, every second.

Prints, each on its own line:

* the study's wall time, trials per second and driver milliseconds per trial;
* driver RSS: at the first finished trial, peak, and the slope of RSS against trials finished
  over the second half of the study (MB per 1,000 trials: ~0 means bounded), plus the curve;
* the store: files per table after the study (compacted), the time to read every trial and every
  arch, and ``Store.status()``, beside the same reads of a per-trial-file copy of the store
  (the layout before compaction: one file per trial per table) made in this process;
* the time to build the study's report (mean and 95 % CI over seeds per variant and level, a
  figure and a Markdown file) from the store.

    python bench/scale.py [--trials 10000] [--slots 2] [--out DIR] [--keep]
    python bench/scale.py --trials 500 --tune-knobs     # what Tune's knobs cost per trial
    python bench/scale.py --trials 2000 --study-only [--no-trim]   # driver memory with/without trimming
    python bench/scale.py --trials 10000 --study-only --trials-per-experiment 100000   # as one Tune experiment

``--tune-knobs`` runs the study several times (baseline, then one Tune setting changed each time,
interleaved) and prints the driver time per trial of each: Tune's experiment-state snapshot
period (``TUNE_GLOBAL_CHECKPOINT_S``), its result buffering (``TUNE_RESULT_BUFFER_LENGTH``),
the JSON/CSV loggers, and actor reuse.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

VARIANTS = {"v-low": {"w_adv": 0.2}, "v-mid": {"w_adv": 0.3}, "v-high": {"w_adv": 0.5}, "v-far": {"w_adv": 0.8}}
GRID = {"noise": [0.0, 0.05, 0.1, 0.2, 0.4], "level": [0.0, 0.25, 0.5, 0.75, 1.0]}
CONDITIONS = len(VARIANTS) * len(GRID["noise"]) * len(GRID["level"])  # 100


def study_spec(name: str, trials: int, slots: int, root: str, per_experiment: int | None = None):
    from orchestrator.spec import StudySpec

    if trials % CONDITIONS:
        raise SystemExit(f"error: --trials must be a multiple of {CONDITIONS} (variants x grid)")
    return StudySpec.from_dict({
        "name": name, "trainable": "toy", "metric": "top5_pct", "mode": "max",
        "config": {"steps": 1, "n_archs": 8}, "variants": VARIANTS, "grid": GRID,
        "seeds": list(range(trials // CONDITIONS)), "concurrency": slots, "resources": {"cpu": 1},
        "storage": root, "wandb": {"enabled": False},
        **({"trials_per_experiment": per_experiment} if per_experiment else {}),
    })


class Sampler:
    """Samples this process's RSS and the finished-trial count every ``period`` seconds."""

    def __init__(self, period: float = 1.0) -> None:
        import psutil

        self.process = psutil.Process()
        self.period = period
        self.done = 0
        self.samples: list[tuple[float, float, int]] = []  # (seconds, RSS MB, trials finished)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.samples.append((time.perf_counter() - self._start,
                                 self.process.memory_info().rss / 2**20, self.done))

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def counting_callback(sampler: Sampler):
    from ray.tune import Callback

    class TrialsFinished(Callback):
        def __init__(self, sampler: Sampler) -> None:
            self.sampler = sampler

        def __getstate__(self):  # Tune pickles its callbacks into the experiment state
            return {"sampler": None}

        def on_trial_complete(self, iteration, trials, trial, **info):
            if self.sampler is not None:
                self.sampler.done += 1

        on_trial_error = on_trial_complete

    return TrialsFinished(sampler)


def rss_figures(samples: list[tuple[float, float, int]], trials: int) -> list[str]:
    import numpy as np

    started = [s for s in samples if s[2] > 0]
    if len(started) < 4:
        return ["driver RSS: too few samples"]
    rss = np.array([s[1] for s in started])
    done = np.array([s[2] for s in started], dtype=float)
    half = done >= done.max() / 2
    slope = np.polyfit(done[half], rss[half], 1)[0] * 1000 if np.ptp(done[half]) > 0 else float("nan")
    first_half = np.polyfit(done[~half], rss[~half], 1)[0] * 1000 if np.ptp(done[~half]) > 0 else float("nan")
    curve = []
    for q in (0.1, 0.25, 0.5, 0.75, 1.0):
        i = int(np.searchsorted(done, q * done.max()))
        i = min(i, len(done) - 1)
        curve.append(f"{int(done[i])}: {rss[i]:.0f}")
    return [f"driver RSS: {rss[0]:.0f} MB at the first finished trial, peak {rss.max():.0f} MB;"
            f" slope {first_half:+.1f} MB per 1,000 trials over the first half, {slope:+.1f} over the second",
            f"driver RSS curve (trials finished: MB): {', '.join(curve)}"]


def _best_of(fn, repeats: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def per_trial_copy(root: str, copy: str) -> None:
    """``copy``: the store at ``root`` laid out as before compaction (one file per trial per table)."""
    import pyarrow.compute as pc

    from orchestrator.layout import TABLES
    from orchestrator.store import Store

    import pyarrow.parquet as pq

    store = Store(root)
    for table in TABLES:
        rows = store.read(table)
        for study, trainable in {(r["study"], r["trainable"]) for r in rows.select(["study", "trainable"]).to_pylist()}:
            mine = rows.filter(pc.and_(pc.equal(rows["study"], study), pc.equal(rows["trainable"], trainable)))
            mine = mine.drop_columns(["study", "trainable"])
            folder = Path(Store(copy).partition(table, study, trainable))
            folder.mkdir(parents=True, exist_ok=True)
            ids = mine.column("trial_id")
            for trial_id in ids.unique().to_pylist():
                pq.write_table(mine.filter(pc.equal(ids, trial_id)), folder / f"{trial_id}.parquet")


def store_figures(root: str, study: str) -> list[str]:
    from orchestrator.layout import TABLES
    from orchestrator.store import Store

    lines = []
    store = Store(root)
    files = {t: len(list(Path(root, t).rglob("*.parquet"))) for t in TABLES}
    with tempfile.TemporaryDirectory(prefix="scale-per-trial-") as copy:
        t = time.perf_counter()
        per_trial_copy(root, copy)
        made = time.perf_counter() - t
        before = Store(copy)
        before_files = {t: len(list(Path(copy, t).rglob("*.parquet"))) for t in TABLES}
        for label, s, counts, repeats in (("per-trial files (before compaction)", before, before_files, 1),
                                          ("compacted (this store)", store, files, 3)):
            read_trials, rows = _best_of(lambda s=s: s.read("trials"), repeats)
            read_archs, archs = _best_of(lambda s=s: s.read("archs"), repeats)
            status_s, status = _best_of(lambda s=s: s.status(), repeats)
            lines.append(f"store, {label}: {counts['trials']:,} trials files + {counts['archs']:,} archs files;"
                         f" read every trial {read_trials:.2f} s ({rows.num_rows:,} rows),"
                         f" every arch {read_archs:.2f} s ({archs.num_rows:,} rows), status() {status_s:.2f} s"
                         f" ({'one read' if repeats == 1 else f'best of {repeats}'})")
        lines.append(f"(the per-trial copy took {made:.1f} s to write)")
    cold = subprocess.run([sys.executable, "-c", "import time; t = time.time(); from orchestrator.store import Store;"
                           f" Store({root!r}).status(); print(time.time() - t)"],
                          capture_output=True, text=True, check=True).stdout.split()[-1]
    lines.append(f"status() in a fresh process (imports included, as gnas status): {float(cold):.2f} s")
    status = [s for s in Store(root).status() if s.study == study][0]
    lines.append(f"status: {status}")
    return lines


def build_report(root: str, study: str, folder: Path) -> tuple[float, Path]:
    from orchestrator.store import Store
    from studies import kit, plots

    t = time.perf_counter()
    frame = Store(root).read_pandas("trials", studies=[study])
    frame = frame[frame["status"] == "TERMINATED"]
    frame = frame[frame["config/noise"] == 0.05].copy()  # one noise level: a line per variant
    frame["method"] = frame["config/variant"].astype(str)
    frame["top5_pct"] = frame["top5_pct"] / 100.0  # the studies' statistics take top-k as a share
    summary = kit.summarise(frame, by=["method", "config/level"], metrics=["top5_pct", "acc_mean"])
    report = kit.Report(folder)
    report.add(f"# Scale study {study}", "", f"{len(frame):,} trials at noise 0.05 of the study, mean and 95 % CI"
               " over seeds per variant and degradation level.", "")
    csv = report.table("summary", summary)
    png = report.figure("top5", plots.curves(
        summary, [plots.Panel("top5_pct", "top-5 % (toy)", "top-5 %", scale=100.0),
                  plots.Panel("acc_mean", "mean accuracy (toy)", "accuracy")],
        x="config/level", xlabel="degradation level", title=f"{study}: toy trainable, {len(frame):,} trials"))
    report.add(f"![top-5]({png})", "", f"Table: [{csv}]({csv})")
    path = report.write()
    return time.perf_counter() - t, path


TRIM_FINISHED = True  # --no-trim: keep every finished trial's Tune statistics (run_study's trim_finished)


def run_once(trials: int, slots: int, root: str, name: str, env: dict[str, str] | None = None,
             reuse_actors: bool = True, per_experiment: int | None = None):
    """Run the scale study once; returns (seconds, sampler)."""
    from orchestrator import run as runner

    previous = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    original_tuner = runner._tuner
    if not reuse_actors:
        def tuner_without_reuse(*args, **kwargs):
            tuner, store_callback = original_tuner(*args, **kwargs)
            tuner._local_tuner._tune_config.reuse_actors = False
            return tuner, store_callback
        runner._tuner = tuner_without_reuse
    try:
        with Sampler() as sampler:
            t = time.perf_counter()
            result = runner.run_study(study_spec(name, trials, slots, root, per_experiment), verbose=0,
                                      trim_finished=TRIM_FINISHED,
                                      callbacks=[counting_callback(sampler)])
            seconds = time.perf_counter() - t
    finally:
        runner._tuner = original_tuner
        for k, v in previous.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    assert result.terminated == trials, result.summary()
    return seconds, sampler


def tune_knobs(trials: int, slots: int, rounds: int) -> None:
    """Driver time per trial with one Tune setting changed at a time, interleaved with the baseline."""
    knobs = {
        "baseline (run_study as is)": ({}, True),
        "TUNE_GLOBAL_CHECKPOINT_S=60": ({"TUNE_GLOBAL_CHECKPOINT_S": "60"}, True),
        "TUNE_RESULT_BUFFER_LENGTH=16": ({"TUNE_RESULT_BUFFER_LENGTH": "16"}, True),
        "reuse_actors=False": ({}, False),
    }
    per_trial: dict[str, list[float]] = {k: [] for k in knobs}
    for r in range(rounds):
        for label, (env, reuse) in knobs.items():
            with tempfile.TemporaryDirectory(prefix="scale-knob-") as root:
                seconds, _ = run_once(trials, slots, root, f"knob{r}", env, reuse)
            per_trial[label].append(1000 * seconds / trials)
            print(f"  round {r + 1} {label}: {seconds:.1f} s, {per_trial[label][-1]:.1f} ms/trial", flush=True)
    for label, values in per_trial.items():
        print(f"tune knob {label}: {statistics.median(values):.1f} ms per trial (median of {rounds} runs of"
              f" {trials} trials; {', '.join(f'{v:.1f}' for v in values)})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=10_000)
    p.add_argument("--slots", type=int, default=2, help="CPUs given to Ray (one trial per CPU)")
    p.add_argument("--out", help="store root (default: a temporary folder, removed unless --keep)")
    p.add_argument("--keep", action="store_true", help="keep the store and the report")
    p.add_argument("--tune-knobs", action="store_true", help="measure Tune's knobs instead (see the docstring)")
    p.add_argument("--rounds", type=int, default=2, help="runs per knob with --tune-knobs")
    p.add_argument("--no-trim", action="store_true",
                   help="keep Tune's statistics of finished trials (the driver before TrimFinishedTrials)")
    p.add_argument("--study-only", action="store_true", help="the study and its RSS figures; no store or report")
    p.add_argument("--trials-per-experiment", type=int, default=None,
                   help="the spec's trials_per_experiment (default: the spec's default; 100000: one Tune experiment)")
    args = p.parse_args()
    global TRIM_FINISHED
    TRIM_FINISHED = not args.no_trim
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("WANDB_MODE", "offline")
    import ray

    ray.init(num_cpus=args.slots, include_dashboard=False, log_to_driver=False)
    if args.tune_knobs:
        tune_knobs(args.trials, args.slots, args.rounds)
        return
    root = args.out or tempfile.mkdtemp(prefix="scale-")
    try:
        name = f"scale{args.trials}"
        spec = study_spec(name, args.trials, args.slots, root, args.trials_per_experiment)
        from orchestrator.search import experiment_grids

        seconds, sampler = run_once(args.trials, args.slots, root, name, per_experiment=args.trials_per_experiment)
        print(f"study: {args.trials:,} trials in {seconds:.0f} s ({args.trials / seconds:.1f} trials/s,"
              f" {1000 * seconds / args.trials:.1f} ms per trial on {args.slots} slots), as"
              f" {len(experiment_grids(spec))} Tune experiment(s) of at most {spec.trials_per_experiment:,} trials",
              flush=True)
        for line in rss_figures(sampler.samples, args.trials):
            print(line, flush=True)
        ray.shutdown()
        if args.study_only:
            return
        for line in store_figures(root, name):
            print(line, flush=True)
        report_s, path = build_report(root, name, Path(root) / "report")
        print(f"report: built in {report_s:.2f} s from the store ({path})")
    finally:
        if not args.keep and not args.out:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
