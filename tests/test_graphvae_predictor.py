"""The graph VAE's few-label predictor: readout shapes, the ranking loss, frozen vs fine-tuned
encoders, the isomorphism-class split, label isolation, label-free pretraining, determinism."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from scipy.stats import kendalltau  # noqa: E402

from trainables import graphvae, reporting  # noqa: E402
from trainables.graphvae.predictor import (PredictorConfig, fit, iso_representatives, iso_split,  # noqa: E402
                                           pairwise_rank_loss, pick_labels)
from trainables.spaces import get_space  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest

TINY = dict(head_hidden=8, steps=60, batch_size=16, ensemble=2, lr=1e-2)


def _cells(n: int = 24, seed: int = 0):
    """``n`` random NB201 cells as codec arrays, and a learnable label: 3×3 convs minus 'none's."""
    codec = graphvae.GraphCodec(get_space("nb201"))
    archs = codec.space.sample_random(np.random.default_rng(seed), n)
    lab, adj = codec.to_arrays(archs)
    conv = codec.space.vocab.index("nor_conv_3x3")
    none = codec.space.vocab.index("none")
    y = (lab == conv).sum(1) - (lab == none).sum(1) + 0.01 * np.arange(n)   # distinct values
    dims = {"n_nodes": codec.n_nodes, "n_ops": codec.n_ops, "hidden": 8, "latent": 4}
    return lab, adj, y.astype(np.float64), dims


def _vae_state(dims, seed: int = 3):
    torch.manual_seed(seed)
    return graphvae.GraphVAE(dims["n_nodes"], dims["n_ops"], dims["hidden"], dims["latent"]).state_dict()


def test_readout_is_what_mu_is_read_from():
    lab, adj, _, dims = _cells(5)
    state = _vae_state(dims)
    m = graphvae.GraphVAE(dims["n_nodes"], dims["n_ops"], dims["hidden"], dims["latent"])
    m.load_state_dict(state)
    L, A = torch.from_numpy(lab), torch.from_numpy(adj)
    r = m.readout(L, A)
    assert r.shape == (5, 2 * dims["hidden"])
    mu, logvar = m.encode(L, A)
    torch.testing.assert_close(torch.cat([mu, logvar], -1), m.enc_out(r))
    assert {id(p) for p in m.encoder_parameters()} == {id(p) for mod in (m.enc_in, m.enc, m.enc_out)
                                                       for p in mod.parameters()}


def test_pairwise_rank_loss():
    y = torch.tensor([0.0, 1.0, 2.0])
    assert float(pairwise_rank_loss(torch.zeros(3), y)) == pytest.approx(np.log(2))
    assert float(pairwise_rank_loss(10 * y, y)) < 1e-4 < float(pairwise_rank_loss(-10 * y, y))
    s = torch.zeros(3, requires_grad=True)
    tied = pairwise_rank_loss(s, torch.ones(3))       # no ordered pair: zero, still differentiable
    tied.backward()
    assert float(tied.detach()) == 0.0 and s.grad is not None


@pytest.mark.parametrize("features,encoder_lr,pretrained", [("mu", 0.0, True), ("readout", 3e-3, True),
                                                            ("mu", 3e-3, False)])
def test_fit_learns_the_ranking_of_its_labels(features, encoder_lr, pretrained):
    lab, adj, y, dims = _cells()
    state = _vae_state(dims) if pretrained else None
    cfg = PredictorConfig(features=features, encoder_lr=encoder_lr, **TINY)
    pred = fit(state, dims, lab, adj, y, cfg, seed=0)
    p = pred.predict(lab, adj)
    assert p.shape == (len(y),)
    assert kendalltau(p, y)[0] > 0.5
    for m in pred.members:
        enc = {k: v for k, v in m.vae.state_dict().items() if k.startswith("enc")}
        if state is not None and encoder_lr == 0:   # a frozen encoder is the pretrained one
            assert all(torch.equal(v, state[k]) for k, v in enc.items())
        elif state is not None:
            assert any(not torch.equal(v, state[k]) for k, v in enc.items())


def test_semi_supervised_fits_use_the_unlabelled_cells():
    """Recon on unlabelled cells and self-training on them change the fit, still learn the
    ranking, and are refused without unlabelled cells or with a frozen encoder."""
    lab, adj, y, dims = _cells(32)
    pool = _cells(48, seed=1)[:2]
    base = dict(encoder_lr=3e-3, **TINY)
    plain = fit(_vae_state(dims), dims, lab, adj, y, PredictorConfig(**base), seed=0).predict(lab, adj)
    for extra in ({"recon_weight": 0.5, "unlabelled_batch": 8}, {"pseudo_steps": 10, "unlabelled_batch": 8}):
        cfg = PredictorConfig(**base, **extra)
        p = fit(_vae_state(dims), dims, lab, adj, y, cfg, seed=0, unlabelled=pool).predict(lab, adj)
        assert not np.array_equal(p, plain) and kendalltau(p, y)[0] > 0.5
        with pytest.raises(ValueError, match="unlabelled"):
            fit(_vae_state(dims), dims, lab, adj, y, cfg, seed=0)
        with pytest.raises(ValueError, match="encoder_lr"):
            PredictorConfig(**{**base, "encoder_lr": 0.0}, **extra)


def test_an_ensemble_over_pretrainings_starts_member_k_from_state_k():
    lab, adj, y, dims = _cells()
    states = [_vae_state(dims, seed=3), _vae_state(dims, seed=4)]
    pred = fit(states, dims, lab, adj, y, PredictorConfig(**{**TINY, "encoder_lr": 0.0, "ensemble": 3}), seed=0)
    for k, m in enumerate(pred.members):   # frozen: each encoder is still its pretraining's
        assert all(torch.equal(v, states[k % 2][name]) for name, v in m.vae.state_dict().items())


def test_same_seed_same_predictions_other_seed_other():
    lab, adj, y, dims = _cells()
    cfg = PredictorConfig(encoder_lr=1e-3, **TINY)
    a = fit(_vae_state(dims), dims, lab, adj, y, cfg, seed=4).predict(lab, adj)
    b = fit(_vae_state(dims), dims, lab, adj, y, cfg, seed=4).predict(lab, adj)
    c = fit(_vae_state(dims), dims, lab, adj, y, cfg, seed=5).predict(lab, adj)
    np.testing.assert_array_equal(a, b)
    assert kendalltau(a, y)[0] == kendalltau(b, y)[0]
    assert not np.array_equal(a, c)


def test_iso_split_shares_no_function_and_labels_come_from_training_rows():
    rng = np.random.default_rng(0)
    keys = np.array([f"k{i}" for i in rng.integers(0, 40, size=300)], dtype=object)
    values = rng.normal(size=300)
    withheld = np.isin(keys, ["k1", "k2", "k3"])
    train, test = iso_split(keys, values, seed=7, train_fraction=0.8, withheld=withheld)
    assert not set(keys[train]) & set(keys[test])
    assert not withheld[train].any() and not withheld[test].any()
    assert len(train) + len(test) + withheld.sum() == len(keys)
    pick = pick_labels(train, 25, seed=7)
    assert len(set(pick.tolist())) == 25 and set(pick.tolist()) <= set(train.tolist())
    np.testing.assert_array_equal(pick, pick_labels(train, 25, seed=7))


def test_the_fit_sees_only_the_labels_of_its_label_set():
    """Predictions depend on the labelled cells' labels alone: every other label may change
    (here: be replaced by NaN) without changing a prediction, and a label array that is not
    the label set's own is refused."""
    lab, adj, y, dims = _cells(40)
    pick = pick_labels(np.arange(40), 20, seed=1)
    cfg = PredictorConfig(**TINY)
    other = np.full_like(y, np.nan)
    other[pick] = y[pick]
    a = fit(_vae_state(dims), dims, lab[pick], adj[pick], y[pick], cfg, seed=0).predict(lab, adj)
    b = fit(_vae_state(dims), dims, lab[pick], adj[pick], other[pick], cfg, seed=0).predict(lab, adj)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="labels"):
        fit(None, dims, lab[pick], adj[pick], y, cfg, seed=0)


