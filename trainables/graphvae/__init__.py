"""Graph VAE (Li et al. 2020, arXiv 2006.10310, built on D-VAE): a continuous architecture space.

A GNN encoder maps a cell to ``q(z | G)``, a decoder rebuilds it node by node, predictors of
performance and complexity read ``μ`` (:mod:`.model`); search is gradient ascent in latent
space, its new cells scored by budgeted oracle queries (:mod:`.run`, a
:class:`trainables.lifecycle.GeneratorRun`). :func:`load_model` rebuilds the model of a
checkpoint (for measurements on held-out cells, see ``bench/graphvae_measure.py``).
:mod:`.predictor` fits a few-label performance predictor on an encoder pretrained without
labels (``bench/graphvae_predictor.py``).
"""
from trainables.graphvae.model import DAGConv, Decoded, GraphCodec, GraphVAE, TopoGRU, ascend, kl_divergence
from trainables.graphvae.run import (DEFAULTS, NOISE, PRESETS, SAMPLES, VAE_STREAM, GraphVAERun, Trained, VAEConfig,
                                     complexity_of, load_model, read_ascent, reported_metrics, train, validate_config)

__all__ = ["DAGConv", "DEFAULTS", "Decoded", "GraphCodec", "GraphVAE", "GraphVAERun", "NOISE", "PRESETS", "SAMPLES",
           "TopoGRU", "Trained", "VAEConfig", "VAE_STREAM", "ascend", "complexity_of", "kl_divergence", "load_model",
           "read_ascent", "reported_metrics", "train", "validate_config"]
