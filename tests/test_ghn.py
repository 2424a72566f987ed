"""Graph HyperNetwork: predicted weights, networks, data readers, ground-truth cache, Tune smoke."""
from __future__ import annotations

import dataclasses
import gzip
import pickle
from pathlib import Path

from metric_helpers import same_metrics
from orchestrator_helpers import ray_address  # noqa: F401 - fixture

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from trainables import ghn, images, lifecycle, reporting  # noqa: E402
from trainables.spaces.nb201 import OPS  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest

N_TRAIN, N_TEST, SIDE, N_CLASSES = 400, 120, 28, 10
# A CPU smoke size on the synthetic image folder (seconds per trial).
TINY = dict(resolution=8, channels=4, train_size=200, val_size=100, test_size=100, gt_epochs=1, gt_batch=64,
            iterations=4, meta_batch=2, batch_size=32, report_every=2, n_samples=8, top_k=1, n_eval_cells=3,
            hidden=16, decoder_hidden=16, train_seeds=[0, 1])
CELLS = {  # edge ops in the official order; each exercises a different path through the builder
    "all_conv": ("nor_conv_3x3", "nor_conv_1x1", "nor_conv_3x3", "nor_conv_1x1", "nor_conv_3x3", "nor_conv_3x3"),
    "mixed": ("avg_pool_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none", "avg_pool_3x3"),
    "skip_only": ("skip_connect",) * 6,  # 4·x: sums that read one layer several times
    "identity": ("none", "none", "none", "skip_connect", "none", "none"),
    "zero_out": ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "none", "none", "none"),
}


def _genotype(ops) -> tuple[int, ...]:
    return tuple(OPS.index(o) for o in ops)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory) -> Path:
    """A Fashion-MNIST-format folder of synthetic images: class k is a bright bar at row k."""
    root = tmp_path_factory.mktemp("fmnist")
    rng = np.random.default_rng(0)
    for split, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        y = rng.integers(0, N_CLASSES, n).astype(np.uint8)
        x = rng.integers(0, 60, (n, SIDE, SIDE)).astype(np.uint8)
        band = SIDE // N_CLASSES
        for i, k in enumerate(y):
            x[i, k * band:(k + 1) * band] = 255
        images.write_idx(root / f"{split}-images-idx3-ubyte.gz", x)
        images.write_idx(root / f"{split}-labels-idx1-ubyte.gz", y)
    return root


@pytest.fixture(scope="module")
def tiny(image_dir) -> dict:
    return {**TINY, "image_dir": str(image_dir)}


@pytest.fixture(scope="module")
def net_parts(tiny):
    cfg = ghn.GHNConfig.from_config(tiny)
    splits = ghn._splits(cfg)
    torch.manual_seed(0)
    model = ghn.make_ghn(cfg, splits.in_channels, splits.n_classes)
    return cfg, splits, model


def _run(config: dict, restore_from: str | None = None):
    with reporting.plain_session(restore_from=restore_from) as s:
        ghn.train(config)
    return s


# ------------------------------------------------------------------------ data readers
@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_idx_round_trip(tmp_path, suffix, dtype):
    a = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    if dtype == np.uint8:
        a = np.arange(a.size, dtype=np.uint8).reshape(a.shape)
    path = tmp_path / f"x-idx3-ubyte{suffix}"
    images.write_idx(path, a)
    back = images.read_idx(path)
    assert back.dtype == a.dtype and back.shape == a.shape
    np.testing.assert_array_equal(back, a)


