"""Speed of GraphPNAS: the whole search loop (queries/s) and the generator (train steps/s, cells/s).

    python bench/graphpnas_speed.py [--threads 1] [--data-dir ../shared/data]

Prints, on CPU (and on CUDA when ``torch.cuda.is_available()``):

* the whole loop — ``graphpnas.train`` end to end (random phase, generator training, rejection
  sampling, oracle queries, a checkpoint per report, the final samples) — in smoke size and in
  the authors' size, as queries per second (after a warm-up run that loads the table);
* generator training steps per second (full batch of ``elite`` cells, teacher forcing,
  backward, Adam) and sampling throughput, for each space.

Not part of the test run.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SMOKE = dict(query_budget=30, n_random=10, query_batch=5, epochs=5, hidden=8, layers=2, mixture=3,
             n_samples=100, sample_chunk=32, max_sample_rounds=2)


def _loop(config: dict, device: str | None) -> tuple[float, int]:
    from trainables import graphpnas, reporting

    if device is not None:  # plain runs pick CUDA whenever it is available; force the one asked
        import trainables.common as common
        original = common.open_trial
        common.open_trial = lambda cfg, device_=None: original(cfg, device)
    try:
        t = time.perf_counter()
        with reporting.plain_session() as s:
            graphpnas.train(config)
            q = s.reports[-1].metrics["queries"]
        return time.perf_counter() - t, int(q)
    finally:
        if device is not None:
            common.open_trial = original


def _train_steps(space_name: str, device: str, elite: int, steps: int, **size) -> float:
    import torch

    from trainables import graphpnas
    from trainables.spaces import get_space

    sp = get_space(space_name)
    torch.manual_seed(0)
    g = graphpnas.make_generator(sp, device=device, **size)
    archs = [a for a in g.sample(4 * elite, np.random.default_rng(0))[0] if sp.is_valid(a)][:elite]
    x = g.prepare(archs)
    opt = torch.optim.Adam(g.parameters(), lr=1e-3)

    def step():
        ll = g.log_likelihood(x)
        loss = -(ll["edge"] + 0.5 * ll["node"]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t)


def _sample_rate(space_name: str, device: str, n: int, **size) -> float:
    import torch

    from trainables import graphpnas
    from trainables.spaces import get_space

    torch.manual_seed(0)
    g = graphpnas.make_generator(get_space(space_name), device=device, **size)
    g.sample(16, np.random.default_rng(0))
    t = time.perf_counter()
    g.sample(n, np.random.default_rng(1))
    return n / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--steps", type=int, default=100)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    tempfile.tempdir = tempfile.mkdtemp(prefix="gp-speed-")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s)"
          + (f", GPU {torch.cuda.get_device_name(0)}" if "cuda" in devices else ", no GPU"))
    spaces = [("nbgraph", {"dataset": "cora"})]
    if (Path(args.data_dir) / "nb201.csv").is_file():
        spaces.insert(0, ("nb201", {"data_dir": args.data_dir, "dataset": "cifar10",
                                    "label_field": "cifar10-valid/valid/12"}))
    authors = dict(query_budget=100, n_random=30, query_batch=10)  # the default sizes otherwise
    for space, extra in spaces:
        _loop({"space": space, **extra, **SMOKE}, "cpu")  # warm-up: loads the table, builds lookups
        for device in devices:
            for label, size in (("smoke", SMOKE), ("default", authors)):
                dt, q = _loop({"space": space, **extra, **size, "seed": 1}, device)
                print(f"{space:8s} {device:4s} whole loop, {label:7s} size: {q:3d} queries in {dt:6.2f} s "
                      f"= {q / dt:7.2f} queries/s")
    for space in ("nb201", "nbgraph", "nb101"):
        for device in devices:
            for elite in (5, 20):
                r = _train_steps(space, device, elite, args.steps)
                print(f"{space:8s} {device:4s} generator training (hidden 24, 7 layers, K=10), elite {elite:2d}: "
                      f"{r:7.1f} steps/s")
            print(f"{space:8s} {device:4s} sampling, batch 1000: {_sample_rate(space, device, 1000):8.0f} cells/s")


if __name__ == "__main__":
    main()
