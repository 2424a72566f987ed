"""GNN2GNN trial cost before and after a change, measured side by side on the same seeds.

    python bench/gnn2gnn_speed.py --before COMMIT [--seed-offset K] [--seeds N]
                                  [--data-dir ../shared/data] [--set JSON]
    python bench/gnn2gnn_speed.py --parts [--data-dir ../shared/data]

The ``trainables`` package of ``COMMIT`` is exported (``git archive``) into a temporary folder;
every seed then runs one NB201 trial at the trainable's defaults (labels
``cifar10-valid/valid/200``, statistics ``cifar10/test/200``, 1,000 samples, full data,
``torch_threads = 1``) with the old code and one with the working tree's, each in a fresh
process, one at a time, in the order ABBA over consecutive seeds (so a machine whose load
drifts charges both sides alike). Printed per seed: wall and CPU seconds of each side and their
ratios, and both sides' top-5 % share and uniqueness; then the mean ± 95 % CI of each side's
statistics and of the paired differences, and the median ratios. The machine is shared: read
the ratios, not the seconds.

``--parts`` times the two rewritten pieces alone, in one process, interleaved (8 rounds of 15
calls each, CPU time, the median round): the architecture entropy's forward + backward (NB201,
batch 32) in the ``[B, M]`` autograd form it replaced, the ``[M, B]`` autograd form and the
written-out backward (:func:`trainables.gnn2gnn.entropy.architecture_entropy`); and one
training step of the default model with D/V scoring densely and sparsely. Not part of the test
run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def _fail(message: str) -> None:
    """One ``error:`` line on stderr, exit 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
LABEL, EVAL = "cifar10-valid/valid/200", "cifar10/test/200"
STATS = ("top5_pct", "uniqueness", "validity", "top1_pct", "acc_mean")


def _one(config: dict) -> None:
    """Child process: run one trial, print its timings and statistics as one JSON line."""
    import warnings

    warnings.filterwarnings("ignore", ".*torch.jit.script.*", DeprecationWarning)
    import torch

    torch.set_num_threads(1)
    import trainables
    from trainables import gnn2gnn, reporting

    wall, cpu = time.perf_counter(), time.process_time()
    with reporting.plain_session() as s:
        gnn2gnn.train(config)
        metrics = s.reports[-1].metrics
    out = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
           "package": str(Path(trainables.__file__).parent), **{k: float(metrics[k]) for k in STATS}}
    print("RESULT " + json.dumps(out), flush=True)


def _entropy_forms():
    """The architecture entropy as it was (``[B, M]``, autograd), the same in ``[M, B]``, and now."""
    import math

    import torch

    from trainables.gnn2gnn.entropy import architecture_entropy

    def tail(collide, b, count):
        mean = collide[~torch.eye(b, dtype=torch.bool)].mean().clamp_min(torch.finfo(collide.dtype).tiny)
        return (-torch.log(mean) / math.log(count)).clamp(max=1.0)

    def batch_major(logits, classes):
        b = logits.shape[0]
        p = torch.softmax(logits, dim=-1)
        px = p[:, 0, : classes.cardinalities[0]]
        for d, k in enumerate(classes.cardinalities[1:], start=1):
            px = (px.unsqueeze(-1) * p[:, d, :k].unsqueeze(1)).reshape(b, -1)
        pc = px.new_zeros(b, classes.count).index_add_(1, classes.index, px)
        return tail(pc @ pc.T, b, classes.count)

    def genotype_major(logits, classes):
        b = logits.shape[0]
        p = torch.softmax(logits, dim=-1).permute(1, 2, 0)
        px = p[0, : classes.cardinalities[0]]
        for d, k in enumerate(classes.cardinalities[1:], start=1):
            px = (px.unsqueeze(1) * p[d, :k].unsqueeze(0)).reshape(-1, b)
        pc = px.new_zeros(classes.count, b).index_add_(0, classes.index, px)
        return tail(pc.T @ pc, b, classes.count)

    return {"[B, M] autograd (before)": batch_major, "[M, B] autograd": genotype_major,
            "[M, B] written-out backward (now)": architecture_entropy}


