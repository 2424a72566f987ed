"""Where one NB201 trial of a generator spends its time: cProfile and torch.profiler.

    python bench/profile_trial.py GENERATOR [--data-dir ../shared/data] [--seed 0] [--set JSON]
                                  [--top 20] [--torch] [--no-cprofile]

Runs one trial of ``GENERATOR`` (a registry name: gnn2gnn, graphpnas, graphvae, ghn) on NB201
(labels ``cifar10-valid/valid/200``, statistics ``cifar10/test/200`` — GHN reads no table: it
trains its cells on images —, 1,000 final samples, ``torch_threads = 1``) through the plain trainable (:func:`trainables.reporting.plain_session`),
at the generator's defaults unless ``--set`` overrides them, and prints its wall time, the
``--top`` functions by cumulative and by own time (cProfile) and, with ``--torch``, the
``--top`` torch operators by own CPU time (``torch.profiler``, in a second run of the same
trial: the two profilers' overheads do not stack). Not part of the test run.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import signal
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def _fail(message: str) -> None:
    """One ``error:`` line on stderr, exit 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
LABEL, EVAL = "cifar10-valid/valid/200", "cifar10/test/200"


# GHN trains and scores its cells on images (trainables/ghn/data.py) and reads no benchmark table.
NO_TABLE = {"ghn"}


def trial_config(generator: str, data_dir: str, seed: int, overrides: dict) -> dict:
    """The NB201 config of one ``generator`` trial (the benchmark's keys, then ``overrides``)."""
    table = {} if generator in NO_TABLE else {"data_dir": data_dir, "label_field": LABEL, "eval_field": EVAL}
    return {"space": "nb201", **table, "n_samples": 1000, "seed": seed, "torch_threads": 1, **overrides}


class _Stopped(BaseException):
    """Raised in the trial by ``--limit``'s alarm (a BaseException: no handler of the trial catches it)."""


def _stop(signum, frame) -> None:
    raise _Stopped


def trainable(generator: str):
    """The ``train`` function of ``generator`` (imported here, outside any timing)."""
    import importlib

    from trainables import ENTRIES

    module, _, fn = ENTRIES[generator].target.partition(":")
    return getattr(importlib.import_module(module), fn)


def run_trial(train, config: dict) -> dict:
    """Run one trial of ``train``; its final metrics."""
    from trainables import reporting

    with reporting.plain_session() as s:
        train(config)
        return dict(s.reports[-1].metrics)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("generator")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", default="{}", metavar="JSON", help="config overrides")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--torch", action="store_true", help="also a torch.profiler run (operators)")
    p.add_argument("--no-cprofile", action="store_true", help="skip the cProfile run")
    p.add_argument("--limit", type=int, default=0, metavar="S",
                   help="stop the trial after S seconds and print the profile of what ran (0: no limit)")
    args = p.parse_args()
    warnings.filterwarnings("ignore", ".*torch.jit.script.*", DeprecationWarning)
    from trainables import ENTRIES

    if args.generator not in ENTRIES:
        _fail(f"unknown generator {args.generator!r} (one of {', '.join(sorted(ENTRIES))})")
    try:
        overrides = json.loads(args.set)
    except json.JSONDecodeError as e:
        _fail(f"--set is not JSON: {e}")
    config = trial_config(args.generator, args.data_dir, args.seed, overrides)
    import torch

    torch.set_num_threads(1)
    train = trainable(args.generator)
    if not args.no_cprofile:
        prof = cProfile.Profile()
        t = time.perf_counter()
        if args.limit > 0:
            signal.signal(signal.SIGALRM, _stop)
            signal.alarm(args.limit)
        prof.enable()
        try:
            metrics = run_trial(train, config)
            ended = "finished"
        except _Stopped:
            metrics, ended = {}, f"STOPPED at the {args.limit} s limit (the profile covers what ran)"
        prof.disable()
        signal.alarm(0)
        wall = time.perf_counter() - t
        print(f"{args.generator} NB201 trial, seed {args.seed}, overrides {overrides}: {wall:.1f} s wall under "
              f"cProfile (1 torch thread), {ended}; top-5 % share {metrics.get('top5_pct', float('nan')):.3f}, "
              f"uniqueness {metrics.get('uniqueness', float('nan')):.3f}\n")
        for key in ("cumulative", "tottime"):
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats(key).print_stats(args.top)
            text = buf.getvalue()
            print(f"--- cProfile, top {args.top} by {key} ---")
            print(text[text.find("   ncalls"):].rstrip() + "\n")
    if args.torch:
        from torch.profiler import ProfilerActivity, profile

        t = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as tp:
            run_trial(train, config)
        wall = time.perf_counter() - t
        print(f"--- torch.profiler ({wall:.1f} s wall under it), top {args.top} operators by self CPU time ---")
        print(tp.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))


if __name__ == "__main__":
    main()
