"""One contract, every registered trainable (the way Optuna tests every sampler against one suite).

The suite is :class:`trainables.testing.TrainableContract` (importable, so an out-of-tree
generator runs the same checks: tests/test_external_generator.py); here each entry of
:data:`trainables.ENTRIES` gets a subclass with a tiny config on an embedded table (NAS-Bench-Graph
ships with its package) or synthetic images.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orchestrator_helpers import ray_address  # noqa: F401 - fixture

pytest.importorskip("torch")

from trainables import ENTRIES, images  # noqa: E402
from trainables.testing import TrainableContract  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread", "ray_address")  # see conftest; one Ray for the session

CONFIGS: dict[str, dict] = {
    "toy": {"steps": 3, "n_archs": 5},
    "baseline": {"space": "nbgraph", "method": "regularized_evolution", "report_every": 8, "n_samples": 20},
    "gnn2gnn": {"space": "nbgraph", "epochs": 3, "steps_per_epoch": 2, "batch_size": 8, "hidden": 8, "noise_dim": 4,
                "n_samples": 20, "n_eval": 10, "n_labelled": 12, "train_fraction": 0.02, "gen_queries_per_epoch": 4},
    "graphpnas": {"space": "nbgraph", "n_random": 8, "query_batch": 6, "epochs": 2, "hidden": 8, "layers": 2,
                  "mixture": 2, "n_samples": 20, "sample_chunk": 16, "max_sample_rounds": 2},
    "graphvae": {"space": "nbgraph", "epochs": 2, "hidden": 8, "latent": 4, "batch_size": 128, "label_batch": 8,
                 "n_labels": 12, "ascent_starts": 2, "ascent_steps": 2, "ascent_queries": 4, "recon_check": 8,
                 "n_samples": 20, "train_fraction": 0.01},
    "ghn": {"resolution": 8, "channels": 4, "train_size": 96, "val_size": 32, "test_size": 40, "gt_epochs": 1,
            "gt_batch": 32, "iterations": 4, "meta_batch": 2, "batch_size": 16, "report_every": 2, "n_samples": 6,
            "top_k": 1, "n_eval_cells": 3, "n_val_cells": 3, "hidden": 8, "decoder_hidden": 8, "train_seeds": [0]},
}


def test_every_registered_trainable_has_a_contract_config():
    assert set(CONFIGS) == set(ENTRIES)


def _image_dir(root: Path) -> Path:
    """A Fashion-MNIST-format folder of synthetic images (class k: a bright bar at row k)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 200), ("t10k", 60)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 60, (n, 20, 20)).astype(np.uint8)
        for i, k in enumerate(y):
            x[i, 2 * k:2 * k + 2] = 255
        images.write_idx(root / f"{split}-images-idx3-ubyte.gz", x)
        images.write_idx(root / f"{split}-labels-idx1-ubyte.gz", y)
    return root



class _Registered(TrainableContract):
    @classmethod
    def prepare(cls, config: dict, tmp_path: Path) -> dict:
        if cls.trainable == "ghn":
            config["image_dir"] = str(_image_dir(tmp_path))
        return config


for _name, _entry in sorted(ENTRIES.items()):  # TestToyContract, TestGnn2gnnContract, …
    globals()[f"Test{_name.capitalize()}Contract"] = type(
        f"Test{_name.capitalize()}Contract", (_Registered,),
        {"trainable": _name, "config": CONFIGS[_name], "query_budget": None if _entry.role == "toy" else 24})
