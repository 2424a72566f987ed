"""GNN2GNN: shapes and gradients, exact rendering, determinism, every space, leak-freedom, resume."""
from __future__ import annotations



import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from trainables import common, gnn2gnn, reporting
from trainables.spaces import get_space

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest

SMOKE = {"space": "nbgraph", "epochs": 3, "steps_per_epoch": 3, "batch_size": 8, "hidden": 16, "noise_dim": 8,
         "n_samples": 40, "n_eval": 20, "n_labelled": 300, "seed": 3, "train_fraction": 0.1}
STATS = ("validity", "uniqueness", "novelty", "top1_pct", "top5_pct", "top10_pct", "heldout_hit_pct", "acc_mean",
         "acc_best", "queries", "iteration")


def _run(config: dict, restore_from: str | None = None) -> list[dict]:
    """Metrics of every report of one plain run (checkpoints die with the session)."""
    with reporting.plain_session(restore_from=restore_from) as s:
        gnn2gnn.train(config)
        return [r.metrics for r in s.reports]


def _archs(config: dict) -> tuple[dict, dict]:
    """Final metrics and the ``archs.parquet`` columns of one plain run."""
    with reporting.plain_session() as s:
        gnn2gnn.train(config)
        return s.reports[-1].metrics, pq.read_table(f"{s.last_checkpoint}/{common.ARCHS_FILE}").to_pydict()




@pytest.fixture(scope="module")
def smoke(one_thread):
    """One plain smoke run whose session (and checkpoints) lives for the whole module."""
    with reporting.plain_session() as s:
        gnn2gnn.train(SMOKE)
        yield s


@pytest.fixture(scope="module")
def nbg_model():
    torch.manual_seed(0)
    return gnn2gnn.GNN2GNN(get_space("nbgraph"), gnn2gnn.GNN2GNNConfig(hidden=16, noise_dim=8))


def test_shapes_and_gradients_reach_the_generator_through_d_and_v(nbg_model):
    m, r = nbg_model, nbg_model.renderer
    gen = torch.Generator().manual_seed(0)
    y, logits = m.generate(4, gen)
    d, k = r.choice_mask.shape
    assert y.shape == logits.shape == (4, d, k)
    assert torch.all(y.sum(-1) == 1) and torch.all((y == 0) | (y == 1))  # hard forward
    gb = r(r.flatten(y))
    n, v = r.num_nodes, r.vocab_size
    assert gb.x.shape == (4 * n, v) and gb.batch.shape == (4 * n,) and gb.num_graphs == 4
    assert gb.edge_index.shape[0] == 2 and gb.edge_index.shape[1] == gb.edge_weight.shape[0]
    assert int(gb.edge_index.max()) < 4 * n
    for net in (m.disc, m.val):
        m.gen.zero_grad(set_to_none=True)
        y, _ = m.generate(4, gen)
        out = net.score(r(r.flatten(y)))
        assert out.shape == (4,)
        out.sum().backward()
        grads = [p.grad for p in m.gen.parameters()]
        assert all(g is not None for g in grads)
        assert m.gen.head_w.grad.abs().sum() > 0 and m.gen.inp.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("space_name", ["nbgraph", "nb201", "nb101"])
def test_render_equals_to_pyg_of_decode(space_name):
    if space_name == "nb101":
        pytest.importorskip("trainables.spaces.nb101")
    space = get_space(space_name)
    r = gnn2gnn.SpaceRenderer(space, undirected=False)
    g = np.random.default_rng(1).integers(0, space.cardinalities, size=(25, len(space.cardinalities)))
    gb = r(r.onehot(g))
    x = gb.x.view(25, r.num_nodes, -1)
    w = gb.edge_weight.view(25, -1)
    ei = gb.edge_index.view(2, 25, -1)
    for b, row in enumerate(g):
        data = space.to_pyg(space.decode(row))
        assert torch.equal(x[b], data.x)
        on = ei[:, b, w[b] == 1] - b * r.num_nodes
        assert sorted(map(tuple, on.T.tolist())) == sorted(map(tuple, data.edge_index.T.tolist()))
        assert set(w[b].tolist()) <= {0.0, 1.0}
    kinds = {p.kind for p in r.positions}
    assert kinds == {"nbgraph": {"global", "node"}, "nb201": {"node"}, "nb101": {"node", "edge"}}[space_name]


