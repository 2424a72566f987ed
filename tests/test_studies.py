"""The published studies end to end in smoke size: parts run, reports and tables written,
``--report-only`` rebuilds the same files, bad input is one line and writes nothing."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

from orchestrator_helpers import ray_address  # noqa: F401 - fixture

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("ray_address")


def study(name: str):
    """Import ``studies/<name>.py`` (a script, not a package) as a module."""
    key = f"study_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, REPO / "studies" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def report_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix in (".md", ".csv", ".svg", ".png")}


# ----------------------------------------------------------------------------- degradation
DEGRADATION = ["--preset", "smoke", "--kinds", "holdout_top", "--no-wandb", "--quiet"]


@pytest.fixture(scope="module")
def degradation(tmp_path_factory):
    out = tmp_path_factory.mktemp("degradation")
    code = study("degradation").main([*DEGRADATION, "--out", str(out)])
    return out, out / "studies" / "degradation-smoke-nbgraph", code


def test_degradation_smoke_writes_report_figures_and_tables(degradation):
    out, folder, code = degradation
    assert code == 0
    report = (folder / "report.md").read_text()
    assert "training labels **`cora/valid/final`**" in report and "statistics on **`cora/test/final`**" in report
    assert "![holdout_top](figures/degradation_holdout_top.png)" in report
    for f in ("figures/degradation_holdout_top.png", "figures/degradation_holdout_top.svg"):
        assert (folder / f).stat().st_size > 10_000
    trials = pd.read_parquet(folder / "tables" / "trials.parquet")
    # 2 generators × (clean + 1 level) × 2 seeds, and 3 references × 2 seeds
    assert len(trials) == 2 * 2 * 2 + 3 * 2 and (trials["status"] == "TERMINATED").all()
    assert (trials["queries"] <= 30).all()  # one budget for every method, training included
    summary = pd.read_csv(folder / "tables" / "summary.csv")
    top5 = summary[summary["metric"] == "top5_pct"]
    assert sorted(top5["level"].unique()) == [0.0, 10.0] and set(top5["method"]) == {"gnn2gnn", "graphpnas"}
    assert (top5["n"] == 2).all() and (top5["ci"] == "t").all()
    assert ((top5["lo"] <= top5["mean"]) & (top5["mean"] <= top5["hi"])).all()
    assert (summary.loc[summary["metric"].isin(["top5_pct", "novelty"]), ["lo", "hi"]].stack().between(0, 1)).all()
    refs = pd.read_csv(folder / "tables" / "references.csv")
    assert set(refs["method"]) == {"random_search", "regularized_evolution", "uniform"}
    comparisons = pd.read_csv(folder / "tables" / "comparisons.csv")
    assert {"gnn2gnn", "graphpnas"} <= set(comparisons["a"]) | set(comparisons["b"])
    assert (comparisons["verdict"] == "n.s.").all()  # 2 seeds never support a claim
    # the held-out top share is measured where the top is held out, and is 0 on clean data
    tidy = pd.read_parquet(folder / "tables" / "tidy.parquet")
    assert (tidy.loc[tidy["level"] == 0.0, "heldout_hit_pct"] == 0).all()


def test_report_only_rebuilds_the_same_files(degradation):
    out, folder, _ = degradation
    before = report_files(folder)
    for f in folder.rglob("*.md"):
        f.unlink()
    assert study("degradation").main([*DEGRADATION, "--out", str(out), "--report-only"]) == 0
    assert report_files(folder) == before


def test_rerun_keeps_finished_parts_and_adds_new_trainables(degradation, capsys):
    out, folder, _ = degradation
    assert study("degradation").main([*DEGRADATION, "--out", str(out)]) == 0
    assert "3 of 3 parts already finished in the store: kept" in capsys.readouterr().out
    # a different spec under the same name is refused, not mixed in
    assert study("degradation").main([*DEGRADATION, "--out", str(out), "--seeds", "3"]) == 2
    assert "spec changed" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--kinds", "bogus"], "unknown kind 'bogus'"),
    (["--kinds", "low_fidelity"], "no lower-fidelity labels"),
    (["--trainables", "gnn2gnn,nope"], "unknown generator 'nope'"),
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--levels", "1,2"], "--levels needs exactly one --kinds"),
    (["--space", "nb201", "--data-dir", "/no/such/dir"], "--data-dir /no/such/dir is not a directory"),
    (["--report-only"], "no study at"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, message, tmp_path, capsys):
    assert study("degradation").main(["--preset", "smoke", "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_nb201_offers_the_low_fidelity_kind(shared_data, tmp_path):
    d = study("degradation")
    args = d.parser().parse_args(["--space", "nb201", "--data-dir", str(shared_data), "--out", str(tmp_path)])
    from orchestrator import studykit

    s = studykit.setup(args, "degradation", d.SEEDS)
    parts, settings = d.build(s, args)
    assert settings["kinds"] == ["label_noise", "train_fraction", "holdout_top", "low_fidelity"]
    assert settings["label_field"] == "cifar10-valid/valid/200" and settings["eval_field"] == "cifar10/test/200"
    gen = parts[0].spec
    assert dict(gen.variants["low_fidelity-0"]) == {"label_field": "cifar10-valid/valid/12"}
    assert gen.num_trials == (1 + 3 * 3 + 1) * 3 and gen.query_budget == 100
    assert [p.method for p in parts] == ["gnn2gnn", "graphpnas", "references"]
    assert not tmp_path.joinpath("studies").exists()  # building parts writes nothing