def test_idx_reader_reads_the_standard_header_byte_for_byte(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    # magic 0x00000801 (ubyte, 1 dim), big-endian count, then the bytes: the MNIST label layout
    raw = bytes([0, 0, 8, 1]) + len(labels).to_bytes(4, "big") + labels.tobytes()
    (tmp_path / "l.gz").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(images.read_idx(tmp_path / "l.gz"), labels)
    (tmp_path / "bad").write_bytes(b"\x01" + raw[1:])
    with pytest.raises(ValueError, match="magic"):
        images.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(ValueError, match="header says"):
        images.read_idx(tmp_path / "short")


def test_fashion_mnist_folder_reader(image_dir, tmp_path):
    data = images.load_fashion_mnist(image_dir)
    assert data.x_train.shape == (N_TRAIN, 1, SIDE, SIDE) and data.x_test.shape == (N_TEST, 1, SIDE, SIDE)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert data.n_classes == N_CLASSES and data.channels == 1
    with pytest.raises(ValueError, match="dataset-fashion-mnist"):
        images.load_fashion_mnist(tmp_path)


def test_the_debian_fashion_mnist_package():
    folder = images.default_fashion_mnist_dir()
    try:
        data = images.load_fashion_mnist()
    except ValueError:
        pytest.skip(f"Fashion-MNIST not installed at {folder} (apt-get install -y dataset-fashion-mnist)")
    # the official sizes: 60,000 train / 10,000 test 28×28 images in 10 balanced classes
    assert data.x_train.shape[0] == 6 * data.x_test.shape[0] and data.x_train.shape[2:] == (28, 28)
    counts = np.bincount(data.y_test)
    assert len(counts) == data.n_classes and (counts == counts[0]).all()


def _cifar_batch(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"training batch 1 of 5", b"labels": rng.integers(0, 10, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(n)]}


def test_cifar_batch_reader_on_a_synthetic_release(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {"data_batch_1": _cifar_batch(7, 1), "data_batch_2": _cifar_batch(5, 2), "test_batch": _cifar_batch(4, 3)}
    for name, obj in batches.items():  # protocol 2 and bytes keys, as the release's files
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2))
    x, y = images.read_cifar_batch(folder / "data_batch_1")
    src = batches["data_batch_1"]
    assert x.shape == (len(src[b"labels"]), 3, 32, 32) and x.dtype == np.uint8
    np.testing.assert_array_equal(y, src[b"labels"])
    # row layout: 1024 red, then green, then blue values, each a 32×32 row-major plane
    np.testing.assert_array_equal(x[0, 1].ravel(), src[b"data"][0, 1024:2048])
    data = images.load_cifar10(folder)
    assert len(data.y_train) == len(batches["data_batch_1"][b"labels"]) + len(batches["data_batch_2"][b"labels"])
    assert len(data.y_test) == len(batches["test_batch"][b"labels"]) and data.channels == 3


def test_cifar_reader_refuses_code_in_a_pickle(tmp_path):
    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    with pytest.raises(images.UnsafePickleError, match="refusing"):
        images.read_cifar_batch(path)
    (tmp_path / "junk").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a CIFAR-10"):
        images.read_cifar_batch(tmp_path / "junk")