def test_final_report_and_cross_dataset_columns(smoke):
    m = smoke.reports[-1].metrics
    for k in STATS + ("loss/d", "loss/v", "loss/g", "loss/g_adv", "loss/g_val"):
        assert k in m
    assert m["n_eval"] == SMOKE["n_samples"] and smoke.reports[0].metrics["n_eval"] == SMOKE["n_eval"]
    assert smoke.reports[0].metrics["lambda"] == 1.0 and m["lambda"] == gnn2gnn.DEFAULTS["lambda_adv"]
    t = pq.read_table(f"{smoke.last_checkpoint}/{common.ARCHS_FILE}").to_pydict()
    assert len(t["key"]) == SMOKE["n_samples"]
    from trainables.spaces.nbgraph import DATASETS
    assert {f"acc:{d}/test/final" for d in DATASETS} <= set(t)  # every dataset of the space scored
    for d in DATASETS:  # and its transfer metrics reported: best of the same samples
        f = f"{d}/test/final"
        if f != m["eval_field"]:
            assert m[f"acc_best@{f}"] == pytest.approx(np.nanmax(np.asarray(t[f"acc:{f}"], dtype=float)))
            assert 0.0 <= m[f"top5_pct@{f}"] <= 1.0
        else:
            assert f"acc_best@{f}" not in m
    assert m["queries"] == SMOKE["n_labelled"]


def test_budget_is_respected():
    m = _run({**SMOKE, "epochs": 2, "n_labelled": None, "query_budget": 60, "gen_queries_per_epoch": 30})[-1]
    assert m["queries"] <= 60 and m["n_labelled"] <= 60


def test_valuer_never_sees_a_heldout_label(monkeypatch):
    cfg = {**SMOKE, "epochs": 2, "holdout_top_pct": 30.0, "gen_queries_per_epoch": 40, "n_labelled": 200}
    seen = {"nan": 0, "data": None}
    original = gnn2gnn.ValuerData.add

    def spy(self, archs, labels, genotypes=None):
        seen["nan"] += int(np.sum(~np.isfinite(labels)))
        seen["data"] = self
        return original(self, archs, labels, genotypes)

    monkeypatch.setattr(gnn2gnn.ValuerData, "add", spy)
    _run(cfg)
    heldout = common.open_trial(cfg).evaluator.heldout_keys
    data = seen["data"]
    g, y = data.arrays()
    assert len(y) > 200 - 1 and np.isfinite(y).all()
    sp = data.space
    keys = {sp.key(sp.decode(row)) for row in g}
    assert not keys & heldout
    assert seen["nan"] > 0  # generated held-out archs were asked about and answered NaN (dropped)


def test_one_epoch_nb201(shared_data):
    m, t = _archs({**SMOKE, "space": "nb201", "data_dir": str(shared_data), "epochs": 1})
    assert m["validity"] == 1.0 and m["eval_field"] == "cifar10/test/200"
    assert {"acc:cifar10/test/200", "acc:cifar100/test/200", "acc:imagenet16/test/200"} <= set(t)


def test_one_epoch_nb101(shared_data):
    pytest.importorskip("trainables.spaces.nb101")
    m = _run({**SMOKE, "space": "nb101", "data_dir": str(shared_data), "epochs": 1, "n_labelled": None,
              "train_fraction": 1.0})[-1]
    assert 0.0 <= m["validity"] <= 1.0 and m["queries"] > 0 and m["n_eval"] == SMOKE["n_samples"]
    losses = {k: v for k, v in m.items() if k.startswith("loss/")}
    assert losses and all(np.isfinite(v) for v in losses.values()), losses


