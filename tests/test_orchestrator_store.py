"""The Parquet store, W&B tracking's failure path, and the trainable contract outside Tune."""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestrator.rows import git_commit, provenance
from orchestrator.store import Store, TrialRecord
from orchestrator.tracking import TrialTracker, WandbSettings
from trainables import reporting, toy


def record(trial_id: str, config: dict, value: float, *, gpu: float = 0.0, ckpt: str | None = None) -> TrialRecord:
    result = {"top5_pct": value, "training_iteration": 3, "time_total_s": 7200.0, "hostname": "h",
              "device": "cpu", "trial_started_at": 1.0, "pid": 1}
    return TrialRecord(trial_id=trial_id, trial_name=f"toy_{trial_id}", config=config, result=result,
                       status="TERMINATED", config_id="c" + trial_id, checkpoint_dir=ckpt, cpus=1.0,
                       gpu_fraction=gpu)


def test_store_reads_every_study_in_one_scan_with_unified_columns(tmp_path):
    store = Store(tmp_path)
    prov = provenance()
    store.write_trial("a", "toy", record("t1", {"seed": 0, "lr": 1}, 1.0), prov)  # lr: int here
    store.write_trial("b", "toy", record("t2", {"seed": 1, "lr": 0.5, "k": "x"}, 2.0, gpu=0.5), prov)
    table = store.read("trials")
    assert table.num_rows == 2 and set(table.column("study").to_pylist()) == {"a", "b"}
    assert pa.types.is_floating(table.schema.field("config/lr").type)
    frame = store.read_pandas("trials", studies=["b"])
    assert frame["config/k"].tolist() == ["x"] and frame["gpu_hours"].tolist() == [1.0]
    assert frame["git_commit"].tolist() == [git_commit()] and frame["version/pyarrow"].tolist() == [pa.__version__]
    assert "pid" not in frame and "trial_started_at" not in frame and frame["started_at"].tolist() == [1.0]
    ledger = store.cost_ledger().set_index("study")
    assert ledger.loc["b", "gpu_hours"] == 1.0 and ledger.loc["a", "cpu_hours"] == 2.0


def test_rewriting_a_trial_replaces_its_rows_and_temp_files_are_invisible(tmp_path):
    store = Store(tmp_path)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    pq.write_table(pa.table({"key": ["x", "y"], "seed": [7, 7]}), ckpt / "archs.parquet")
    for value in (1.0, 2.0):  # e.g. the trial was finished again after a resume
        assert store.write_trial("s", "toy", record("t1", {"seed": 3}, value, ckpt=str(ckpt)), {}) == (1, 2)
    part = store.partition("trials", "s", "toy")
    (Path(part) / ".tmp-t9-dead.parquet").write_bytes(b"half a file")  # a writer killed mid-write
    trials_ = store.read_pandas("trials")
    assert trials_["top5_pct"].tolist() == [2.0]
    archs = store.read_pandas("archs")
    assert archs["key"].tolist() == ["x", "y"] and set(archs["seed"]) == {3}  # the trial's seed wins
    assert set(archs["trial_id"]) == {"t1"} and set(archs["config_id"]) == {"ct1"}
    assert store.trial_ids("s") == {"t1"}


def test_empty_store_reads_as_empty_table(tmp_path):
    assert Store(tmp_path / "none").read("archs").num_rows == 0
    assert Store(tmp_path / "none").trial_ids("s") == set()
    assert Store(tmp_path / "none").cost_ledger().empty
    with pytest.raises(ValueError, match="unknown table"):
        Store(tmp_path).read("nope")


def _write_trials(store: Store, study: str, ids, tmp_path, value: float = 1.0) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir(exist_ok=True)
    pq.write_table(pa.table({"key": ["x", "y"]}), ckpt / "archs.parquet")
    for i in ids:
        store.write_trial(study, "toy", record(i, {"seed": 0}, value, ckpt=str(ckpt)), {})


def _files(store: Store, table: str, study: str = "s") -> list[str]:
    return sorted(p.name for p in Path(store.partition(table, study, "toy")).iterdir() if p.suffix == ".parquet")


def _values(store: Store) -> dict[str, float]:
    frame = store.read_pandas("trials")
    assert frame["trial_id"].is_unique
    return dict(zip(frame["trial_id"], frame["top5_pct"]))


