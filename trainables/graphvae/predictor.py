"""A few-label performance predictor on the graph VAE's encoder (issue 19, part 3).

The point of an unsupervised graph VAE for prediction is that its encoder can be trained on
every cell of a space without a single label (reconstruction + β·KL: a ``graphvae.train`` trial
with ``n_labels = 0`` — no oracle query), and a predictor then needs few labels on top of it
(arch2vec's recipe). :func:`fit` trains such a predictor on ``M`` labelled cells only:

* **encoder** — a :class:`~trainables.graphvae.model.GraphVAE`'s encoder, pretrained (its
  state dict) or freshly initialised (``vae_state=None``: the from-scratch ablation, the same
  architecture without pretraining);
* **features** — ``μ`` ``[B, L]`` or the encoder's pooled ``readout`` ``[B, 2H]``;
* **head** — an MLP ``features → score``; the encoder frozen (``encoder_lr = 0``) or fine-tuned
  at its own learning rate;
* **loss** — ``mse_weight · MSE(score, y_std) + rank_weight · pairwise logistic loss`` over the
  pairs of each minibatch (Kendall τ counts ordered pairs: the ranking loss optimises them);
* **ensemble** — ``ensemble`` members from different seeds, their scores averaged;
* **unlabelled cells during the fit** (off by default; neither helped) — ``recon_weight``: keep
  fitting recon + β·KL on them; ``pseudo_steps``: self-training on the ensemble's scores of them;
* **canonical cells** (the bench's ``canonical`` switch, :func:`iso_representatives`): every
  cell fed as its isomorphism class's representative.

What the pretraining sees: the measured default pretrains on *all* cells of the space, the
test cells of the split included **without their labels** — the transductive semi-supervised
setting arch2vec uses; the bench's ``pretrain: "train"`` pretrains on the training side only
(inductive). The predictor's fit sees the labels of its ``M`` labelled cells and nothing else.
Measured (``bench/graphvae_results.md``, "Few-label predictor"): pretrained and from-scratch
encoders rank alike (Δτ ≤ +0.02, not significant, at 39–1,000 labels); both far above a
random forest on one-hot ops.

:class:`Predictor` holds the trained members; its ``predict`` maps cells to label units.
The evaluation protocol (:func:`iso_split`, :func:`pick_labels`): an isomorphism-class split —
no test cell shares its function (the table's key) with a training cell — and a seeded choice
of ``M`` labelled training cells. Measured: ``bench/graphvae_predictor.py`` and
``bench/graphvae_results.md``.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainables.degrade import visible_mask
from trainables.graphvae.model import GraphVAE, kl_divergence

__all__ = ["PredictorConfig", "Predictor", "fit", "iso_representatives", "iso_split", "pick_labels",
           "pairwise_rank_loss"]

# Named random streams of :func:`fit` (numpy / torch seeds ``[seed, PREDICTOR_STREAM, member]``).
PREDICTOR_STREAM = 19


@dataclass(frozen=True)
class PredictorConfig:
    """How a predictor is fitted on few labels.

    Defaults (chosen on tuning seeds 100–101 only, ``bench/graphvae_results.md``, "Few-label
    predictor"): fine-tune the pretrained encoder at 1e-3 with the ranking loss alone, ``μ``
    features, 5 members. A frozen encoder (``encoder_lr = 0``) ranked far worse (τ 0.32 / 0.47
    at 39 / 156 labels against 0.65 / 0.73, seed 100); recon on the unlabelled cells during the
    fine-tuning and self-training did not help. With ``mse_weight = 0`` the predictions are
    ranking scores in the label's units only up to a monotone map (τ is what they serve).
    """

    features: Literal["mu", "readout"] = "mu"
    encoder_lr: float = 1e-3         # 0: frozen encoder; > 0: fine-tuned at this learning rate
    head_hidden: int = 64
    lr: float = 1e-3                 # the head's learning rate (Adam)
    weight_decay: float = 1e-4
    steps: int = 300
    batch_size: int = 128            # labelled cells per step (all of them when fewer)
    mse_weight: float = 0.0
    rank_weight: float = 1.0
    ensemble: int = 5
    # semi-supervised fine-tuning: each step also fits recon + β·KL on a minibatch of the
    # unlabelled cells through the VAE's decoder (needs encoder_lr > 0 and the cells)
    recon_weight: float = 0.0
    unlabelled_batch: int = 64
    beta: float = 0.05               # the VAE's KL weight (graphvae's default)
    # self-training: after the ensemble is fit, each member trains ``pseudo_steps`` more steps
    # with a minibatch of unlabelled cells whose targets are the ensemble's mean scores
    pseudo_steps: int = 0
    pseudo_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.features not in ("mu", "readout"):
            raise ValueError(f"predictor: features must be mu or readout, got {self.features!r}")
        for name in ("head_hidden", "steps", "batch_size", "ensemble", "unlabelled_batch"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"predictor: {name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("encoder_lr", "weight_decay", "mse_weight", "rank_weight", "recon_weight", "beta"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"predictor: {name} must be >= 0, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"predictor: lr must be > 0, got {self.lr!r}")
        if self.mse_weight == 0 and self.rank_weight == 0:
            raise ValueError("predictor: mse_weight and rank_weight are both 0: nothing to fit")
        if self.recon_weight > 0 and self.encoder_lr == 0:
            raise ValueError("predictor: recon_weight > 0 trains the encoder: set encoder_lr > 0")
        if int(self.pseudo_steps) < 0 or not float(self.pseudo_weight) >= 0:
            raise ValueError("predictor: pseudo_steps and pseudo_weight must be >= 0")
        if self.pseudo_steps > 0 and self.encoder_lr == 0:
            raise ValueError("predictor: pseudo_steps > 0 trains the encoder: set encoder_lr > 0")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "PredictorConfig":
        """Parse ``config`` (unknown keys refused)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"predictor: unknown config keys {unknown}")
        return cls(**config)


