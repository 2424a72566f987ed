"""Cross-dataset generalisation: train on dataset A, score the generated architectures on every B.

For each generator and each source dataset A of the space, trials train on A's labels (through
the budgeted oracle, as always) and the same generated sample is scored on every target B of
the space (NB201: cifar10, cifar100, imagenet16; NAS-Bench-Graph: its 9 datasets). The
diagonal (B = A) is the in-dataset reference.

Across spaces (``--space nb101 --target-space nb201``): trials train on the source space and
their valid cells are mapped into the target space through the shared op vocabulary
(:mod:`trainables.spaces.transfer`) and scored on each of its datasets. Two references come
with it: the same generator trained in the target space on B directly (rows ``nb201:B``, the
in-space diagonal), and uniformly sampled source cells mapped the same way (method
``uniform``: the mapping's own chance level).

Output in ``<out>/studies/<name>/``: ``report.md``; per generator a transfer heatmap (cell =
top-5 % share on B, mean and 95 % CI over seeds; diagonal outlined); a heatmap of the datasets'
own rank correlation (Kendall τ of their accuracies over the whole table: how related are the
tasks?); and the tables behind them.

Presets: smoke (CI, 2 sources), local (default: every source, laptop-sized), full.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

import numpy as np

from studies import findings, kit, plots, stats
from orchestrator.spec import SpecError

SEEDS = {"smoke": 2, "local": 3, "full": 10}
BUDGET = {"smoke": 30, "local": 100, "full": 100}
SAMPLES = {"smoke": 100, "local": 1000, "full": 1000}
SMOKE_SOURCES = 2
METRICS = (("top5_pct", "top-5 % share on B (%)", 100.0), ("acc_mean", "mean accuracy on B (%)", 1.0),
           ("acc_best", "best accuracy on B (%)", 1.0))


def parser(prog: str = "studies/generalisation.py") -> argparse.ArgumentParser:
    p = kit.parser(
        prog, __doc__.split("\n\n")[0],
        default_trainables="gnn2gnn,graphpnas",
        presets_help="smoke: 2 source datasets, 2 seeds, tiny models (CI); local: every source dataset, "
                     "3 seeds, laptop-sized models; full: 10 seeds, the papers' model sizes.",
        epilog="examples:\n  python studies/generalisation.py\n"
               "  python studies/generalisation.py --space nb201 --data-dir ../shared/data\n"
               "  python studies/generalisation.py --space nb101 --target-space nb201 --data-dir ../shared/data "
               "--trainables gnn2gnn,graphvae")
    p.add_argument("--sources", metavar="A,B", help="source datasets to train on (default: the preset's)")
    p.add_argument("--query-budget", type=int, metavar="N",
                   help="benchmark queries per trial (default: the preset's)")
    p.add_argument("--target-space", metavar="SPACE",
                   help="score in another space through the shared op mapping (trainables/spaces/transfer.py), "
                        "e.g. --space nb101 --target-space nb201; its table comes from --data-dir")
    return p


def datasets(space: str, data_dir: str | None) -> list[tuple[str, str]]:
    """``(dataset, evaluation field)`` of every dataset of the space with a default field pair."""
    from trainables import common
    from trainables.spaces import load_table

    try:
        table = load_table(space, data_dir)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    return common.dataset_fields(space, table.fields)


def build(s: kit.Setup, args: argparse.Namespace) -> tuple[list[kit.Part], dict[str, Any]]:
    if s.dataset:
        raise SpecError("--dataset does not apply: this study trains on every dataset (use --sources)")
    if args.target_space and args.target_space != s.space:
        return _build_across(s, args, args.target_space)
    targets = datasets(s.space, s.data_dir)
    if len(targets) < 2:
        raise SpecError(f"space {s.space!r} has {len(targets)} dataset(s) with default fields; transfer needs 2 "
                        "(or score in another space: --target-space)")
    names = [d for d, _ in targets]
    sources = _sources(args, names, s)
    budget = _budget(args, s)
    base = {**s.benchmark(), "n_samples": SAMPLES[s.preset], "score_fields": [f for _, f in targets]}
    variants = {f"from-{d}": {"dataset": d} for d in sources}
    parts = []
    for t in s.trainables:
        config = {**base, **kit.trainable_config(t, s.preset)}
        parts.append(kit.Part(kit.part_spec(s, t, t, config, variants=variants, query_budget=budget), t))
    settings = {"targets": {d: f for d, f in targets}, "sources": sources, "query_budget": budget,
                "n_samples": base["n_samples"], "seeds": list(s.seeds), "trainables": list(s.trainables),
                "data_dir": s.data_dir}
    return parts, settings


def _build_across(s: kit.Setup, args: argparse.Namespace, target: str) -> tuple[list[kit.Part], dict[str, Any]]:
    """Train in ``s.space``, score mapped cells in ``target``; plus the two references (module doc)."""
    from trainables.spaces.transfer import mapping

    try:
        mapping(s.space, target)
    except ValueError as exc:
        raise SpecError(f"--target-space: {exc}") from None
    own = [d for d, _ in datasets(s.space, s.data_dir)]
    if not own:
        raise SpecError(f"space {s.space!r} has no dataset with default fields to train on")
    targets = datasets(target, s.data_dir)
    if not targets:
        raise SpecError(f"--target-space {target!r} has no dataset with default fields to score on")
    sources = _sources(args, own, s)
    budget = _budget(args, s)
    base = {**s.benchmark(), "n_samples": SAMPLES[s.preset], "transfer_space": target}
    in_target = {"space": target, "transfer_space": None}  # scores every dataset of its own space by default
    variants = {**{f"from-{d}": {"dataset": d} for d in sources},
                **{f"in-{target}-from-{d}": {**in_target, "dataset": d} for d, _ in targets}}
    parts = []
    for t in s.trainables:
        config = {**base, **kit.trainable_config(t, s.preset)}
        parts.append(kit.Part(kit.part_spec(s, t, t, config, variants=variants, query_budget=budget), t))
    refs = {f"uniform-from-{d}": {"method": "uniform", "dataset": d} for d in sources}
    spec = kit.part_spec(s, "uniform", "baseline", base, variants=refs, query_budget=budget)
    parts.append(kit.Part(spec, "uniform", role="reference"))
    settings = {"targets": {f"{target}:{d}": f for d, f in targets}, "target_space": target,
                "sources": [f"{s.space}:{d}" for d in sources] + [f"{target}:{d}" for d, _ in targets],
                "query_budget": budget, "n_samples": base["n_samples"], "seeds": list(s.seeds),
                "trainables": list(s.trainables), "data_dir": s.data_dir}
    return parts, settings


def _sources(args: argparse.Namespace, names: list[str], s: kit.Setup) -> list[str]:
    if args.sources:
        sources = [x.strip() for x in args.sources.split(",") if x.strip()]
        for x in sources:
            if x not in names:
                raise SpecError(f"--sources: unknown dataset {x!r} of {s.space}; expected some of {', '.join(names)}")
        return sources
    return names[:SMOKE_SOURCES] if s.preset == "smoke" else names


def _budget(args: argparse.Namespace, s: kit.Setup) -> int:
    budget = BUDGET[s.preset] if args.query_budget is None else args.query_budget
    if budget < 1:
        raise SpecError(f"--query-budget must be at least 1, got {budget}")
    return budget


def tidy(frame, settings: dict[str, Any]):
    """One row per (trial, target dataset): the trial's sample scored on that target.

    Within a space, sources and targets are dataset names; across spaces both carry the
    space (``nb101:cifar10`` → ``nb201:cifar100``)."""
    import pandas as pd

    from trainables.common import transfer_name

    home = settings["space"]
    target_space = settings.get("target_space")
    rows = []
    for _, r in frame.iterrows():
        space = r.get("config/space", home) if target_space else home
        dataset = r["config/dataset"]
        source = f"{space}:{dataset}" if target_space else dataset
        for target, field in settings["targets"].items():
            if target == source:
                names = {m: m for m, _, _ in METRICS}  # in-dataset: the trial's own statistics
            else:
                other_space = target_space if target_space and space != target_space else None
                names = {m: transfer_name(m, field, other_space) for m, _, _ in METRICS}
            rows.append({"method": r["method"], "source": source, "target": target, "target_field": field,
                         "seed": int(r["seed"]), "trial_id": r["trial_id"],
                         **{m: float(r.get(n, np.nan)) for m, n in names.items()},
                         "queries": float(r["queries"])})
    return pd.DataFrame(rows)


def task_correlation(space: str, data_dir: str | None, targets: dict[str, str]):
    """Kendall τ between the datasets' accuracies over the architectures both know."""
    import pandas as pd
    from scipy import stats

    from trainables.spaces import load_table

    table = load_table(space, data_dir)
    cols = {d: table.column(f) for d, f in targets.items()}
    names = list(targets)
    tau = np.full((len(names), len(names)), np.nan)
    rows = []
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            ok = np.isfinite(cols[a]) & np.isfinite(cols[b])
            if ok.sum() >= 3:
                tau[i, j] = stats.kendalltau(cols[a][ok], cols[b][ok]).statistic
            rows.append({"a": a, "b": b, "kendall_tau": tau[i, j], "archs": int(ok.sum())})
    return tau, pd.DataFrame(rows)


