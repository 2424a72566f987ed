"""The ``gnas`` command: every subcommand's ``--help`` (fast: no Ray, torch or W&B imported),
``gnas run`` on the toy trainable with its progress lines, ``gnas status``, and one smoke
study run as a user runs it (own process, output piped) whose stderr holds no warning and no
traceback, then rebuilt with ``gnas report``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator import cli
from orchestrator_helpers import ray_address  # noqa: F401 - fixture

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ray", "wandb", "pyarrow", "pandas", "torch_geometric", "optuna")


def subcommands() -> list[str]:
    action = next(a for a in cli.parser()._actions if a.dest == "command")
    return list(action.choices)


def python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "WANDB_MODE": "offline"}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


HELP_PROBE = """
import contextlib, io, json, sys
from orchestrator import cli
helps = {}
for argv in json.loads(sys.argv[1]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            cli.main(argv)
        except SystemExit as exc:
            helps[" ".join(argv)] = (exc.code, out.getvalue())
print(json.dumps({"helps": helps, "heavy": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)}))
"""


def test_help_lists_every_subcommand_each_has_its_own_help_and_imports_nothing_heavy():
    names = subcommands()
    assert {"run", "study", "report", "status"} <= set(names)
    argvs = [["--help"], *([n, "--help"] for n in names), *(["study", s, "--help"] for s in cli.study_entry_points())]
    done = python(HELP_PROBE, json.dumps(argvs), json.dumps(HEAVY))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["heavy"] == []  # --help stays fast: the heavy stack is imported by handlers only
    helps = result["helps"]
    top = helps["--help"][1]
    for name in names:
        assert f"\n    {name} " in top or f"\n    {name}\n" in top  # listed with its one-line help
        code, text = helps[f"{name} --help"]
        assert code == 0 and text.startswith(f"usage: gnas {name}")
    assert set(cli.study_entry_points()) == {"degradation", "generalisation", "ablation", "quality_diversity"}
    for study in cli.study_entry_points():
        code, text = helps[f"study {study} --help"]
        assert code == 0 and text.startswith(f"usage: gnas study {study}") and "--preset" in text


def test_python_api_is_importable_lazily():
    done = python("import sys, json, orchestrator\n"
                  "before = sorted(m for m in json.loads(sys.argv[1]) if m in sys.modules)\n"
                  "from orchestrator import StudySpec, run_study, Store, load_spec\n"
                  "print(json.dumps([before, StudySpec.__name__, run_study.__module__, Store.__name__]))",
                  json.dumps(HEAVY))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[], "StudySpec", "orchestrator.run", "Store"]


def toy_spec_file(tmp_path: Path, store: Path) -> Path:
    spec = {"name": "toy-cli", "trainable": "toy", "config": {"steps": 2}, "grid": {"w_adv": [0.1, 0.5]},
            "seeds": [0, 1], "metric": "top5_pct", "mode": "max", "storage": str(store),
            "wandb": {"enabled": False}, "concurrency": 2}
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.usefixtures("ray_address")
def test_run_shows_plain_progress_off_a_terminal_then_status_reads_the_store(tmp_path, capsys):
    store = tmp_path / "store"
    assert cli.main(["run", str(toy_spec_file(tmp_path, store))]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "\r" not in out and "\x1b" not in out  # a pipe gets lines, not a redrawn bar
    assert "== Status ==" not in out and "Result logdir" not in out  # Tune's tables only with --verbose
    lines = out.splitlines()
    assert lines[0].startswith("part 1/1 toy-cli | 0/4 trials")
    assert any(line.startswith("part 1/1 toy-cli | 4/4 trials: 4 done, 0 running, 0 errored") for line in lines)
    assert lines[-1].startswith("study toy-cli: 4 trials (4 done, 0 errored)")

    assert cli.main(["status", str(store)]) == cli.EXIT_OK
    status = capsys.readouterr().out.splitlines()
    assert status[0] == f"store {store}: 1 studies"
    assert status[1].split() == ["study", "done", "running", "interrupted", "pending", "errored", "GPU-h", "last",
                                 "update", "(UTC)"]
    row = status[2].split()
    assert row[:7] == ["toy-cli", "4", "0", "0", "0", "0", "0.000"]


def test_status_of_a_missing_store_is_one_error_line(tmp_path, capsys):
    assert cli.main(["status", str(tmp_path / "nowhere")]) == cli.EXIT_BAD_SPEC
    err = capsys.readouterr().err
    assert err.startswith("error: store ") and err.count("\n") == 1
    assert not (tmp_path / "nowhere").exists()


def test_report_of_an_unknown_study_is_one_error_line(tmp_path, capsys):
    assert cli.main(["report", "no-such-study", "--out", str(tmp_path)]) == cli.EXIT_BAD_SPEC
    err = capsys.readouterr().err
    assert err.startswith("error: no study 'no-such-study'") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def gnas(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m orchestrator ARGS`` (the ``gnas`` script's code) in its own process, output piped."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "WANDB_MODE": "offline"}
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_smoke_study_prints_no_warning_and_no_traceback_then_report_rebuilds_it(ray_address, tmp_path):
    """A user's run, in its own process with output piped. ``--verbose`` lets every trial's own
    output through to the driver too (by default it stays in Ray's log files), so a warning or
    traceback anywhere — driver, Tune, a trial — lands on the stderr checked here."""
    out = tmp_path / "store"
    done = gnas("study", "degradation", "--preset", "smoke", "--kinds", "holdout_top", "--trainables", "graphpnas",
                "--no-wandb", "--verbose", "--out", str(out), "--address", ray_address)
    assert done.returncode == 0, done.stderr
    assert "warn" not in done.stderr.lower() and "Traceback" not in done.stderr, done.stderr
    assert "\r" not in done.stdout and "== Status ==" in done.stdout  # --verbose: Tune's tables too
    lines = [line for line in done.stdout.splitlines() if line.startswith("part ")]
    assert lines[0].startswith("part 1/2 degradation-smoke-nbgraph-graphpnas | 0/10 trials")
    assert any(line.startswith("part 2/2 degradation-smoke-nbgraph-references | 10/10 trials: 10 done")
               for line in lines)
    assert "to scale up: gnas study degradation --preset full" in done.stdout

    folder = out / "studies" / "degradation-smoke-nbgraph"
    assert json.loads((folder / "study.json").read_text())["kind"] == "degradation"
    report = (folder / "report.md").read_bytes()
    (folder / "report.md").unlink()
    rebuilt = gnas("report", "degradation-smoke-nbgraph", "--out", str(out), "--no-wandb")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (folder / "report.md").read_bytes() == report

    status = gnas("status", str(out))
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0] == f"store {out}: 1 studies"  # the published study, its parts under it
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows["degradation-smoke-nbgraph"][1] == "10"
    assert lines[3].startswith("  degradation-smoke-nbgraph-") and lines[4].startswith("  degradation-smoke-nbgraph-")
    assert rows["degradation-smoke-nbgraph-graphpnas"][1] == "4"  # (clean + 1 level) x 2 seeds
    assert rows["degradation-smoke-nbgraph-references"][1] == "6"
    assert rows["total"][1:6] == ["10", "0", "0", "0", "0"]
