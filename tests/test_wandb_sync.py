"""``gnas wandb sync`` and ``complete`` without a network: the upload boundary — the ``wandb``
executable — is a stub on PATH that records its arguments; everything else is real."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from orchestrator.store import Store, TrialRecord
from orchestrator.wandb_commands import SYNCED_MARKER, main
from orchestrator.wandb_runs import read_transcript, run_files

STUDY = "synced"
# The stub waits (up to 20 s) until JOBS uploads run at once, then logs how many it saw: a serial
# sync would log 1. FAIL names a run folder the stub refuses (exit 1).
STUB = """#!/bin/sh
log="$STUB_DIR/calls.log"; mkdir -p "$STUB_DIR/running"; touch "$STUB_DIR/running/$$"
i=0; while [ "$(ls "$STUB_DIR/running" | wc -l)" -lt "$STUB_JOBS" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
seen=$(ls "$STUB_DIR/running" | wc -l)
echo "$seen $*" >> "$log"
case "$*" in *"$STUB_FAIL"*) rm "$STUB_DIR/running/$$"; echo "upload refused" >&2; exit 1;; esac
sleep 0.3; rm "$STUB_DIR/running/$$"
"""


@pytest.fixture
def store_with_runs(tmp_path):
    """An orchestrator study of four trials in a store (no Ray: rows written directly), and
    their runs completed from it."""
    root = tmp_path / "store"
    store = Store(root)
    for i in range(4):
        result = {"top5_pct": 0.1 * i, "training_iteration": 2, "time_total_s": 1.0}
        history = [{"training_iteration": 1, "top5_pct": 0.0, "time_total_s": 0.5}, result]
        store.write_trial(STUDY, "toy", TrialRecord(trial_id=f"t{i}", trial_name=f"toy_t{i}", config={"seed": i},
                                                     result=result, status="TERMINATED", config_id="c0",
                                                     history=history), {"git_commit": "abc"})
    assert main(["wandb", "complete", str(root), "--study", STUDY]) == 0
    return root


@pytest.fixture
def stub(tmp_path, monkeypatch):
    bin_dir, work = tmp_path / "bin", tmp_path / "stub"
    bin_dir.mkdir()
    work.mkdir()
    exe = bin_dir / "wandb"
    exe.write_text(STUB)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STUB_DIR", str(work))
    monkeypatch.setenv("STUB_JOBS", "2")
    monkeypatch.setenv("STUB_FAIL", "never")
    return work / "calls.log"


def _calls(log: Path) -> list[tuple[int, list[str]]]:
    lines = log.read_text().splitlines() if log.is_file() else []
    return [(int(line.split()[0]), line.split()[1:]) for line in lines]


def test_complete_writes_each_trial_one_run_from_the_store(store_with_runs):
    runs = run_files(store_with_runs / "wandb" / STUDY)
    assert sorted(runs) == [f"{STUDY}-t{i}" for i in range(4)]
    t = read_transcript(runs[f"{STUDY}-t3"][0])
    assert t.finished and t.steps == (1, 2) and t.config["git_commit"] == "abc"
    assert main(["wandb", "complete", str(store_with_runs), "--study", STUDY]) == 0
    assert run_files(store_with_runs / "wandb" / STUDY) == runs  # complete already: kept as they are


def test_sync_uploads_in_parallel_and_resumes_after_a_failure(store_with_runs, stub, monkeypatch, capsys):
    folders = sorted(p.parent for files in run_files(store_with_runs / "wandb" / STUDY).values() for p in files)
    monkeypatch.setenv("STUB_FAIL", folders[1].name)
    args = ["wandb", "sync", str(store_with_runs), "--study", STUDY, "--jobs", "2",
            "--wandb-project", "proj", "--wandb-entity", "team"]
    assert main(args) == 1  # one upload failed
    calls = _calls(stub)
    assert len(calls) == 4 and max(seen for seen, _ in calls) == 2  # two uploads ran at once
    assert all(argv[:5] == ["sync", "--project", "proj", "--entity", "team"] for _, argv in calls)
    assert sorted(argv[-1] for _, argv in calls) == [str(f) for f in folders]
    assert [(f / SYNCED_MARKER).is_file() for f in folders] == [True, False, True, True]
    assert "failed: " + folders[1].name in capsys.readouterr().err

    stub.unlink()
    monkeypatch.setenv("STUB_FAIL", "never")
    monkeypatch.setenv("STUB_JOBS", "1")
    assert main(args) == 0  # the rerun uploads only what is missing
    assert [argv[-1] for _, argv in _calls(stub)] == [str(folders[1])]
    assert all(json.loads((f / SYNCED_MARKER).read_text())["bytes"] > 7 for f in folders)


def test_bad_paths_are_one_error_line(tmp_path, capsys):
    assert main(["wandb", "sync", str(tmp_path)]) == 2
    assert main(["wandb", "sync", str(tmp_path), "--study", "nope"]) == 2
    assert main(["wandb", "sync", str(tmp_path), "--study", "nope", "--jobs", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert not (tmp_path / "wandb").exists()