def report(s: kit.Setup, manifest: dict[str, Any], rep: kit.Report) -> None:
    st = manifest["settings"]
    targets = st["targets"]
    across = st.get("target_space")
    frame = kit.trials_frame(s, manifest)
    rep.add(f"# Generalisation study `{s.study}`", "")
    if across:
        from trainables.spaces.transfer import mapping

        fn = mapping(st["space"], across)
        rep.add(f"Trained in space **{st['space']}**, scored in **{across}**. Each trial trains on one source "
                f"dataset A (its default label field, through the budgeted oracle: at most **{st['query_budget']}** "
                f"queries); its {st['n_samples']} generated cells are mapped into {across} by "
                f"`{fn.__module__}.{fn.__name__}` (lossy: op vocabulary mapped, {across}'s fixed wiring) and "
                f"looked up on every target B (fields: {', '.join(f'`{f}`' for f in targets.values())}; accuracy "
                f"in %). References: rows `{across}:B` are the same generator trained in {across} on B directly "
                f"(the diagonal is in-dataset); method `uniform` maps uniformly sampled {st['space']} cells the "
                "same way — the mapping's own chance level, which a generator must beat to claim transfer.", "")
    else:
        rep.add(f"Space **{st['space']}**. Each trial trains on one source dataset A (its default label field, "
                f"through the budgeted oracle: at most **{st['query_budget']}** queries) and its "
                f"{st['n_samples']} generated architectures are scored on every target B "
                f"(fields: {', '.join(f'`{f}`' for f in targets.values())}; accuracy in %). "
                "Chance level of the top-5 % share is 5 %.", "")
    rep.add(f"Seeds: {len(st['seeds'])} per source. Intervals: 95 % CI of the mean over seeds (Student t below "
            f"20 seeds). Preset: {st['preset']}.", "")
    tau, tau_rows = task_correlation(across or st["space"], st.get("data_dir"), targets)
    rep.table("task_correlation", tau_rows)
    names = list(targets)
    fig = tau_figure(tau, names)
    rep.add("## Task relatedness (context)", "", f"![task correlation]({rep.figure('task_correlation', fig)})", "")
    if frame.empty:
        rep.add("No finished trials in the store yet.")
        return
    data = tidy(frame, st)
    rep.table("trials", frame)
    rep.table("tidy", data)
    summary = stats.summarise(data, ["method", "source", "target"], [m for m, _, _ in METRICS])
    rep.table("summary", summary)
    sources = [x for x in st["sources"] if x in set(data["source"])]
    rep.findings = findings.section(findings.generalisation(data, sources=sources, targets=names,
                                                            name=plots.method_name))
    chance = chance_row(data, names)
    if chance is not None:
        rep.table("chance", chance)
    for method in sorted(set(data["method"]) - {CHANCE_METHOD}):  # uniform sampling is each map's chance row
        trained_on = set(data.loc[data["method"] == method, "source"])
        mine = [x for x in sources if x in trained_on]
        sub = summary[(summary["method"] == method) & (summary["metric"] == "top5_pct")]
        cell = {(r["source"], r["target"]): r for _, r in sub.iterrows()}
        fig = transfer_figure(method, summary, mine, names, chance)
        rep.add(f"## {method}", "", f"![{method}]({rep.figure(f'transfer_{method}', fig)})", "")
        rows = [[a, *(kit.fmt_ci(cell[(a, b)], 100.0, 1) if (a, b) in cell else "—" for b in names)] for a in mine]
        if chance is not None:
            at = {r["target"]: r for _, r in chance.iterrows()}
            rows.append([CHANCE_ROW, *(kit.fmt_ci(at[b], 100.0, 1) if b in at else "—" for b in names)])
        rep.add("Top-5 % share on B (%), rows: trained on A; the diagonal is in-dataset"
                + (f"; last row: {CHANCE_ROW}, pooled over the sources (the mapping's chance level)." if chance is not None
                   else "; chance is 5 %."), "",
                *kit.markdown_table(["A \\ B", *names], rows), "")
        rep.add(*_transfer_gap(data, method, mine, names), "")
    _comparisons(rep, data, sources, names)