PREDICTOR_DEFAULTS: dict[str, Any] = asdict(PredictorConfig())


# ============================================================================ evaluation protocol
def iso_split(keys: np.ndarray, label_values: np.ndarray, seed: int, train_fraction: float = 0.9,
              withheld: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(train_rows, test_rows)`` of an isomorphism-class split: a seeded ``train_fraction`` of
    the distinct keys (functions) trains, the rest tests; no key on both sides. Rows in
    ``withheld`` (bool ``[R]``) are on neither side (tuning keeps the measurement's test cells
    out this way). The training side is the oracle's own :func:`~trainables.degrade.visible_mask`
    at ``train_fraction`` and ``seed`` — what a ``graphvae.train`` trial with those keys sees."""
    withheld = np.zeros(len(keys), dtype=bool) if withheld is None else np.asarray(withheld, dtype=bool)
    train = visible_mask(withheld, keys, label_values, train_fraction, seed)
    test = ~train & ~withheld & np.isfinite(label_values)
    return np.nonzero(train)[0], np.nonzero(test)[0]


def pick_labels(train_rows: np.ndarray, n_labels: int, seed: int) -> np.ndarray:
    """The seeded ``n_labels`` training rows that get labels (the random forest's draw in
    ``bench/graphvae_measure.py``, so every method sees the same labelled cells)."""
    return np.random.default_rng([seed, n_labels]).choice(train_rows, n_labels, replace=False)


def iso_representatives(keys: np.ndarray, preference: np.ndarray) -> np.ndarray:
    """For each row the row that stands for its isomorphism class: the class member with the
    highest ``preference`` (ties: the lowest row). ``keys``, ``preference`` ``[R]`` → ``[R]``
    row indices. Feeding every cell as its representative makes a predictor invariant to the
    class by construction (NB201: prefer the most ``none`` ops, so dead edges read as cuts)."""
    keys = np.asarray(keys)
    order = np.lexsort((np.arange(len(keys)), -np.asarray(preference, dtype=np.float64)))
    first: dict = {}
    for r in order.tolist():
        first.setdefault(keys[r], r)
    return np.array([first[k] for k in keys.tolist()], dtype=np.int64)


# ============================================================================ model and training
def pairwise_rank_loss(score: Tensor, y: Tensor) -> Tensor:
    """Mean pairwise logistic loss ``log(1 + exp(−sign(y_i − y_j)·(s_i − s_j)))`` over ordered pairs
    with ``y_i ≠ y_j``: ``score``, ``y`` ``[B]`` → ``[]`` (0 when no pair differs)."""
    sign = torch.sign(y[:, None] - y[None, :])
    mask = sign != 0
    if not bool(mask.any()):
        return score.sum() * 0.0
    return F.softplus(-sign * (score[:, None] - score[None, :]))[mask].mean()


class _Member(nn.Module):
    """One ensemble member: the VAE's encoder and an MLP head on its features."""

    def __init__(self, vae: GraphVAE, features: str, head_hidden: int) -> None:
        super().__init__()
        self.vae, self.features = vae, features
        width = vae.latent if features == "mu" else 2 * vae.hidden
        self.head = nn.Sequential(nn.Linear(width, head_hidden), nn.ReLU(), nn.Linear(head_hidden, 1))

    def embed(self, labels: Tensor, adj: Tensor) -> Tensor:
        """``labels`` ``[B, N]``, ``adj`` ``[B, N, N]`` → features ``[B, L]`` or ``[B, 2H]``."""
        return self.vae.encode(labels, adj)[0] if self.features == "mu" else self.vae.readout(labels, adj)

    def forward(self, labels: Tensor, adj: Tensor) -> Tensor:
        """→ standardised score ``[B]``."""
        return self.head(self.embed(labels, adj)).squeeze(-1)


class Predictor:
    """Trained ensemble members and the label standardisation ``(mean, std)``."""

    def __init__(self, members: Sequence[_Member], norm: tuple[float, float]) -> None:
        self.members, self.norm = list(members), norm

    @torch.no_grad()
    def predict(self, labels: np.ndarray, adj: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """``labels`` ``[B, N]``, ``adj`` ``[B, N, N]`` (:class:`GraphCodec` arrays) → predicted
        label ``[B]`` (the ensemble mean, in the label's units)."""
        out = np.zeros(len(labels))
        for i in range(0, len(labels), chunk):
            lab, a = torch.from_numpy(np.asarray(labels[i:i + chunk])), torch.from_numpy(np.asarray(adj[i:i + chunk]))
            out[i:i + chunk] = torch.stack([m(lab, a) for m in self.members]).mean(0).numpy()
        return out * self.norm[1] + self.norm[0]


def fit(vae_state: dict[str, Tensor] | Sequence[dict[str, Tensor]] | None, dims: dict[str, int], labels: np.ndarray, adj: np.ndarray,
        y: np.ndarray, cfg: PredictorConfig, seed: int,
        unlabelled: tuple[np.ndarray, np.ndarray] | None = None) -> Predictor:
    """Fit a predictor on the labelled cells only.

    Args:
        vae_state: a pretrained :class:`GraphVAE`'s state dict, or a list of them (member ``k``
            starts from state ``k mod len``: an ensemble over pretrainings), or ``None`` for a
            fresh encoder (the from-scratch ablation; then ``cfg.encoder_lr`` should be > 0).
        dims: ``{"n_nodes", "n_ops", "hidden", "latent"}`` of the VAE.
        labels, adj: the ``M`` labelled cells, ``[M, N]`` and ``[M, N, N]``.
        y: their labels ``[M]`` — the only labels the fit sees.
        cfg: the fitting settings; seed: member ``k`` draws from ``[seed, PREDICTOR_STREAM, k]``.
        unlabelled: cells without labels, ``([U, N], [U, N, N])``, for ``cfg.recon_weight > 0``.
    """
    if (cfg.recon_weight > 0 or cfg.pseudo_steps > 0) and (unlabelled is None or not len(unlabelled[0])):
        raise ValueError("predictor: recon_weight or pseudo_steps > 0 needs unlabelled cells")
    y = np.asarray(y, dtype=np.float64)
    if len(y) != len(labels) or len(y) != len(adj):
        raise ValueError(f"predictor: {len(labels)} cells, {len(adj)} adjacencies and {len(y)} labels")
    if len(y) < 2 or not np.isfinite(y).all():
        raise ValueError("predictor: needs at least 2 labelled cells with finite labels")
    sd = float(y.std())
    norm = (float(y.mean()), sd if sd > 0 else 1.0)
    y_t = torch.as_tensor((y - norm[0]) / norm[1], dtype=torch.float32)
    lab_t, adj_t = torch.from_numpy(np.asarray(labels)), torch.from_numpy(np.asarray(adj))
    states = [vae_state] if vae_state is None or isinstance(vae_state, dict) else list(vae_state)
    members = []
    for k in range(cfg.ensemble):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.SeedSequence([seed, PREDICTOR_STREAM, k]).generate_state(1)[0]))
            vae = GraphVAE(dims["n_nodes"], dims["n_ops"], dims["hidden"], dims["latent"])
            if states[k % len(states)] is not None:
                vae.load_state_dict(copy.deepcopy(states[k % len(states)]))
            member = _Member(vae, cfg.features, cfg.head_hidden)
        members.append(_train_member(member, lab_t, adj_t, y_t, cfg, np.random.default_rng([seed, PREDICTOR_STREAM, k]),
                                     unlabelled, cfg.steps))
    if cfg.pseudo_steps > 0:
        assert unlabelled is not None
        teacher = Predictor(members, (0.0, 1.0))
        pseudo = (*unlabelled, torch.as_tensor(teacher.predict(*unlabelled), dtype=torch.float32))
        members = [_train_member(m, lab_t, adj_t, y_t, cfg, np.random.default_rng([seed, PREDICTOR_STREAM, k, 1]),
                                 unlabelled, cfg.pseudo_steps, pseudo) for k, m in enumerate(members)]
    return Predictor(members, norm)