def test_batch_entropy_gradient_is_finite_with_masked_choices():
    # NB101's edge positions allow 2 of the 3 slots: the masked slot has probability exactly 0
    mask = torch.tensor([[True, True, True], [True, True, False]])
    logits = torch.randn(4, 2, 3).masked_fill(~mask, -1e9).requires_grad_(True)
    h = gnn2gnn.batch_entropy(logits, mask)
    h.backward()
    assert 0.0 < float(h.detach()) <= 1.0 and torch.isfinite(logits.grad).all()
    uniform = torch.zeros(4, 2, 3).masked_fill(~mask, -1e9)
    assert float(gnn2gnn.batch_entropy(uniform, mask)) == pytest.approx(1.0)


def test_sample_entropy_is_a_lower_bound_that_sees_a_collapse_batch_entropy_misses():
    mask = torch.ones(2, 5, dtype=torch.bool)
    # five confident samples, each a different op at both positions: every marginal is uniform
    # (batch entropy 1) yet the generator draws one of only five joint cells
    confident = torch.full((5, 2, 5), -20.0)
    for b in range(5):
        confident[b, :, b] = 20.0
    assert float(gnn2gnn.batch_entropy(confident, mask)) == pytest.approx(1.0)
    assert float(gnn2gnn.sample_entropy(confident, mask)) == pytest.approx(0.0, abs=1e-6)
    uniform = torch.zeros(5, 2, 5)
    assert float(gnn2gnn.sample_entropy(uniform, mask)) == pytest.approx(1.0)
    masked = torch.tensor([[True, True, True], [True, True, False]])
    logits = torch.randn(4, 2, 3).masked_fill(~masked, -1e9).requires_grad_(True)
    h = gnn2gnn.sample_entropy(logits, masked)
    h.backward()
    assert 0.0 < float(h.detach()) <= 1.0 and torch.isfinite(logits.grad).all()


