"""The trainable contract as one pytest suite, importable by any generator, in this tree or out of it.

The shape of Optuna's ``optuna.testing.pytest_samplers``: subclass :class:`TrainableContract`
in a test module, name the trainable (a registry name or ``"package.module:function"``) and a
tiny config, and pytest runs every check against it::

    from trainables.testing import TrainableContract

    class TestMyGenerator(TrainableContract):
        trainable = "mypackage.generator:train"
        config = {"space": "nbgraph", "epochs": 2, "n_samples": 20}

The checks, at that tiny size: config errors are one-line ``ValueError`` s (an unknown key with
the closest name, wrong types); the query budget is never exceeded; the same seed gives the same
reports; resuming from a checkpoint gives the uninterrupted run's reports; a finished
checkpoint is reported again, as it was; every metric reported is declared and every metric
declared to preflight is reported; ``archs.parquet`` has the schema the store reads; one trial
runs through Ray Tune into the store. The module must be importable where Ray's workers run
(installed, or on ``PYTHONPATH``). Needs pytest (the ``dev`` extra); nothing imports this
module at run time.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, ClassVar

import pytest

from trainables import FINISH_METRICS, TrainableEntry, reporting, resolve

FREE_KEYS = ("iteration", "done")  # what any trainable may report without declaring it


def same_reports(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal reports, wall-clock timings aside (NaN equals NaN)."""
    a = {k: v for k, v in a.items() if "seconds" not in k}
    b = {k: v for k, v in b.items() if "seconds" not in k}
    return a.keys() == b.keys() and all(
        x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        for x, y in ((a[k], b[k]) for k in a))


