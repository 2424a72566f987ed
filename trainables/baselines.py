"""Baselines every generator is compared against — same oracle, same budget.

* :func:`random_search` and :func:`regularized_evolution` (aging evolution, Real et al. 2019)
  are query-based searches; they return a :class:`SearchTrace` (every queried cell in order),
  from which best-found-so-far curves at any budget are read.
* :func:`marginal_baseline` is the simplest *generative* baseline: a product of independent
  per-position categoricals over the genotype, fitted to the best ``q`` % of what training
  may see, sampled ``n`` times.

Run ``python -m trainables.baselines --help`` for the comparison table over seeds.
"""
from __future__ import annotations

import argparse
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np

from trainables import common, lifecycle
from trainables.arch import ArchGraph
from trainables.oracle import Evaluator, Oracle
from trainables.stats import best_so_far


@dataclass
class SearchTrace:
    """Every distinct cell a search queried, in order, with the label it got."""

    archs: list[ArchGraph] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    def add(self, arch: ArchGraph, reward: float) -> None:
        self.archs.append(arch)
        self.rewards.append(float(reward))

    def best_at(self, budgets: Sequence[int]) -> list[int | None]:
        """Index of the best-by-reward cell within the first ``b`` queries, for each budget."""
        r = np.where(np.isfinite(self.rewards), self.rewards, -np.inf)
        out: list[int | None] = []
        for b in budgets:
            head = r[: min(b, len(r))]
            out.append(int(np.argmax(head)) if head.size and np.isfinite(head.max()) else None)
        return out

    def curve(self, evaluator: Evaluator, budgets: Sequence[int], field: str | None = None) -> np.ndarray:
        """Clean accuracy (``field``, default the evaluator's) of the best-by-reward cell
        within each budget: the number papers report as "best found"."""
        idx = self.best_at(budgets)
        vals = evaluator.values([self.archs[i] for i in idx if i is not None], field)
        out, it = np.full(len(budgets), np.nan), iter(vals)
        for k, i in enumerate(idx):
            if i is not None:
                out[k] = next(it)
        return out

    def reward_curve(self) -> np.ndarray:
        return best_so_far(self.rewards)


def _query_one(oracle: Oracle, arch: ArchGraph, trace: SearchTrace, known: dict[str, float]) -> float:
    key = oracle.space.key(arch)
    if key in known:
        return known[key]
    value = float(oracle.query([arch])[0])
    known[key] = value
    trace.add(arch, value)
    return value


def random_search(oracle: Oracle, budget: int, rng: np.random.Generator) -> SearchTrace:
    """Query ``budget`` distinct random architectures (or all the space has)."""
    trace, known = SearchTrace(), {}
    total = oracle.space.size()
    stalls = 0
    while len(trace.archs) < budget and stalls < 10_000:
        before = len(trace.archs)
        _query_one(oracle, oracle.space.sample_random(rng, 1)[0], trace, known)
        stalls = 0 if len(trace.archs) > before else stalls + 1
        if total is not None and len(known) >= total:
            break
    return trace


def regularized_evolution(oracle: Oracle, budget: int, rng: np.random.Generator,
                          population_size: int = 10, sample_size: int = 3) -> SearchTrace:
    """Aging evolution: tournament of ``sample_size`` from a FIFO population, mutate the
    winner (one op or one edge), query the child, drop the oldest. Re-visiting an already
    queried cell costs nothing and does not count against the budget."""
    trace, known = SearchTrace(), {}
    population: deque[tuple[ArchGraph, float]] = deque()
    while len(population) < population_size and len(trace.archs) < budget:
        a = oracle.space.sample_random(rng, 1)[0]
        population.append((a, _query_one(oracle, a, trace, known)))
    stalls = 0
    while len(trace.archs) < budget and stalls < 10_000:
        picks = rng.choice(len(population), size=min(sample_size, len(population)), replace=False)
        parent = max((population[i] for i in picks), key=lambda p: p[1] if np.isfinite(p[1]) else -np.inf)[0]
        child = oracle.space.mutate(parent, rng)
        before = len(trace.archs)
        population.append((child, _query_one(oracle, child, trace, known)))
        population.popleft()
        stalls = 0 if len(trace.archs) > before else stalls + 1
    return trace


