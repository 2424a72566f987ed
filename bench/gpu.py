"""GPU readiness: each generator trainable on CUDA for a fixed number of steps, 4 trials packed at
0.25 GPU each on one device through Ray Tune, against the same trainable on the CPU.

A "step" is one reported iteration of the trainable (Tune's ``training_iteration``: an epoch of
GNN2GNN, GraphPNAS and the graph VAE, ``report_every`` meta-iterations of the GHN); each
trainable's iteration count is set to ``--steps`` (:data:`STEP_KEYS`) on top of its ``smoke``
preset. Every run goes through the orchestrator (spec → Tune → store), so the rows say which
device each trial used, which GPU ids Tune gave it and its GPU fraction.

Per trainable it prints: CPU steps/s (one trial, no GPU), then the 4 packed trials — the device
they used, the GPU ids, how many ran at once, steps/s per trial and summed — and GPU ÷ CPU.

    python bench/gpu.py [--trainables gnn2gnn,graphpnas,graphvae,ghn] [--steps 20]
    python bench/gpu.py --dry-run [--trainables toy]   # CPU machine: tiny steps, 1 logical GPU

``--dry-run`` runs on the CPU (no CUDA needed): Ray is started with one *logical* GPU, so Tune
still packs the 4 trials at 0.25 GPU each onto device 0 and assigns their GPU ids, while the
trainables compute on the CPU; tests/test_bench_gpu_dryrun.py runs it. Without ``--dry-run``
and without CUDA it stops with one ``error:`` line.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

from trainables import ENTRIES  # the registry: no trainable module, no torch

GENERATORS = tuple(name for name, entry in ENTRIES.items() if entry.role == "generator")
# The config key that sets how many iterations a trainable reports, and extra settings that
# make each iteration a training step of the usual size (GHN: report every 10 meta-batches).
STEP_KEYS: dict[str, tuple[str, dict[str, Any]]] = {
    "toy": ("steps", {"sleep_s": 0.2}),
    "gnn2gnn": ("epochs", {}),
    "graphpnas": ("epochs", {}),
    "graphvae": ("epochs", {}),
    "ghn": ("iterations", {"report_every": 1, "n_samples": 20, "top_k": 1}),
}
PACKED = 4  # trials sharing one device
FRACTION = 1.0 / PACKED


def trial_config(name: str, steps: int) -> dict[str, Any]:
    """``name``'s smoke preset with ``steps`` iterations."""
    from trainables import ENTRIES

    key, extra = STEP_KEYS[name]
    return {**ENTRIES[name].presets.get("smoke", {}), **extra, key: steps}


def spec_for(name: str, steps: int, seeds: list[int], gpu: float, root: str, study: str):
    from orchestrator.spec import StudySpec

    return StudySpec.from_dict({
        "name": study, "trainable": name, "metric": "validity", "mode": "max",
        "config": trial_config(name, steps), "seeds": seeds, "concurrency": PACKED,
        "resources": {"cpu": 1, "gpu": gpu}, "storage": root, "wandb": {"enabled": False},
    })


def max_concurrent(spans: list[tuple[float, float]]) -> int:
    """How many of the (start, end) intervals overlap at the busiest moment."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def run_trainable(name: str, steps: int, root: str) -> dict[str, Any]:
    """CPU run (1 trial) then packed run (4 trials at 0.25 GPU); the figures of both."""
    from orchestrator.run import run_study
    from orchestrator.store import Store

    figures: dict[str, Any] = {"trainable": name}
    for label, seeds, gpu in (("cpu", [0], 0.0), ("packed", list(range(PACKED)), FRACTION)):
        study = f"gpu-{name}-{label}"
        result = run_study(spec_for(name, steps, seeds, gpu, root, study), verbose=0)
        rows = Store(root).read_pandas("trials", studies=[study])
        if result.errored or len(rows) != len(seeds):
            raise SystemExit(f"error: {name} ({label}): {result.summary()}; {rows.get('error', '').tolist()}")
        rate = rows["iteration"] / rows["wall_s"]
        spans = list(zip(rows["started_at"], rows["started_at"] + rows["wall_s"]))
        figures[label] = {"steps_per_s": float(rate.mean()), "sum_steps_per_s": float(rate.sum()),
                          "devices": sorted(set(rows["device"])), "gpu_ids": sorted(set(rows["gpu_ids"].astype(str))),
                          "gpu_fraction": sorted(set(rows["gpu_fraction"])), "concurrent": max_concurrent(spans),
                          "trials": len(rows)}
    return figures


def describe(f: dict[str, Any], steps: int) -> str:
    cpu, packed = f["cpu"], f["packed"]
    return (f"{f['trainable']}: {steps} steps; CPU {cpu['steps_per_s']:.2f} steps/s (1 trial);"
            f" packed {packed['trials']} x {packed['gpu_fraction'][0]:g} GPU on device(s) {','.join(packed['devices'])},"
            f" GPU ids {','.join(packed['gpu_ids'])}, {packed['concurrent']} at once:"
            f" {packed['steps_per_s']:.2f} steps/s per trial, {packed['sum_steps_per_s']:.2f} summed;"
            f" packed/CPU {packed['sum_steps_per_s'] / cpu['steps_per_s']:.2f}x summed,"
            f" {packed['steps_per_s'] / cpu['steps_per_s']:.2f}x per trial")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trainables", default=",".join(GENERATORS), help="comma-separated registry names")
    p.add_argument("--steps", type=int, help="iterations per trial (default 20; --dry-run: 2)")
    p.add_argument("--dry-run", action="store_true", help="CPU only, tiny steps, one logical GPU (see above)")
    p.add_argument("--out", help="store root (default: a temporary folder)")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.trainables.split(",") if n.strip()]
    unknown = [n for n in names if n not in STEP_KEYS]
    if unknown:
        print(f"error: no step setting for {', '.join(unknown)}; known: {', '.join(STEP_KEYS)}", file=sys.stderr)
        return 2
    steps = args.steps or (2 if args.dry_run else 20)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("WANDB_MODE", "offline")
    if not args.dry_run:
        import torch

        if not torch.cuda.is_available():
            print("error: no CUDA device here; run with --dry-run on a CPU machine", file=sys.stderr)
            return 2
    import ray

    # One device: the 4 packed trials must share it (a dry run's GPU is logical only).
    ray.init(num_cpus=max(PACKED, os.cpu_count() or 1), num_gpus=1, include_dashboard=False, log_to_driver=False)
    print(f"{'dry run (CPU, 1 logical GPU)' if args.dry_run else 'CUDA'}: {', '.join(names)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        root = args.out or tmp
        for name in names:
            t = time.perf_counter()
            figures = run_trainable(name, steps, root)
            print(describe(figures, steps) + f" ({time.perf_counter() - t:.0f} s)", flush=True)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
