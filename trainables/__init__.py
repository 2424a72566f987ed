"""What a trial runs: the generator trainables, and the registry that names them.

Each entry maps a short name used in study specs to ``"module:function"``; the function is a
trainable ``train(config: dict) -> None`` (see :mod:`trainables.reporting` for how it reports).
A trainable module may also define ``validate_config(config) -> None`` raising ``ValueError``;
the orchestrator calls it before launching anything. Modules are imported lazily, by whoever
resolves a name, never here.
"""

REGISTRY: dict[str, str] = {
    "toy": "trainables.toy:train",
    "baseline": "trainables.baselines:train",
    "gnn2gnn": "trainables.gnn2gnn:train",
    "graphpnas": "trainables.graphpnas:train",
    "graphvae": "trainables.graphvae:train",
    "ghn": "trainables.ghn:train",
}
