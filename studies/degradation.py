"""Dataset degradation: how generators cope with worse training data.

Generators × degradation kind × level × seeds on one space/dataset. Kinds (each a knob of the
benchmark oracle, so training code never sees more than the degraded data):

* ``label_noise``    — Gaussian noise of σ accuracy points on every training label;
* ``train_fraction`` — only a seeded subsample of the architectures is visible to training;
* ``holdout_top``    — the top n % architectures (by the evaluation field) are removed from
                       training: can a generator still find them?
* ``low_fidelity``   — training labels from a shorter training run (NB201: 12 epochs, not 200).

Every method spends the same query budget; the clean setting (level 0) is run once per method
and shared by every kind. References: random search and regularized evolution at that budget,
and uniform sampling of as many architectures as the generators produce (0 queries).

Output in ``<out>/studies/<name>/``: ``report.md``, one figure per kind (panels: top-5 % share,
best accuracy, novelty, held-out hit share; x = level; a line and 95 % CI band per generator;
the references as dashed lines), and the tables behind them (``tables/*.parquet|csv``).

Presets: smoke (CI), local (default, laptop-sized: 75 trials in 251 s on NB201 on an idle 2-core
machine), full (paper-sized; about 4.7 CPU-hours on NB201, see studies/README.md).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

from studies import findings, kit, plots, stats
from orchestrator.spec import SpecError

SEEDS = {"smoke": 2, "local": 3, "full": 10}
BUDGET = {"smoke": 30, "local": 100, "full": 100}
SAMPLES = {"smoke": 100, "local": 1000, "full": 1000}
REFERENCES = ("random_search", "regularized_evolution", "uniform")


@dataclass(frozen=True)
class Kind:
    """One degradation knob: its config key, clean value, levels per preset, how to plot it."""

    name: str
    axis: str  # the trainables' config key
    clean: Any
    xlabel: str
    levels: dict[str, list[Any]] = field(default_factory=dict)
    x_scale: float = 1.0  # display scale of the level (fraction → %)
    invert_x: bool = False  # so that "more degraded" is always to the right
    phrase: str = "{x:g}"  # one level in words, for the findings

    def say(self, x: float) -> str:
        """A level (on the x axis) in words: ``label noise σ = 3``."""
        return self.phrase.format(x=x)

    def x(self, level: Any) -> float:
        """The level as a number on the plot's x axis."""
        if self.axis == "label_field":  # "dataset/split/epochs" → epochs
            return float(str(level).rsplit("/", 1)[1])
        return float(level) * self.x_scale


KINDS = {
    "label_noise": Kind("label_noise", "label_noise", 0.0, "label noise σ (accuracy points)",
                        {"smoke": [2.0], "local": [1.0, 3.0, 10.0], "full": [0.5, 1.0, 2.0, 5.0, 10.0]},
                        phrase="label noise σ = {x:g}"),
    "train_fraction": Kind("train_fraction", "train_fraction", 1.0, "architectures visible to training (%)",
                           {"smoke": [0.5], "local": [0.5, 0.2, 0.05], "full": [0.5, 0.2, 0.1, 0.05, 0.01]},
                           x_scale=100.0, invert_x=True, phrase="{x:g} % visible"),
    "holdout_top": Kind("holdout_top", "holdout_top_pct", 0.0, "top architectures removed from training (%)",
                        {"smoke": [10.0], "local": [1.0, 5.0, 10.0], "full": [1.0, 2.0, 5.0, 10.0, 20.0]},
                        phrase="top {x:g} % held out"),
    "low_fidelity": Kind("low_fidelity", "label_field", None, "training epochs behind the labels",
                         invert_x=True, phrase="{x:g}-epoch labels"),
}

# Figure titles, in words (the kinds' names are slugs).
TITLES = {"label_noise": "Noisy training labels", "train_fraction": "Fewer architectures visible to training",
          "holdout_top": "Top architectures held out of training",
          "low_fidelity": "Training labels from shorter training runs"}