# ------------------------------------------------------------------------ networks and the GHN
def test_cell_programs_follow_nb201_semantics(net_parts):
    cfg, splits, _ = net_parts

    def kinds(name):
        p = ghn.build_program(_genotype(CELLS[name]), cfg.channels, 1, splits.in_channels, splits.n_classes,
                              cfg.resolution)
        return [layer.kind for layer in p]

    base = kinds("identity")  # identity cells vanish: only stem, reductions (a sum each) and head remain
    assert all(k not in base for k in ("avg_pool3x3", "zero")) and base.count("sum") == 2
    assert kinds("skip_only").count("sum") == base.count("sum") + 3 * 2  # nodes 2 and 3 add, per stage
    assert kinds("zero_out").count("zero") == 3  # nothing reaches the cell output: a zero layer per stage
    n_conv = sum(o.startswith("nor_conv") for o in CELLS["all_conv"])
    assert len([k for k in kinds("all_conv") if k.startswith("conv")]) == len([k for k in base if k.startswith("conv")]) + 3 * n_conv
    for side in (cfg.resolution, cfg.resolution - 1):  # the fast pools equal torch's, odd sides too
        x = torch.randn(3, 5, side, side)
        torch.testing.assert_close(ghn._avg_pool3x3(x), F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
        torch.testing.assert_close(ghn._avg_pool2x2(x), F.avg_pool2d(x, 2, 2, ceil_mode=True))


@pytest.mark.parametrize("cells_per_stage", [1, 2])
def test_predicted_weights_have_every_layers_exact_shape_and_run(tiny, cells_per_stage):
    cfg = ghn.GHNConfig.from_config({**tiny, "cells_per_stage": cells_per_stage})
    splits = ghn._splits(cfg)
    torch.manual_seed(0)
    model = ghn.make_ghn(cfg, splits.in_channels, splits.n_classes)
    graphs = [ghn._graph(cfg, splits, _genotype(ops)) for ops in CELLS.values()]
    predicted = model(graphs)
    x = splits.x_val[: cfg.batch_size]
    for graph, weights in zip(graphs, predicted):
        expected = ghn.param_shapes(graph.program)
        assert {k: tuple(v.shape) for k, v in weights.items()} == expected
        own = ghn.CellNetwork(graph.program, torch.Generator().manual_seed(0))  # a normally built twin
        assert {k: tuple(v.shape) for k, v in own.weights.items()} == expected
        logits = ghn.run_program(graph.program, x, weights)
        assert logits.shape == (len(x), splits.n_classes) and torch.isfinite(logits).all()


def test_the_default_ghn_writes_exact_weights_and_learns(image_dir):
    """The trainable's own GHN and network sizes (hidden 16, decoder 64, C = 8, 14×14: what
    bench/ghn_results.md measured), only the image counts cut to the synthetic folder."""
    cfg = ghn.GHNConfig.from_config({"image_dir": str(image_dir), "train_size": 200, "val_size": 100,
                                     "test_size": 100, "iterations": 60})
    assert (cfg.hidden, cfg.decoder_hidden, cfg.channels, cfg.resolution) == (16, 64, 8, 14)
    trial = ghn.GHNRun(cfg, ghn.Device("cpu"))
    graphs = [ghn._graph(cfg, trial.splits, _genotype(ops)) for ops in CELLS.values()]
    for graph, weights in zip(graphs, trial.ghn(graphs)):
        assert {k: tuple(v.shape) for k, v in weights.items()} == ghn.param_shapes(graph.program)
    while trial.iteration < cfg.iterations:
        trial.train_step()
    first, last = np.mean(trial.losses[:10]), np.mean(trial.losses[-10:])
    assert last < 0.5 * first, (first, last)  # the bars are easy: predicted weights must learn them


def test_gradients_reach_every_part_of_the_ghn(net_parts):
    cfg, splits, model = net_parts
    graphs = [ghn._graph(cfg, splits, _genotype(ops)) for ops in CELLS.values()]
    model.zero_grad()
    x, y = splits.x_train[: cfg.batch_size], splits.y_train[: cfg.batch_size]
    loss = sum(F.cross_entropy(ghn.run_program(g.program, x, w), y) for g, w in zip(graphs, model(graphs)))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"
    assert cfg.virtual_edges > 1 and any(n.startswith("vmsg.") for n, _ in model.named_parameters())


def test_graph_levels_and_virtual_edges(net_parts):
    cfg, splits, _ = net_parts
    g = ghn._graph(cfg, splits, _genotype(CELLS["mixed"])).data
    src, dst = g.edge_index
    assert (g.level_fwd[dst] > g.level_fwd[src]).all() and (g.level_bwd[src] > g.level_bwd[dst]).all()
    vs, vd = g.vedge_index
    assert (g.level_fwd[vd] >= g.level_fwd[vs] + 2).all()  # a virtual edge spans a path of >= 2 hops
    expected = np.float32([1.0 / d for d in range(2, cfg.virtual_edges + 1)])
    np.testing.assert_array_equal(np.unique(g.vedge_weight.numpy()), np.sort(expected))
    assert g.x.shape == (g.num_nodes, ghn.N_FEATURES)


def test_ranking_scores():
    true = np.linspace(70.0, 85.0, 20)
    s = ghn.ranking_scores(true * 0.5, true)
    assert s["tau"] == pytest.approx(1.0) and s["spearman"] == pytest.approx(1.0)
    assert s["top10_overlap"] == 1.0 and s["regret"] == 0.0
    s = ghn.ranking_scores(-true, true)
    assert s["tau"] == pytest.approx(-1.0) and s["regret"] == pytest.approx(true.max() - true.min())
    s = ghn.ranking_scores(np.full(20, 3.0), true)  # a constant prediction ranks nothing
    assert np.isnan(s["tau"]) and np.isnan(s["spearman"]) and s["regret"] == pytest.approx(true.max() - true[0])


# ------------------------------------------------------------------------ trials
@pytest.fixture(scope="module")
def smoke(tiny):
    s = _run(tiny)
    return s


def test_trial_reports_checkpoints_and_scores(smoke, tiny):
    reports = [r.metrics for r in smoke.reports]
    assert [r["iteration"] for r in reports] == list(range(TINY["report_every"], TINY["iterations"] + 1, TINY["report_every"]))
    final = reports[-1]
    assert final["done"] and final["queries"] == TINY["top_k"] and final["eval/cells"] == TINY["n_eval_cells"]
    for k in ("loss/task", "eval/tau", "eval/spearman", "eval/pred_acc_mean", "acc_best", "rank_seconds"):
        assert np.isfinite(final[k]), k
    import pyarrow.parquet as pq

    rows = pq.read_table(Path(smoke.last_checkpoint, ghn.ARCHS_FILE)).to_pandas()
    kinds = rows["kind"].value_counts()
    assert kinds["ranked"] == TINY["n_samples"] and kinds["eval"] == TINY["n_eval_cells"]
    trained = rows[rows["kind"] == "trained"]
    assert len(trained) == final["gt_trained"] and trained["gt_key"].is_unique
    assert set(trained["train_seed"]) == set(TINY["train_seeds"])


def _stable(m: dict) -> dict:
    """Everything but wall-clock timings."""
    return {k: v for k, v in m.items() if "seconds" not in k}


def test_ground_truth_is_cached_by_data_recipe_and_cell(tiny, tmp_path, monkeypatch):
    from orchestrator.store import Store, TrialRecord

    cfg = ghn.GHNConfig.from_config(tiny)
    splits = ghn._splits(cfg)
    cell = ghn.eval_cells(1, cfg.eval_seed)[0]
    assert ghn.gt_key(cfg, splits, cell, 0) != ghn.gt_key(cfg, splits, cell, 1)
    changed = ghn.GHNConfig.from_config({**tiny, "gt_epochs": cfg.gt_epochs + 1})
    assert ghn.gt_key(cfg, splits, cell, 0) != ghn.gt_key(changed, splits, cell, 0)
    gt = ghn.GroundTruth(cfg, splits, "cpu")
    acc = gt.accuracy(cell, 0)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    ghn._write_rows(str(ckpt), gt.rows, cfg)
    Store(tmp_path / "store").write_trial("gt", "ghn", TrialRecord("t0", "t0", {"seed": 0}, {}, "TERMINATED", "c0",
                                                                   checkpoint_dir=str(ckpt)), {})

    def refuse(*_a, **_k):
        raise AssertionError("a cached cell was trained again")

    monkeypatch.setattr(ghn, "train_cell", refuse)
    again = ghn.GroundTruth(ghn.GHNConfig.from_config({**tiny, "cache_store": str(tmp_path / "store")}), splits, "cpu")
    assert again.accuracy(cell, 0) == acc and (again.trained, again.reused) == (0, 1)


def test_ground_truth_task_shards_the_heldout_sample(tiny):
    shards = 2
    rows = []
    for shard in range(shards):
        s = _run({**tiny, "task": "ground_truth", "shard": shard, "shards": shards})
        rows.extend(r["gt_key"] for r in lifecycle.read_checkpoint(s.last_checkpoint)["run"]["rows"])
        assert s.reports[-1].metrics["done"]
    assert len(set(rows)) == len(rows) == TINY["n_eval_cells"] * len(TINY["train_seeds"])


def test_validation_cells_are_disjoint_from_the_heldout_cells_and_never_trained_on(tiny):
    cfg = ghn.GHNConfig.from_config({**tiny, "n_eval_cells": 40, "n_val_cells": 30})
    val, held = ghn.validation_cells(cfg), ghn.eval_cells(cfg.n_eval_cells, cfg.eval_seed)
    assert len(val) == 30 and len(ghn.cell_keys(val)) == 30  # distinct classes
    assert not ghn.cell_keys(val) & ghn.cell_keys(held)
    assert ghn.validation_cells(cfg) == val  # fixed by the seeds
    other = ghn.validation_cells(ghn.GHNConfig.from_config({**tiny, "n_eval_cells": 40, "n_val_cells": 30,
                                                            "val_cells_seed": cfg.val_cells_seed + 1}))
    assert other != val
    # the sampler of a trial draws neither set, however many iterations
    trial = ghn.GHNRun(cfg, ghn.Device("cpu"))
    assert trial.excluded == ghn.cell_keys(val) | ghn.cell_keys(held)
    drawn = ghn.cell_keys([g for it in range(300) for g in trial._meta_batch(it)[0]])
    assert len(drawn) > 200 and not drawn & trial.excluded
    assert ghn.validation_cells(ghn.GHNConfig.from_config(tiny)) == []


def test_ema_weights_rank_the_cells_and_do_not_change_training(tiny):
    decay = 0.8
    plain = ghn.GHNRun(ghn.GHNConfig.from_config(tiny), ghn.Device("cpu"))
    avg = ghn.GHNRun(ghn.GHNConfig.from_config({**tiny, "ema_decay": decay}), ghn.Device("cpu"))
    assert plain.ranker() is plain.ghn
    snapshots = []
    for _ in range(3):
        plain.train_step()
        avg.train_step()
        snapshots.append([p.detach().clone() for p in avg.ghn.parameters()])
    assert plain.losses == avg.losses  # the average is read, never trained
    for p, q in zip(plain.ghn.parameters(), avg.ghn.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    # the ranker holds Σ d^(t-i)(1-d) θ_i / (1 - d^t), the bias-corrected EMA
    t = len(snapshots)
    weights = [(1 - decay) * decay ** (t - 1 - i) for i in range(t)]
    ranker = avg.ranker()
    assert ranker is not avg.ghn
    for k, p in enumerate(ranker.parameters()):
        expected = sum(w * snap[k] for w, snap in zip(weights, snapshots)) / (1 - decay ** t)
        torch.testing.assert_close(p, expected)
    assert any(not torch.equal(p, q) for p, q in zip(ranker.parameters(), avg.ghn.parameters()))
    # and the surrogate's scores are the ranker's
    cfg, cells = avg.cfg, [_genotype(ops) for ops in CELLS.values()]
    by_ranker = ghn.predicted_scores(ranker, cfg, avg.splits, cells)
    by_last = ghn.predicted_scores(avg.ghn, cfg, avg.splits, cells)
    assert not np.array_equal(by_ranker[1], by_last[1])


def test_ema_trial_scores_with_the_average_and_resumes_exactly(tiny):
    config = {**tiny, "ema_decay": 0.7, "n_val_cells": 3}
    s = _run(config)
    final = s.reports[-1].metrics
    plain = _run({**tiny, "n_val_cells": 3}).reports[-1].metrics
    assert final["loss/task"] == plain["loss/task"]  # same training
    assert final["eval/pred_loss_mean"] != plain["eval/pred_loss_mean"]  # other weights score
    assert final["val/cells"] == 3 and "val/tau" in final and "val/regret" in final
    resumed = _run(config, restore_from=s.reports[0].checkpoint)
    assert same_metrics(_stable(resumed.reports[-1].metrics), _stable(final))


def test_scores_averaged_over_several_bn_batches(net_parts):
    cfg, splits, model = net_parts
    cells = [_genotype(CELLS["mixed"]), _genotype(CELLS["all_conv"])]
    acc1, loss1 = ghn.predicted_scores(model, cfg, splits, cells, batches=1)
    acc3, loss3 = ghn.predicted_scores(model, cfg, splits, cells, batches=3)
    parts = np.array_split(np.arange(len(splits.y_val)), 3)
    graphs = [ghn._graph(cfg, splits, g) for g in cells]
    with torch.no_grad():
        for k, (graph, w) in enumerate(zip(graphs, model(graphs))):
            full = ghn.run_program(graph.program, splits.x_val, w)
            assert loss1[k] == pytest.approx(float(F.cross_entropy(full, splits.y_val)), rel=1e-5)
            assert acc1[k] == pytest.approx(100.0 * float((full.argmax(1) == splits.y_val).float().mean()))
            nll = [F.cross_entropy(ghn.run_program(graph.program, splits.x_val[p], w), splits.y_val[p],
                                   reduction="sum") for p in parts]
            assert loss3[k] == pytest.approx(float(sum(nll)) / len(splits.y_val), rel=1e-5)
    assert not np.allclose(loss1, loss3)  # other BN statistics


def test_finetuned_scoring_trains_the_predicted_weights_and_leaves_them_alone(net_parts):
    cfg, splits, model = net_parts
    cells = [_genotype(CELLS["mixed"]), _genotype(CELLS["all_conv"])]
    tuned = dataclasses.replace(cfg, rank_finetune_steps=3)
    graph = ghn._graph(cfg, splits, cells[1])
    with torch.no_grad():
        w = model([graph])[0]
    before = {k: v.clone() for k, v in w.items()}
    after = ghn.finetuned(graph.program, w, tuned, splits, 3)
    assert all(torch.equal(w[k], before[k]) for k in w)  # the predicted weights are not touched
    assert set(after) == set(w) and all(after[k].shape == w[k].shape for k in w)
    assert all(not t.requires_grad for t in after.values())
    assert any(not torch.equal(after[k], w[k]) for k in w)
    torch.testing.assert_close(after, ghn.finetuned(graph.program, w, tuned, splits, 3), rtol=0, atol=0)  # same batches
    plain = ghn.predicted_scores(model, cfg, splits, cells)
    scored = ghn.predicted_scores(model, tuned, splits, cells)
    assert scored[1][1] == pytest.approx(ghn.validation_scores(graph.program, after, splits)[1], rel=1e-6)
    assert not np.allclose(plain[1], scored[1])
    assert model.training  # scoring leaves the GHN's mode as it found it


def test_ground_truth_task_trains_the_validation_cells(tiny):
    config = {**tiny, "task": "ground_truth", "gt_cells": "val", "n_val_cells": 2}
    s = _run(config)
    rows = lifecycle.read_checkpoint(s.last_checkpoint)["run"]["rows"]
    val = ghn.validation_cells(ghn.GHNConfig.from_config(config))
    assert {tuple(r["genotype"]) for r in rows} == set(val)
    assert len(rows) == len(val) * len(TINY["train_seeds"])


@pytest.mark.parametrize("bad,match", [
    ({"hiden": 3}, "unknown config key 'hiden'; did you mean 'hidden'"),
    ({"space": "nb101"}, "only the nb201"),
    ({"dataset": "mnist"}, "dataset must be one of"),
    ({"task": "rank"}, "task must be one of"),
    ({"meta_batch": 0}, "positive integer"),
    ({"shard": 2, "shards": 2}, "not below"),
    ({"resolution": 2}, "resolution"),
    ({"ema_decay": 1.0}, "ema_decay"),
    ({"rank_batches": 101}, "rank_batches"),
    ({"rank_finetune_steps": -1}, "rank_finetune_steps must be a non-negative integer"),
    ({"gt_cells": "test"}, "gt_cells"),
    ({"task": "ground_truth", "gt_cells": "val"}, "n_val_cells"),
])
def test_validate_config_rejects(tiny, bad, match):
    with pytest.raises(ValueError, match=match):
        ghn.validate_config({**tiny, **bad})


def test_validate_config_names_a_missing_image_folder(tiny, tmp_path):
    with pytest.raises(ValueError, match="dataset-fashion-mnist"):
        ghn.validate_config({**tiny, "image_dir": str(tmp_path / "nowhere")})


# ------------------------------------------------------------------------ through Ray Tune
def test_two_ghn_trials_through_tune_reuse_the_stored_ground_truth(tiny, tmp_path, ray_address):
    """A ground-truth run's rows in the store; the GHN trials of a later study train none again."""
    from orchestrator.run import run_study
    from orchestrator.spec import Objective, Resources, StudySpec, WandbSpec
    from orchestrator.store import Store, TrialRecord
    from orchestrator_helpers import archs, trials

    gt = _run({**tiny, "task": "ground_truth"})
    Store(tmp_path).write_trial("ghn-gt", "ghn", TrialRecord("gt0", "gt0", {"seed": 0}, {}, "TERMINATED", "c0",
                                                             checkpoint_dir=gt.last_checkpoint), {})
    spec = StudySpec(name="ghn-smoke", trainable="ghn", config={**tiny, "cache_store": str(tmp_path)}, seeds=(0, 1),
                     objectives=(Objective("eval/tau", "max"),), storage=str(tmp_path),
                     wandb=WandbSpec(enabled=False), resources=Resources(cpu=1), concurrency=2)
    result = run_study(spec, verbose=0)
    assert (result.trials, result.terminated, result.errored) == (2, 2, 0)
    rows = trials(tmp_path, spec.name)
    assert sorted(rows["seed"]) == [0, 1] and rows["config_id"].nunique() == 1
    assert {"validity", "uniqueness", "queries", "eval/tau", "eval/regret"} <= set(rows.columns)
    # every held-out training came from the store: only the top-k picks may be new
    n_eval = TINY["n_eval_cells"] * len(TINY["train_seeds"])
    assert (rows["gt_reused"] >= n_eval).all()
    assert (rows["gt_trained"] <= TINY["top_k"] * len(TINY["train_seeds"])).all()
    a = archs(tmp_path, spec.name)
    assert (a["kind"] == "ranked").sum() == 2 * TINY["n_samples"] and a["key"].notna().all()


def test_same_seed_same_ghn_whatever_threads_the_caller_runs(tiny, monkeypatch):
    """A trial runs at its ``torch_threads`` (default 1), not at its caller's setting: CPU
    kernels sum in a thread-dependent order, which changed a GHN's held-out τ from 0.29 to 0.47
    between 1 and 2 threads before the driver pinned them. The caller's setting comes back."""
    seen: list[int] = []
    step = ghn.GHNRun.train_step

    def spy(self):
        seen.append(torch.get_num_threads())
        return step(self)

    monkeypatch.setattr(ghn.GHNRun, "train_step", spy)
    runs = {}
    for caller in (1, 2):
        torch.set_num_threads(caller)
        try:
            runs[caller] = _run(tiny).reports[-1].metrics
            assert torch.get_num_threads() == caller  # restored
        finally:
            torch.set_num_threads(1)
    assert same_metrics(_stable(runs[1]), _stable(runs[2])) and set(seen) == {1}
    seen.clear()
    _run({**tiny, "torch_threads": 2})
    assert set(seen) == {2} and torch.get_num_threads() == 1
    with pytest.raises(ValueError, match="torch_threads must be an integer >= 1"):
        ghn.validate_config({**tiny, "torch_threads": 0})
