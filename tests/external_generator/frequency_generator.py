"""An out-of-tree generator, as a user would write one in their own package: it labels a few
random cells per round, fits one categorical per genotype position to the best it has seen,
and samples from that. Runs on gnas's lifecycle without being registered (a spec names it as
``"frequency_generator:train"``); ``contract_check.py`` runs gnas's contract suite on it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from trainables import common, lifecycle
from trainables.arch import ArchGraph

SAMPLES = 11  # its own named random stream for the final samples


@dataclass(frozen=True)
class FrequencyConfig:
    rounds: int = 3
    batch: int = 6
    top: int = 4

    def __post_init__(self) -> None:
        lifecycle.positive("frequency", self, "rounds", "batch", "top")


class FrequencyRun(lifecycle.GeneratorRun):
    name = "frequency"
    Config = FrequencyConfig

    def __init__(self, cfg: FrequencyConfig, trial: common.Trial) -> None:
        super().__init__(cfg, trial)
        self.round = 0
        self.genotypes: list[list[int]] = []
        self.labels: list[float] = []

    @property
    def done(self) -> bool:
        return self.round >= self.cfg.rounds

    def step(self) -> dict[str, Any]:
        space = self.trial.oracle.space
        archs = space.sample_random(self.trial.rng, self.cfg.batch)
        remaining = self.trial.oracle.remaining
        archs = archs[: remaining if remaining is not None else None]
        labels = self.trial.oracle.query(archs) if archs else np.empty(0)
        self.genotypes += [[int(g) for g in space.encode(a)] for a in archs]
        self.labels += [float(v) for v in labels]
        self.round += 1
        return {"iteration": self.round, "queries": self.trial.oracle.queries}

    def sample(self, n: int) -> tuple[list[ArchGraph], dict[str, Any]]:
        space = self.trial.oracle.space
        labels = np.asarray(self.labels, dtype=float)
        ok = np.flatnonzero(np.isfinite(labels))
        best = ok[np.argsort(-labels[ok], kind="stable")[: self.cfg.top]]
        rng = lifecycle.numpy_stream(self.trial.config.seed, SAMPLES)
        draws = []
        for position, size in enumerate(space.cardinalities):
            counts = np.ones(size) + np.bincount([self.genotypes[i][position] for i in best], minlength=size)[:size]
            draws.append(rng.choice(size, size=n, p=counts / counts.sum()))
        return [space.decode(g) for g in np.stack(draws, axis=1)], {"iteration": self.round}

    def state_dict(self) -> dict[str, Any]:
        return {"round": self.round, "genotypes": self.genotypes, "labels": self.labels}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.round, self.genotypes, self.labels = int(state["round"]), state["genotypes"], state["labels"]


def reported_metrics(config: dict[str, Any]) -> dict[str, str]:
    return common.reported_metrics(config)


def validate_config(config: dict[str, Any]) -> None:
    lifecycle.validate(FrequencyRun, config)


def train(config: dict[str, Any]) -> None:
    lifecycle.train(FrequencyRun, config)