METRICS = ("top5_pct", "acc_best", "novelty", "heldout_hit_pct", "acc_mean", "uniqueness", "validity", "queries")
PANELS = [
    plots.Panel("top5_pct", "top-5 % share", "generated architectures in the top 5 % (%)", 100.0),
    plots.Panel("acc_best", "best accuracy", "best accuracy (%)"),
    plots.Panel("novelty", "novelty", "valid architectures unseen in training (%)", 100.0, references=False),
    plots.Panel("heldout_hit_pct", "held-out hit share", "generated architectures from the held-out top (%)", 100.0,
                references=False),
]


def parser(prog: str = "studies/degradation.py") -> argparse.ArgumentParser:
    p = kit.parser(
        prog, __doc__.split("\n\n")[0],
        default_trainables="gnn2gnn,graphpnas",
        presets_help="smoke: 2 seeds, 1 level per kind, tiny models (CI); local: 3 seeds, 3 levels, "
                     "laptop-sized models; full: 10 seeds, 5 levels, the papers' "
                     "model sizes (a GPU cluster).",
        epilog="examples:\n  python studies/degradation.py\n"
               "  python studies/degradation.py --space nb201 --data-dir ../shared/data --kinds holdout_top\n"
               "  python studies/degradation.py --report-only")
    p.add_argument("--kinds", metavar="K,K",
                   help=f"degradation kinds (default: every kind the space supports): {', '.join(KINDS)}")
    p.add_argument("--levels", metavar="X,Y",
                   help="levels to run instead of the preset's (only with a single numeric --kinds)")
    p.add_argument("--query-budget", type=int, metavar="N",
                   help="benchmark queries per trial, for every method (default: the preset's)")
    return p


# ----------------------------------------------------------------------------- the parts
def fields(s: kit.Setup) -> tuple[str, str, list[str]]:
    """(label field, evaluation field, lower-fidelity label fields) of the study's dataset."""
    from trainables import common
    from trainables.spaces import load_table

    try:
        cfg = common.validate_benchmark(s.benchmark())
        table = load_table(s.space, s.data_dir)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    dataset, split, epochs = cfg.label_field.split("/")
    lower = []
    for f in table.fields:
        d, sp, e = f.split("/")
        if d == dataset and sp == split and e.isdigit() and epochs.isdigit() and int(e) < int(epochs):
            lower.append(f)
    return cfg.label_field, cfg.eval_field, sorted(lower, key=lambda f: -int(f.rsplit("/", 1)[1]))


def build(s: kit.Setup, args: argparse.Namespace) -> tuple[list[kit.Part], dict[str, Any]]:
    """One part per generator (its variants: clean + every kind × level) and one for the
    references: three Tuners, not one per condition, so trial processes are reused."""
    label_field, eval_field, lower = fields(s)
    kinds = _kinds(args, lower)
    budget = BUDGET[s.preset] if args.query_budget is None else args.query_budget
    if budget < 1:
        raise SpecError(f"--query-budget must be at least 1, got {budget}")
    conditions: dict[str, dict[str, Any]] = {"clean": {"kind": "clean", "overlay": {}}}
    for k in kinds:
        for level in _levels(args, KINDS[k], s.preset, lower):
            # named by value, so a later run with more levels adds conditions instead of renaming them
            name = f"{k}-{KINDS[k].x(level):g}".replace(".", "_")
            conditions[name] = {"kind": k, "overlay": {KINDS[k].axis: level}}
    variants = {name: c["overlay"] for name, c in conditions.items()}
    base = {**s.benchmark(), "n_samples": SAMPLES[s.preset]}
    parts = []
    for t in s.trainables:
        config = {**base, **kit.trainable_config(t, s.preset)}
        spec = kit.part_spec(s, t, t, config, variants=variants, query_budget=budget)
        parts.append(kit.Part(spec, t))
    refs = {m: {"method": m} for m in REFERENCES}
    spec = kit.part_spec(s, "references", "baseline", base, variants=refs, query_budget=budget)
    parts.append(kit.Part(spec, "references", role="reference"))
    settings = {"label_field": label_field, "eval_field": eval_field, "query_budget": budget,
                "n_samples": base["n_samples"], "seeds": list(s.seeds), "trainables": list(s.trainables),
                "kinds": kinds, "conditions": {n: c["kind"] for n, c in conditions.items()},
                "level_axes": {k: KINDS[k].xlabel for k in kinds},
                "dataset": s.dataset, "data_dir": s.data_dir}
    return parts, settings