def fit_marginals(genotypes: np.ndarray, cardinalities: np.ndarray, alpha: float = 0.5) -> list[np.ndarray]:
    """Per-position categorical probabilities with a symmetric Dirichlet(``alpha``) prior."""
    probs = []
    for i, k in enumerate(cardinalities):
        counts = np.bincount(genotypes[:, i], minlength=int(k)).astype(np.float64) + alpha
        probs.append(counts / counts.sum())
    return probs


def marginal_baseline(oracle: Oracle, q: float, n: int, rng: np.random.Generator,
                      alpha: float = 0.5) -> list[ArchGraph]:
    """Fit the product of marginals to the best ``q`` % of the labelled training set and
    draw ``n`` samples (invalid ones kept: validity is part of what is measured).

    Labelling the training set costs one query per architecture training may see.
    """
    if not 0 < q <= 100:
        raise ValueError(f"q must be in (0, 100], got {q}")
    archs = oracle.training_archs()
    labels = oracle.query(archs)
    ok = np.isfinite(labels)
    archs = [a for a, k in zip(archs, ok) if k]
    labels = labels[ok]
    n_top = max(1, int(round(len(archs) * q / 100)))
    top = np.argsort(-labels, kind="stable")[:n_top]
    sp = oracle.space
    genotypes = np.stack([sp.encode(archs[i]) for i in top])
    probs = fit_marginals(genotypes, sp.cardinalities, alpha)
    draws = np.stack([rng.choice(len(p), size=n, p=p) for p in probs], axis=1)
    return [sp.decode(g) for g in draws]


# ---------------------------------------------------------------------------- trainable
METHODS = ("random_search", "regularized_evolution", "marginals", "uniform")
SEARCHES = ("random_search", "regularized_evolution")


@dataclass(frozen=True)
class BaselineConfig:
    """The baseline trainable's own keys (the benchmark's are :class:`common.BenchmarkConfig`'s).

    ``method``: ``random_search`` / ``regularized_evolution`` spend ``query_budget`` (default
    :data:`trainables.lifecycle.SEARCH_BUDGET`)
    and report best-found-so-far after every ``report_every`` queries; their "generated set"
    is what they queried. ``marginals`` (``q`` %) and ``uniform`` sample ``n_samples``
    architectures.
    """

    method: Literal["random_search", "regularized_evolution", "marginals", "uniform"] = "marginals"
    q: float = 20.0
    report_every: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.q <= 100:
            raise ValueError(f"baseline: q must be a number in (0, 100], got {self.q!r}")
        if self.report_every < 1:
            raise ValueError(f"baseline: report_every must be >= 1, got {self.report_every!r}")