CHANCE_METHOD = "uniform"
CHANCE_ROW = "uniform sampling (chance)"


def chance_row(data, names: list[str]):
    """Uniform sampling's top-5 % share on each target (``target``, ``mean``, ``lo``, ``hi``, ``n``),
    each seed's value averaged over the sources first (a uniform draw does not depend on the
    source's labels); ``None`` when the study ran no uniform reference (then chance is 5 %)."""
    uni = data[data["method"] == CHANCE_METHOD]
    if uni.empty:
        return None
    per_seed = uni.groupby(["target", "seed"], as_index=False)["top5_pct"].mean()
    table = stats.summarise(per_seed, ["target"], ["top5_pct"])
    return table[table["target"].isin(names)].reset_index(drop=True)


def tau_figure(tau: np.ndarray, names: list[str]):
    """Kendall τ between the targets' accuracies; colours span the τ values there are (they
    sit close together), not τ's whole [-1, 1]."""
    labels = [plots.space_name(n) for n in names]
    low = float(np.floor(np.nanmin(tau) * 20) / 20) if np.isfinite(tau).any() else -1.0
    nan = np.full_like(tau, np.nan)
    return plots.heatmap(tau, nan, nan, labels, labels, digits=2, cmap="magma", vmin=low, vmax=1.0,
                         title="How related are the tasks? Kendall τ between the datasets' accuracies",
                         xlabel="dataset", ylabel="dataset", cbar=f"Kendall τ (colours span {low:.2f} to 1)")