def test_compaction_merges_per_trial_files_and_readers_see_each_trial_once(tmp_path, monkeypatch):
    store = Store(tmp_path)
    _write_trials(store, "s", [f"t{i}" for i in range(6)], tmp_path)
    before = store.read_pandas("archs").sort_values(["trial_id", "key"]).reset_index(drop=True)
    assert store.compact() == 12  # 6 trials x 2 tables
    assert [f.startswith("compacted-00000001-") for f in _files(store, "trials")] == [True]
    after = store.read_pandas("archs").sort_values(["trial_id", "key"]).reset_index(drop=True)
    assert after[before.columns].equals(before) and store.trial_ids("s") == {f"t{i}" for i in range(6)}
    _write_trials(store, "s", ["t2"], tmp_path, value=5.0)  # rewritten after compaction (a retry)
    assert _values(store)["t2"] == 5.0 and len(store.read("archs")) == 12
    monkeypatch.setattr("orchestrator.store.MAX_COMPACTED", 2)
    store.compact()  # a second generation holds t2's new row
    assert _values(store)["t2"] == 5.0 and len(_files(store, "trials")) == 2
    _write_trials(store, "s", ["t7"], tmp_path)
    store.compact()  # a third would exceed MAX_COMPACTED: all merge into one, newest copies kept
    assert _files(store, "trials")[0].startswith("compacted-00000003-") and len(_files(store, "trials")) == 1
    assert _values(store) == {**{f"t{i}": 1.0 for i in range(6)}, "t2": 5.0, "t7": 1.0}
    assert len(store.read("archs")) == 14


