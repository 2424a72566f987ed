"""The published studies end to end in smoke size: parts run, reports and tables written,
``--report-only`` rebuilds the same files, bad input is one line and writes nothing."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

from orchestrator_helpers import ray_address  # noqa: F401 - fixture
from wandb_checks import assert_dashboards_name_real_keys, assert_every_trial_has_one_complete_run

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
    # the report opens with its findings: every generator's drop per kind, and what 2 seeds cannot claim
    findings = report.split("## Findings\n")[1].split("\n## ")[0]
    assert report.index("## Findings") < report.index("Space **nbgraph**")
    for name in ("GNN2GNN", "GraphPNAS"):
        assert f"- **{name}**, top architectures held out of training: top-5 % share " in findings
    assert "normalised area under the curve" in findings and "no method is distinguishable" in findings
    assert "With 2 seeds per condition no claim can pass" in findings


def test_report_only_rebuilds_the_same_files(degradation):
    out, folder, _ = degradation
    before = report_files(folder)
    for f in folder.rglob("*.md"):
        f.unlink()
    assert study("degradation").main([*DEGRADATION, "--out", str(out), "--report-only"]) == 0
    assert report_files(folder) == before


def test_rerun_keeps_finished_parts_and_refuses_a_changed_setting(degradation, capsys):
    out, folder, _ = degradation
    assert study("degradation").main([*DEGRADATION, "--out", str(out)]) == 0
    assert "3 of 3 parts already finished in the store: kept" in capsys.readouterr().out
    # another budget under the same name is refused, not mixed in
    assert study("degradation").main([*DEGRADATION, "--out", str(out), "--query-budget", "7"]) == 2
    assert "spec changed" in capsys.readouterr().err


def test_more_levels_and_seeds_extend_a_finished_study(tmp_path, capsys):
    base = ["--preset", "smoke", "--kinds", "label_noise", "--trainables", "graphpnas", "--no-wandb", "--quiet",
            "--out", str(tmp_path)]
    folder = tmp_path / "studies" / "degradation-smoke-nbgraph"
    assert study("degradation").main(base) == 0
    first = pd.read_parquet(folder / "tables" / "trials.parquet")
    assert len(first) == 2 * 2 + 3 * 2  # graphpnas clean + 1 level, 3 references; 2 seeds
    capsys.readouterr()
    # one more level and one more seed: only the missing (condition, seed) trials run
    assert study("degradation").main([*base, "--levels", "2,5", "--seeds", "3"]) == 0
    printed = capsys.readouterr().out
    assert "2 of 5 parts already finished in the store: kept" in printed  # + 2 graphpnas and 1 reference extension
    trials = pd.read_parquet(folder / "tables" / "trials.parquet")
    assert len(trials) == 3 * 3 + 3 * 3
    assert set(first["trial_id"]) <= set(trials["trial_id"])  # nothing was rerun
    gen = trials[trials["method"] == "graphpnas"]
    assert sorted(gen.groupby("config/variant")["seed"].apply(sorted).items()) == [
        ("clean", [0, 1, 2]), ("label_noise-2", [0, 1, 2]), ("label_noise-5", [0, 1, 2])]
    tidy = pd.read_parquet(folder / "tables" / "tidy.parquet")
    assert {2.0, 5.0} <= set(tidy["level"])
    # the same arguments again: everything is kept
    assert study("degradation").main([*base, "--levels", "2,5", "--seeds", "3"]) == 0
    assert "5 of 5 parts already finished in the store: kept" in capsys.readouterr().out


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
    from studies import kit as studykit

    s = studykit.setup(args, "degradation", d.SEEDS)
    parts, settings = d.build(s, args)
    assert settings["kinds"] == ["label_noise", "train_fraction", "holdout_top", "low_fidelity"]
    assert settings["label_field"] == "cifar10-valid/valid/200" and settings["eval_field"] == "cifar10/test/200"
    gen = parts[0].spec
    assert dict(gen.variants["low_fidelity-12"]) == {"label_field": "cifar10-valid/valid/12"}
    assert gen.num_trials == (1 + 3 * 3 + 1) * 3 and gen.query_budget == 100
    assert [p.method for p in parts] == ["gnn2gnn", "graphpnas", "references"]
    assert not tmp_path.joinpath("studies").exists()  # building parts writes nothing


# ----------------------------------------------------------------------------- generalisation
@pytest.fixture(scope="module")
def generalisation(tmp_path_factory):
    out = tmp_path_factory.mktemp("generalisation")
    args = ["--preset", "smoke", "--sources", "cora,citeseer", "--quiet", "--out", str(out)]
    code = study("generalisation").main(args)  # W&B on (offline, as in CI): one group per study
    return out, out / "studies" / "generalisation-smoke-nbgraph", code, args


def test_generalisation_smoke_scores_every_target_with_the_diagonal_in_dataset(generalisation):
    out, folder, code, _ = generalisation
    assert code == 0
    from trainables.spaces.nbgraph import DATASETS

    trials = pd.read_parquet(folder / "tables" / "trials.parquet")
    tidy = pd.read_parquet(folder / "tables" / "tidy.parquet")
    assert len(trials) == 2 * 2 * 2 and len(tidy) == len(trials) * len(DATASETS)
    diag = tidy[tidy["source"] == tidy["target"]].set_index("trial_id")["top5_pct"]
    assert (diag == trials.set_index("trial_id").loc[diag.index, "top5_pct"]).all()
    cora = trials[trials["config/dataset"] == "cora"]
    off = tidy[(tidy["source"] == "cora") & (tidy["target"] == "pubmed")].set_index("trial_id")["acc_best"]
    assert (off == cora.set_index("trial_id").loc[off.index, "acc_best@pubmed/test/final"]).all()
    tau = pd.read_csv(folder / "tables" / "task_correlation.csv")
    assert len(tau) == len(DATASETS) ** 2 and (tau.loc[tau["a"] == tau["b"], "kendall_tau"] == 1.0).all()
    for f in ("transfer_gnn2gnn", "transfer_graphpnas", "task_correlation"):
        assert (folder / "figures" / f"{f}.png").stat().st_size > 10_000
    report = (folder / "report.md").read_text()
    assert "## gnn2gnn" in report and "Transfer gap" in report
    assert report.startswith("# Generalisation study `generalisation-smoke-nbgraph`\n\n## Findings\n\n- **")
    assert "cora → citeseer" in report.split("## Findings")[1].split("## ")[0]
    assert assert_every_trial_has_one_complete_run(out, "generalisation-smoke-nbgraph") == len(trials)
    assert ("history", "figure/transfer_gnn2gnn") in assert_dashboards_name_real_keys(out, "generalisation-smoke-nbgraph")


def test_generalisation_report_only_is_identical(generalisation):
    out, folder, _, args = generalisation
    before = report_files(folder)
    assert study("generalisation").main([*args, "--report-only", "--no-wandb"]) == 0
    assert report_files(folder) == before


def test_generalisation_across_spaces_nb101_to_nb201(shared_data, tmp_path):
    args = ["--preset", "smoke", "--space", "nb101", "--target-space", "nb201", "--data-dir", str(shared_data),
            "--trainables", "gnn2gnn", "--seeds", "2", "--no-wandb", "--quiet", "--out", str(tmp_path)]
    assert study("generalisation").main(args) == 0
    folder = tmp_path / "studies" / "generalisation-smoke-nb101"
    trials = pd.read_parquet(folder / "tables" / "trials.parquet")
    tidy = pd.read_parquet(folder / "tables" / "tidy.parquet")
    targets = ["nb201:cifar10", "nb201:cifar100", "nb201:imagenet16"]
    # gnn2gnn: from nb101 + in nb201 from each target; uniform nb101 cells mapped: 2 seeds each
    assert sorted(trials.groupby("method").size().items()) == [("gnn2gnn", 4 * 2), ("uniform", 2)]
    assert sorted(tidy["target"].unique()) == targets
    assert set(tidy.loc[tidy["method"] == "uniform", "source"]) == {"nb101:cifar10"}
    mapped = tidy[(tidy["method"] == "gnn2gnn") & (tidy["source"] == "nb101:cifar10") & (tidy["target"] == targets[1])]
    rows = trials.set_index("trial_id").loc[mapped["trial_id"]]
    assert list(mapped["top5_pct"]) == list(rows["top5_pct@nb201:cifar100/test/200"])
    home = tidy[(tidy["method"] == "gnn2gnn") & (tidy["source"] == targets[1]) & (tidy["target"] == targets[1])]
    assert list(home["top5_pct"]) == list(trials.set_index("trial_id").loc[home["trial_id"], "top5_pct"])
    assert tidy["top5_pct"].notna().all()  # a sample with no valid cell has share 0 and no mean accuracy
    assert tidy.loc[tidy["method"] == "uniform", "acc_mean"].notna().all()
    report = (folder / "report.md").read_text()
    assert "nb101_to_nb201" in report and "nb101:cifar10 → nb201:cifar100" in report
    # uniform sampling is not trained: it is every map's chance row, not a heatmap of its own
    assert "## uniform" not in report and "| uniform sampling (chance) |" in report
    assert not (folder / "figures" / "transfer_uniform.png").exists()
    assert "**GNN2GNN**, transfer gap (in-dataset minus cross-dataset top-5 % share): nb101:cifar10 → nb201:" in report
    assert study("generalisation").main([*args[:-2], "--target-space", "nbgraph", "--out", str(tmp_path / "x")]) == 2


def test_nb201_transfer_targets_are_its_three_datasets(shared_data):
    assert study("generalisation").datasets("nb201", str(shared_data)) == [
        ("cifar10", "cifar10/test/200"), ("cifar100", "cifar100/test/200"), ("imagenet16", "imagenet16/test/200")]


# ----------------------------------------------------------------------------- ablation
@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    args = ["--preset", "smoke", "--no-wandb", "--quiet", "--out", str(out)]
    return out, out / "studies" / "ablation-smoke-nbgraph", study("ablation").main(args), args


def test_ablation_smoke_searches_then_reseeds_winner_against_default(ablation):
    out, folder, code, _ = ablation
    assert code == 0
    a = study("ablation")
    trials = pd.read_parquet(folder / "tables" / "trials.parquet")
    search = trials[trials["tag/stage"] == "search"]
    reseed = trials[trials["tag/stage"] == "reseed"]
    assert search["config_id"].nunique() == a.SAMPLES["smoke"] and (search["seed"] == 0).all()
    assert sorted(reseed["config/variant"].unique()) == ["best-1", "default"]
    assert sorted(reseed["seed"].unique()) == [a.RESEED_BASE, a.RESEED_BASE + 1]  # never a search seed
    configs = pd.read_csv(folder / "tables" / "search_configs.csv")
    best = configs.sort_values("val_top5_pct", ascending=False).iloc[0]  # chosen on validation
    winner = reseed[reseed["config/variant"] == "best-1"].iloc[0]
    for p in ("lambda_adv", "w_val", "tau", "noise_dim"):
        assert winner[f"config/{p}"] == pytest.approx(best[p])  # stage 2 re-runs stage 1's best
    report = (folder / "report.md").read_text()
    findings = report.split("## Findings\n")[1].split("\n## ")[0]
    if (folder / "tables" / "importances.csv").is_file():  # 3 configs: tied values leave PED-ANOVA nothing
        imp = pd.read_csv(folder / "tables" / "importances.csv")
        assert set(imp["param"]) == {p.name for p in a.SPACES["gnn2gnn"]["params"]}
        assert imp["importance"].sum() == pytest.approx(1.0)
        assert "PED-ANOVA importance" in findings
    else:
        assert "- Which knob matters most: not computable from 3 configs (PED-ANOVA: " in findings
    assert "## Re-seeded winners (fresh seeds)" in report and "**best-1** " in report
    assert "## Parameter importances (PED-ANOVA)" in report  # Optuna alone: no scikit-learn on a user's install
    assert "- best-1 **" in findings and "on fresh seeds" in findings
    assert "Chosen on `val_top5_pct` (validation field)" in report and "top5_pct difference" in report
    assert (folder / "figures" / "importances.png").is_file() == (folder / "tables" / "importances.csv").is_file()


def test_ablation_report_only_is_identical(ablation):
    out, folder, _, args = ablation
    before = report_files(folder)
    assert study("ablation").main([*args, "--report-only"]) == 0
    assert report_files(folder) == before


def test_ablation_multi_objective_searches_query_use_with_nsga2(tmp_path):
    a = study("ablation")
    args = a.parser().parse_args(["--preset", "local", "--objective", "multi", "--out", str(tmp_path)])
    from orchestrator import search
    from studies import kit as studykit

    (part,), settings = a.build(studykit.setup(args, "ablation", a.SEEDS), args)
    spec = part.spec
    assert spec.multi_objective and [o.metric for o in spec.objectives] == ["val_top5_pct", "queries"]
    assert "n_labelled" in {p.name for p in spec.search} and spec.scheduler_kind == "fifo"
    assert type(search.search_algorithm(spec).searcher._sampler).__name__ == "NSGAIISampler"
    bad = a.parser().parse_args(["--trainables", "graphpnas", "--objective", "multi", "--out", str(tmp_path)])
    with pytest.raises(studykit.SpecError, match="spends its whole budget"):
        a.build(studykit.setup(bad, "ablation", a.SEEDS), bad)


def test_pareto_mask_keeps_exactly_the_non_dominated():
    a = study("ablation")
    pts = [[0.3, 50], [0.2, 20], [0.1, 20], [0.3, 60], [float("nan"), 10]]
    assert a.pareto_mask(pts, ["max", "min"]) == [True, True, False, False, False]


def test_relative_data_dir_is_made_absolute_for_trials_running_elsewhere(shared_data, tmp_path, monkeypatch):
    from studies import kit as studykit

    monkeypatch.chdir(shared_data.parent)
    d = study("degradation")
    args = d.parser().parse_args(["--space", "nb201", "--data-dir", "data", "--out", "rel-out"])
    s = studykit.setup(args, "degradation", d.SEEDS)
    here = Path.cwd()  # the working directory as the OS names it (symlinks resolved)
    assert s.data_dir == str(here / "data") and s.out == str(here / "rel-out")
    assert Path(s.data_dir).samefile(shared_data)
    assert s.benchmark() == {"space": "nb201", "data_dir": s.data_dir}


# ----------------------------------------------------------------------------- quality against diversity
@pytest.fixture(scope="module")
def quality_diversity(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality_diversity")
    args = ["--preset", "smoke", "--trainables", "gnn2gnn", "--quiet", "--out", str(out)]
    code = study("quality_diversity").main(args)  # W&B on (offline): the scatter panel must name real keys
    return out, out / "studies" / "quality_diversity-smoke-nbgraph", code, args


def test_quality_diversity_smoke_places_every_knob_value_on_both_axes(quality_diversity):
    out, folder, code, _ = quality_diversity
    assert code == 0
    qd = study("quality_diversity")
    trials = pd.read_parquet(folder / "tables" / "trials.parquet")
    # gnn2gnn × 2 joint-entropy weights, marginals × 2 q, uniform: × 2 seeds
    assert len(trials) == (2 + 2 + 1) * 2 and (trials["status"] == "TERMINATED").all()
    points = pd.read_csv(folder / "tables" / "points.csv")
    knobs = {m: sorted(points.loc[points["method"] == m, "value"]) for m in ("gnn2gnn", "marginals")}
    assert knobs == {"gnn2gnn": qd.knob_levels("gnn2gnn", "smoke"), "marginals": qd.KNOBS["marginals"].levels["smoke"]}
    assert points.loc[points["method"] == "uniform", "value"].isna().all()
    for metric in ("top5_pct", "uniqueness"):
        p = points.dropna(subset=[metric])
        assert ((p[f"{metric}_lo"] <= p[metric]) & (p[metric] <= p[f"{metric}_hi"])).all()
        assert p[[metric, f"{metric}_lo", f"{metric}_hi"]].stack().between(0, 1).all()
    # each point's means are the seeds' means, straight from the trials
    tidy = pd.read_parquet(folder / "tables" / "tidy.parquet")
    marg = tidy[(tidy["method"] == "marginals") & (tidy["value"] == 10.0)]
    assert points.set_index(["method", "value"]).loc[("marginals", 10.0), "uniqueness"] == pytest.approx(
        marg["uniqueness"].mean())
    report = (folder / "report.md").read_text()
    assert "![quality against diversity](figures/quality_diversity.png)" in report
    assert "| GNN2GNN | w_joint_entropy = 7 (default) |" in report and "| product of marginals | q = 10 |" in report
    assert "## Dominance" in report and "Holm" in report
    findings = report.split("## Findings")[1].split("\n## ")[0]
    assert "- **Non-dominated** (" in findings and "With 2 seeds per condition no claim can pass" in findings
    assert (folder / "figures" / "quality_diversity.png").stat().st_size > 10_000
    assert assert_every_trial_has_one_complete_run(out, "quality_diversity-smoke-nbgraph") == len(trials)
    named = assert_dashboards_name_real_keys(out, "quality_diversity-smoke-nbgraph")
    assert {("summary", "uniqueness"), ("summary", "top5_pct")} <= named


def test_quality_diversity_report_only_is_identical(quality_diversity):
    out, folder, _, args = quality_diversity
    before = report_files(folder)
    assert study("quality_diversity").main([*args, "--report-only", "--no-wandb"]) == 0
    assert report_files(folder) == before


def test_quality_diversity_front_keeps_exactly_the_non_dominated_points():
    qd = study("quality_diversity")
    pts = pd.DataFrame({"uniqueness": [0.9, 0.5, 0.6, 0.6, float("nan")],
                        "top5_pct": [0.1, 0.5, 0.4, 0.2, 0.9]})
    # (0.6, 0.2) is beaten by (0.6, 0.4); a point without valid samples is never on the front
    assert qd.non_dominated(pts) == [0, 1, 2]


def test_quality_diversity_refuses_a_generator_without_a_knob_and_a_zero_budget(tmp_path, capsys):
    qd = study("quality_diversity")
    assert qd.main(["--preset", "smoke", "--trainables", "ghn", "--out", str(tmp_path / "o")]) == 2
    assert "has no diversity knob" in capsys.readouterr().err
    assert qd.main(["--preset", "smoke", "--query-budget", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--query-budget must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "o" / "studies").exists()


def test_quality_diversity_dominance_needs_a_significant_gain_and_no_lower_mean(tmp_path):
    from studies import kit

    qd = study("quality_diversity")
    rows = []
    for seed in range(6):
        e = 0.001 * seed  # the same small spread everywhere: differences are significant
        rows += [{"method": "a", "value": 1.0, "seed": seed, "top5_pct": 0.50 + e, "uniqueness": 0.60 + e},
                 {"method": "b", "value": 2.0, "seed": seed, "top5_pct": 0.30 + e, "uniqueness": 0.60 + e},
                 {"method": "c", "value": 3.0, "seed": seed, "top5_pct": 0.40 + e, "uniqueness": 0.90 + e}]
    rep = kit.Report(tmp_path)
    qd._dominance(rep, pd.DataFrame(rows))
    text = "\n".join(rep.lines)
    # a beats b on quality at equal diversity, c beats b on both; a and c trade one for the other
    assert "**a@1** dominates b@2" in text and "**c@3** dominates b@2" in text
    assert "dominates c@3" not in text and "**c@3** dominates a@1" not in text
