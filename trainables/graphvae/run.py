"""The graph VAE as a trial: labels through the oracle, the epochs, the latent search, the samples.

What training sees
------------------
Only the oracle: ``oracle.training_archs()`` (free, unlabelled: the degraded benchmark —
held-out top cells and the ``train_fraction`` subsample apply) is the reconstruction set; a
seeded ``n_labels`` of them are labelled through ``oracle.query`` (every label a counted
query, noise included); the performance loss uses those labels only. Complexity is the
benchmark's ``params`` (or ``flops``) column — a cost computable from the cell, not an
accuracy, read through :func:`complexity_of`, which exposes that column and nothing else
(ENAS-6's table carries a computed count, see :mod:`trainables.spaces.enas6`); where a table
has none, the complexity loss and trade-off are off (reported as ``cmplx_available = 0``).

Search and samples
------------------
After the last epoch the ``ascent_starts`` best labelled cells are encoded and moved
``ascent_steps`` times by ``z ← z + step_size · ∇_z [perf(z) − c · complexity(z)]``; every
step's argmax decoding is collected. The distinct valid cells never labelled before are ranked
by the predictors (on their own encodings) and the best ``ascent_queries`` queried (within
the budget). ``n_samples`` cells are then decoded — from the prior ``N(0, I)`` (default,
``final_samples = "prior"``: validity, uniqueness and novelty of the generative model) or
around the ascent's end points (``"ascent"``: the distribution the search ends in) — and
scored by :func:`trainables.common.finish`.

One :meth:`GraphVAERun.step` is one epoch, reported with a checkpoint (model, optimiser, RNG
streams, labelled set, oracle ledger: :mod:`trainables.lifecycle`); a resumed trial continues
exactly; the last epoch's figures go into the final report with the search's. :func:`load_model` rebuilds the model of a
checkpoint (for measurements on held-out cells, see ``bench/graphvae_measure.py``).

"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainables import common, lifecycle
from trainables.arch import ArchGraph
from trainables.graphvae.model import GraphCodec, GraphVAE, ascend, kl_divergence

# Named random streams (the numbers the measurements were made with): torch streams
# (seed, VAE_STREAM, NOISE | SAMPLES); numpy (seed, RECON_CHECK_STREAM) picks recon_acc's cells.
VAE_STREAM, NOISE, SAMPLES = 4099, 1, 2
RECON_CHECK_STREAM = 11


@dataclass(frozen=True)
class VAEConfig:
    """The generator's own part of a config (the benchmark part is :class:`common.BenchmarkConfig`).

    Loss weights, latent size, noise scale and the search's ascent settings are all plain
    config keys, so studies can put Optuna on any of them.
    """

    # model (D-VAE: hidden 501, latent 56 — sized down for CPU trials)
    hidden: int = 64
    latent: int = 16
    # loss: recon + beta·KL + w_perf·MSE(perf) + w_cmplx·MSE(complexity)
    beta: float = 0.05                # the authors' code: 0.005 (see the module docstring)
    noise_scale: float = 1.0          # z = μ + noise_scale·σ·ε; D-VAE's eps_scale: 0.01
    w_perf: float = 1.0
    w_cmplx: float = 1.0
    complexity: Literal["params", "flops"] = "params"   # a cost column of the table
    # training
    epochs: int = 12
    batch_size: int = 128
    lr: float = 4e-3
    lr_final: float = 0.05            # cosine decay to lr · lr_final over the epochs
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    n_labels: int | None = None       # training cells labelled through the oracle (None: all)
    label_batch: int = 64             # labelled cells per step for the performance loss
    # search
    ascent_starts: int = 10           # best labelled cells the ascent starts from
    ascent_steps: int = 20
    step_size: float = 0.5
    tradeoff: float = 0.0             # c in perf(z) − c·complexity(z), standardised units
    ascent_queries: int = 50          # new cells from the ascent scored by the oracle
    final_samples: Literal["prior", "ascent"] = "prior"
    sample_spread: float | None = None  # std of the final z around their centre; None: 1 (prior), 0 (ascent)
    recon_check: int = 256            # training cells behind each epoch's recon_acc

    def __post_init__(self) -> None:
        o = "graphvae"
        lifecycle.positive(o, self, "hidden", "latent", "batch_size", "label_batch", "ascent_starts", "recon_check")
        lifecycle.positive(o, self, "epochs", "ascent_steps", "ascent_queries", "n_labels", "beta", "noise_scale",
                           "w_perf", "w_cmplx", "weight_decay", "grad_clip", "step_size", "tradeoff", "lr_final",
                           "sample_spread", zero_ok=True)
        if not self.lr > 0:
            raise ValueError(f"{o}: lr must be > 0, got {self.lr!r}")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "VAEConfig":
        """Parse a trial config (its benchmark keys are left to :class:`common.BenchmarkConfig`)."""
        return GraphVAERun.parse(config)


DEFAULTS: dict[str, Any] = asdict(VAEConfig())

# Sizes for the studies' presets (studies/*.py, 30 / 100 / 100 queries per trial): part of the
# budget labels training cells, the rest scores the ascent's cells, and the generated set is
# decoded around the ascent's end points (what the search found, as the other generators'
# samples are). local: 35-50 s a trial on one core (NB201 / NAS-Bench-Graph, measured),
# prior validity ~97 % on NB201 at 6 epochs; full = the defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"epochs": 1, "hidden": 16, "latent": 4, "batch_size": 256, "label_batch": 16, "n_labels": 20,
              "ascent_starts": 3, "ascent_steps": 3, "ascent_queries": 5, "recon_check": 16,
              "final_samples": "ascent"},
    "local": {"epochs": 6, "n_labels": 80, "ascent_queries": 20, "recon_check": 64, "final_samples": "ascent"},
    "full": {"n_labels": 50, "ascent_queries": 50, "final_samples": "ascent"},
}


def complexity_of(oracle, archs: Sequence[ArchGraph], name: str = "params") -> np.ndarray:
    """Cost of each cell (``params`` or ``flops`` column of the benchmark; NaN where absent).

    A cost is a function of the cell, not an accuracy: the oracle hands it out free
    (:meth:`trainables.oracle.Oracle.cost`) and nothing else of the table.
    """
    return oracle.cost(archs, name)


def _standardise(v: np.ndarray) -> tuple[float, float]:
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return 0.0, 1.0
    sd = float(v.std())
    return float(v.mean()), sd if sd > 0 else 1.0


class GraphVAERun(lifecycle.GeneratorRun):
    """One graph-VAE trial (:mod:`trainables.lifecycle`): a step is one epoch; the latent
    search is :meth:`conclude`."""

    name = "graphvae"
    Config = VAEConfig

    def __init__(self, cfg: VAEConfig, trial: common.Trial) -> None:
        super().__init__(cfg, trial)
        self.space = trial.oracle.space
        self.codec = GraphCodec(self.space)
        self.device = torch.device(trial.device)
        oracle = trial.oracle
        self.archs = oracle.training_archs()              # free, unlabelled
        if not self.archs:
            raise ValueError("graphvae: the degraded benchmark leaves no training architectures")
        labels, adj = self.codec.to_arrays(self.archs)
        self.labels = torch.from_numpy(labels).to(self.device)
        self.adj = torch.from_numpy(adj).to(self.device)
        cm = complexity_of(trial.oracle, self.archs, cfg.complexity)
        self.cmplx_norm = _standardise(cm)
        self.cmplx = torch.as_tensor((cm - self.cmplx_norm[0]) / self.cmplx_norm[1], dtype=torch.float32,
                                     device=self.device)
        self.cmplx_ok = torch.isfinite(self.cmplx)
        # the labelled subset: a seeded choice, every label a counted query; the ascent's
        # queries are kept back from the budget
        n_lab = len(self.archs) if cfg.n_labels is None else min(int(cfg.n_labels), len(self.archs))
        if oracle.remaining is not None:
            n_lab = max(0, min(n_lab, oracle.remaining - cfg.ascent_queries))
        rng = trial.rng
        pick = np.sort(rng.choice(len(self.archs), size=n_lab, replace=False)) if n_lab < len(self.archs) \
            else np.arange(len(self.archs))
        y = oracle.query([self.archs[i] for i in pick]) if n_lab else np.zeros(0)
        ok = np.isfinite(y)
        self.lab_idx, self.lab_y = pick[ok], y[ok]
        self.perf_norm = _standardise(self.lab_y)
        self.lab_t = torch.as_tensor(self.lab_idx, device=self.device)
        self.lab_z = torch.as_tensor((self.lab_y - self.perf_norm[0]) / self.perf_norm[1], dtype=torch.float32,
                                     device=self.device)
        self.model = GraphVAE(self.codec.n_nodes, self.codec.n_ops, cfg.hidden, cfg.latent).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                    foreach=True)
        self.noise = lifecycle.torch_stream(trial.config.seed, VAE_STREAM, NOISE, device=self.device)
        self.epoch = 0
        self.losses: dict[str, float] = {}
        self.final_ends = torch.zeros((0, cfg.latent))  # the ascent's end points, once it ran
        self.ascent_queried: list[list[int]] = []   # genotypes of the ascent's queried cells
        self.ascent_labels: list[float] = []

    # ------------------------------------------------------------------ lifecycle
    @property
    def done(self) -> bool:
        return self.epoch >= self.cfg.epochs

    def step(self) -> dict[str, Any]:
        self.fit_epoch()
        return self.epoch_metrics()

    def conclude(self, last: dict[str, Any]) -> dict[str, Any]:
        """The latent search: ascent from the best labelled cells, its best new cells queried."""
        metrics = self.epoch_metrics()
        found, ends = self.ascent()
        chosen, y, n_found = self.query_ascent(found)
        self.ascent_queried = [[int(v) for v in self.space.encode(a)] for a in chosen]
        self.ascent_labels = [float(v) for v in y]
        metrics.update(self.search_metrics(chosen, y, n_found))
        metrics["queries"] = self.trial.oracle.queries
        self.final_ends = ends
        return metrics

    def sample(self, n: int) -> tuple[list[ArchGraph], dict[str, Any]]:
        return self.final_archs(torch.as_tensor(self.final_ends, dtype=torch.float32, device=self.device)), {}

    def rngs(self) -> dict[str, Any]:
        return {"trial": self.trial.rng, "noise": self.noise}

    # ------------------------------------------------------------------ training
    def update(self, idx: Tensor) -> dict[str, Tensor]:
        """One joint update on the training cells ``idx`` plus a labelled minibatch."""
        cfg, m = self.cfg, self.model
        b = len(idx)
        j = None
        if len(self.lab_idx) and cfg.w_perf > 0:  # a labelled minibatch rides along in the same encoder pass
            j = torch.randint(len(self.lab_idx), (min(cfg.label_batch, len(self.lab_idx)),),
                              generator=self.noise, device=self.device)
            idx_all = torch.cat([idx, self.lab_t[j]])
        else:
            idx_all = idx
        mu_all, logvar_all = m.encode(self.labels[idx_all], self.adj[idx_all])
        mu, logvar = mu_all[:b], logvar_all[:b]
        eps = torch.randn(mu.shape, generator=self.noise, device=self.device)
        z = mu + cfg.noise_scale * torch.exp(0.5 * logvar) * eps
        recon = m.recon_loss(m.unroll(z, self.labels[idx], self.adj[idx])).mean()
        kl = kl_divergence(mu, logvar).mean()
        p_hat, c_hat = m.predict(mu_all)
        ok = self.cmplx_ok[idx]
        cmplx = F.mse_loss(c_hat[:b][ok], self.cmplx[idx][ok]) if bool(ok.any()) else recon.new_zeros(())
        perf = F.mse_loss(p_hat[b:], self.lab_z[j]) if j is not None else recon.new_zeros(())
        total = recon + cfg.beta * kl + cfg.w_perf * perf + cfg.w_cmplx * cmplx
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(m.parameters(), cfg.grad_clip)
        self.opt.step()
        return {"recon": recon.detach(), "kl": kl.detach(), "perf": perf.detach(), "cmplx": cmplx.detach(),
                "total": total.detach()}

    def fit_epoch(self) -> None:
        cfg = self.cfg
        self.model.train()
        order = self.trial.rng.permutation(len(self.archs))
        sums: dict[str, float] = {}
        n = 0
        n_steps = -(-len(order) // cfg.batch_size)
        for i in range(0, len(order), cfg.batch_size):
            # cosine decay, a function of (epoch, step) only: a resumed trial needs no scheduler state
            progress = (self.epoch + n / n_steps) / max(cfg.epochs, 1)
            scale = cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + np.cos(np.pi * progress))
            for group in self.opt.param_groups:
                group["lr"] = float(cfg.lr * scale)
            idx = torch.as_tensor(order[i:i + cfg.batch_size], device=self.device)
            for k, v in self.update(idx).items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n += 1
        self.model.eval()
        self.epoch += 1
        self.losses = {f"loss/{k}": v / max(n, 1) for k, v in sums.items()}

    @torch.no_grad()
    def recon_acc(self, idx: np.ndarray) -> float:
        """Share of cells ``idx`` rebuilt exactly by argmax decoding of their ``μ``."""
        if len(idx) == 0:
            return float("nan")
        t = torch.as_tensor(idx, device=self.device)
        mu, _ = self.model.encode(self.labels[t], self.adj[t])
        lab, adj = self.model.decode(mu)
        same = (lab == self.labels[t].cpu().numpy()).all(1) & (adj == self.adj[t].cpu().numpy()).all((1, 2))
        return float(same.mean())

    def epoch_metrics(self) -> dict[str, Any]:
        rng = lifecycle.numpy_stream(self.trial.config.seed, RECON_CHECK_STREAM)
        k = min(self.cfg.recon_check, len(self.archs))
        out: dict[str, Any] = {"iteration": self.epoch, "epoch": self.epoch, "queries": self.trial.oracle.queries,
                               "n_labels": len(self.lab_idx), "n_train": len(self.archs),
                               "cmplx_available": float(bool(self.cmplx_ok.any())),
                               "recon_acc": self.recon_acc(rng.choice(len(self.archs), size=k, replace=False))}
        out.update(self.losses)
        return out

    # ------------------------------------------------------------------ search
    def ascent(self) -> tuple[list[ArchGraph], Tensor]:
        """Gradient ascent from the best labelled cells; returns every step's decoded cell
        (step-major, starts excluded) and the end points ``[S, L]``."""
        cfg, m = self.cfg, self.model
        if len(self.lab_idx):
            top = self.lab_idx[np.argsort(-self.lab_y, kind="stable")[: cfg.ascent_starts]]
        else:  # nothing labelled: start anywhere in the training set
            top = self.trial.rng.choice(len(self.archs), size=min(cfg.ascent_starts, len(self.archs)), replace=False)
        t = torch.as_tensor(top, device=self.device)
        with torch.no_grad():
            z, _ = m.encode(self.labels[t], self.adj[t])
        tradeoff = cfg.tradeoff if bool(self.cmplx_ok.any()) else 0.0
        ends, lab, adj = ascend(m, z, cfg.ascent_steps, cfg.step_size, tradeoff)
        return self.codec.from_arrays(lab, adj), ends

    def query_ascent(self, found: Sequence[ArchGraph]) -> tuple[list[ArchGraph], np.ndarray, int]:
        """The distinct valid cells of ``found`` never labelled, ranked by the predictors, the
        best ``ascent_queries`` of them queried (within the budget)."""
        sp, oracle = self.space, self.trial.oracle
        known = {sp.key(self.archs[i]) for i in self.lab_idx}
        new: dict[str, ArchGraph] = {}
        for a in found:
            if sp.is_valid(a):
                k = sp.key(a)
                if k not in known and k not in new:
                    new[k] = a
        cand = list(new.values())
        n = min(len(cand), self.cfg.ascent_queries)
        if oracle.remaining is not None:
            n = min(n, oracle.remaining)
        if n <= 0:
            return [], np.zeros(0), len(cand)
        labels, adj = self.codec.to_arrays(cand)
        with torch.no_grad():
            mu, _ = self.model.encode(torch.from_numpy(labels).to(self.device), torch.from_numpy(adj).to(self.device))
            score = self.model.objective(mu, self.cfg.tradeoff if bool(self.cmplx_ok.any()) else 0.0).cpu().numpy()
        chosen = [cand[i] for i in np.argsort(-score, kind="stable")[:n]]
        return chosen, oracle.query(chosen), len(cand)

    def search_metrics(self, chosen: Sequence[ArchGraph], y: np.ndarray, n_found: int) -> dict[str, Any]:
        ev = self.trial.evaluator
        acc = ev.values(list(chosen))
        thr = ev.thresholds(pcts=(5.0,))[5.0]
        out: dict[str, Any] = {"ascent/found": n_found, "ascent/queried": len(chosen),
                               "ascent/acc_mean": float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan"),
                               "ascent/top5_pct": float(np.mean(acc >= thr)) if len(chosen) else float("nan")}
        best = np.where(np.isfinite(y), y, -np.inf)
        out["ascent/acc_best"] = float(acc[int(np.argmax(best))]) if np.isfinite(best).any() else float("nan")
        # best by label over everything the trial queried (labelled set + ascent)
        all_y = np.concatenate([self.lab_y, np.where(np.isfinite(y), y, -np.inf)])
        if len(all_y) and np.isfinite(all_y).any() and all_y.max() > -np.inf:
            i = int(np.argmax(all_y))
            a = self.archs[self.lab_idx[i]] if i < len(self.lab_idx) else chosen[i - len(self.lab_idx)]
            out["best_found_acc"] = float(ev.values([a])[0])
            out["best_found_reward"] = float(all_y[i])
        else:
            out["best_found_acc"] = out["best_found_reward"] = float("nan")
        return out

    def final_archs(self, ends: Tensor) -> list[ArchGraph]:
        """``n_samples`` stochastic decodings: from the prior, or around the ascent's end points
        (``z = end + sample_spread · ε``; the spread is the diversity knob of the samples)."""
        n = self.trial.config.n_samples
        g = lifecycle.torch_stream(self.trial.config.seed, VAE_STREAM, SAMPLES, device=self.device)
        if self.cfg.final_samples == "ascent" and len(ends):
            z = ends[torch.arange(n, device=self.device) % len(ends)]
            spread = self.cfg.sample_spread or 0.0
            if spread > 0:
                z = z + spread * torch.randn(z.shape, generator=g, device=self.device)
        else:
            spread = 1.0 if self.cfg.sample_spread is None else self.cfg.sample_spread
            z = spread * torch.randn((n, self.cfg.latent), generator=g, device=self.device)
        return self.codec.from_arrays(*self.model.decode(z, stochastic=True, generator=g))

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "losses": self.losses, "final_ends": torch.as_tensor(self.final_ends),
                "ascent_queried": self.ascent_queried, "ascent_labels": self.ascent_labels,
                "lab_idx": self.lab_idx.tolist(), "lab_y": self.lab_y.tolist(),
                "space": self.space.name, "n_nodes": self.codec.n_nodes, "n_ops": self.codec.n_ops,
                "hidden": self.cfg.hidden, "latent": self.cfg.latent,
                "perf_norm": list(self.perf_norm), "cmplx_norm": list(self.cmplx_norm),
                "label_field": self.trial.config.label_field, "eval_field": self.trial.config.eval_field,
                "model": self.model.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.epoch, self.losses = int(state["epoch"]), dict(state["losses"])
        self.final_ends = state["final_ends"].to(self.device).reshape(-1, self.cfg.latent)
        self.ascent_queried = [list(g) for g in state["ascent_queried"]]
        self.ascent_labels = [float(v) for v in state["ascent_labels"]]
        self.lab_idx = np.asarray(state["lab_idx"], dtype=np.int64)
        self.lab_y = np.asarray(state["lab_y"], dtype=np.float64)
        self.lab_t = torch.as_tensor(self.lab_idx, device=self.device)
        self.model.eval()


class Trained(NamedTuple):
    """A checkpoint's model with what is needed to read its predictions.

    ``perf_norm`` / ``cmplx_norm``: ``(mean, std)`` turning standardised predictions back into
    the label field's percent and the complexity column's units."""

    model: GraphVAE
    codec: GraphCodec
    perf_norm: tuple[float, float]
    cmplx_norm: tuple[float, float]
    state: dict[str, Any]

    @torch.no_grad()
    def predict(self, archs: Sequence[ArchGraph], chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Predicted ``(performance, complexity)`` of ``archs`` in their own units."""
        mu = self.encode(archs, chunk)
        p, c = self.model.predict(mu)
        return (p.cpu().numpy() * self.perf_norm[1] + self.perf_norm[0],
                c.cpu().numpy() * self.cmplx_norm[1] + self.cmplx_norm[0])

    @torch.no_grad()
    def encode(self, archs: Sequence[ArchGraph], chunk: int = 4096) -> Tensor:
        """``μ`` ``[B, L]`` of ``archs``."""
        dev = self.model.device
        out = []
        for i in range(0, len(archs), chunk):
            lab, adj = self.codec.to_arrays(archs[i:i + chunk])
            out.append(self.model.encode(torch.from_numpy(lab).to(dev), torch.from_numpy(adj).to(dev))[0])
        return torch.cat(out) if out else torch.zeros((0, self.model.latent), device=dev)


