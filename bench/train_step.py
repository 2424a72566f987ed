"""Training-step speed of the generators (one step = every model's update once).

    python bench/train_step.py gnn2gnn [--space nb201] [--data-dir ../shared/data]
                                       [--steps 300] [--batch-size 32] [--threads 2]

``gnn2gnn``: one generator + discriminator + valuer step at the default size (hidden 100,
batch 32), on CPU and — when ``torch.cuda.is_available()`` — on GPU. Prints
``gnn2gnn train steps/s: X`` per device. Not part of the test run.
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def bench_gnn2gnn(args: argparse.Namespace) -> None:
    import torch

    from trainables import gnn2gnn
    from trainables.spaces import get_space, load_table

    torch.set_num_threads(args.threads)
    space_name = args.space
    if space_name != "nbgraph" and not (Path(args.data_dir) / "nb201.csv").is_file():
        print(f"(no table at {args.data_dir}: using nbgraph)")
        space_name = "nbgraph"
    table = load_table(space_name, args.data_dir if space_name != "nbgraph" else None)
    space = get_space(space_name)
    cfg = gnn2gnn.GNN2GNNConfig(batch_size=args.batch_size)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rng = np.random.default_rng(0)
    genotypes = table.genotypes
    labels = np.nan_to_num(table.column(table.fields[0]))
    for dev in devices:
        torch.manual_seed(0)
        model = gnn2gnn.GNN2GNN(space, cfg, dev)
        real_all = model.renderer.onehot(genotypes)
        good_all = torch.as_tensor(labels >= np.median(labels), dtype=torch.float32, device=dev)
        gen = torch.Generator(device=dev)
        gen.manual_seed(0)
        bs = args.batch_size

        def step() -> None:
            ri = torch.as_tensor(rng.integers(0, len(genotypes), size=bs), device=dev)
            li = torch.as_tensor(rng.integers(0, len(genotypes), size=bs), device=dev)
            model.train_step(real_all[ri], real_all[li], good_all[li], 0.5, gen)

        for _ in range(20):  # warm-up
            step()
        if dev == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(args.steps):
            step()
        if dev == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        extra = f"{args.threads} thread(s)" if dev == "cpu" else torch.cuda.get_device_name()
        print(f"[{dev}, {space_name}, batch {bs}, hidden {cfg['hidden']}, {extra}] "
              f"{dt / args.steps * 1e3:.2f} ms/step")
        print(f"gnn2gnn train steps/s: {args.steps / dt:.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("generator", choices=["gnn2gnn"])
    p.add_argument("--space", default="nb201", help="nb201 (needs --data-dir), nbgraph or nb101")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for these tiny graphs)")
    args = p.parse_args()
    warnings.filterwarnings("ignore", ".*torch.jit.script.*", DeprecationWarning)
    {"gnn2gnn": bench_gnn2gnn}[args.generator](args)


if __name__ == "__main__":
    main()
