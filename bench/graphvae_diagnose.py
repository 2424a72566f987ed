"""Why prior samples of the graph VAE are invalid on NB201, and tuning runs on tuning seeds.

    python bench/graphvae_diagnose.py [--seeds 100,101] [--labels 1000] [--set '{"beta": 0.05}']
                                      [--every-epoch] [--json out.json] [--data-dir ../shared/data]

Each seed is one ``graphvae.train`` trial on the NB201 cell split of ``bench/graphvae_measure.py``
(same held-out figures: reconstruction, predictor τ, the trial's own prior validity), run one
after another in this process with one torch thread. On the final model (and, with
``--every-epoch``, on every epoch's checkpoint) it breaks the 1,000 prior samples down:

* what an NB201 cell can get wrong in this decoder: node count and the input/output labels are
  fixed by construction and every op is one of the space's 5, so only the 28 edge decisions can
  break validity (the cell's 10 fixed edges, 18 pairs that must stay empty) — counted per pair,
  as *missing* fixed edges and *extra* edges;
* ``argmax``: validity of greedy decoding of the same ``z`` (is the decoder's own choice wrong,
  or only an unlucky Bernoulli draw?);
* ``p_edges``: the exact probability that all 28 edge draws come out right given ``z`` and the
  sampled ops (teacher-forcing NB201's wiring), averaged over ``z``, with the share of prior
  ``z`` where it is below ½ ("holes": the decoder's mean decision is wrong there) and the same
  average for ``z ~ q(z | G)`` of 1,000 training cells (posterior draws, the trial's noise scale);
* the aggregate posterior against the prior: mean over cells of ``μ² + σ²`` per dimension
  (1 where matched), and the active dimensions (variance of ``μ`` over cells > 0.01).

Not part of the tests.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def breakdown(tr, seed: int, train_archs, noise_scale: float, n: int = 1000) -> dict:
    """The prior-sample diagnosis of one model (``tr`` from ``graphvae.load_model``)."""
    import torch
    import torch.nn.functional as F

    from trainables import graphvae, lifecycle

    m, codec, sp = tr.model, tr.codec, tr.codec.space
    N = codec.n_nodes
    _, ref = codec.to_arrays([sp.decode(np.zeros(len(sp.cardinalities), dtype=np.int64))])
    ref = ref[0].astype(bool)                      # NB201's one wiring
    rows, cols = np.triu_indices(N, 1)
    order = np.lexsort((rows, cols))               # the decoder's t-major pair order
    pr, pc = rows[order], cols[order]
    ref_pairs = torch.as_tensor(ref[pr, pc], dtype=torch.float32)

    g = lifecycle.torch_stream(seed, graphvae.VAE_STREAM, graphvae.SAMPLES)  # the trial's own prior draws
    z = torch.randn((n, m.latent), generator=g)
    lab, adj = m.decode(z, stochastic=True, generator=g)
    valid = np.array([sp.is_valid(a) for a in codec.from_arrays(lab, adj)])
    a_lab, a_adj = m.decode(z)
    valid_argmax = np.array([sp.is_valid(a) for a in codec.from_arrays(a_lab, a_adj)])
    ops_ok = bool((lab[:, 0] == 0).all() and (lab[:, -1] == codec.vocab_size - 1).all()
                  and ((lab[:, 1:-1] >= 1) & (lab[:, 1:-1] <= codec.n_ops)).all())
    up = np.triu(np.ones((N, N), bool), 1)
    missing = (adj == 0) & ref & up
    extra = (adj == 1) & ~ref & up
    bad = ~valid

    def p_edges(zz: torch.Tensor, labels: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            d = m.unroll(zz, torch.as_tensor(labels), torch.as_tensor(np.broadcast_to(ref, (len(zz), N, N)).copy()))
            ll = -F.binary_cross_entropy_with_logits(d.edge_logits, ref_pairs.expand(len(zz), -1),
                                                     reduction="none").sum(-1)
        return ll.exp().numpy()

    p_prior = p_edges(z, lab)
    rng = np.random.default_rng([seed, 7])
    pick = rng.choice(len(train_archs), size=min(n, len(train_archs)), replace=False)
    t_lab, t_adj = codec.to_arrays([train_archs[i] for i in pick])
    with torch.no_grad():
        mu, logvar = m.encode(torch.as_tensor(t_lab), torch.as_tensor(t_adj))
    zq = mu + noise_scale * torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g)
    q_lab, _ = m.decode(zq, stochastic=True, generator=g)
    p_post = p_edges(zq, q_lab)
    second = (mu.pow(2) + logvar.exp()).mean(0).numpy()
    active = int((mu.var(0) > 0.01).sum())
    znorm = z.norm(dim=1).numpy()
    pairs = lambda mask: {f"{s}->{t}": int(c) for (s, t), c in  # noqa: E731
                          sorted(zip(zip(*np.nonzero(up)), mask[:, up].sum(0)), key=lambda x: -x[1]) if c}
    return {
        "validity": float(valid.mean()), "validity_argmax": float(valid_argmax.mean()),
        "ops_and_size_always_legal": ops_ok,
        "invalid": int(bad.sum()),
        "invalid_missing_only": int((bad & missing.any((1, 2)) & ~extra.any((1, 2))).sum()),
        "invalid_extra_only": int((bad & extra.any((1, 2)) & ~missing.any((1, 2))).sum()),
        "invalid_both": int((bad & missing.any((1, 2)) & extra.any((1, 2))).sum()),
        "wrong_edges_per_invalid": float((missing | extra)[bad].sum((1, 2)).mean()) if bad.any() else 0.0,
        "missing_by_pair": pairs(missing[bad]) if bad.any() else {},
        "extra_by_pair": pairs(extra[bad]) if bad.any() else {},
        "invalid_but_argmax_valid": int((bad & valid_argmax).sum()),
        "p_edges_prior": float(p_prior.mean()), "prior_holes": float((p_prior < 0.5).mean()),
        "p_edges_posterior": float(p_post.mean()),
        "znorm_valid": float(znorm[valid].mean()) if valid.any() else float("nan"),
        "znorm_invalid": float(znorm[bad].mean()) if bad.any() else float("nan"),
        "agg_second_moment_mean": float(second.mean()), "agg_second_moment_min": float(second.min()),
        "agg_second_moment_max": float(second.max()), "active_dims": active,
        "kl_mean": float(graphvae.kl_divergence(mu, logvar).mean()),
    }


def run_seed(seed: int, n_labels, data_dir: str, overrides: dict, every_epoch: bool) -> dict:
    import graphvae_measure as gm

    from trainables import graphvae, reporting

    run = gm.setup("nb201", seed, n_labels, data_dir, overrides)
    cfg = graphvae.VAEConfig.from_config({**graphvae.DEFAULTS, **overrides})
    t0 = time.perf_counter()
    with reporting.plain_session() as session:
        graphvae.train(run["config"])
    wall = time.perf_counter() - t0
    final = session.reports[-1].metrics
    out = gm.evaluate(run, final, session.last_checkpoint, wall)
    train_archs = [run["table"].arch(r) for r in np.setdiff1d(np.arange(len(run["table"])), run["test"])]
    out["final_losses"] = {k: round(float(v), 4) for k, v in final.items() if k.startswith("loss/")}
    out["diag"] = breakdown(graphvae.load_model(session.last_checkpoint), seed, train_archs, cfg.noise_scale)
    if every_epoch:
        out["curve"] = []
        for rep in session.reports[:-1]:
            d = breakdown(graphvae.load_model(rep.checkpoint), seed, train_archs, cfg.noise_scale, n=1000)
            out["curve"].append({"epoch": rep.metrics["epoch"], "recon_acc_train": rep.metrics["recon_acc"],
                                 **{k: d[k] for k in ("validity", "validity_argmax", "p_edges_prior",
                                                      "prior_holes", "p_edges_posterior", "kl_mean")},
                                 "loss/recon": rep.metrics.get("loss/recon")})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="100,101")
    p.add_argument("--labels", default="1000", help="labelled training cells (an integer or 'all')")
    p.add_argument("--set", default="{}", help="JSON overrides of the graph-VAE config")
    p.add_argument("--every-epoch", action="store_true", help="diagnose every epoch's checkpoint too")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--json", default=None, help="append one JSON line per seed here")
    a = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    tempfile.tempdir = tempfile.mkdtemp(prefix="gv-diag-")
    overrides = {"n_samples": 1000, **json.loads(a.set)}
    n_labels = a.labels if a.labels == "all" else int(a.labels)
    for seed in (int(s) for s in a.seeds.split(",")):
        r = run_seed(seed, n_labels, a.data_dir, overrides, a.every_epoch)
        r["set"] = json.loads(a.set)
        line = json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()})
        print(line, flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
