"""Image data of GHN trials: the fixed train / validation / test splits, resized and standardised."""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

from trainables import lifecycle
from trainables.ghn.config import GHNConfig

SPLIT_STREAM = 2019  # numpy stream (data_seed, 2019) draws the image splits (the measured number)


@functools.lru_cache(maxsize=2)
def _image_set(dataset: str, image_dir: str | None):
    from trainables import images

    return images.load_cifar10(image_dir) if dataset == "cifar10" else images.load_fashion_mnist(image_dir)


@dataclass(frozen=True)
class Splits:
    """Float images ``(N, C, R, R)`` standardised by the train subset's mean/std; int64 labels."""

    x_train: "torch.Tensor"
    y_train: "torch.Tensor"
    x_val: "torch.Tensor"
    y_val: "torch.Tensor"
    x_test: "torch.Tensor"
    y_test: "torch.Tensor"
    n_classes: int
    fingerprint: str  # hash of the raw images and labels used, and the resolution

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    def to(self, device: str) -> "Splits":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            moved[k] = moved[k].to(device)
        return Splits(**moved)


@functools.lru_cache(maxsize=4)
def load_splits(dataset: str, image_dir: str | None, resolution: int, train_size: int, val_size: int,
                test_size: int, data_seed: int) -> Splits:
    """The train / validation / test subsets (cached per process: Tune reuses actors)."""
    import torch
    import torch.nn.functional as F

    data = _image_set(dataset, image_dir)
    rng = lifecycle.numpy_stream(data_seed, SPLIT_STREAM)
    order = rng.permutation(len(data.y_train))
    if train_size + val_size > len(order):
        raise ValueError(f"ghn: train_size + val_size = {train_size + val_size} exceed the {len(order)} "
                         f"images of the {dataset} train split")
    tr, va = order[:train_size], order[train_size:train_size + val_size]
    te = rng.permutation(len(data.y_test))[:test_size]
    raw = {"train": (data.x_train[tr], data.y_train[tr]), "val": (data.x_train[va], data.y_train[va]),
           "test": (data.x_test[te], data.y_test[te])}
    h = hashlib.sha256(f"{dataset}|{resolution}".encode())
    for x, y in (raw["train"], raw["test"]):  # what trained accuracies depend on
        h.update(np.ascontiguousarray(x).tobytes())
        h.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())

    def prep(x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x)).float().div_(255.0)
        return F.interpolate(t, size=(resolution, resolution), mode="area") if t.shape[-1] != resolution else t

    xs = {k: prep(v[0]) for k, v in raw.items()}
    dims = (0, 2, 3)
    mean, std = xs["train"].mean(dims, keepdim=True), xs["train"].std(dims, keepdim=True).clamp_min(1e-6)
    xs = {k: (v - mean) / std for k, v in xs.items()}
    ys = {k: torch.from_numpy(np.asarray(v[1], dtype=np.int64)) for k, v in raw.items()}
    return Splits(xs["train"], ys["train"], xs["val"], ys["val"], xs["test"], ys["test"], data.n_classes,
                  h.hexdigest()[:16])


def _splits(cfg: GHNConfig) -> Splits:
    return load_splits(cfg.dataset, cfg.image_dir, cfg.resolution, cfg.train_size, cfg.val_size,
                       cfg.test_size, cfg.data_seed)