class BaselineRun(lifecycle.GeneratorRun):
    """The baselines as a :class:`trainables.lifecycle.GeneratorRun`: a search runs once, then
    each step reports its best-found curve at the next ``report_every`` queries (selection
    field only); sampling baselines have no steps."""

    name = "baseline"
    Config = BaselineConfig

    def __init__(self, cfg: BaselineConfig, trial: common.Trial) -> None:
        super().__init__(cfg, trial)
        self.trace: SearchTrace | None = None
        self.position = 0  # budgets reported so far

    @classmethod
    def is_search(cls, cfg: BaselineConfig) -> bool:
        return cfg.method in SEARCHES

    @property
    def budgets(self) -> list[int]:
        step = self.cfg.report_every
        return list(range(step, len(self.trace.archs), step)) if self.trace is not None else []

    @property
    def done(self) -> bool:
        return self.cfg.method not in SEARCHES or (self.trace is not None and self.position >= len(self.budgets))

    def _search(self) -> None:
        search = random_search if self.cfg.method == "random_search" else regularized_evolution
        self.trace = search(self.trial.oracle, int(self.trial.config.query_budget), self.trial.rng)

    def step(self) -> dict[str, Any]:
        if self.trace is None:
            self._search()
        if self.position >= len(self.budgets):
            return {}
        b = self.budgets[self.position]
        self.position += 1
        select = self.trial.config.select_field  # intermediate reports feed schedulers: validation only
        return {"iteration": b, "queries": b,
                common.selection_name("best_found"): float(self.trace.curve(self.trial.evaluator, [b],
                                                                            field=select)[0])}

    def sample(self, n: int) -> tuple[list[ArchGraph], dict[str, Any]]:
        trial, method = self.trial, self.cfg.method
        if method in SEARCHES:
            if self.trace is None:
                self._search()
            archs = self.trace.archs
            ev, select = trial.evaluator, trial.config.select_field
            extra = {"best_found": float(self.trace.curve(ev, [len(archs)])[0]),
                     common.selection_name("best_found"): float(self.trace.curve(ev, [len(archs)], field=select)[0])}
        elif method == "marginals":
            archs, extra = marginal_baseline(trial.oracle, self.cfg.q, n, trial.rng), {}
        else:
            archs, extra = trial.oracle.space.sample_random(trial.rng, n), {}
        return archs, {"iteration": len(archs), **extra}

    def state_dict(self) -> dict[str, Any]:
        if self.trace is None:
            return {"position": self.position, "trace": None}
        space = self.trial.oracle.space
        return {"position": self.position, "trace": {
            "genotypes": [[int(g) for g in space.encode(a)] for a in self.trace.archs],
            "rewards": list(self.trace.rewards)}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = int(state["position"])
        if state["trace"] is not None:
            space = self.trial.oracle.space
            self.trace = SearchTrace([space.decode(g) for g in state["trace"]["genotypes"]],
                                     [float(v) for v in state["trace"]["rewards"]])


def reported_metrics(config: dict) -> dict[str, str]:
    """The metrics :func:`train` reports → role (:func:`trainables.common.metric_role`)."""
    out = common.reported_metrics(config)
    if config.get("method", "marginals") in SEARCHES:
        out.update({"best_found": "evaluation", common.selection_name("best_found"): "selection"})
    return out


def validate_config(config: dict) -> None:
    """Raise ``ValueError`` (one line) for a config :func:`train` cannot run (before anything launches)."""
    cfg = lifecycle.validate(BaselineRun, config)

    bench = common.BenchmarkConfig.from_config(config)
    method, budget = cfg.method, bench.query_budget
    if method in SEARCHES and budget is not None and budget < 1:
        raise ValueError(f"baseline {method} with query_budget {budget} would query nothing; give it a query_budget "
                         f">= 1 (default {lifecycle.SEARCH_BUDGET})")
    if method == "marginals" and budget is not None:
        from trainables.oracle import open_benchmark
        from trainables.spaces import load_table

        oracle, _ = open_benchmark(load_table(bench.space, bench.data_dir), bench.label_field, bench.eval_field,
                                   degradation=bench.degradation, seed=bench.seed)
        need = len({oracle.space.cell_id(a) for a in oracle.training_archs()})
        if budget < need:
            raise ValueError(f"baseline marginals labels its whole training set ({need:,} cells) but query_budget is "
                             f"{budget:,}; raise query_budget to {need:,} or lower train_fraction")


def train(config: dict) -> None:
    """The baselines as a trainable (same contract as the generators), for studies."""
    validate_config(config)
    lifecycle.train(BaselineRun, config)


# ---------------------------------------------------------------------------- CLI
def _table(args: argparse.Namespace) -> str:
    from trainables.degrade import Degradation
    from trainables.oracle import open_benchmark
    from trainables.spaces import load_table
    from trainables.stats import format_ci

    table = load_table(args.space, args.data_dir)
    budgets = sorted(int(b) for b in args.budgets.split(","))
    curves: dict[str, list[np.ndarray]] = {"random search": [], "regularized evolution": []}
    for seed in range(args.seeds):
        for name, fn in (("random search", random_search), ("regularized evolution", regularized_evolution)):
            oracle, evaluator = open_benchmark(table, args.label_field, args.eval_field,
                                               degradation=Degradation(), budget=max(budgets), seed=seed)
            trace = fn(oracle, max(budgets), lifecycle.numpy_stream(seed, 0 if name == "random search" else 1))
            curves[name].append(trace.curve(evaluator, budgets))
    best = float(np.nanmax(table.column(args.eval_field)))
    lines = [f"best-found {args.eval_field} (reward {args.label_field}), mean ± 95 % CI over {args.seeds} seeds; "
             f"optimum {best:.3f}",
             "| method | " + " | ".join(str(b) for b in budgets) + " |",
             "|---|" + "---|" * len(budgets)]
    for name, cs in curves.items():
        m = np.stack(cs)
        lines.append(f"| {name} | " + " | ".join(format_ci(m[:, j]) for j in range(len(budgets))) + " |")
    return "\n".join(lines)


def _marginals_table(args: argparse.Namespace) -> str:
    from trainables.degrade import Degradation
    from trainables.oracle import open_benchmark
    from trainables.spaces import load_table
    from trainables.stats import format_ci

    table = load_table(args.space, args.data_dir)
    cols = ("validity", "uniqueness", "novelty", "top1_pct", "top5_pct", "top10_pct", "heldout_hit_pct",
            "acc_mean", "acc_best", "queries")
    rows: dict[str, list[dict]] = {}
    for seed in range(args.seeds):
        for q in (10, 20, 50, None):
            oracle, ev = open_benchmark(table, args.label_field, args.eval_field,
                                        degradation=Degradation(holdout_top_pct=args.holdout_top_pct), seed=seed)
            rng = lifecycle.numpy_stream(seed, 2)
            if q is None:
                name, archs = "uniform random", oracle.space.sample_random(rng, 1000)
            else:
                name, archs = f"marginals q={q} %", marginal_baseline(oracle, q, 1000, rng)
            rows.setdefault(name, []).append(ev.statistics(archs, oracle.seen_keys(), oracle.queries))
    lines = [f"1,000 samples scored on {args.eval_field} (labels {args.label_field}, holdout_top_pct "
             f"{args.holdout_top_pct}); shares are fractions; mean ± 95 % CI over {args.seeds} seeds",
             "| baseline | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, stats in rows.items():
        lines.append(f"| {name} | " + " | ".join(format_ci([s[c] for s in stats], 3 if c != "queries" else 0)
                                                    for c in cols) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainables.baselines",
                                description="Random search vs regularized evolution on a real benchmark, over seeds.")
    p.add_argument("--space", default="nbgraph", help="nbgraph (embedded default), nb201 or nb101")
    p.add_argument("--data-dir", default=None, help="folder or file of the benchmark table (nb201/nb101)")
    p.add_argument("--label-field", default=None, help="field the search optimises (dataset/split/fidelity)")
    p.add_argument("--eval-field", default=None, help="field reported for the best-by-label cell")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budgets", default="10,20,30,50,75,100,150")
    p.add_argument("--marginals", action="store_true",
                   help="instead: statistics of 1,000 samples of the product-of-marginals baseline (q = 10, 20, 50 %%)")
    p.add_argument("--holdout-top-pct", type=float, default=0.0, help="with --marginals: top n %% held out")
    args = p.parse_args(argv)
    defaults = {"nbgraph": ("cora/valid/final", "cora/test/final"),
                "nb201": ("cifar10-valid/valid/12", "cifar10/test/200"),
                "nb101": ("cifar10/valid/108", "cifar10/valid/108")}
    lf, ef = defaults.get(args.space, (None, None))
    args.label_field, args.eval_field = args.label_field or lf, args.eval_field or ef
    try:
        print(_marginals_table(args) if args.marginals else _table(args))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