class TrainableContract:
    """Subclass with ``trainable`` and ``config`` set; override :meth:`prepare` to add what a
    config needs at test time (a data folder made in ``tmp_path``)."""

    trainable: ClassVar[str]
    config: ClassVar[dict[str, Any]]
    query_budget: ClassVar[int | None] = 24  # None: the trainable reads no benchmark
    seed: ClassVar[int] = 1

    @classmethod
    def prepare(cls, config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
        return config

    # ------------------------------------------------------------------ fixtures
    @pytest.fixture(scope="class")
    @classmethod
    def entry(cls) -> TrainableEntry:
        return resolve(cls.trainable)

    @pytest.fixture(scope="class")
    @classmethod
    def full_config(cls, tmp_path_factory) -> dict[str, Any]:
        config = {**cls.config, "seed": cls.seed}
        if cls.query_budget is not None:
            config["query_budget"] = cls.query_budget
        return cls.prepare(config, tmp_path_factory.mktemp("contract"))

    @pytest.fixture(scope="class")
    @classmethod
    def session(cls, entry, full_config) -> reporting.PlainSession:
        """One uninterrupted run, shared by the checks of the class."""
        return cls._run(entry, full_config)

    @staticmethod
    def _run(entry: TrainableEntry, config: dict[str, Any], restore_from: str | None = None):
        with reporting.plain_session(restore_from=restore_from) as s:
            entry.load()(config)
        return s

    # ------------------------------------------------------------------ config errors
    def test_unknown_key_is_refused_with_the_closest_name(self, entry, full_config):
        with pytest.raises(ValueError, match=r"unknown config key 'seeed'; did you mean 'seed'\?") as err:
            entry.validate({**full_config, "seeed": 2})
        assert "\n" not in str(err.value)

    @pytest.mark.parametrize("bad", [{"seed": "one"}, {"seed": 1.5}, {"seed": True}])
    def test_a_wrong_type_is_one_line(self, entry, full_config, bad):
        with pytest.raises(ValueError, match="seed must be a whole number") as err:
            entry.validate({**full_config, **bad})
        assert "\n" not in str(err.value)

    def test_the_config_dataclass_is_frozen_and_parses_the_defaults(self, entry):
        cls = entry.config
        if cls is None:
            pytest.skip(f"{entry.name} names no config dataclass (an unregistered target)")
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
        cfg = cls()
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(cfg, dataclasses.fields(cls)[0].name, None)

    # ------------------------------------------------------------------ one run
    def test_the_budget_is_never_exceeded(self, session, full_config):
        queries = [r.metrics["queries"] for r in session.reports]
        assert queries and max(queries) <= full_config.get("query_budget", math.inf)
        assert all(b >= a for a, b in zip(queries, queries[1:]))  # spent queries only grow

    def test_same_seed_same_reports(self, entry, full_config, session):
        again = self._run(entry, full_config)
        assert len(again.reports) == len(session.reports)
        assert all(same_reports(a.metrics, b.metrics) for a, b in zip(session.reports, again.reports))

    def test_resume_equals_the_uninterrupted_run(self, entry, full_config, session):
        assert len(session.reports) >= 2, "the contract config must report at least once before the end"
        resumed = self._run(entry, full_config, restore_from=session.reports[0].checkpoint)
        assert len(resumed.reports) == len(session.reports) - 1
        assert all(same_reports(a.metrics, b.metrics) for a, b in zip(session.reports[1:], resumed.reports))

    def test_a_finished_checkpoint_is_reported_again(self, entry, full_config, session):
        again = self._run(entry, full_config, restore_from=session.last_checkpoint)
        assert len(again.reports) == 1 and same_reports(again.reports[0].metrics, session.reports[-1].metrics)
        old, new = (Path(c, "archs.parquet").read_bytes() for c in (session.last_checkpoint, again.last_checkpoint))
        assert new == old

    def test_reported_metrics_are_declared(self, entry, full_config, session):
        declared = entry.import_module().reported_metrics(full_config)
        reported = set().union(*(r.metrics for r in session.reports))
        # an unregistered generator declares its own metrics; what common.finish adds for every
        # generator (transfer scores on other datasets among them) is the library's declaration
        known = entry.declares if entry.registered else dataclasses.replace(
            entry, metrics=(*declared, *FREE_KEYS, *FINISH_METRICS)).declares
        undeclared = sorted(m for m in reported if not known(m))
        assert not undeclared, f"reported but not declared: {undeclared}"
        assert set(declared) <= set(session.reports[-1].metrics), "declared to preflight but not reported at the end"
        assert session.reports[-1].metrics.get("done") is True or entry.role == "toy"

    def test_archs_parquet_schema(self, entry, session):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(Path(session.last_checkpoint, "archs.parquet"))
        assert table.num_rows >= 1
        assert table.schema.field("key").type == pa.string() and table.schema.field("valid").type == pa.bool_()
        if entry.role != "toy":
            assert set(table.column("eval_field").to_pylist()) == {session.reports[-1].metrics["eval_field"]}

    # ------------------------------------------------------------------ through Tune
    def test_one_trial_through_tune_into_the_store(self, entry, full_config, tmp_path):
        import ray

        from orchestrator.run import run_study
        from orchestrator.spec import Objective, Resources, StudySpec, WandbSpec
        from orchestrator.store import Store

        if entry.role == "toy":
            pytest.skip("the toy is the orchestrator's own test double: tests/test_orchestrator_run.py")
        started = not ray.is_initialized()
        if started:
            ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
        try:
            config = {k: v for k, v in full_config.items() if k not in ("seed", "query_budget")}
            spec = StudySpec(name="contract", trainable=self.trainable, config=config, seeds=(0,),
                             objectives=(Objective("queries", "max"),), storage=str(tmp_path),
                             wandb=WandbSpec(enabled=False), resources=Resources(cpu=1), concurrency=1,
                             query_budget=self.query_budget)
            result = run_study(spec, verbose=0)
        finally:
            if started:
                ray.shutdown()
        assert (result.trials, result.terminated, result.errored) == (1, 1, 0)
        rows = Store(tmp_path).read_pandas("trials", studies=[spec.name])
        assert list(rows["seed"]) == [0]
        if self.query_budget is not None:
            assert (rows["queries"] <= self.query_budget).all()
        assert {"validity", "uniqueness", "queries"} <= set(rows.columns)
        assert len(Store(tmp_path).read_pandas("archs", studies=[spec.name])) >= 1