def _kinds(args: argparse.Namespace, lower: list[str]) -> list[str]:
    if args.kinds is None:
        return [k for k in KINDS if k != "low_fidelity" or lower]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for k in kinds:
        if k not in KINDS:
            raise SpecError(f"--kinds: unknown kind {k!r}; expected some of {', '.join(KINDS)}")
        if k == "low_fidelity" and not lower:
            raise SpecError("--kinds low_fidelity: this dataset's table has no lower-fidelity labels "
                            "(NB201 cifar10 does: 12-epoch validation accuracy)")
    if not kinds or len(set(kinds)) != len(kinds):
        raise SpecError("--kinds must name distinct kinds")
    return kinds


def _levels(args: argparse.Namespace, kind: Kind, preset: str, lower: list[str]) -> list[Any]:
    if kind.name == "low_fidelity":
        if args.levels is not None:
            raise SpecError("--levels does not apply to low_fidelity (its levels are the table's fidelities)")
        return lower
    if args.levels is None:
        return list(kind.levels[preset])
    if args.kinds is None or "," in args.kinds:
        raise SpecError("--levels needs exactly one --kinds")
    try:
        levels = [float(v) for v in args.levels.split(",") if v.strip()]
    except ValueError:
        raise SpecError(f"--levels must be numbers, got {args.levels!r}") from None
    if not levels or kind.clean in levels or len(set(levels)) != len(levels):
        raise SpecError(f"--levels must be distinct and exclude the clean level {kind.clean} (always run)")
    return levels


# ----------------------------------------------------------------------------- the report
def tidy(frame, manifest: dict[str, Any]):
    """One row per (trial, kind) with the level as a number; a clean trial appears once under
    every kind, at that kind's clean level. References keep their method (the variant's name)."""
    import pandas as pd

    settings = manifest["settings"]
    rows = []
    for _, r in frame.iterrows():
        variant = r["config/variant"]
        if r["role"] == "reference":
            targets = [("clean", None)]
            method = variant
        else:
            method = r["method"]
            kind = settings["conditions"][variant]
            targets = [(k, None) for k in settings["kinds"]] if kind == "clean" else [(kind, r)]
        for kind, degraded in targets:
            if kind == "clean" and r["role"] == "reference":
                level = float("nan")
            else:
                k = KINDS[kind]
                value = degraded[f"config/{k.axis}"] if degraded is not None else (
                    settings["label_field"] if k.axis == "label_field" else k.clean)
                level = k.x(value)
            rows.append({"kind": kind, "level": level, "method": method, "role": r["role"],
                         "variant": variant, "seed": int(r["seed"]), "trial_id": r["trial_id"],
                         **{m: float(r[m]) for m in METRICS}})
    return pd.DataFrame(rows)


