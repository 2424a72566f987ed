"""GraphPNAS (Li, Liu, Sigal, Liao 2022, arXiv 2211.15155): learn a distribution of good cells.

An autoregressive GRAN-style graph generator (:mod:`.model`) proposes cells node by node; the
best cells queried so far (the *elite set*) train it with a reward-weighted likelihood; repeat
until the query budget is spent (:mod:`.run`, a :class:`trainables.lifecycle.GeneratorRun`).
``train(config)`` is the trainable (docs/DESIGN.md, "The trial lifecycle").

Every query batch is reported (best found so far by the label field and its clean value on
the evaluation field, queries, losses, rejection counts) with a checkpoint from which a
resumed trial continues exactly. NB101 needs the full table: on the 500-row sample ``train``
raises ``ValueError``.
"""
from trainables.graphpnas.model import BERNOULLI, FIXED, SOURCE, Layout, layout_for, make_generator
from trainables.graphpnas.run import (DEFAULTS, PRESETS, GraphPNASConfig, GraphPNASRun, read_trace,
                                      reported_metrics, reward_weights, train, validate_config)

__all__ = ["BERNOULLI", "DEFAULTS", "FIXED", "PRESETS", "SOURCE", "Generator", "GraphPNASConfig", "GraphPNASRun",
           "Layout", "layout_for", "make_generator", "read_trace", "reported_metrics", "reward_weights", "train",
           "validate_config"]


def __getattr__(name: str):  # torch is imported only when the generator class is asked for
    if name == "Generator":
        from trainables.graphpnas import model

        return model.Generator
    raise AttributeError(name)
