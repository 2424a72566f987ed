"""One contract, every registered trainable (the way Optuna tests every sampler against one suite).

For each entry of :data:`trainables.ENTRIES`, at a tiny size: config errors are one-line
``ValueError`` s (unknown keys with a suggestion, wrong types); the query budget is never
exceeded; the same seed gives the same reports; resuming from a checkpoint gives the
uninterrupted run's reports; a finished checkpoint is reported again, as it was; every metric
reported is declared, and every metric the module declares to preflight is reported;
``archs.parquet`` has the schema the store reads; one trial runs through Ray Tune into the store.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from orchestrator_helpers import archs, ray_address, trials  # noqa: F401 - fixture

pytest.importorskip("torch")

from trainables import ENTRIES, images, reporting  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest

BUDGET = 24
# Tiny configs on embedded tables (NAS-Bench-Graph ships with the package) or synthetic images.
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
NAMES = sorted(ENTRIES)


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


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> dict[str, dict]:
    out = {name: {**cfg, "seed": 1} for name, cfg in CONFIGS.items()}
    out["ghn"]["image_dir"] = str(_image_dir(tmp_path_factory.mktemp("images")))
    for name, entry in ENTRIES.items():
        if entry.role != "toy":
            out[name]["query_budget"] = BUDGET
    return out


def _run(name: str, config: dict, restore_from: str | None = None) -> reporting.PlainSession:
    with reporting.plain_session(restore_from=restore_from) as s:
        ENTRIES[name].load()(config)
    return s


def _stable(m: dict) -> dict:
    """A report without its wall-clock timings."""
    return {k: v for k, v in m.items() if "seconds" not in k}


def _same(a: dict, b: dict) -> bool:
    a, b = _stable(a), _stable(b)
    return a.keys() == b.keys() and all(
        x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        for x, y in ((a[k], b[k]) for k in a))


_RUNS: dict[str, reporting.PlainSession] = {}


@pytest.fixture
def run(configs, request) -> tuple[str, dict, reporting.PlainSession]:
    """``(name, config, session of one uninterrupted run)``, one run per trainable per module."""
    name = request.param
    if name not in _RUNS:
        _RUNS[name] = _run(name, configs[name])
    return name, configs[name], _RUNS[name]


def pytest_generate_tests(metafunc):
    if "run" in metafunc.fixturenames:
        metafunc.parametrize("run", NAMES, indirect=True)


# ------------------------------------------------------------------------ config errors
@pytest.mark.parametrize("name", NAMES)
def test_unknown_key_is_refused_with_the_closest_name(name, configs):
    with pytest.raises(ValueError, match=r"unknown config key 'seeed'; did you mean 'seed'\?") as err:
        ENTRIES[name].validate({**configs[name], "seeed": 2})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [{"seed": "one"}, {"seed": 1.5}, {"seed": True}])
def test_a_wrong_type_is_one_line(name, configs, bad):
    with pytest.raises(ValueError, match="seed must be a whole number") as err:
        ENTRIES[name].validate({**configs[name], **bad})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", [n for n in NAMES if ENTRIES[n].config_target])
def test_the_config_dataclass_is_frozen_and_parses_the_defaults(name):
    import dataclasses

    cls = ENTRIES[name].config
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    cfg = cls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(cfg, dataclasses.fields(cls)[0].name, None)


# ------------------------------------------------------------------------ one run
def test_the_budget_is_never_exceeded(run):
    name, config, s = run
    queries = [r.metrics["queries"] for r in s.reports]
    assert queries and max(queries) <= config.get("query_budget", math.inf)
    assert all(b >= a for a, b in zip(queries, queries[1:]))  # spent queries only grow


def test_same_seed_same_reports(run):
    name, config, s = run
    again = _run(name, config)
    assert len(again.reports) == len(s.reports)
    assert all(_same(a.metrics, b.metrics) for a, b in zip(s.reports, again.reports))


def test_resume_equals_the_uninterrupted_run(run):
    name, config, s = run
    assert len(s.reports) >= 2, "the contract config must report at least once before the end"
    resumed = _run(name, config, restore_from=s.reports[0].checkpoint)
    assert len(resumed.reports) == len(s.reports) - 1
    assert all(_same(a.metrics, b.metrics) for a, b in zip(s.reports[1:], resumed.reports))


def test_a_finished_checkpoint_is_reported_again(run):
    name, config, s = run
    again = _run(name, config, restore_from=s.last_checkpoint)
    assert len(again.reports) == 1 and _same(again.reports[0].metrics, s.reports[-1].metrics)
    old, new = (Path(c, "archs.parquet").read_bytes() for c in (s.last_checkpoint, again.last_checkpoint))
    assert new == old


def test_reported_metrics_are_declared(run):
    name, config, s = run
    entry = ENTRIES[name]
    reported = set().union(*(r.metrics for r in s.reports))
    assert not {m for m in reported if not entry.declares(m)}, "reported but not in trainables.ENTRIES"
    import importlib

    declared = getattr(importlib.import_module(entry.module), "reported_metrics")(config)
    assert set(declared) <= set(s.reports[-1].metrics), "declared to preflight but not reported at the end"
    assert s.reports[-1].metrics.get("done") is True or entry.role == "toy"


def test_archs_parquet_schema(run):
    import pyarrow as pa

    name, config, s = run
    table = pq.read_table(Path(s.last_checkpoint, "archs.parquet"))
    assert table.num_rows >= 1
    assert table.schema.field("key").type == pa.string() and table.schema.field("valid").type == pa.bool_()
    if ENTRIES[name].role != "toy":
        assert set(table.column("eval_field").to_pylist()) == {s.reports[-1].metrics["eval_field"]}


# ------------------------------------------------------------------------ through Tune
@pytest.mark.parametrize("name", [n for n in NAMES if ENTRIES[n].role != "toy"])
def test_one_trial_through_tune_into_the_store(name, configs, tmp_path, ray_address):
    from orchestrator.run import run_study
    from orchestrator.spec import Objective, Resources, StudySpec, WandbSpec

    config = {k: v for k, v in configs[name].items() if k not in ("seed", "query_budget")}
    spec = StudySpec(name=f"{name}-contract", trainable=name, config=config, seeds=(0,),
                     objectives=(Objective("queries", "max"),), storage=str(tmp_path), wandb=WandbSpec(enabled=False),
                     resources=Resources(cpu=1), concurrency=1, query_budget=BUDGET)
    result = run_study(spec, verbose=0)
    assert (result.trials, result.terminated, result.errored) == (1, 1, 0)
    rows = trials(tmp_path, spec.name)
    assert list(rows["seed"]) == [0] and (rows["queries"] <= BUDGET).all()
    assert {"validity", "uniqueness", "queries"} <= set(rows.columns)
    assert len(archs(tmp_path, spec.name)) >= 1
