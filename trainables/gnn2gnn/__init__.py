"""GNN2GNN (Agiollo & Omicini, UAI 2022): a three-way adversarial graph generator.

A GNN generator turns noise into one architecture in one step; a GNN discriminator tells real
benchmark architectures from generated ones; a GNN valuer predicts whether an architecture is
good. The networks are :mod:`.model`; the training run (labels, epochs, samples; a
:class:`trainables.lifecycle.GeneratorRun`) is :mod:`.run`.
"""
from trainables.gnn2gnn.model import (GNN2GNN, ArchitectureClasses, Discriminator, GraphClassifier, Generator,
                                      SpaceRenderer, Valuer, architecture_classes, architecture_entropy, batch_entropy,
                                      gumbel_st, joint_entropy, sample_entropy)
from trainables.gnn2gnn.run import (DEFAULTS, PRESETS, GNN2GNNConfig, GNN2GNNRun, ValuerData, reported_metrics,
                                    train, validate_config)

__all__ = ["DEFAULTS", "GNN2GNN", "PRESETS", "ArchitectureClasses", "Discriminator", "GNN2GNNConfig", "GNN2GNNRun", "Generator",
           "GraphClassifier", "SpaceRenderer", "Valuer", "ValuerData", "architecture_classes", "architecture_entropy", "batch_entropy", "gumbel_st", "joint_entropy",
           "reported_metrics", "sample_entropy", "train", "validate_config"]