def test_status_counts_each_trial_once_and_never_imports_pandas(tmp_path):
    """``gnas status`` reads compacted and per-trial files, a retried trial once; pyarrow would
    import pandas (~0.4 s, more than the whole read) on its first pa.array, so the path avoids it."""
    import subprocess

    store = Store(tmp_path)
    _write_trials(store, "s", [f"t{i}" for i in range(5)], tmp_path)
    store.compact()
    _write_trials(store, "s", ["t2", "t9"], tmp_path, value=5.0)  # a retry of t2 and a new trial
    code = ("import sys; from orchestrator.store import Store; "
            f"[s] = Store({str(tmp_path)!r}).status(); print(s.done, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.split()
    assert out == ["6", "False"]


def test_the_writing_store_compacts_every_so_many_trials(tmp_path, monkeypatch):
    monkeypatch.setattr("orchestrator.store.COMPACT_EVERY", 4)
    store = Store(tmp_path)
    _write_trials(store, "s", [f"t{i}" for i in range(10)], tmp_path)
    assert len(_files(store, "trials")) == 4 and len(_files(store, "archs")) == 4  # 2 compacted + 2 single
    assert len(_values(store)) == 10


def test_compaction_keeps_a_file_a_writer_replaced_while_it_ran(tmp_path, monkeypatch):
    store = Store(tmp_path)
    _write_trials(store, "s", ["t1", "t2"], tmp_path)
    read_identified = Store._read_identified

    def read_then_writer_replaces(self, path):
        read = read_identified(self, path)
        if path.endswith("/t1.parquet") and "trials" in path:
            self.write_trial("s", "toy", record("t1", {"seed": 0}, 9.0), {})  # the driver, meanwhile
        return read

    monkeypatch.setattr(Store, "_read_identified", read_then_writer_replaces)
    store.compact(studies=["s"])
    monkeypatch.undo()
    assert "t1.parquet" in _files(store, "trials") and _values(store) == {"t1": 9.0, "t2": 1.0}
    store.compact()  # a second generation holds the newer t1, which outranks the first's
    assert _values(store) == {"t1": 9.0, "t2": 1.0} and all(f.startswith("compacted-") for f in _files(store, "trials"))


def test_a_killed_compaction_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    store = Store(tmp_path)
    _write_trials(store, "s", ["t1", "t2", "t3"], tmp_path)

    def killed_after_claiming(self, path, identity):
        directory, name = os.path.split(path)
        os.rename(path, os.path.join(directory, f".claimed-0badf00d-{name}"))
        raise KeyboardInterrupt  # killed between the claim and the removal

    monkeypatch.setattr(Store, "_remove_if_unchanged", killed_after_claiming)
    with pytest.raises(KeyboardInterrupt):
        store.compact()
    monkeypatch.undo()
    assert _values(store) == {"t1": 1.0, "t2": 1.0, "t3": 1.0}  # the compacted copy stands in for t1
    part = Path(store.partition("trials", "s", "toy"))
    claimed = part / ".claimed-0badf00d-t1.parquet"
    pq.write_table(pa.table({"trial_id": ["t1"], "top5_pct": [7.0]}), claimed)  # newer than compacted
    store.compact()  # puts the claimed file back first: the newer copy wins
    assert _values(store)["t1"] == 7.0 and not list(part.glob(".claimed-*"))
    assert _values(store) == {"t1": 7.0, "t2": 1.0, "t3": 1.0} and all(f.startswith("compacted-") for f in _files(store, "trials"))


def test_status_counts_each_study_from_four_columns_and_tunes_folder(tmp_path):
    import json

    from orchestrator.spec import StudySpec

    store = Store(tmp_path)
    for i, (study, status) in enumerate([("a", "TERMINATED"), ("a", "TERMINATED"), ("a", "ERROR"), ("b", "TERMINATED")]):
        rec = record(f"t{i}", {"seed": i}, 1.0, gpu=0.25)
        rec = TrialRecord(**{**rec.__dict__, "status": status, "result": {**rec.result, "timestamp": 1000 + i}})
        store.write_trial(study, "toy", rec, {})
    store.compact(studies=["a"])
    tune = tmp_path / "tune" / "b"
    for trial_dir in ("toy_t3", "toy_ab12c_00001", "toy_ab12c_00002"):  # t3 is stored: 2 running
        (tune / trial_dir).mkdir(parents=True)
    spec = StudySpec.from_dict({"name": "b", "trainable": "toy", "metric": "top5_pct", "mode": "max", "seeds": list(range(6))})
    (tune / "gnas-study.json").write_text(json.dumps(spec.to_dict(), default=str))
    (tmp_path / "tune" / "c").mkdir()  # started, nothing saved yet
    (tune / "driver.json").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))  # alive
    a, b, c = store.status()
    assert (a.study, a.done, a.errored, a.running, a.trials, a.last_update) == ("a", 2, 1, 0, 3, 1002.0)
    assert a.gpu_hours == pytest.approx(3 * 2 * 0.25)  # 7,200 s each at a quarter GPU
    assert (b.study, b.done, b.running, b.pending, b.interrupted) == ("b", 1, 2, 3, 0)  # 6 planned
    assert b.last_update >= 1003.0 and (c.study, c.trials, c.running, c.pending) == ("c", 0, 0, 0)
    assert Store(tmp_path / "none").status() == []

    # the driver is gone (killed: it left its file): its started trials are interrupted, not running
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tune / "driver.json").write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout)}))
    b = {s.study: s for s in store.status()}["b"]
    assert (b.done, b.running, b.pending, b.interrupted, b.finished) == (1, 0, 3, 2, False)
    (tune / "driver.json").unlink()  # stopped cleanly, one trial stored INTERRUPTED at iteration 2
    rec = record("ab12c_00001", {"seed": 1}, float("nan"))
    rec = TrialRecord(**{**rec.__dict__, "status": "INTERRUPTED", "result": {"training_iteration": 2}})
    store.write_trial("b", "toy", rec, {})
    b = {s.study: s for s in store.status(details=True)}["b"]
    assert (b.done, b.running, b.pending, b.interrupted) == (1, 0, 3, 2)
    assert [(p.trial_id, p.status, p.iteration) for p in b.problems] == [("ab12c_00001", "INTERRUPTED", 2)]
    a = {s.study: s for s in store.status(details=True)}["a"]
    assert [(p.status, p.error) for p in a.problems] == [("ERROR", None)]


@pytest.mark.parametrize("fail_at", ["init", "log", "finish"])
def test_wandb_failure_warns_once_and_never_raises(fail_at, monkeypatch, caplog):
    calls = []

    class Run:
        def log(self, data):
            calls.append(data)
            if fail_at == "log":
                raise OSError(28, "No space left on device")

        def finish(self, exit_code=0):
            if fail_at == "finish":
                raise RuntimeError("upload failed")

    def init(**kwargs):
        if fail_at == "init":
            raise PermissionError("bad API key")
        return Run()

    fake = types.SimpleNamespace(init=init, Settings=lambda **kw: kw, teardown=lambda: None)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    tracker = TrialTracker(WandbSettings("p", "offline", "/nonexistent"), run_id="s-t", name="t", group="g",
                           job_type="s", tags=["s"], config={})
    with caplog.at_level(logging.WARNING, logger="orchestrator.tracking"):
        started = tracker.start()
        for step in range(3):
            tracker.log({"top5_pct": float(step), "device": "cpu"})
        tracker.finish()
    assert started == (fail_at != "init")
    warnings = [r for r in caplog.records if r.name == "orchestrator.tracking"]
    assert len(warnings) == 1 and "trial goes on" in warnings[0].getMessage()
    assert calls[:1] == ([] if fail_at == "init" else [{"top5_pct": 0.0}])
    assert len(calls) == {"init": 0, "log": 1, "finish": 3}[fail_at]