def report(s: kit.Setup, manifest: dict[str, Any], rep: kit.Report) -> None:
    st = manifest["settings"]
    frame = kit.trials_frame(s, manifest)
    rep.add(f"# Degradation study `{s.study}`", "",
            f"Space **{st['space']}**, training labels **`{st['label_field']}`**, statistics on "
            f"**`{st['eval_field']}`** (accuracy in %). Every method spends at most **{st['query_budget']}** "
            f"benchmark queries per trial (training labels included); generators are scored on "
            f"{st['n_samples']} generated architectures. Seeds: {len(st['seeds'])} per condition, shared by "
            f"all methods (a seed fixes the degradation draw, so comparisons are paired). Preset: {st['preset']}.",
            "")
    if frame.empty:
        rep.add("No finished trials in the store yet.")
        return
    data = tidy(frame, manifest)
    rep.add(f"Trials finished: {len(frame)} (rows: `{rep.table('trials', frame)}`, tidy: "
            f"`{rep.table('tidy', data)}`).", "",
            "Intervals are 95 % confidence intervals of the mean over seeds "
            "(Student t below 20 seeds — the bootstrap under-covers there, see `bench/ci_coverage.py` — "
            f"BCa bootstrap from 20); {stats.BOUNDS_NOTE}. `best accuracy` of a generator is the best of its generated sample "
            "scored by the benchmark (no queries charged: it is a property of the sample); random search "
            "and regularized evolution report the best architecture they queried; `uniform` is the best "
            "of as many uniformly drawn architectures as the generators produce.", "")
    gens = data[data["role"] == "generator"]
    refs = data[(data["role"] == "reference")]
    bounds = stats.metric_bounds(st["space"], st.get("data_dir"), st["eval_field"])
    summary = stats.summarise(gens, ["kind", "level", "method"], METRICS, bounds)
    ref_summary = stats.summarise(refs, ["method"], METRICS, bounds)
    rep.table("summary", summary)
    rep.table("references", ref_summary)
    rep.findings = findings.section(findings.degradation(
        data, kinds=st["kinds"], invert={k: KINDS[k].invert_x for k in st["kinds"]}, titles=TITLES,
        level_text=lambda kind, x: KINDS[kind].say(x), name=plots.method_name))
    for kind in st["kinds"]:
        k = KINDS[kind]
        panels = panels_of(kind)
        path = rep.figure(f"degradation_{kind}", figure(kind, summary, ref_summary, st))
        rep.add(f"## {TITLES[kind]} (`{kind}`)", "", f"![{kind}]({path})", "")
        rows = []
        sub = summary[summary["kind"] == kind]
        for (level, method), g in sub.groupby(["level", "method"], sort=True):
            cell = {r["metric"]: r for _, r in g.iterrows()}
            rows.append([f"{level:g}", method, cell["top5_pct"]["n"],
                         *(kit.fmt_ci(cell[p.metric], p.scale) for p in panels)])
        rep.add(*kit.markdown_table([k.xlabel, "method", "seeds", *(p.title for p in panels)], rows), "")
    rep.add("## References (clean data, same budget)", "")
    rows = []
    for method, g in ref_summary.groupby("method", sort=True):
        cell = {r["metric"]: r for _, r in g.iterrows()}
        rows.append([method, cell["top5_pct"]["n"], kit.fmt_ci(cell["queries"], digits=0),
                     *(kit.fmt_ci(cell[p.metric], p.scale) for p in PANELS[:3])])
    rep.add(*kit.markdown_table(["method", "seeds", "queries", *(p.title for p in PANELS[:3])], rows), "")
    _comparisons(rep, data, st)
    _cost(rep, frame)


def panels_of(kind: str) -> list[plots.Panel]:
    """The figure's panels: the held-out hit share only where the top is held out."""
    return [p for p in PANELS if p.metric != "heldout_hit_pct" or kind == "holdout_top"]


def figure(kind: str, summary, references, settings: dict[str, Any]):
    """One kind's figure from the report's tables (``summary``, ``references``) and settings."""
    k = KINDS[kind]
    where = f"{plots.space_name(settings['space'])}, {settings['eval_field'].split('/')[0]}"
    mine = summary[summary["kind"] == kind]
    return plots.curves(mine, panels_of(kind), x="level", xlabel=k.xlabel,
                        title=f"{TITLES[kind]}: generated architectures on {where}", references=references,
                        invert_x=k.invert_x, log_x=kind in ("label_noise", "train_fraction", "holdout_top"),
                        chance=chance(kind, sorted(mine["level"].dropna().unique())),
                        chance_note="dotted: chance (novelty: as if shown the whole pool visible to training)")


def chance(kind: str, levels: Sequence[float]) -> dict[str, list[tuple[float | None, float]]]:
    """What a sampler that ignores the labels scores, per metric (shares as fractions): 5 % of
    its samples in the top 5 %; held-out hits in proportion to the held-out share; novelty —
    counted, as for a generator shown the whole visible pool, against that pool — the share of
    the table outside it (1 − the visible fraction; the held-out share; 0 when every
    architecture is visible)."""
    levels = list(levels)
    out: dict[str, list[tuple[float | None, float]]] = {"top5_pct": [(None, 0.05)]}
    if kind == "holdout_top":
        out["heldout_hit_pct"] = [(x, x / 100.0) for x in levels]
        out["novelty"] = [(x, x / 100.0) for x in levels]
    elif kind == "train_fraction":
        out["novelty"] = [(x, 1.0 - x / 100.0) for x in levels]
    else:
        out["novelty"] = [(None, 0.0)]
    return out


