"""W&B as a complete view of the store: every trial one run (run, history, exit records, read
in W&B's own record format), rebuilt from the store when damaged, never duplicated."""
from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.run import run_study
from orchestrator.spec import WandbSpec
from orchestrator.store import Store
from orchestrator.wandb_runs import (ARCHS_KEY, complete_runs, contents, is_complete, read_records, read_transcript,
                                     run_files)
from orchestrator_helpers import ray_address, toy_spec  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("ray_address")


@pytest.fixture(scope="module")
def toy_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("wandb-runs")
    spec = toy_spec(root, "tracked", config={"steps": 3, "n_archs": 4}, seeds=(0, 1),
                    variants={"clean": {}, "worse": {"level": 0.5}}, wandb=WandbSpec(project="gnas-tests"))
    run_study(spec, verbose=0)
    return root, spec


def _complete(root: Path, study: str):
    return complete_runs(str(root), study, directory=root / "wandb" / study, project="gnas-tests")


def test_store_keeps_every_reported_iteration(toy_study):
    root, spec = toy_study
    history = Store(root).read_pandas("history", studies=[spec.name])
    assert sorted(history.groupby("trial_id")["iteration"].apply(list)) == [[1, 2, 3]] * 4
    final = history[history["iteration"] == 3].set_index("trial_id")["top5_pct"]
    rows = Store(root).read_pandas("trials", studies=[spec.name]).set_index("trial_id")["top5_pct"]
    assert (final.sort_index() == rows.sort_index()).all()  # the last iteration is the trials row


def test_every_trial_has_one_complete_run_written_from_the_store(toy_study):
    root, spec = toy_study
    runs = run_files(root / "wandb" / spec.name)
    rows = Store(root).read_pandas("trials", studies=[spec.name])
    assert sorted(runs) == sorted(rows["wandb_id"]) and all(len(f) == 1 for f in runs.values())
    for content in contents(str(root), spec.name):
        t = read_transcript(runs[content.run_id][0])
        assert t.finished and t.exit_code == 0 and t.steps == (1, 2, 3) and is_complete(t, content)
        assert {"top5_pct", "acc_best", "loss/total"} <= t.history_keys and ARCHS_KEY in t.summary_keys
        assert t.config["seed"] == content.config["seed"] and t.config["variant"] in ("clean", "worse")
        assert t.config["config_id"] and t.config["git_commit"] == rows["git_commit"].iloc[0]
    assert _complete(root, spec.name).written == 0  # a rebuild finds them complete: nothing written


def test_damaged_or_duplicated_runs_are_rebuilt_once(toy_study, tmp_path):
    root, spec = toy_study
    runs = run_files(root / "wandb" / spec.name)
    first, second, *_ = sorted(runs)
    header_only = runs[first][0]
    header_only.write_bytes(header_only.read_bytes()[:7])  # what an actor killed before finish() leaves
    torn = runs[second][0]
    torn.write_bytes(torn.read_bytes()[:-40])  # its exit record cut off
    records, clean = read_records(torn)
    assert not clean and "exit" not in {r.WhichOneof("record_type") for r in records}
    duplicate = header_only.parent.with_name(header_only.parent.name.replace("offline-run-", "offline-run-0"))
    duplicate.mkdir()
    (duplicate / header_only.name).write_bytes(header_only.read_bytes())
    done = _complete(root, spec.name)
    assert (done.written, done.removed, done.failed) == (2, 3, [])
    after = run_files(root / "wandb" / spec.name)
    assert sorted(after) == sorted(runs) and all(len(f) == 1 for f in after.values())
    assert all(read_transcript(f[0]).finished for f in after.values())