CONFIG = {"seed": 3, "steps": 3, "w_adv": 0.4, "level": 0.5, "n_archs": 5}


def test_toy_runs_plainly_deterministically_and_writes_archs():
    with reporting.plain_session() as first:
        toy.train(dict(CONFIG))
        final = pq.read_table(Path(first.last_checkpoint, toy.ARCHS_FILE))
        metrics = [r.metrics for r in first.reports]
    assert [m["iteration"] for m in metrics] == [1, 2, 3]
    assert {"validity", "uniqueness", "novelty", "top1_pct", "top5_pct", "top10_pct", "heldout_hit_pct",
            "acc_mean", "acc_best", "queries", "loss/total"} <= set(metrics[-1])
    assert final.num_rows == 5 and final.column_names == ["key", "valid", "acc"]
    with reporting.plain_session() as again:
        toy.train(dict(CONFIG))
        assert [r.metrics for r in again.reports] == metrics
        assert pq.read_table(Path(again.last_checkpoint, toy.ARCHS_FILE)).equals(final)
    assert reporting.device() in ("cpu", "cuda") and not reporting.in_tune_session()


def test_toy_resumes_from_a_checkpoint(tmp_path):
    with reporting.plain_session() as first:
        toy.train(dict(CONFIG))
        middle = tmp_path / "ckpt"
        __import__("shutil").copytree(first.reports[0].checkpoint, middle)
        expected = [r.metrics for r in first.reports]
    with reporting.plain_session(restore_from=str(middle)) as resumed:
        toy.train(dict(CONFIG))
        assert [r.metrics for r in resumed.reports] == expected[1:]


def test_trial_context_adds_fields_and_isolates_listener_failures(caplog):
    seen = []

    def broken(metrics):
        raise ValueError("listener bug")

    ctx = reporting.TrialContext(extras={"device": "cpu"}, listeners=[broken, seen.append], tune=False)
    with reporting.plain_session() as session, reporting.trial_context(ctx), caplog.at_level(logging.WARNING):
        reporting.report({"x": 1.0})
        reporting.report({"x": 2.0})
    assert [r.metrics for r in session.reports] == [{"x": 1.0, "device": "cpu"}, {"x": 2.0, "device": "cpu"}]
    assert seen == [r.metrics for r in session.reports] and len(caplog.records) == 1


def test_device_is_cuda_only_when_tune_assigned_a_gpu_and_cuda_works(monkeypatch):
    import ray
    import torch

    ctx = reporting.TrialContext(tune=True)  # as inside a Tune trial
    with reporting.trial_context(ctx):
        monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
        assert reporting.device() == "cpu"
        monkeypatch.setattr(ray, "get_gpu_ids", lambda: ["0"])
        for usable in (False, True):
            monkeypatch.setattr(torch.cuda, "is_available", lambda usable=usable: usable)
            assert reporting.device() == ("cuda" if usable else "cpu")


def test_tune_storage_filesystem_writes_files_atomically(tmp_path):
    import pickle

    import pyarrow.fs as pafs

    from orchestrator.storage import atomic_local_filesystem

    fs = pickle.loads(pickle.dumps(atomic_local_filesystem()))  # shipped to trial actors too
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "experiment_state.json").write_text('{"v": 1}')
    (tmp_path / "src" / "sub" / "blob").write_bytes(b"x" * 100_000)
    pafs.copy_files(str(tmp_path / "src"), str(tmp_path / "dst"), destination_filesystem=fs)
    state = tmp_path / "dst" / "experiment_state.json"
    assert state.read_text() == '{"v": 1}' and (tmp_path / "dst" / "sub" / "blob").stat().st_size == 100_000
    stream = fs.open_output_stream(str(state))
    stream.write(b'{"v": 2, "tri')  # the driver dies here: the file keeps its last complete content
    assert state.read_text() == '{"v": 1}'
    stream.close()
    assert state.read_text() == '{"v": 2, "tri' and sorted(p.name for p in state.parent.iterdir()) == [
        "experiment_state.json", "sub"]