def test_label_free_pretraining_queries_nothing(shared_data):
    """The pretraining trial of ``bench/graphvae_predictor.py`` (``n_labels`` 0, no ascent): no
    oracle query, no labelled cell in its checkpoint."""
    config = dict(space="nb101", data_dir=str(shared_data), seed=0, epochs=1, hidden=8, latent=4, batch_size=128,
                  n_labels=0, w_perf=0.0, ascent_steps=0, ascent_queries=0, n_samples=5, recon_check=8)
    with reporting.plain_session() as s:
        graphvae.train(config)
        final, ckpt = s.reports[-1].metrics, s.last_checkpoint
        assert final["queries"] == 0 and final["n_labels"] == 0
        assert graphvae.load_model(ckpt).state["lab_idx"] == []


@pytest.mark.parametrize("bad,match", [({"features": "z"}, "features"), ({"steps": 0}, "steps"),
                                       ({"lr": 0}, "lr"), ({"mse_weight": 0, "rank_weight": 0}, "nothing"),
                                       ({"encoder_lr": -1}, "encoder_lr")])
def test_config_refuses(bad, match):
    with pytest.raises(ValueError, match=match):
        PredictorConfig.from_config(bad)
    with pytest.raises(ValueError, match="unknown"):
        PredictorConfig.from_config({"featurs": "mu"})


def test_iso_representatives_pick_one_preferred_member_per_class():
    keys = np.array(["a", "b", "a", "c", "b", "a"], dtype=object)
    pref = np.array([0, 1, 2, 0, 1, 2])
    rep = iso_representatives(keys, pref)
    np.testing.assert_array_equal(rep, [2, 1, 2, 3, 1, 2])   # a: the first of the two 2s; b: tie → row 1
    assert all(keys[rep[i]] == keys[i] for i in range(len(keys)))
