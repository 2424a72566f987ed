"""Graph HyperNetwork (Zhang, Ren, Urtasun, ICLR 2019; GHN-2: Knyazev et al., NeurIPS 2021).

A gated GNN reads a network's *computation graph* and writes the weights of every one of its
layers; trained by sampling NB201 cells and minimising the task loss of the networks that run
**with the predicted weights**, it then scores any cell without training it. Its accuracy
with predicted weights is a cheap surrogate of the accuracy the cell reaches when trained.
``train(config)`` follows the trainable contract of docs/DESIGN.md; ``config["task"]`` picks
one of two jobs:

* ``"ghn"`` (default): train the GHN for ``iterations`` meta-batches (``meta_batch`` random
  cells each, the held-out evaluation cells never among them), reporting every
  ``report_every`` with a checkpoint; then the **surrogate search** — rank ``n_samples``
  random cells by their predicted-weight cross-entropy on a validation split
  (``rank_by="loss"``; ``"acc"`` ranks by accuracy, as GHN-1/2 do — on 1,000 validation
  images two GHN runs agreed on the accuracy order with τ 0.48 only, on the loss order with
  τ 0.71), really train the
  ``top_k`` best (``queries``), and score the surrogate on the held-out ground-truth sample
  (``n_eval_cells`` cells): Kendall τ, Spearman ρ, top-10 % overlap, regret of its top pick.
  With ``n_val_cells`` > 0 it also scores a second, disjoint sample, the *validation cells*
  (``val/…`` metrics): configurations are tuned on those, so that the held-out cells remain a
  clean measurement. The GHN trains on neither sample.
* ``"ground_truth"``: really train shard ``shard`` of ``shards`` of that same held-out
  sample (or of the validation cells, ``gt_cells="val"``) with the fixed recipe, once per
  ``train_seeds`` entry — run as a Tune grid over shards to fill the cache before the GHN
  trials need it.

**Networks** (:func:`build_program`): NB201's macro skeleton — stem (conv 3×3 + BN), three
stages of ``cells_per_stage`` cells at ``channels``·{1, 2, 4}, a ResNet reduction block
between stages, head (BN, ReLU, global pool, linear). A network is a *program*: a list of
:class:`Layer` in topological order. The same list is run by :func:`run_program` (plain
torch, weights passed in: the GHN's predictions, or a :class:`CellNetwork`'s own parameters
when it is trained normally) and becomes the GHN's input graph (:func:`graph_of`), so the two
can never disagree. Cells are simplified as NB201's own sameness rule reads them: ``none``
edges vanish, a zero input makes every op on it zero, ops that cannot reach the cell's output
are dropped, ``skip_connect`` is an edge, not a layer.

**Graph** (PyG ``Data``): one node per layer; features are the layer type (one-hot) and its
shape (output/input channels, kernel, stride, resolution); real edges follow the data flow;
with ``virtual_edges`` = s > 1 (GHN-2), every pair joined by a directed path of length
2..s gets a virtual edge whose message goes through its own MLP, weighted by 1/length.

**GHN** (:class:`GHN`): node embedding → ``prop_steps`` rounds of gated propagation, each a
forward sweep over the nodes in topological levels (messages from predecessors, GRU update)
and a backward sweep in reverse (messages from successors, a second GRU) — GHN-1's schedule,
batched per level across the graphs of a meta-batch. Per-type MLP decoders (conv 1×1,
conv 3×3, BN, linear) emit a tensor of the largest shape in the network, sliced to each
layer's shape. With ``normalize`` (GHN-2) conv/linear outputs are scaled by He's
√(gain/fan-in) and BN scales are 1 + output, so every layer starts at a trainable scale
whatever its fan-in; with ``layer_norm`` node states are layer-normalised before decoding.
Networks run with predicted weights use BN's batch statistics (GHN-1 and GHN-2 do likewise).
Training: AdamW on the mean cross-entropy of the meta-batch's networks on one image batch,
learning rate decayed by a cosine to 0 over ``iterations``. With ``ema_decay`` = d > 0 an
exponential moving average of the GHN's weights (zero-initialised, bias-corrected: Polyak
averaging with weights d^(t−i)) is kept beside them and *it* scores the cells; training itself
is unchanged. Scores use the validation split as ``rank_batches`` BN batches (averaged).

**Ground truth** (:class:`GroundTruth`): SGD (Nesterov momentum, cosine schedule) for
``gt_epochs`` on the same ``train_size`` images, accuracy on ``test_size`` test images. Every
result is a row of the trial's ``archs.parquet`` (``kind="trained"``, with ``gt_key`` = hash
of data, recipe, network size, cell and training seed) and so lands in the orchestrator's
store; a later trial given ``cache_store`` (the store root) reads those rows back instead of
training again.

Data (``dataset``): ``fashion-mnist`` (Debian's ``dataset-fashion-mnist``, or ``image_dir``)
or ``cifar10`` (``image_dir`` = a ``cifar-10-batches-py`` folder); images are resized to
``resolution`` by area averaging. Split: ``train_size`` images from the official train split
(fixed by ``data_seed``, shared by GHN and ground truth), ``val_size`` more from it for the
GHN's ranking, ``test_size`` from the official test split for trained accuracies.
"""
from trainables.ghn.config import DATASETS, DEFAULTS, GT_CELLS, LR_SCHEDULES, N_EDGES, RANK_BY, TASKS, GHNConfig
from trainables.ghn.data import Splits, _image_set, _splits, load_splits
from trainables.ghn.groundtruth import (GroundTruth, _graph, _read_cache, _space, cell_keys, cell_string, eval_cells,
                                        gt_key, train_cell, validation_cells)
from trainables.ghn.model import N_FEATURES, CellGraph, Schedule, graph_of, make_ghn, make_schedule
from trainables.ghn.networks import (DECODED, LAYER_TYPES, Layer, _avg_pool2x2, _avg_pool3x3, build_program,
                                     param_name, param_shapes, run_program)
from trainables.ghn.run import (Device, GHNRun, GroundTruthRun, _write_rows, averaged_ghn, ema_update, finetuned,
                                predicted_scores, ranking_scores, reported_metrics, surrogate, train,
                                validate_config, validation_scores)

ARCHS_FILE = "archs.parquet"

__all__ = ["ARCHS_FILE", "averaged_ghn", "build_program", "cell_keys", "cell_string",
           "CellGraph", "CellNetwork", "DATASETS", "DECODED", "DEFAULTS", "Device", "ema_update", "eval_cells", "finetuned",
           "GHN", "GHNConfig", "GHNRun", "graph_of", "GroundTruth", "GroundTruthRun", "GT_CELLS",
           "gt_key", "Layer", "LAYER_TYPES", "load_splits", "LR_SCHEDULES", "make_ghn", "make_schedule", "N_EDGES",
           "N_FEATURES", "param_name", "param_shapes", "predicted_scores", "RANK_BY", "ranking_scores",
           "reported_metrics", "run_program", "Schedule", "Splits", "surrogate", "TASKS", "train", "train_cell",
           "validate_config", "validation_cells", "validation_scores", "_avg_pool2x2", "_avg_pool3x3", "_graph", "_image_set",
           "_read_cache", "_space", "_splits", "_write_rows"]


def __getattr__(name: str):  # torch / PyG are imported only when a model class is asked for
    if name == "GHN":
        from trainables.ghn.model import ghn_class

        return ghn_class()
    if name == "CellNetwork":
        from trainables.ghn.networks import cell_network_class

        return cell_network_class()
    raise AttributeError(name)
