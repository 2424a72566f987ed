"""gnas's contract suite on an out-of-tree generator: the one line a user writes in their tests.
Run from a folder outside the gnas tree with this folder on PYTHONPATH
(tests/test_external_generator.py does)."""
from trainables.testing import TrainableContract


class TestFrequencyGenerator(TrainableContract):
    trainable = "frequency_generator:train"
    config = {"space": "nbgraph", "rounds": 3, "batch": 6, "top": 4, "n_samples": 20}