def test_joint_entropy_sees_both_a_joint_collapse_and_diversity_that_comes_from_the_noise():
    mask = torch.ones(2, 5, dtype=torch.bool)
    five_modes = torch.full((20, 2, 5), -30.0)  # 4 samples on each of 5 sharp joint cells
    for b in range(20):
        five_modes[b, :, b % 5] = 30.0
    # collision probability of the batch's pairs: 5 · C(4, 2) / C(20, 2) = 30 / 190
    assert float(gnn2gnn.joint_entropy(five_modes, mask)) == pytest.approx(
        np.log(190 / 30) / (2 * np.log(5)), rel=1e-4)
    assert float(gnn2gnn.batch_entropy(five_modes, mask)) == pytest.approx(1.0)  # blind to it
    assert float(gnn2gnn.joint_entropy(torch.zeros(8, 2, 5), mask)) == pytest.approx(1.0, abs=1e-6)
    # 25 sharp, all different: no pair can collide; capped at the uniform distribution's 1
    grid = torch.full((25, 2, 5), -30.0)
    for b in range(25):
        grid[b, 0, b // 5], grid[b, 1, b % 5] = 30.0, 30.0
    assert float(gnn2gnn.joint_entropy(grid, mask)) == 1.0
    assert float(gnn2gnn.sample_entropy(grid, mask)) == pytest.approx(0.0, abs=1e-6)  # all from the noise
    logits = (five_modes / 30).requires_grad_(True)  # soft modes: below the cap, so it has a gradient
    h = gnn2gnn.joint_entropy(logits, mask)
    h.backward()
    assert float(h.detach()) < 1.0 and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def _classes(merge: bool) -> gnn2gnn.ArchitectureClasses:
    """A 2-position, 5-choice grid; with ``merge``, choice 0 at position 0 (think "none")
    makes position 1 irrelevant: genotypes (0, *) are one architecture."""
    grid = np.indices((5, 5)).reshape(2, -1).T
    keys = [("dead",) if merge and g[0] == 0 else tuple(g) for g in grid]
    ids: dict = {}
    index = [ids.setdefault(k, len(ids)) for k in keys]
    return gnn2gnn.ArchitectureClasses((5, 5), torch.as_tensor(index), len(ids))


def test_architecture_entropy_counts_architectures_not_encodings():
    mask = torch.ones(2, 5, dtype=torch.bool)
    torch.manual_seed(0)
    soft = torch.randn(6, 2, 5)
    # every genotype its own architecture: the same number as the encoding-level estimate
    assert float(gnn2gnn.architecture_entropy(soft, _classes(False))) == pytest.approx(
        float(gnn2gnn.joint_entropy(soft, mask)), rel=1e-5)
    # 5 sharp samples that differ only where it changes nothing: 5 encodings, 1 architecture
    dead = torch.full((5, 2, 5), -30.0)
    for b in range(5):
        dead[b, 0, 0], dead[b, 1, b] = 30.0, 30.0
    assert float(gnn2gnn.joint_entropy(dead, mask)) == 1.0           # no two encodings collide
    assert float(gnn2gnn.architecture_entropy(dead, _classes(True))) == pytest.approx(0.0, abs=1e-9)
    # the gradient moves the soft version of that batch away from the dead choice
    logits = (dead / 30).requires_grad_(True)
    h = gnn2gnn.architecture_entropy(logits, _classes(True))
    h.backward()
    assert torch.isfinite(logits.grad).all() and float(logits.grad[:, 0, 0].sum()) < 0


def test_architecture_classes_of_real_spaces_and_a_clear_refusal_for_large_ones():
    classes = gnn2gnn.architecture_classes(get_space("nb201"))
    assert classes.count == 6466 and classes.index.shape == (15625,)  # NB201's architectures
    base = {**SMOKE, "joint_entropy_over": "architectures"}
    gnn2gnn.validate_config(base)
    with pytest.raises(ValueError, match="nb101 has 509,607,936"):
        gnn2gnn.validate_config({**base, "space": "nb101"})
    with pytest.raises(ValueError, match="needs a benchmark file"):  # past that check, on to the data's
        gnn2gnn.validate_config({**base, "space": "nb101", "joint_entropy_over": "cells"})
    with pytest.raises(ValueError):
        gnn2gnn.validate_config({**base, "joint_entropy_over": "graphs"})
    # "auto" (the default): architectures where the grid can be enumerated, encodings elsewhere
    cfg = gnn2gnn.GNN2GNNConfig(hidden=8, noise_dim=4)
    assert cfg.joint_entropy_over == "auto"
    assert gnn2gnn.GNN2GNN(get_space("nbgraph"), cfg).classes is not None
    assert gnn2gnn.GNN2GNN(get_space("nb101"), cfg).classes is None


def test_sharpness_makes_each_sample_confident():
    base = {**SMOKE, "epochs": 4, "steps_per_epoch": 10, "w_joint_entropy": 1.0}
    soft = _run({**base, "w_sample_entropy": 1.0})[-1]
    sharp = _run({**base, "w_sharpness": 1.0})[-1]
    assert sharp["sample_entropy"] < soft["sample_entropy"]


def test_sample_temperature_spreads_the_samples_and_leaves_training_alone():
    base = {**SMOKE, "n_samples": 200, "w_sample_entropy": 0.5}
    cold, cold_cols = _archs({**base, "sample_temperature": 0.2})
    hot, hot_cols = _archs({**base, "sample_temperature": 5.0})
    assert hot["uniqueness"] > cold["uniqueness"]
    for key in ("loss/g", "loss/d", "loss/v", "sample_entropy"):  # the same training, draw for draw
        assert hot[key] == cold[key]


def test_validate_config_rejects_bad_knobs():
    gnn2gnn.validate_config(SMOKE)
    for bad in ({"tau": 0}, {"lambda_adv": 1.5}, {"conv": "gat"}, {"epochs": 0}, {"nope": 1},
                {"holdout_top_pct": 100}, {"sample_temperature": 0}, {"w_sample_entropy": -1}, {"w_joint_entropy": -1},
                {"w_sharpness": -0.5}):
        with pytest.raises(ValueError):
            gnn2gnn.validate_config({**SMOKE, **bad})


@pytest.mark.parametrize("space_name", ["nb201", "nbgraph", "nb101"])
@pytest.mark.parametrize("conv", ["gcn", "gin"])
def test_dense_scoring_is_the_sparse_function_with_its_gradient(space_name, conv):
    """The discriminator's and the valuer's dense path (what they run on a GraphBatch) computes
    PyG's sparse one: same logits and the same gradient w.r.t. the (soft) one-hots, for fixed
    (NB201) and generated (NB101 edge bits, NAS-Bench-Graph links) topologies."""
    if space_name == "nb101":
        pytest.importorskip("trainables.spaces.nb101")
    torch.manual_seed(0)
    m = gnn2gnn.GNN2GNN(get_space(space_name), gnn2gnn.GNN2GNNConfig(hidden=16, noise_dim=8, conv=conv))
    m.eval()  # spectral normalisation: no power-iteration step between the two paths' calls
    r = m.renderer
    assert r.dense and r.constant_edges == (space_name == "nb201")
    y, _ = m.generate(6, torch.Generator().manual_seed(1))
    soft = torch.softmax(torch.randn(6, *r.choice_mask.shape), -1) * r.choice_mask
    for p in (r.flatten(y).detach(), r.flatten(soft)):
        for net in (m.disc, m.val):
            outs = []
            for dense in (True, False):
                q = p.clone().requires_grad_(True)
                gb = r(q)
                out = net.score(gb, groups=2) if dense else net(gb.x, gb.edge_index, gb.edge_weight, gb.batch,
                                                                  gb.num_graphs, 2)
                out.square().sum().backward()
                outs.append((out.detach(), q.grad))
            torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-4, atol=1e-5)