def _comparisons(rep: kit.Report, data, st: dict[str, Any]) -> None:
    """Paired differences on shared seeds: every generator pair, and each generator vs random search."""
    import pandas as pd

    gens = sorted(data.loc[data["role"] == "generator", "method"].unique())
    pairs = [(a, b) for i, a in enumerate(gens) for b in gens[i + 1:]]
    rows, claims = [], []
    for metric in ("top5_pct", "acc_best"):
        for kind in st["kinds"]:  # degraded levels only: the clean condition is compared once, below
            sub = data[(data["kind"] == kind) & (data["variant"] != "clean")]
            for level in sorted(sub["level"].unique()):
                at = sub[sub["level"] == level]
                for a, b in pairs:
                    res = stats.paired(at, a, b, metric, {})
                    rows.append({"metric": metric, "kind": kind, "level": level, "a": a, "b": b, **res})
        clean = _clean_rows(data, st)
        # best accuracy of a generated sample is matched by uniform sampling of the same size
        # (no queries), not by a search's best queried architecture
        refs = ("random_search", "uniform") if metric == "top5_pct" else ("uniform",)
        against = [*pairs, *((a, ref) for a in gens for ref in refs if ref in set(clean["method"]))]
        for a, b in against:
            res = stats.paired(clean, a, b, metric, {})
            rows.append({"metric": metric, "kind": "clean", "level": float("nan"), "a": a, "b": b, **res})
    table = stats.holm(pd.DataFrame(rows))
    rep.table("comparisons", table)
    rep.add("## Paired comparisons", "",
            "Difference a − b on the same seeds, with its 95 % CI, the exact Wilcoxon signed-rank p-value "
            "and the paired t-test's; each condition is compared once (the clean one too). "
            f"{stats.correction_note(table)}.", "")
    for _, r in table.iterrows():
        if r["verdict"] == "n.s.":
            continue
        better, worse = (r["a"], r["b"]) if r["verdict"] == "a>b" else (r["b"], r["a"])
        scale = 100.0 if r["metric"] == "top5_pct" else 1.0
        where = "clean data" if r["kind"] == "clean" else f"{r['kind'].replace('_', ' ')} = {r['level']:g}"
        claims.append(f"- **{better}** beats {worse} on {r['metric']} at {where}: "
                      f"{abs(r['diff']) * scale:.2f} points [{min(abs(r['lo']), abs(r['hi'])) * scale:.2f}, "
                      f"{max(abs(r['lo']), abs(r['hi'])) * scale:.2f}], n = {r['n']}, Holm-adjusted p = {r['p_holm']:.3g}")
    rep.add(*(claims or ["- no difference survives the correction with the seeds run"]), "",
            f"All {len(table)} comparisons: `tables/comparisons.csv`.", "")


def _clean_rows(data, st: dict[str, Any]):
    """Each method's clean-data trials once (generators: listed under the first kind)."""
    import pandas as pd

    first = data[data["kind"] == st["kinds"][0]]
    gens = first[(first["role"] == "generator") & (first["variant"] == "clean")]
    return pd.concat([data[data["role"] == "reference"], gens], ignore_index=True)


def _cost(rep: kit.Report, frame) -> None:
    wall = frame["wall_s"].astype(float)
    gpu = frame["gpu_hours"].astype(float).sum() if "gpu_hours" in frame else 0.0
    rep.add("## Cost", "",
            f"{len(frame)} trials, {wall.sum() / 3600:.3f} trial-hours of wall time "
            f"(mean {wall.mean():.1f} s per trial), {gpu:.3f} GPU-hours (from the store's ledger).", "")


def main(argv: Sequence[str] | None = None, prog: str = "studies/degradation.py") -> int:
    """``python studies/degradation.py …`` and ``gnas study degradation …`` (``prog`` names which in messages)."""
    return kit.main(argv, parser(prog), study_kind="degradation", preset_seeds=SEEDS, build=build, report=report)


if __name__ == "__main__":
    sys.exit(main())
