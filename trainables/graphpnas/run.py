"""The GraphPNAS search as a trial: the elite trains the generator, the generator proposes queries.

``n_random`` uniformly random cells first; then each iteration (one :meth:`GraphPNASRun.step`,
one report) trains the generator (:mod:`trainables.graphpnas.model`) on the elite (the
``elite_size`` best queried cells by the label field) with loss
``mean_i w_i · (edge NLL_i + node_weight · node NLL_i) − entropy_weight · H``, samples
``query_batch`` new cells (invalid and already-queried cells are rejected, bounded tries,
counted; a shortfall is filled with random cells, counted too) and queries them: the
``likely_share`` most probable new cells among a chunk of draws first, the rest in draw order. ``w`` is the
``reward``: ``rank`` (``(k − r)/k`` for the elite member of rank ``r``; the authors' code calls
it ``cdf``), ``cdf`` (the share of all queried labels ≤ its label) or ``uniform``, minus an
optional moving-average baseline of the reward the generator's own batches earned
(``baseline_decay`` > 0: the paper's RL reading); an elite cell whose weight falls below zero
is pushed away with the authors' bounded "unlikelihood" ``|w| · −log(1 − p̄)`` (``p̄`` its
per-step geometric-mean probability). ``warm_start`` keeps the generator and optimiser across
iterations; by default both are re-initialised every iteration, as in the authors' code.

The search spends ``query_budget`` (a search always has one: :data:`trainables.lifecycle.SEARCH_BUDGET`
when the config gives none). At the end
the generator is trained once more on the final elite (``final_train``) and ``n_samples``
cells are drawn from their own stream and scored by :func:`trainables.common.finish`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from trainables import common, lifecycle
from trainables.arch import ArchGraph
from trainables.graphpnas.model import make_generator

FINAL_SAMPLES_STREAM = 7  # numpy stream of the final draws (the number the measurements were made with)
NB101_MIN_ROWS = 10_000


@dataclass(frozen=True)
class GraphPNASConfig:
    """The generator's own config keys (the benchmark's are :class:`common.BenchmarkConfig`'s).

    Defaults tuned on NB201 with 12-epoch labels, seeds 100–159, disjoint from the seeds
    bench/graphpnas_measure.py reports: elite of 5, 15 full-batch Adam steps (lr 1e-2) from
    scratch per batch of 10 queries. (Elite 3–5, 15–50 steps, lr 3e-3–1e-2 from scratch all
    land within ±0.05 points of each other on cifar10; this is the cheapest of them.) The
    authors queried one cell per iteration, kept the top 15 and retrained ~560 minibatch steps
    each time — about 250× the generator training per search. Longer training or a larger
    elite makes the generator memorise the elite (almost every draw is an already-queried
    cell) and a lower sampling temperature does the same; both lose to regularized evolution.

    ``likely_share`` = 0.5 (issue 30; 0.0 before): half of each batch is the generator's most
    probable new cells among its draws, half its draws in order — more runs close in on the
    best cell's neighbourhood within the budget, though not all (bench/graphpnas_results.md:
    the tuning blocks, the alternatives tried, and the measurement on a fresh block).
    """

    n_random: int = 30          # uniformly random cells queried first
    query_batch: int = 10       # cells sampled and queried per iteration (one report each)
    elite_size: int = 5         # best queried cells the generator is trained on
    epochs: int = 15            # full-batch generator training steps per iteration
    lr: float = 1e-2
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    hidden: int = 24            # the authors' sizes: hidden 24, 7 GNN layers, 10 Bernoullis
    layers: int = 7
    mixture: int = 10
    node_weight: float = 0.5    # loss = edge NLL + node_weight · node NLL
    reward: Literal["rank", "cdf", "uniform"] = "rank"
    baseline_decay: float = 0.0  # > 0: subtract a moving average of the generator's batch reward
    entropy_weight: float = 0.0  # bonus on the per-step entropy along elite trajectories
    warm_start: bool = False    # keep generator + optimiser across iterations (else re-init)
    temperature: float = 1.0    # sampling temperature while searching
    explore: float = 0.0        # per-choice share drawn uniformly while searching (Generator.sample)
    likely_share: float = 0.5   # share of each batch: the most probable new cells among the draws
    sample_chunk: int = 256     # cells drawn per rejection round
    max_sample_rounds: int = 8  # rejection rounds per iteration before random filling
    final_train: bool = True    # train on the final elite before drawing n_samples

    def __post_init__(self) -> None:
        o = "graphpnas"
        lifecycle.positive(o, self, "query_batch", "elite_size", "hidden", "layers", "mixture", "sample_chunk",
                           "max_sample_rounds")
        lifecycle.positive(o, self, "n_random", "epochs", "weight_decay", "entropy_weight", "node_weight",
                           "grad_clip", zero_ok=True)
        if not 0.0 <= self.likely_share <= 1.0:
            raise ValueError(f"{o}: likely_share must be in [0, 1], got {self.likely_share}")
        if not 0.0 <= self.explore < 1.0:
            raise ValueError(f"{o}: explore must be in [0, 1), got {self.explore}")
        if not 0.0 <= self.baseline_decay < 1.0:
            raise ValueError(f"{o}: baseline_decay must be in [0, 1), got {self.baseline_decay}")
        for k in ("lr", "temperature"):
            if not getattr(self, k) > 0:
                raise ValueError(f"{o}: {k} must be > 0, got {getattr(self, k)}")


DEFAULTS: dict[str, Any] = asdict(GraphPNASConfig())
# Sizes for the studies' presets (studies/*.py): smoke = CI seconds; local and full = the
# authors' sizes above (a 100-query trial takes a few seconds on one core).
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"n_random": 8, "query_batch": 5, "epochs": 3, "hidden": 8, "layers": 2, "mixture": 3,
              "sample_chunk": 32, "max_sample_rounds": 2},
    "local": {},
    "full": {},
}


def reward_weights(labels_elite: np.ndarray, labels_all: np.ndarray, kind: str) -> np.ndarray:
    """Weights of the elite (sorted best first): ``rank`` ``(k − r)/k``, ``cdf`` the share of
    finite queried labels ≤ each label, ``uniform`` ones."""
    k = len(labels_elite)
    if kind == "rank":
        return (k - np.arange(k)) / k
    if kind == "cdf":
        finite = np.sort(labels_all[np.isfinite(labels_all)])
        return np.searchsorted(finite, labels_elite, side="right") / max(len(finite), 1)
    return np.ones(k)


class GraphPNASRun(lifecycle.GeneratorRun):
    """One GraphPNAS search (:mod:`trainables.lifecycle`): a step is one query batch."""

    name = "graphpnas"
    Config = GraphPNASConfig

    def __init__(self, cfg: GraphPNASConfig, trial: common.Trial) -> None:
        import torch

        super().__init__(cfg, trial)
        self.space = trial.oracle.space
        self.device = trial.device
        self.torch = torch
        self.genotypes: list[list[int]] = []  # queried cells, in query order
        self.labels: list[float] = []
        self.keys: dict[str, int] = {}
        self.counters = {"sampled": 0, "invalid": 0, "repeat": 0, "random_fill": 0}
        self.baseline: float | None = None
        self.iteration = 0
        self.exhausted = False  # nothing new was left to ask about
        self.losses: dict[str, float] = {}
        self._fresh_model()

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def is_search(cls, cfg: GraphPNASConfig) -> bool:
        return True

    @property
    def done(self) -> bool:
        return self.exhausted or self.trial.oracle.queries >= self.trial.config.query_budget

    def step(self) -> dict[str, Any]:
        c, oracle = self.cfg, self.trial.oracle
        n = min(c.query_batch, self.trial.config.query_budget - oracle.queries)
        n_done = len(self.labels)
        if n_done < c.n_random:
            batch = self.random_batch(min(n, c.n_random - n_done))
        else:
            self.fit()
            batch = self.generator_batch(n)
        if not batch:
            self.exhausted = True
            return self.metrics()
        labels = self.query(batch)
        if n_done >= c.n_random:
            self.update_baseline(labels)
        self.iteration += 1
        return self.metrics()

    def conclude(self, last: dict[str, Any]) -> dict[str, Any]:
        if self.cfg.final_train:
            self.fit()
        return self.metrics()

    def sample(self, n: int) -> tuple[list[ArchGraph], dict[str, Any]]:
        """The final draws at temperature 1, from their own stream."""
        rng = lifecycle.numpy_stream(self.trial.config.seed, FINAL_SAMPLES_STREAM)
        archs, logp = self.model.sample(n, rng, 1.0)
        return archs, {"sample_logp_mean": float(np.mean(logp)),
                       "search_best_reward": self.metrics()["best_found_reward"]}

    def state_dict(self) -> dict[str, Any]:
        return {"space": self.space.name, "genotypes": self.genotypes, "labels": self.labels,
                "counters": self.counters, "baseline": self.baseline, "iteration": self.iteration,
                "exhausted": self.exhausted, "losses": self.losses,
                "model": self.model.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.genotypes = [list(g) for g in state["genotypes"]]
        self.labels = [float(v) for v in state["labels"]]
        self.keys = {self.space.key(a): i for i, a in enumerate(self.archs())}
        self.counters = dict(state["counters"])
        self.baseline, self.iteration = state["baseline"], int(state["iteration"])
        self.exhausted, self.losses = bool(state["exhausted"]), dict(state["losses"])
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.model.eval()

    # ------------------------------------------------------------------ model
    def _fresh_model(self) -> None:
        c = self.cfg
        self.model = make_generator(self.space, c.hidden, c.layers, c.mixture, self.device)
        self.opt = self.torch.optim.Adam(self.model.parameters(), lr=c.lr, weight_decay=c.weight_decay)

    def archs(self) -> list[ArchGraph]:
        return [self.space.decode(g) for g in self.genotypes]

    def elite(self) -> tuple[list[ArchGraph], np.ndarray]:
        lab = np.asarray(self.labels, dtype=np.float64)
        ok = np.nonzero(np.isfinite(lab))[0]
        order = ok[np.argsort(-lab[ok], kind="stable")][: self.cfg.elite_size]
        archs = self.archs()
        return [archs[i] for i in order], lab[order]

    def fit(self) -> None:
        """Train the generator on the current elite (reward-weighted likelihood)."""
        torch, c = self.torch, self.cfg
        elite, lab = self.elite()
        if not elite or c.epochs == 0:
            return
        if not c.warm_start:
            self._fresh_model()
        w = reward_weights(lab, np.asarray(self.labels), c.reward)
        if self.baseline is not None:
            w = w - self.baseline
        x = self.model.prepare(elite)
        n_steps = len(self.model.layout.steps)
        wt = torch.as_tensor(w, dtype=torch.float32, device=self.device)
        self.model.train()
        sums = {"edge_nll": 0.0, "node_nll": 0.0, "entropy": 0.0, "total": 0.0}
        last = max(1, min(10, c.epochs))
        for step in range(c.epochs):
            ll = self.model.log_likelihood(x)
            nll = -(ll["edge"] + c.node_weight * ll["node"])
            # below-baseline cells (negative weight): the authors' bounded "unlikelihood"
            # |w| · −log(1 − p̄), p̄ = exp(−nll / steps), instead of an unbounded −|w| · nll
            p_bar = torch.exp(-nll / n_steps)
            per_cell = torch.where(wt >= 0, wt * nll, -wt * -torch.log1p(-p_bar + 1e-6))
            loss = per_cell.mean() - c.entropy_weight * ll["entropy"].mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if c.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
            self.opt.step()
            if step >= c.epochs - last:  # mean over the last steps
                sums["edge_nll"] += float(-ll["edge"].detach().mean())
                sums["node_nll"] += float(-ll["node"].detach().mean())
                sums["entropy"] += float(ll["entropy"].detach().mean())
                sums["total"] += float(loss.detach())
        self.model.eval()
        self.losses = {f"loss/{k}": v / last for k, v in sums.items()}

    # ------------------------------------------------------------------ queries
    def _new(self, archs: Sequence[ArchGraph], out: list[ArchGraph], taken: set[str], n: int,
             count: bool = True) -> None:
        """Append to ``out`` (up to ``n``) the valid cells of ``archs`` that were never queried
        and are not in ``taken``; rejections of generator draws are counted."""
        for a in archs:
            if len(out) >= n:
                return
            if not self.space.is_valid(a):
                self.counters["invalid"] += count
                continue
            k = self.space.key(a)
            if k in self.keys or k in taken:
                self.counters["repeat"] += count
                continue
            taken.add(k)
            out.append(a)

    def random_batch(self, n: int, fill: bool = False, out: list | None = None,
                     taken: set | None = None) -> list[ArchGraph]:
        out = [] if out is None else out
        taken = set() if taken is None else taken
        target = len(out) + n if fill else n
        for _ in range(10_000):
            if len(out) >= target:
                break
            before = len(out)
            self._new(self.space.sample_random(self.trial.rng, 1), out, taken, target, count=False)
            if fill and len(out) > before:
                self.counters["random_fill"] += 1
        return out

    def generator_batch(self, n: int) -> list[ArchGraph]:
        """``n`` new cells from the generator: draws in order, or with ``likely_share`` > 0 the
        ``round(likely_share · n)`` most probable new cells (model log-probability) among whole
        chunks of draws first, the rest in draw order; random cells fill a shortfall."""
        out: list[ArchGraph] = []
        taken: set[str] = set()
        c = self.cfg
        n_likely = int(round(c.likely_share * n))
        logps: list[float] = []
        for _ in range(c.max_sample_rounds):
            if len(out) >= n:
                break
            archs, logp = self.model.sample(c.sample_chunk, self.trial.rng, c.temperature, c.explore)
            self.counters["sampled"] += len(archs)
            if n_likely == 0:
                self._new(archs, out, taken, n)
                continue
            for a, lp in zip(archs, logp):  # every new cell of the chunk is a candidate
                before = len(out)
                self._new([a], out, taken, len(out) + 1)
                if len(out) > before:
                    logps.append(float(lp))
        if n_likely and out:
            order = np.argsort(-np.asarray(logps), kind="stable")
            first = set(order[:n_likely].tolist())
            out = [out[i] for i in order[:n_likely]] + [a for i, a in enumerate(out) if i not in first]
            out = out[:n]
        if len(out) < n:
            self.random_batch(n - len(out), fill=True, out=out, taken=taken)
        return out

    def query(self, archs: Sequence[ArchGraph]) -> np.ndarray:
        labels = self.trial.oracle.query(list(archs))
        for a, v in zip(archs, labels):
            self.keys[self.space.key(a)] = len(self.genotypes)
            self.genotypes.append([int(g) for g in self.space.encode(a)])
            self.labels.append(float(v))
        return labels

    def update_baseline(self, batch_labels: np.ndarray) -> None:
        decay = self.cfg.baseline_decay
        if decay <= 0:
            return
        lab = np.asarray(self.labels, dtype=np.float64)
        _, elite_lab = self.elite()
        if self.cfg.reward == "rank":  # rank reward of the batch: (k - r)/k inside the elite, else 0
            k = len(elite_lab)
            r = np.array([(k - int(np.sum(elite_lab > v))) / k if np.isfinite(v) and v >= elite_lab[-1] else 0.0
                          for v in batch_labels]) if k else np.zeros(len(batch_labels))
        else:
            r = reward_weights(np.asarray(batch_labels, dtype=np.float64), lab, self.cfg.reward)
        m = float(np.nanmean(r)) if len(r) else 0.0
        self.baseline = m if self.baseline is None else decay * self.baseline + (1 - decay) * m

    # ------------------------------------------------------------------ reports
    def metrics(self) -> dict[str, Any]:
        """Progress of the search: field-free, label-field and selection-field figures only
        (intermediate reports feed schedulers); ``best_found_acc`` (evaluation field) too."""
        from trainables.baselines import SearchTrace

        trace = SearchTrace(self.archs(), list(self.labels))
        q = len(self.labels)
        best = trace.best_at([q])[0]
        out: dict[str, Any] = {
            "iteration": self.iteration,
            "queries": self.trial.oracle.queries,
            "best_found_reward": float(self.labels[best]) if best is not None else float("nan"),
            "best_found_acc": float(trace.curve(self.trial.evaluator, [q])[0]),
            # no elite while every label so far is NaN (held-out cells answer NaN)
            "elite_mean_reward": float(np.mean(elite)) if (elite := self.elite()[1]).size else float("nan"),
            "gen/sampled": self.counters["sampled"],
            "gen/invalid": self.counters["invalid"],
            "gen/repeat": self.counters["repeat"],
            "gen/random_fill": self.counters["random_fill"],
        }
        if self.baseline is not None:
            out["reward_baseline"] = self.baseline
        out.update(self.losses)
        return out


def read_trace(checkpoint: str | Path):
    """The queried cells of a GraphPNAS checkpoint as a :class:`~trainables.baselines.SearchTrace`
    (query order, label-field values) — for best-found curves at any budget."""
    from trainables.baselines import SearchTrace
    from trainables.spaces import get_space

    state = lifecycle.read_checkpoint(checkpoint)["run"]
    space = get_space(state["space"])
    return SearchTrace([space.decode(g) for g in state["genotypes"]], [float(v) for v in state["labels"]])


def _nb101_guard(cfg: common.BenchmarkConfig) -> None:
    if cfg.space != "nb101":
        return
    from trainables.spaces import load_table

    n = len(load_table("nb101", cfg.data_dir))
    if n < NB101_MIN_ROWS:
        raise ValueError(
            f"graphpnas: the NB101 table holds only {n:,} cells — too small for search (the 500-row "
            f"sample cannot stand in for the 423,624-cell space: most generated cells would be "
            f"unknown). Pass the full official table (nasbench_only108.tfrecord) as data_dir; "
            f"search needs at least {NB101_MIN_ROWS:,} cells.")


def reported_metrics(config: dict[str, Any]) -> dict[str, str]:
    """The metrics :func:`train` reports at its end → role (:func:`trainables.common.metric_role`)."""
    return {**common.reported_metrics(config), "best_found_acc": "evaluation"}


def validate_config(config: dict[str, Any]) -> None:
    """Raise ``ValueError`` (one line) for a config :func:`train` cannot run, before anything launches."""
    lifecycle.validate(GraphPNASRun, config)
    budget = config.get("query_budget")
    if budget is not None and budget < 1:
        raise ValueError(f"graphpnas: a search needs a query_budget >= 1 (default {lifecycle.SEARCH_BUDGET}), "
                         f"got {budget!r}")
    _nb101_guard(common.BenchmarkConfig.from_config(config))


def train(config: dict[str, Any]) -> None:
    """Run one GraphPNAS search (the trainable contract; resumable from its checkpoints)."""
    validate_config(config)
    lifecycle.train(GraphPNASRun, config)
