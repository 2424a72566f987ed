"""What a distribution that *knows* the labels can reach on NB201's quality–diversity plane.

    python bench/gnn2gnn_frontier.py [--data-dir ../shared/data] [--seeds 3]

Reference points for issue 19's bar (top-5 % share ≥ 0.41 with uniqueness ≥ 0.68, 1,000
samples): distributions built from the **labels** (``cifar10-valid/valid/200``, every training
cell's, as the marginals baseline uses them), scored like the generators on
``cifar10/test/200``:

* ``empirical top-q %``: the best q % of the labelled cells, drawn uniformly — a generator that
  imitates the good data perfectly;
* ``Boltzmann over cells, β``: ``p(cell) ∝ exp(β · z)``, ``z`` the cell's standardised label;
* ``Boltzmann over architectures, β``: the same over NB201's 6,466 architectures (``space.key``;
  an architecture's label is the mean of its cells'), one cell drawn per architecture.

Uniqueness counts architectures, so a distribution over cells spends part of its spread on
encodings of one architecture; the table shows how much that costs. Prints a Markdown table
(mean over ``--seeds`` draws of 1,000). Not part of the test run.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LABEL, EVAL = "cifar10-valid/valid/200", "cifar10/test/200"
BETAS = (6.0, 8.0, 10.0, 13.0, 16.0, 20.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--seeds", type=int, default=3, help="independent draws of 1,000 per distribution")
    args = p.parse_args()

    from trainables.degrade import Degradation
    from trainables.oracle import open_benchmark
    from trainables.spaces import load_table

    table = load_table("nb201", args.data_dir)
    oracle, ev = open_benchmark(table, LABEL, EVAL, degradation=Degradation(), seed=0)
    cells = oracle.training_archs()
    labels = oracle.query(cells)
    keys = [oracle.space.key(a) for a in cells]
    members: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        members.setdefault(k, []).append(i)
    arch_keys = list(members)
    arch_label = np.array([labels[members[k]].mean() for k in arch_keys])

    def score(picks: np.ndarray) -> tuple[float, float]:
        s = ev.statistics([cells[i] for i in picks], oracle.seen_keys(), oracle.queries)
        return s["top5_pct"], s["uniqueness"]

    def boltzmann(values: np.ndarray, beta: float) -> np.ndarray:
        z = (values - values.mean()) / values.std()
        w = np.exp(beta * (z - z.max()))
        return w / w.sum()

    rows: dict[str, list[tuple[float, float]]] = {}
    order = np.argsort(-labels, kind="stable")
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        for q in (5, 10, 20):
            top = order[: int(len(cells) * q / 100)]
            rows.setdefault(f"empirical top-{q} % of cells", []).append(score(rng.choice(top, 1000)))
        for beta in BETAS:
            picks = rng.choice(len(cells), 1000, p=boltzmann(labels, beta))
            rows.setdefault(f"Boltzmann over cells, β = {beta:g}", []).append(score(picks))
            archs = rng.choice(len(arch_keys), 1000, p=boltzmann(arch_label, beta))
            rows.setdefault(f"Boltzmann over architectures, β = {beta:g}", []).append(
                score(np.array([members[arch_keys[a]][0] for a in archs])))
    print(f"NB201: {len(cells):,} cells, {len(arch_keys):,} architectures; labels {LABEL}, statistics {EVAL};"
          f" 1,000 draws, mean over {args.seeds} draws.\n")
    print("| distribution (knows every label) | top-5 % share | uniqueness | meets 0.41 / 0.68 |")
    print("|---|---|---|---|")
    for name, values in rows.items():
        top5, uniq = np.mean(values, axis=0)
        print(f"| {name} | {top5:.3f} | {uniq:.3f} | {'yes' if top5 >= 0.41 and uniq >= 0.68 else 'no'} |")


if __name__ == "__main__":
    main()