def load_model(checkpoint: str | Path, device: str = "cpu") -> Trained:
    """The model of a graph-VAE checkpoint (eval mode), for measurements outside the trial."""
    from trainables.spaces import get_space

    state = lifecycle.read_checkpoint(checkpoint, device)["run"]
    codec = GraphCodec(get_space(state["space"]))
    model = GraphVAE(state["n_nodes"], state["n_ops"], state["hidden"], state["latent"]).to(device)
    model.load_state_dict(state["model"])
    model.eval()
    return Trained(model, codec, tuple(state["perf_norm"]), tuple(state["cmplx_norm"]), state)


def read_ascent(checkpoint: str | Path) -> tuple[list[ArchGraph], np.ndarray]:
    """The cells the final ascent queried (ranked order) and the labels the oracle gave them
    (NaN where it refused), from a final checkpoint."""
    from trainables.spaces import get_space

    state = lifecycle.read_checkpoint(checkpoint)["run"]
    space = get_space(state["space"])
    return [space.decode(g) for g in state["ascent_queried"]], np.array(state["ascent_labels"], dtype=np.float64)


def reported_metrics(config: dict[str, Any]) -> dict[str, str]:
    """The metrics :func:`train` reports at its end → role (:func:`trainables.common.metric_role`)."""
    return {**common.reported_metrics(config), "best_found_acc": "evaluation"}


def validate_config(config: dict[str, Any]) -> None:
    """Raise ``ValueError`` (one line) for a config :func:`train` cannot run (before anything launches)."""
    lifecycle.validate(GraphVAERun, config)
    from trainables.spaces import get_space

    GraphCodec(get_space(common.BenchmarkConfig.from_config(config).space))  # graphs of varying size: refused


def train(config: dict[str, Any]) -> None:
    """One graph-VAE trial: fit, search, sample (the trainable contract; resumable)."""
    validate_config(config)
    lifecycle.train(GraphVAERun, config)