def transfer_figure(method: str, summary, sources: list[str], names: list[str], chance=None):
    """``method``'s top-5 % share on each target B (columns) when trained on each source A
    (rows), from the report's summary table; every method's map on one colour scale. ``chance``
    (:func:`chance_row`) becomes the last row, below a gap; without it the title gives chance (5 %)."""
    top5 = summary[summary["metric"] == "top5_pct"]
    top = float(np.nanmax(top5["mean"])) * 100.0 if len(top5) else None
    sub = top5[top5["method"] == method]
    cell = {(r["source"], r["target"]): r for _, r in sub.iterrows()}
    grids = {k: np.array([[cell[(a, b)][k] if (a, b) in cell else np.nan for b in names] for a in sources])
             for k in ("mean", "lo", "hi")}
    rows = [plots.space_name(a) for a in sources]
    if chance is not None:
        at = {r["target"]: r for _, r in chance.iterrows()}
        for k in grids:
            grids[k] = np.vstack([grids[k], [[at[b][k] if b in at else np.nan for b in names]]])
        rows.append(CHANCE_ROW)
    diag = {i: names.index(a) for i, a in enumerate(sources) if a in names}
    outlined = "; outlined: in-dataset" if diag else ""
    reference = "" if chance is not None else "; chance: 5 %"
    return plots.heatmap(grids["mean"], grids["lo"], grids["hi"], rows,
                         [plots.space_name(b) for b in names], scale=100.0, diagonal=diag, vmin=0.0, vmax=top,
                         separator=len(sources) if chance is not None else None,
                         title=f"{plots.method_name(method)}: top-5 % share on B when trained on A\n"
                               f"(mean [95 % CI] over {plots.seeds_label(sub['n'])}{outlined}{reference})",
                         xlabel="scored on dataset B", ylabel="trained on dataset A",
                         cbar="generated architectures\nin B's top 5 % (%)")


