"""What a trial runs: the generator trainables, and the registry that names them.

Each :class:`TrainableEntry` of :data:`ENTRIES` names a trainable ``train(config: dict) -> None``
(``"module:function"``; see :mod:`trainables.reporting` for how it reports), its role
(``generator``, ``reference`` or ``toy``), its config dataclass, the metrics it reports and
its study presets. :data:`REGISTRY` is the plain ``name → "module:function"`` view of it.

A trainable module also defines ``validate_config(config) -> None`` raising ``ValueError``
(one line); the orchestrator calls it before launching anything. Modules are imported lazily,
by whoever resolves a name, never here: importing this package imports neither torch nor any
trainable module.
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Literal

Role = Literal["generator", "reference", "toy", "external"]

# What trainables.common.finish reports for the generated set (trainables.stats' definitions):
# the statistics on the evaluation field, the same on the selection field ("val_top5_pct", what
# search and schedulers rank by), the cross-dataset / cross-space transfer scores
# ("top5_pct@cifar100/test/200", "top5_pct@nb201:cifar10/test/200", "uniqueness@nb201") and the
# fields it names. Roles (selection / evaluation / free) are trainables.common.metric_role's.
_FIELD_STATS = ("top1_pct", "top5_pct", "top10_pct", "top20_pct", "top50_pct", "acc_mean", "acc_median", "acc_best")
GENERATION_METRICS = ("validity", "uniqueness", "novelty", "heldout_hit_pct", "queries", *_FIELD_STATS,
                      *(f"val_{m}" for m in _FIELD_STATS))
TRANSFER_PATTERNS = ("top1_pct@*", "top5_pct@*", "top10_pct@*", "acc_mean@*", "acc_best@*", "uniqueness@*")
FINISH_METRICS = GENERATION_METRICS + TRANSFER_PATTERNS + ("label_field", "eval_field", "select_field",
                                                           "iteration", "done")


@dataclass(frozen=True)
class TrainableEntry:
    """One registered trainable.

    Attributes:
        name: the short name study specs use.
        target: ``"module:function"`` of its ``train(config)``.
        role: ``generator`` (a method under study), ``reference`` (a baseline it is compared
            with) or ``toy`` (the orchestrator's test double, no benchmark).
        config_target: ``"module:Class"`` of its frozen config dataclass (read through
            :attr:`config`, which imports the module); ``None`` until it has one.
        metrics: every metric name it may report; ``fnmatch`` patterns (``"val/*"``) stand for
            families whose members depend on the config.
        registered: ``False`` for an entry :func:`resolve` made on the fly for an out-of-tree
            target (role ``external``); its module declares its metrics itself
            (``reported_metrics(config)``).
    """

    name: str
    target: str
    role: Role
    config_target: str | None
    metrics: tuple[str, ...]
    registered: bool = True

    @property
    def module(self) -> str:
        return self.target.split(":")[0]

    def import_module(self) -> ModuleType:
        """The trainable's module (imported here, at validation or launch time, never before)."""
        return importlib.import_module(self.module)

    def load(self) -> Callable[[dict[str, Any]], None]:
        """The ``train`` function (imports its module)."""
        return getattr(self.import_module(), self.target.split(":")[1])

    @property
    def config(self) -> type | None:
        """The config dataclass (imports its module)."""
        if self.config_target is None:
            return None
        module, cls = self.config_target.split(":")
        return getattr(importlib.import_module(module), cls)

    @property
    def presets(self) -> dict[str, dict[str, Any]]:
        """Study presets (``smoke`` / ``local`` / ``full`` → config overrides); empty if none."""
        return dict(getattr(self.import_module(), "PRESETS", {}))

    def validate(self, config: dict[str, Any]) -> None:
        """``ValueError`` (one line) for a config this trainable cannot run (none: accepts all)."""
        validate = getattr(self.import_module(), "validate_config", None)
        if validate is not None:
            validate(config)

    def declares(self, metric: str) -> bool:
        """Whether ``metric`` is among what this trainable reports."""
        return any(metric == m or (any(c in m for c in "*?[") and fnmatch.fnmatchcase(metric, m))
                   for m in self.metrics)


_GNN2GNN = FINISH_METRICS + ("epoch", "n_eval", "lambda", "n_labelled", "gen_labelled", "loss/d", "d_acc",
                             "loss/v", "v_acc", "loss/g_adv", "loss/g_val", "loss/g", "batch_entropy",
                             "joint_entropy", "sample_entropy")
_GRAPHPNAS = FINISH_METRICS + ("best_found_reward", "best_found_acc", "elite_mean_reward", "reward_baseline",
                               "gen/sampled", "gen/invalid", "gen/repeat", "gen/random_fill", "loss/edge_nll",
                               "loss/node_nll", "loss/entropy", "loss/total", "sample_logp_mean",
                               "search_best_reward")
_GRAPHVAE = FINISH_METRICS + ("epoch", "n_labels", "n_train", "cmplx_available", "recon_acc", "loss/recon",
                              "loss/kl", "loss/perf", "loss/cmplx", "loss/total", "ascent/found", "ascent/queried",
                              "ascent/acc_mean", "ascent/acc_best", "ascent/top5_pct", "best_found_acc",
                              "best_found_reward")
_GHN = ("iteration", "done", "queries", "loss/task", "train_acc_predicted", "cells_seen", "lr", "validity",
        "uniqueness", "novelty", "heldout_hit_pct", "top1_pct", "top5_pct", "top10_pct", "acc_mean", "acc_best",
        "label_field", "eval_field", "rank_seconds", "rank_seconds_per_cell", "pred_acc_mean_ranked",
        "pred_acc_max_ranked", "search_regret_vs_eval_best", "gt_trained", "gt_reused", "train_seconds_per_cell",
        "cells", "last_acc", "val/*", "eval/*")
_BASELINE = FINISH_METRICS + ("best_found", "val_best_found")
_TOY = ("iteration", "validity", "uniqueness", "novelty", "top1_pct", "top5_pct", "top10_pct", "heldout_hit_pct",
        "acc_mean", "acc_best", "queries", "loss/total")

ENTRIES: dict[str, TrainableEntry] = {e.name: e for e in (
    TrainableEntry("toy", "trainables.toy:train", "toy", "trainables.toy:ToyConfig", _TOY),
    TrainableEntry("baseline", "trainables.baselines:train", "reference", "trainables.baselines:BaselineConfig",
                   _BASELINE),
    TrainableEntry("gnn2gnn", "trainables.gnn2gnn:train", "generator", "trainables.gnn2gnn:GNN2GNNConfig", _GNN2GNN),
    TrainableEntry("graphpnas", "trainables.graphpnas:train", "generator", "trainables.graphpnas:GraphPNASConfig",
                   _GRAPHPNAS),
    TrainableEntry("graphvae", "trainables.graphvae:train", "generator", "trainables.graphvae:VAEConfig", _GRAPHVAE),
    TrainableEntry("ghn", "trainables.ghn:train", "generator", "trainables.ghn:GHNConfig", _GHN),
)}

REGISTRY: dict[str, str] = {name: e.target for name, e in ENTRIES.items()}


TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def resolve(name: str) -> TrainableEntry:
    """The one way from what a spec names to a trainable: a registry name, a registered
    ``"module:function"`` target, or any other target (an out-of-tree generator), for which an
    unregistered entry is made on the fly. Imports nothing; :meth:`TrainableEntry.load` and
    friends import the module. ``LookupError`` (one line) for a name that is neither."""
    if name in ENTRIES:
        return ENTRIES[name]
    for entry in ENTRIES.values():
        if entry.target == name:
            return entry
    if not isinstance(name, str) or not TARGET.fullmatch(name):
        close = difflib.get_close_matches(str(name), ENTRIES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise LookupError(f"unknown trainable {name!r}{hint}; registered: {', '.join(sorted(ENTRIES))}"
                          " — or give 'package.module:function'")
    return TrainableEntry(name=name, target=name, role="external", config_target=None, metrics=(), registered=False)
