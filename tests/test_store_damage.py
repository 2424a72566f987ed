"""A damaged file costs its own study's rows and one clear line, never the store; ``gnas status``
refuses what is no store, shows a study's errored and interrupted trials, and a newer store."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from orchestrator import cli
from orchestrator import store as store_module
from orchestrator.store import DamagedFileWarning, Store, StoreDamaged, TrialRecord

REPO = Path(__file__).resolve().parents[1]


def _write(store: Store, study: str, trial_id: str, status: str = "TERMINATED", error: str | None = None,
           iteration: int = 3) -> None:
    record = TrialRecord(trial_id=trial_id, trial_name=f"toy_{trial_id}", config={"seed": 0},
                         result={"top5_pct": 0.5, "training_iteration": iteration, "time_total_s": 1.0},
                         status=status, config_id="c0", error=error)
    store.write_trial(study, "toy", record, {})


@pytest.fixture()
def two_studies(tmp_path) -> Store:
    store = Store(tmp_path / "store")
    for i in range(3):
        _write(store, "good", f"g{i}")
    _write(store, "bad", "b0")
    _write(store, "bad", "b1", status="ERROR", error="RuntimeError: toy: injected failure at step 2", iteration=2)
    _write(store, "bad", "b2", status="INTERRUPTED", iteration=1)
    store.compact()
    return store


def _damage(store: Store, study: str) -> Path:
    [compacted] = Path(store.partition("trials", study, "toy")).glob("compacted-*.parquet")
    data = compacted.read_bytes()
    compacted.write_bytes(data[:300])  # truncated: no Parquet footer
    return compacted


def test_a_truncated_file_costs_its_study_and_one_warning_never_the_store(two_studies, monkeypatch):
    damaged = _damage(two_studies, "bad")
    with pytest.warns(DamagedFileWarning) as caught:
        rows = two_studies.read_pandas("trials")
    assert sorted(rows["trial_id"]) == ["g0", "g1", "g2"]
    [warning] = [str(w.message) for w in caught]
    assert str(damaged) in warning and "(study bad)" in warning and "\n" not in warning
    with pytest.warns(DamagedFileWarning):
        status = {s.study: s for s in two_studies.status()}
    assert status["good"].done == 3
    # asked for by name: one error naming the file and its study; the other study reads
    with pytest.raises(StoreDamaged, match=r"\(study bad\) is unreadable"):
        two_studies.read_pandas("trials", studies=["bad"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(two_studies.read_pandas("trials", studies=["good"])) == 3
    _write(two_studies, "bad", "b3")
    monkeypatch.setattr(store_module, "MAX_COMPACTED", 1)  # merge the compacted files too
    with pytest.warns(DamagedFileWarning):  # compaction leaves the damaged file where it is
        two_studies.compact()
    assert damaged.exists() and len(damaged.read_bytes()) == 300
    assert sorted(two_studies.read_pandas("trials", studies=["good"])["trial_id"]) == ["g0", "g1", "g2"]


def _gnas(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_gnas_status_lists_every_other_study_with_one_warning_line(two_studies):
    damaged = _damage(two_studies, "bad")
    done = _gnas("status", two_studies.root)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("warning: ") and done.stderr.count("\n") == 1 and str(damaged) in done.stderr
    assert "Traceback" not in done.stderr
    assert any(line.split()[:2] == ["good", "3"] for line in done.stdout.splitlines())


def test_gnas_status_name_shows_each_errored_and_interrupted_trial(two_studies, capsys):
    assert cli.main(["status", two_studies.root, "bad"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "b1  ERROR at iteration 2: error: RuntimeError: toy: injected failure at step 2" in out
    assert "b2  INTERRUPTED at iteration 1: stopped before it finished; --resume continues it" in out
    assert "1 trials interrupted: resume their study with --resume" in out
    header, row = out.splitlines()[1:3]
    assert header.split()[:6] == ["study", "done", "running", "interrupted", "pending", "errored"]
    assert row.split()[:6] == ["bad", "1", "0", "1", "0", "1"]
    assert cli.main(["status", two_studies.root, "nothing"]) == cli.EXIT_BAD_SPEC
    assert capsys.readouterr().err.startswith("error: no study 'nothing'")


@pytest.mark.parametrize("where, message", [
    ("missing", "no such folder"), ("a-file", "is a file, not a store folder"),
    ("empty", "not a gnas store"), ("../../x", "no such folder"),
])
def test_gnas_status_of_what_is_no_store_is_one_error_line(tmp_path, monkeypatch, capsys, where, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty").mkdir()
    assert cli.main(["status", where]) == cli.EXIT_BAD_SPEC
    err = capsys.readouterr().err
    assert err.startswith("error: store ") and message in err and err.count("\n") == 1


def test_a_store_written_by_a_newer_gnas_is_refused_not_misread(two_studies, capsys):
    Path(two_studies.root, "gnas-store.json").write_text(json.dumps({"format": 99}))
    assert cli.main(["status", two_studies.root]) == cli.EXIT_BAD_SPEC
    err = capsys.readouterr().err
    assert "written by a newer gnas (store format 99" in err and err.count("\n") == 1
    with pytest.raises(StoreDamaged, match="newer gnas"):
        Store(two_studies.root).read_pandas("trials")


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ".hidden"])
def test_study_names_are_names_never_paths(tmp_path, capsys, name):
    assert cli.main(["report", name, "--out", str(tmp_path)]) == cli.EXIT_BAD_SPEC
    err = capsys.readouterr().err
    assert err.startswith("error: study name ") and err.count("\n") == 1
    assert cli.main(["status", str(tmp_path), name]) == cli.EXIT_BAD_SPEC
    assert capsys.readouterr().err.startswith("error: study name ")