def _transfer_gap(data, method: str, sources: list[str], names: list[str]) -> list[str]:
    """The transfer gap per pair A → B: B's in-dataset top-5 % share minus the share on B of a
    model trained on A (paired by seed; positive: transfer loses)."""
    from trainables.stats import paired_difference

    lines = ["Transfer gap: share on B from a model trained on B (in-dataset) minus the share on B from a model "
             "trained on A (same seeds; points; positive = transfer loses). Verdicts here are each pair's own CI; "
             "the Findings correct them for the number of pairs.", ""]
    rows = []
    sub = data[data["method"] == method]
    for b in names:
        if b not in sources:
            continue
        home = sub[(sub["source"] == b) & (sub["target"] == b)].set_index("seed")["top5_pct"]
        for a in sources:
            if a == b:
                continue
            away = sub[(sub["source"] == a) & (sub["target"] == b)].set_index("seed")["top5_pct"]
            seeds = sorted(set(home.index) & set(away.index))
            res = paired_difference(home.loc[seeds].tolist(), away.loc[seeds].tolist())
            rows.append([f"{a} → {b}", f"{res['diff'] * 100:.1f} [{res['lo'] * 100:.1f}, {res['hi'] * 100:.1f}]",
                         res["n"], res["verdict"].replace("a>b", "transfer worse than in-dataset")
                         .replace("a<b", "transfer better than in-dataset")])
    return lines + kit.markdown_table(["transfer", "gap (points)", "seeds", "verdict"], rows) if rows else []


def _comparisons(rep: kit.Report, data, sources: list[str], names: list[str]) -> None:
    import pandas as pd

    methods = sorted(set(data["method"]) - {CHANCE_METHOD})  # generators vs chance: the Findings
    rows = []
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            for src in sources:
                for tgt in names:
                    res = stats.paired(data, a, b, "top5_pct", {"source": src, "target": tgt})
                    if res["n"] == 0:
                        continue  # one of the two never trained on this source (cross-space references)
                    rows.append({"a": a, "b": b, "source": src, "target": tgt, "metric": "top5_pct", **res})
    table = pd.DataFrame(rows)
    rep.add("## Paired comparisons", "")
    if table.empty:
        rep.add("One generator only: nothing to compare.")
        return
    table = stats.holm(table)
    rep.table("comparisons", table)
    claims = [f"- **{r['a'] if r['verdict'] == 'a>b' else r['b']}** beats "
              f"{r['b'] if r['verdict'] == 'a>b' else r['a']} on top-5 % share, {r['source']} → {r['target']}: "
              f"{abs(r['diff']) * 100:.1f} points, n = {r['n']}, Holm-adjusted p = {r['p_holm']:.3g}"
              for _, r in table.iterrows() if r["verdict"] != "n.s."]
    rep.add(f"Difference on the same seeds. {stats.correction_note(table)}.", "",
            *(claims or ["- no difference survives the correction with the seeds run"]), "",
            f"All {len(table)} comparisons: `tables/comparisons.csv`.")


def main(argv: Sequence[str] | None = None, prog: str = "studies/generalisation.py") -> int:
    """``python studies/generalisation.py …`` and ``gnas study generalisation …`` (``prog`` names which in messages)."""
    return kit.main(argv, parser(prog), study_kind="generalisation", preset_seeds=SEEDS, build=build, report=report)


if __name__ == "__main__":
    sys.exit(main())
