"""Graph VAE: shapes, teacher forcing vs free decoding, KL, determinism, budgets, resume, every
space, and two trials through Ray Tune."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


torch = pytest.importorskip("torch")

from trainables import graphvae, reporting  # noqa: E402
from trainables.spaces import get_space, load_table  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest

ENAS = {"space": "enas6", "label_field": "cifar10/valid/ws", "eval_field": "cifar10/valid/ws"}
# Smoke size: NB101's 292-cell sample (no subsampling needed), a tiny model, a short search.
SMOKE = dict(space="nb101", seed=5, epochs=2, hidden=16, latent=4, batch_size=64, label_batch=16, n_samples=40,
             ascent_starts=3, ascent_steps=3, ascent_queries=5, recon_check=16)


@pytest.fixture(scope="module")
def smoke(shared_data) -> dict:
    return {**SMOKE, "data_dir": str(shared_data)}


def _run(config: dict, restore_from: str | None = None) -> tuple[list[dict], list[str | None]]:
    with reporting.plain_session(restore_from=restore_from) as s:
        graphvae.train(config)
        return [r.metrics for r in s.reports], [r.checkpoint for r in s.reports]


def _model(space: str, seed: int = 0, hidden: int = 16, latent: int = 6):
    codec = graphvae.GraphCodec(get_space(space))
    torch.manual_seed(seed)
    return graphvae.GraphVAE(codec.n_nodes, codec.n_ops, hidden, latent), codec


def _tensors(codec, archs):
    lab, adj = codec.to_arrays(archs)
    return torch.from_numpy(lab), torch.from_numpy(adj)


# ------------------------------------------------------------------------ model
@pytest.mark.parametrize("space", ["nb201", "nbgraph", "nb101", "enas6"])
def test_encode_decode_shapes_and_codec_round_trip(space):
    model, codec = _model(space)
    sp = codec.space
    archs = sp.sample_random(np.random.default_rng(0), 9)
    lab, adj = _tensors(codec, archs)
    assert codec.from_arrays(lab.numpy(), adj.numpy()) == [sp.decode(sp.encode(a)) for a in archs]
    B, N, L, K = 9, codec.n_nodes, model.latent, codec.n_ops
    mu, logvar = model.encode(lab, adj)
    assert mu.shape == logvar.shape == (B, L)
    d = model.unroll(mu, lab, adj)
    assert d.labels.shape == (B, N) and d.adj.shape == (B, N, N)
    assert d.op_logits.shape == (B, N - 2, K) and d.edge_logits.shape == (B, N * (N - 1) // 2)
    assert d.log_prob.shape == (B,) and bool((d.log_prob < 0).all())
    free = model.unroll(mu)
    assert free.labels.shape == (B, N) and free.adj.shape == (B, N, N)
    assert bool((torch.triu(free.adj, 1) == free.adj).all())  # only edges to later nodes
    # the PyG path (space.to_pyg graphs collated by PyG) encodes the same
    mu_pyg, logvar_pyg = model.encode_batch(codec.to_batch(archs))
    torch.testing.assert_close(mu_pyg, mu)
    torch.testing.assert_close(logvar_pyg, logvar)


@pytest.mark.parametrize("space", ["nb201", "nb101"])
@pytest.mark.parametrize("stochastic", [False, True])
def test_teacher_forcing_a_decoded_graph_reproduces_it(space, stochastic):
    """Teacher forcing a graph the decoder produced gives the same likelihood, and (argmax
    decoding) the teacher-forced logits choose that graph again at every step."""
    model, codec = _model(space, seed=1)
    z = torch.randn(32, model.latent, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        free = model.unroll(z, stochastic=stochastic, generator=torch.Generator().manual_seed(2))
        forced = model.unroll(z, free.labels, free.adj)
    torch.testing.assert_close(forced.log_prob, free.log_prob)
    if not stochastic:
        assert torch.equal(forced.op_logits.argmax(-1) + 1, free.labels[:, 1:-1])
        rows, cols = np.triu_indices(codec.n_nodes, 1)
        order = np.lexsort((rows, cols))
        assert torch.equal((forced.edge_logits > 0).float(), free.adj[:, rows[order], cols[order]])


def test_training_on_a_few_cells_reconstructs_them_exactly():
    model, codec = _model("nb201", seed=3, hidden=32, latent=8)
    sp = codec.space
    archs = sp.sample_random(np.random.default_rng(3), 12)
    lab, adj = _tensors(codec, archs)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(120):
        mu, logvar = model.encode(lab, adj)
        loss = model.recon_loss(model.unroll(mu, lab, adj)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = codec.from_arrays(*model.decode(model.encode(lab, adj)[0]))
    assert [sp.key(a) for a in out] == [sp.key(a) for a in archs] and out == archs


def test_kl_vanishes_for_a_collapsed_posterior():
    mu = torch.randn(5, 3)
    logvar = torch.randn(5, 3)
    kl = graphvae.kl_divergence(mu, logvar)
    assert kl.shape == (5,) and bool((kl > 0).all())
    model, codec = _model("nbgraph", seed=4)
    with torch.no_grad():  # an encoder whose readout ignores its input: q(z|G) = N(0, I)
        model.enc_out.weight.zero_()
        model.enc_out.bias.zero_()
    archs = codec.space.sample_random(np.random.default_rng(4), 20)
    mu, logvar = model.encode(*_tensors(codec, archs))
    assert torch.equal(graphvae.kl_divergence(mu, logvar), torch.zeros(20))
    # ... and then every cell decodes alike: z carries nothing about the graph
    lab, adj = model.decode(mu)
    assert (lab == lab[0]).all() and (adj == adj[0]).all()


def test_ascent_moves_uphill_on_the_objective():
    model, _ = _model("nb201", seed=6)
    z0 = torch.randn(8, model.latent, generator=torch.Generator().manual_seed(6))
    ends, lab, adj = graphvae.ascend(model, z0, steps=5, step_size=0.2, tradeoff=0.5)
    with torch.no_grad():
        before, after = model.objective(z0, 0.5), model.objective(ends, 0.5)
    assert bool((after > before).all())
    assert lab.shape == (5 * 8, model.n_nodes) and adj.shape == (5 * 8, model.n_nodes, model.n_nodes)


def test_complexity_reads_the_cost_column_only(shared_data):
    from trainables.common import open_trial

    oracle = open_trial({"space": "nb201", "data_dir": str(shared_data), "holdout_top_pct": 10.0}).oracle
    table = load_table("nb201", shared_data)
    archs = [table.arch(r) for r in (0, 17, 4000)]
    np.testing.assert_allclose(graphvae.complexity_of(oracle, archs), table.extras["params"][[0, 17, 4000]])
    assert np.isnan(graphvae.complexity_of(oracle, archs, "flops")).all()  # nb201.csv has no FLOPs
    assert oracle.queries == 0  # a cost is free, held-out cells included


# ------------------------------------------------------------------------ the trainable
@pytest.fixture(scope="module")
def smoke_reports(smoke):
    return _run(smoke)


def test_reports_every_epoch_and_the_final_statistics(smoke, smoke_reports):
    reports, ckpts = smoke_reports
    assert [r["epoch"] for r in reports] == [1, 2] and all(c is not None for c in ckpts)
    final = reports[-1]
    assert final["done"] and final["label_field"] == "cifar10/valid/108"
    for k in ("validity", "uniqueness", "novelty", "top5_pct", "queries", "loss/recon", "loss/kl", "loss/perf",
              "loss/cmplx", "recon_acc", "ascent/found", "ascent/queried", "best_found_acc"):
        assert k in final
    assert 0 <= final["validity"] <= 1 and final["n_train"] == len(load_table("nb101", smoke["data_dir"]))
    # every training cell was labelled (no budget), plus the ascent's queries
    assert final["queries"] == final["n_labels"] + final["ascent/queried"]
    import pyarrow.parquet as pq

    rows = pq.read_table(Path(ckpts[-1], "archs.parquet"))
    assert rows.num_rows == SMOKE["n_samples"]


def test_query_budget_covers_labels_and_ascent(smoke):
    reports, _ = _run({**smoke, "query_budget": 40, "epochs": 1})
    final = reports[-1]
    assert final["n_labels"] == 40 - SMOKE["ascent_queries"]
    assert final["queries"] <= 40 and final["queries"] == final["n_labels"] + final["ascent/queried"]


@pytest.mark.parametrize("space, extra", [
    ("nb201", {"train_fraction": 0.03}),
    ("nbgraph", {"dataset": "cora", "train_fraction": 0.01, "data_dir": None}),  # the embedded default
    ("enas6", {**ENAS, "train_fraction": 0.01}),
])
def test_one_smoke_epoch_on_each_space(smoke, space, extra):
    cfg = {**smoke, "space": space, "epochs": 1, **extra}
    reports, _ = _run(cfg)
    final = reports[-1]
    assert final["done"] and 0 <= final["validity"] <= 1 and np.isfinite(final["loss/recon"])
    assert final["cmplx_available"] == 1.0  # params: from NB201's / NAS-Bench-Graph's table, ENAS-6's computed


@pytest.mark.parametrize("bad, match", [
    ({"latnet": 8}, "unknown config key 'latnet'; did you mean 'latent'"),
    ({"final_samples": "posterior"}, "final_samples"),
    ({"beta": -1.0}, "beta"),
    ({"latent": 0}, "latent must be >= 1"),
    ({"epochs": 1.5}, "epochs must be a whole number"),
    ({"complexity": "latency"}, "complexity"),
    ({"space": "enas6", "dataset": "cifar100"}, "no default accuracy fields"),
])
def test_validate_config_rejects(smoke, bad, match):
    with pytest.raises(ValueError, match=match):
        graphvae.validate_config({**smoke, **bad})


# ------------------------------------------------------------------------ through Ray Tune
# ------------------------------------------------------------------------ study presets
@pytest.mark.parametrize("preset", ["smoke", "local", "full"])
def test_study_presets_are_valid_configs_within_the_studies_budget(preset):
    budget = {"smoke": 30, "local": 100, "full": 100}[preset]  # studies/*.py BUDGET
    cfg = {"space": "nbgraph", "query_budget": budget, **graphvae.PRESETS[preset]}
    graphvae.validate_config(cfg)
    assert cfg["n_labels"] + cfg["ascent_queries"] <= budget  # the ascent keeps queries to spend


def test_smoke_preset_labels_its_share_and_stays_within_the_budget():
    cfg = {"space": "nbgraph", "seed": 0, "query_budget": 30, "n_samples": 50, **graphvae.PRESETS["smoke"]}
    with reporting.plain_session() as s:
        graphvae.train(cfg)
    final = s.reports[-1].metrics
    assert 20 <= final["queries"] <= 30  # 20 labels; a 1-epoch model may find no valid new cell to query