def _train_member(member: _Member, labels: Tensor, adj: Tensor, y: Tensor, cfg: PredictorConfig,
                  rng: np.random.Generator, unlabelled: tuple[np.ndarray, np.ndarray] | None, steps: int,
                  pseudo: tuple[np.ndarray, np.ndarray, Tensor] | None = None) -> _Member:
    """``steps`` Adam steps on the labelled minibatch loss (+ recon on ``unlabelled``, + the same
    loss on a minibatch of ``pseudo`` = (labels, adj, target scores) cells)."""
    frozen = cfg.encoder_lr == 0
    member.requires_grad_(True)
    groups = [{"params": list(member.head.parameters()), "lr": cfg.lr}]
    if frozen:
        member.vae.requires_grad_(False)
        with torch.no_grad():   # a frozen encoder's features are computed once
            feats = member.embed(labels, adj)
    else:
        params = member.vae.parameters() if cfg.recon_weight > 0 else member.vae.encoder_parameters()
        groups.append({"params": list(params), "lr": cfg.encoder_lr})
    opt = torch.optim.Adam(groups, weight_decay=cfg.weight_decay)
    m = len(y)
    noise = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))   # the VAE's ε
    member.train()
    for _ in range(steps):
        idx = torch.from_numpy(rng.choice(m, size=cfg.batch_size, replace=False)) if m > cfg.batch_size \
            else torch.arange(m)
        score = member.head(feats[idx]).squeeze(-1) if frozen else member(labels[idx], adj[idx])
        loss = cfg.mse_weight * F.mse_loss(score, y[idx]) + cfg.rank_weight * pairwise_rank_loss(score, y[idx])
        if cfg.recon_weight > 0:
            loss = loss + cfg.recon_weight * _vae_loss(member.vae, unlabelled, cfg, rng, noise)
        if pseudo is not None:
            j = rng.choice(len(pseudo[2]), size=min(cfg.unlabelled_batch, len(pseudo[2])), replace=False)
            s_u = member(torch.from_numpy(pseudo[0][j]), torch.from_numpy(pseudo[1][j]))
            t_u = pseudo[2][torch.from_numpy(j)]
            loss = loss + cfg.pseudo_weight * (cfg.mse_weight * F.mse_loss(s_u, t_u)
                                               + cfg.rank_weight * pairwise_rank_loss(s_u, t_u))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    member.eval()
    member.requires_grad_(False)
    return member


def _vae_loss(vae: GraphVAE, cells: tuple[np.ndarray, np.ndarray], cfg: PredictorConfig,
              rng: np.random.Generator, noise: torch.Generator) -> Tensor:
    """``recon + β·KL`` (the pretraining loss, per graph) on a random minibatch of ``cells``."""
    pick = rng.choice(len(cells[0]), size=min(cfg.unlabelled_batch, len(cells[0])), replace=False)
    lab, adj = torch.from_numpy(cells[0][pick]), torch.from_numpy(cells[1][pick])
    mu, logvar = vae.encode(lab, adj)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=noise)
    return (vae.recon_loss(vae.unroll(z, lab, adj)) + cfg.beta * kl_divergence(mu, logvar)).mean()