def _architecture_entropy_reference(logits, classes):
    """The plain autograd form (genotype probabilities ``[B, M]``, per-class sums by index_add_)."""
    b = logits.shape[0]
    p = torch.softmax(logits.double(), dim=-1)
    px = p[:, 0, : classes.cardinalities[0]]
    for d, k in enumerate(classes.cardinalities[1:], start=1):
        px = (px.unsqueeze(-1) * p[:, d, :k].unsqueeze(1)).reshape(b, -1)
    pc = px.new_zeros(b, classes.count).index_add_(1, classes.index, px)
    collide = pc @ pc.T
    mean = collide[~torch.eye(b, dtype=torch.bool)].mean()
    return (-torch.log(mean) / np.log(classes.count)).clamp(max=1.0)


@pytest.mark.parametrize("space_name", ["nb201", "nbgraph"])
def test_architecture_entropy_value_and_gradient_match_autograd(space_name):
    classes = gnn2gnn.architecture_classes(get_space(space_name))
    d = len(classes.cardinalities)
    k = max(classes.cardinalities)
    mask = torch.tensor([[j < c for j in range(k)] for c in classes.cardinalities])
    torch.manual_seed(0)
    for scale in (0.5, 3.0):
        logits = (torch.randn(12, d, k) * scale).masked_fill(~mask, -1e9)
        grads = []
        for fn in (gnn2gnn.architecture_entropy, _architecture_entropy_reference):
            x = logits.clone().requires_grad_(True)
            h = fn(x, classes)
            h.backward()
            grads.append((float(h.detach()), x.grad))
        assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5)
        torch.testing.assert_close(grads[0][1], grads[1][1].float(), rtol=1e-3, atol=1e-7)


def test_valuer_data_state_is_two_tensors_and_old_list_states_still_load():
    space = get_space("nbgraph")
    data = gnn2gnn.ValuerData(space)
    rng = np.random.default_rng(0)
    archs = [space.decode(g) for g in rng.integers(0, space.cardinalities, size=(30, len(space.cardinalities)))]
    data.add(archs, rng.random(30) * 100)
    state = data.state()
    assert isinstance(state["genotypes"], torch.Tensor) and state["genotypes"].dtype == torch.int64
    assert isinstance(state["labels"], torch.Tensor) and state["labels"].dtype == torch.float64
    for saved in (state, {"genotypes": state["genotypes"].tolist(), "labels": state["labels"].tolist()}):
        back = gnn2gnn.ValuerData(space)
        back.load(saved)
        g0, y0 = data.arrays()
        g1, y1 = back.arrays()
        assert np.array_equal(g0, g1) and np.array_equal(y0, y1) and back._keys == data._keys