def _parts(data_dir: str) -> None:
    """Time the rewritten pieces alone (CPU ms per call, median of 8 interleaved rounds)."""
    import warnings

    warnings.filterwarnings("ignore", ".*torch.jit.script.*", DeprecationWarning)
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from trainables.gnn2gnn import GNN2GNN, GNN2GNNConfig, architecture_classes
    from trainables.spaces import load_table

    space = load_table("nb201", data_dir).space
    classes = architecture_classes(space)
    logits = torch.randn(32, 6, 5, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    rng = np.random.default_rng(0)
    models = {}
    for dense in (True, False):
        torch.manual_seed(0)
        models[dense] = GNN2GNN(space, GNN2GNNConfig())
        models[dense].renderer.dense = dense
    real = models[True].renderer.onehot(rng.integers(0, 5, size=(2000, 6)))
    gen = torch.Generator().manual_seed(1)

    def step(model):
        ri, li = (torch.as_tensor(rng.integers(0, 2000, 32)) for _ in range(2))
        model.train_step(real[ri], real[li], (torch.rand(32) < 0.1).float(), 1.0, gen)

    def entropy(fn):
        fn(logits, classes).backward()

    jobs = {**{f"entropy {k}": (entropy, fn) for k, fn in _entropy_forms().items()},
            "training step, D/V dense (now)": (step, models[True]),
            "training step, D/V sparse PyG (the rest as now)": (step, models[False])}
    rounds: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(8):
        for name, (fn, arg) in jobs.items():
            t = time.process_time()
            for _ in range(15):
                fn(arg)
            rounds[name].append((time.process_time() - t) / 15 * 1e3)
    print("| piece (NB201, batch 32, 1 thread) | CPU ms per call (median of 8 rounds; min–max) |")
    print("|---|---|")
    for name, v in rounds.items():
        print(f"| {name} | {np.median(v):.2f} ({min(v):.2f}–{max(v):.2f}) |")


def _run(config: dict, pythonpath: str | None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    else:
        env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(config)], env=env, capture_output=True,
                          text=True, cwd=tempfile.gettempdir())
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        _fail(f"a trial failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        _one(json.loads(sys.argv[2]))
        return
    sys.path.insert(0, str(ROOT))
    if "--parts" in sys.argv[1:]:
        q = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        q.add_argument("--parts", action="store_true")
        q.add_argument("--data-dir", default=str(DEFAULT_DATA))
        _parts(q.parse_args().data_dir)
        return
    from bench.seeds import add_seed_arguments, seed_block

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, metavar="COMMIT", help="the commit whose trainables run as 'before'")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--set", default="{}", metavar="JSON", help="config overrides of both sides")
    add_seed_arguments(p, default_count=8)
    args = p.parse_args()
    try:
        overrides = json.loads(args.set)
    except json.JSONDecodeError as e:
        _fail(f"--set is not JSON: {e}")
    rev = subprocess.run(["git", "rev-parse", "--verify", f"{args.before}^{{commit}}"], cwd=ROOT,
                         capture_output=True, text=True)
    if rev.returncode != 0:
        _fail(f"--before {args.before!r} is not a commit of this repository")
    block = seed_block(args)
    from trainables.stats import format_ci

    with tempfile.TemporaryDirectory(prefix="gnn2gnn-before-") as tree:
        archive = subprocess.run(["git", "archive", rev.stdout.strip(), "trainables"], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        base = {"space": "nb201", "data_dir": str(Path(args.data_dir).resolve()), "label_field": LABEL,
                "eval_field": EVAL, "n_samples": 1000, "torch_threads": 1, **overrides}
        rows = []
        t0 = time.perf_counter()
        for i, seed in enumerate(block.seeds):
            cfg = {**base, "seed": seed}
            order = ("before", "after") if i % 2 == 0 else ("after", "before")
            res = {side: _run(cfg, tree if side == "before" else None) for side in order}
            if not res["before"]["package"].startswith(tree):
                _fail(f"the 'before' trial imported {res['before']['package']}, not the exported tree")
            rows.append((seed, res["before"], res["after"]))
            b, a = res["before"], res["after"]
            print(f"seed {seed}: before {b['wall']:.1f} s wall / {b['cpu']:.1f} s CPU, after {a['wall']:.1f} / "
                  f"{a['cpu']:.1f} (ratios {b['wall'] / a['wall']:.2f} / {b['cpu'] / a['cpu']:.2f}); top-5 % "
                  f"{b['top5_pct']:.3f} → {a['top5_pct']:.3f}, uniqueness {b['uniqueness']:.3f} → "
                  f"{a['uniqueness']:.3f}", flush=True)
    import numpy as np

    print(f"\nGNN2GNN NB201 trial at the defaults{' with ' + json.dumps(overrides) if overrides else ''}, before = "
          f"{args.before} ({rev.stdout.strip()[:10]}), after = the working tree; {block.label}; "
          f"{time.perf_counter() - t0:.0f} s in all; one trial at a time, 1 torch thread, ABBA order.\n")
    wall_r = [b["wall"] / a["wall"] for _, b, a in rows]
    cpu_r = [b["cpu"] / a["cpu"] for _, b, a in rows]
    print("| | before | after | before / after (median, range) |")
    print("|---|---|---|---|")
    for key, ratios in (("wall", wall_r), ("cpu", cpu_r)):
        print(f"| {key} s per trial | {format_ci([b[key] for _, b, _ in rows], 1)} | "
              f"{format_ci([a[key] for _, _, a in rows], 1)} | {np.median(ratios):.2f} ({min(ratios):.2f}–"
              f"{max(ratios):.2f}) |")
    print("\n| statistic | before | after | after − before (paired) | identical seeds |")
    print("|---|---|---|---|---|")
    for k in STATS:
        bs, as_ = [b[k] for _, b, _ in rows], [a[k] for _, _, a in rows]
        same = sum(x == y for x, y in zip(bs, as_))
        print(f"| {k} | {format_ci(bs, 3)} | {format_ci(as_, 3)} | {format_ci([y - x for x, y in zip(bs, as_)], 3)} "
              f"| {same}/{len(rows)} |")


if __name__ == "__main__":
    main()
