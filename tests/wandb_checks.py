"""Checks of a study's W&B runs, read in W&B's own record format (never by grepping bytes)."""
from __future__ import annotations

import json
from pathlib import Path

from orchestrator.wandb_runs import contents, read_transcript, report_run_id, run_files


def assert_every_trial_has_one_complete_run(out: Path, study: str) -> int:
    """Every trial of every part of published study ``study`` (stored under ``out``) has exactly
    one offline run with its run, history (every stored iteration) and exit records, and the
    study has one complete report run. Returns the number of trial runs checked."""
    manifest = json.loads((out / "studies" / study / "study.json").read_text())
    checked = 0
    for entry in manifest["parts"]:
        runs = run_files(out / "wandb" / entry["name"])
        for content in contents(str(out), entry["name"]):
            files = runs.get(content.run_id, [])
            assert len(files) == 1, f"{content.run_id}: {len(files)} runs"
            t = read_transcript(files[0])
            assert t.finished and t.run_id == content.run_id, f"{files[0]}: no run or exit record"
            assert t.exit_code == content.exit_code and t.steps == content.iterations, files[0]
            assert t.config["part"] == entry["name"] and t.config["method"], files[0]
            checked += 1
    report = run_files(out / "wandb" / study).get(report_run_id(study), [])
    assert len(report) == 1 and read_transcript(report[0]).finished
    return checked


def assert_dashboards_name_real_keys(out: Path, study: str) -> set[tuple[str, str]]:
    """The workspace and report definitions the study wrote into its folder name only keys
    (history, summary, config) that the study's runs really hold. Returns the keys named."""
    from orchestrator.dashboards import REPORT_FILE, WORKSPACE_FILE, referenced_keys, run_keys

    folder = out / "studies" / study
    manifest = json.loads((folder / "study.json").read_text())
    files = [f for e in manifest["parts"] for fs in run_files(out / "wandb" / e["name"]).values() for f in fs]
    files += [f for fs in run_files(out / "wandb" / study).values() for f in fs]
    have = run_keys(read_transcript(f) for f in files)
    named = set()
    for name in (WORKSPACE_FILE, REPORT_FILE):
        named |= referenced_keys(json.loads((folder / name).read_text()))
    assert named and named <= have, sorted(named - have)
    return named
