"""Quality against diversity: every generator swept over its own diversity knob.

A generator that puts all its samples on a handful of excellent cells scores well on quality
and is a narrow search distribution, not a generative model; one that samples uniformly is
diverse and useless. This study places every method on both axes at once — **quality** = the
top-5 % share of its generated architectures (evaluation field), **diversity** = their
uniqueness (distinct isomorphism classes / valid samples) — and sweeps, for each method, the
one knob that trades the two:

* GNN2GNN — ``w_joint_entropy``, the weight of its joint-entropy bonus;
* GraphPNAS — ``elite_size``, how many of its best queried cells it trains on;
* graph VAE — ``sample_spread``, the std of the final latent draws around the search's end points;
* product of marginals (reference) — ``q``, the top share of the labelled cells it is fit on;
* uniform sampling (reference) — one point, no knob.

A generator's own default value of its knob (its ``DEFAULTS``) is always among the values swept.

Each point is one (method, knob value): mean over seeds with a 95 % CI on both axes; seeds are
shared by all methods (the same seed fixes the same benchmark draw), so comparisons are paired.
The report lists the non-dominated points and every dominance claim that survives Holm's
correction: ``a`` dominates ``b`` when ``a`` is better on one axis and not worse on the other,
both paired differences significant.

Queries: by default each method labels what it needs — GNN2GNN and the marginals label every
training architecture, GraphPNAS spends its search budget, the graph VAE its labels plus the
cells its ascent scores; the report states each point's queries. ``--query-budget N`` caps every
method at N (the marginals reference, which needs every training label, is then left out).

Output in ``<out>/studies/<name>/``: ``report.md``, the figure ``quality_diversity`` (uniqueness
on x, top-5 % share on y, one line per method through its knob values), and the tables behind
them. Presets: smoke (CI), local (default, laptop-sized), full (10 seeds, the papers' sizes).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

from studies import findings, kit, plots, stats
from orchestrator.spec import SpecError

SEEDS = {"smoke": 2, "local": 3, "full": 10}
SAMPLES = {"smoke": 100, "local": 1000, "full": 1000}
QUALITY, DIVERSITY = "top5_pct", "uniqueness"
METRICS = (QUALITY, DIVERSITY, "validity", "novelty", "acc_mean", "acc_best", "queries")


@dataclass(frozen=True)
class Knob:
    """One method's diversity knob: its config key, its values per preset, and its default."""

    key: str
    label: str  # in words, short: the figure's legend names it
    levels: dict[str, list[float]] = field(default_factory=dict)
    default: float | None = None  # where the trainable's DEFAULTS cannot say it (see knob_default)


KNOBS: dict[str, Knob] = {
    "gnn2gnn": Knob("w_joint_entropy", "joint-entropy weight",
                    {"smoke": [0.0, 7.0], "local": [0.0, 3.0, 7.0], "full": [0.0, 3.0, 6.0, 7.0, 12.0]}),
    "graphpnas": Knob("elite_size", "elite size",
                      {"smoke": [2, 5], "local": [3, 10, 30], "full": [3, 5, 10, 20, 40]}),
    "graphvae": Knob("sample_spread", "latent spread",
                     {"smoke": [0.0, 1.0], "local": [0.0, 0.5, 1.5], "full": [0.0, 0.25, 0.5, 1.0, 2.0]},
                     default=0.0),  # its DEFAULTS say None: 0 after the latent ascent the study runs
    "marginals": Knob("q", "fit on the top q %",
                      {"smoke": [10.0, 50.0], "local": [5.0, 20.0, 50.0], "full": [2.0, 5.0, 10.0, 20.0, 50.0]},
                      default=20.0),
}
REFERENCES = ("marginals", "uniform")


def knob_default(method: str) -> float | None:
    """The method's own default value of its knob: a generator's ``DEFAULTS`` (so the sweep
    follows the trainable when its defaults change), else the table's ``default``."""
    knob = KNOBS[method]
    if method not in REFERENCES:
        from trainables import resolve

        value = resolve(method).import_module().DEFAULTS.get(knob.key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return knob.default


def knob_levels(method: str, preset: str) -> list[float]:
    """The values swept: the preset's, and the generator's own default among them (a study
    "with the current defaults" must run them)."""
    levels = [float(v) for v in KNOBS[method].levels[preset]]
    default = knob_default(method)
    if method not in REFERENCES and default is not None and default not in levels:
        levels.append(default)
    return sorted(levels)


def parser(prog: str = "studies/quality_diversity.py") -> argparse.ArgumentParser:
    p = kit.parser(
        prog, __doc__.split("\n\n")[0], default_trainables="gnn2gnn,graphpnas,graphvae",
        presets_help="smoke: 2 seeds, 2 knob values per method, tiny models (CI); local: 3 seeds, 3 values, "
                     "laptop-sized models; full: 10 seeds, 5-6 values, the papers' model sizes.",
        epilog="examples:\n  python studies/quality_diversity.py\n"
               "  python studies/quality_diversity.py --space nb201 --data-dir ../shared/data --preset full\n"
               "  python studies/quality_diversity.py --report-only")
    p.add_argument("--query-budget", type=int, metavar="N",
                   help="cap every method at N benchmark queries (default: each labels what it needs; the "
                        "marginals reference is left out under a cap)")
    return p


# ----------------------------------------------------------------------------- the parts
def variant_name(key: str, value: float) -> str:
    """``w_joint_entropy=0.5`` → ``w_joint_entropy-0_5`` (named by value, so a later run with
    more values adds variants instead of renaming them)."""
    return f"{key}-{value:g}".replace(".", "_")


def build(s: kit.Setup, args: argparse.Namespace) -> tuple[list[kit.Part], dict[str, Any]]:
    """One part per generator (a variant per knob value) and one for the references."""
    budget = args.query_budget
    if budget is not None and budget < 1:
        raise SpecError(f"--query-budget must be at least 1, got {budget}")
    unknown = [t for t in s.trainables if t not in KNOBS or t in REFERENCES]
    if unknown:
        raise SpecError(f"--trainables: {', '.join(unknown)} has no diversity knob here; choose from "
                        f"{', '.join(t for t in KNOBS if t not in REFERENCES)}")
    base = {**s.benchmark(), "n_samples": SAMPLES[s.preset]}
    parts, knobs = [], {}
    for t in s.trainables:
        knob = KNOBS[t]
        config = {**base, **kit.trainable_config(t, s.preset)}
        variants = {variant_name(knob.key, v): {knob.key: _typed(t, v)} for v in knob_levels(t, s.preset)}
        spec = kit.part_spec(s, t, t, config, variants=variants, query_budget=budget)
        parts.append(kit.Part(spec, t, tags={"knob": knob.key}))
        knobs[t] = knob.key
    refs: dict[str, dict[str, Any]] = {"uniform": {"method": "uniform"}}
    if budget is None:
        m = KNOBS["marginals"]
        refs.update({variant_name(m.key, v): {"method": "marginals", m.key: v} for v in m.levels[s.preset]})
        knobs["marginals"] = m.key
    spec = kit.part_spec(s, "references", "baseline", base, variants=refs, query_budget=budget)
    parts.append(kit.Part(spec, "references", role="reference"))
    settings = {"eval_field": _eval_field(s), "query_budget": budget, "n_samples": base["n_samples"],
                "seeds": list(s.seeds), "trainables": list(s.trainables), "knobs": knobs,
                "dataset": s.dataset, "data_dir": s.data_dir}
    return parts, settings


def _typed(method: str, value: float) -> float | int:
    """A knob value as the trainable's config takes it (``elite_size`` is a count)."""
    from trainables import resolve

    default = resolve(method).import_module().DEFAULTS.get(KNOBS[method].key)
    return int(value) if isinstance(default, int) and not isinstance(default, bool) else value


def _eval_field(s: kit.Setup) -> str:
    from trainables import common

    try:
        return common.validate_benchmark(s.benchmark()).eval_field
    except ValueError as exc:
        raise SpecError(str(exc)) from None


# ----------------------------------------------------------------------------- the report
def tidy(frame, manifest: dict[str, Any]):
    """One row per trial: ``method`` (references by their baseline method), ``knob`` and its
    numeric ``value`` (NaN for uniform sampling), the seed and the metrics."""
    import pandas as pd

    knobs = manifest["settings"]["knobs"]
    rows = []
    for _, r in frame.iterrows():
        method = r["config/method"] if r["role"] == "reference" else r["method"]
        key = knobs.get(method)
        value = float(r[f"config/{key}"]) if key and f"config/{key}" in r and r[f"config/{key}"] is not None else float("nan")
        rows.append({"method": method, "role": r["role"], "knob": key or "", "value": value,
                     "variant": r["config/variant"], "seed": int(r["seed"]), "trial_id": r["trial_id"],
                     **{m: float(r[m]) for m in METRICS}})
    return pd.DataFrame(rows)


def points(summary):
    """The summary (one row per method, value, metric) as one row per point: each metric's
    ``<metric>``, ``<metric>_lo``, ``<metric>_hi`` and the point's ``n`` seeds."""
    import pandas as pd

    out = []
    for (method, value), g in summary.groupby(["method", "value"], sort=True, dropna=False):
        row: dict[str, Any] = {"method": method, "value": value, "n": int(g["n"].max())}
        for _, r in g.iterrows():
            row.update({r["metric"]: r["mean"], f"{r['metric']}_lo": r["lo"], f"{r['metric']}_hi": r["hi"]})
        out.append(row)
    return pd.DataFrame(out)


def non_dominated(pts) -> list[int]:
    """Indices of the points no other point beats on both means (higher is better on both)."""
    import numpy as np

    keep = []
    for i, a in pts.iterrows():
        if not (np.isfinite(a[DIVERSITY]) and np.isfinite(a[QUALITY])):
            continue  # no valid sample: not a point on either axis
        if not any((b[DIVERSITY] >= a[DIVERSITY] and b[QUALITY] >= a[QUALITY]
                    and (b[DIVERSITY] > a[DIVERSITY] or b[QUALITY] > a[QUALITY]))
                   for j, b in pts.iterrows() if j != i):
            keep.append(i)
    return keep


def report(s: kit.Setup, manifest: dict[str, Any], rep: kit.Report) -> None:
    st = manifest["settings"]
    frame = kit.trials_frame(s, manifest)
    budget = st.get("query_budget")
    rep.add(f"# Quality against diversity `{s.study}`", "",
            f"Space **{st['space']}**; quality = **top-5 % share** of {st['n_samples']} generated architectures on "
            f"**`{st['eval_field']}`** (the share of *all* samples whose accuracy is in the space's top 5 %); "
            f"diversity = **uniqueness** (distinct isomorphism classes among the valid samples / valid samples). "
            f"Seeds: {len(st['seeds'])}, shared by all methods (paired). Queries: "
            + (f"at most {budget} per trial for every method." if budget is not None else
               "each method labels what it needs (column `queries`)."), "")
    if frame.empty:
        rep.add("No finished trials in the store yet.")
        return
    data = tidy(frame, manifest)
    bounds = stats.metric_bounds(st["space"], st.get("data_dir"), st["eval_field"])
    summary = stats.summarise(data, ["method", "value"], METRICS, bounds)
    pts = points(summary)
    rep.add(f"Trials finished: {len(frame)} (rows: `{rep.table('trials', frame)}`, tidy: "
            f"`{rep.table('tidy', data)}`, per point: `{rep.table('points', pts)}`).", "",
            f"Intervals are 95 % confidence intervals of the mean over seeds; {stats.BOUNDS_NOTE}.", "")
    rep.table("summary", summary)
    front = set(non_dominated(pts))
    path = rep.figure("quality_diversity", figure(pts, st, sorted(front)))
    rep.add(f"![quality against diversity]({path})", "")
    knobs = st["knobs"]
    rep.findings = findings.section(findings.quality_diversity(
        pts, sorted(front), data, label=lambda m, v: f"{plots.method_name(m)}, {_setting(m, v, knobs)}"
        if m in knobs else plots.method_name(m)))

    def ci(p, metric: str, scale: float = 1.0) -> str:
        return kit.fmt_ci({"mean": p[metric], "lo": p[f"{metric}_lo"], "hi": p[f"{metric}_hi"]}, scale)

    rows = [[plots.method_name(p["method"]), _setting(p["method"], p["value"], knobs), p["n"],
             ci(p, QUALITY, 100.0), ci(p, DIVERSITY, 100.0), ci(p, "validity", 100.0), ci(p, "acc_mean"),
             f"{p['queries']:,.0f}", "yes" if i in front else ""] for i, p in pts.iterrows()]
    rep.add("## Every point", "",
            *kit.markdown_table(["method", "knob", "seeds", "top-5 % share (%)", "uniqueness (%)", "validity (%)",
                                 "mean accuracy (%)", "queries", "non-dominated"], rows), "")
    _dominance(rep, data)
    wall = frame["wall_s"].astype(float)
    rep.add("## Cost", "", f"{len(frame)} trials, {wall.sum() / 3600:.3f} trial-hours of wall time "
            f"(mean {wall.mean():.1f} s per trial, from the store's ledger).", "")


def _setting(method: str, value: float, knobs: dict[str, str]) -> str:
    """``elite_size = 5 (default)`` (``—`` for a method without a knob)."""
    if method not in knobs:
        return "—"
    default = knob_default(method) if method in KNOBS else None
    return f"{knobs[method]} = {value:g}" + (" (default)" if default is not None and value == default else "")


def _dominance(rep: kit.Report, data) -> None:
    """Paired differences on both axes for every pair of points of different methods; a claim
    "a dominates b" needs a significant gain on one axis (after Holm's correction over every
    test in the table) and a mean difference ≥ 0 on the other: a loss the seeds cannot resolve is
    still a loss, not "not worse"."""
    import pandas as pd

    keyed = data.assign(point=[f"{m}@{v:g}" if v == v else m for m, v in zip(data["method"], data["value"])])
    names = sorted(keyed["point"].unique())
    method_of = dict(zip(keyed["point"], keyed["method"]))
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if method_of[a] == method_of[b]:
                continue
            for metric in (QUALITY, DIVERSITY):
                sub = keyed[keyed["point"].isin((a, b))].assign(method=lambda d: d["point"])
                rows.append({"metric": metric, "a": a, "b": b, **stats.paired(sub, a, b, metric, {})})
    table = stats.holm(pd.DataFrame(rows)) if rows else pd.DataFrame()
    rep.table("comparisons", table)
    claims = []
    if not table.empty:
        for (a, b), g in table.groupby(["a", "b"], sort=True):
            v, diff = dict(zip(g["metric"], g["verdict"])), dict(zip(g["metric"], g["diff"]))
            for w, l, win, sign in ((a, b, "a>b", 1.0), (b, a, "a<b", -1.0)):
                if win in v.values() and all(sign * d >= 0 for d in diff.values()):
                    gains = " and ".join(m for m, x in v.items() if x == win)
                    other = [m for m, x in v.items() if x != win]
                    tail = f"; {other[0]}: mean as high or higher, not significant" if other else ""
                    claims.append(f"- **{w}** dominates {l} (significantly better on {gains}{tail})")
    rep.add("## Dominance", "",
            "Points are `method@knob value`. For every pair of points of different methods: paired differences "
            f"of both metrics on shared seeds. {stats.correction_note(table) if not table.empty else 'No pairs.'}. "
            "A dominance claim needs one significant gain and a mean at least as high on the other metric.", "",
            *(claims or ["- no dominance survives the correction with the seeds run"]), "",
            f"All {len(table)} tests: `tables/comparisons.csv`.", "")


def figure(pts, settings: dict[str, Any], front: Sequence[int] = ()):
    """The quality–diversity figure from the report's point table; ``front`` ringed."""
    where = f"{plots.space_name(settings['space'])}, {settings['eval_field'].split('/')[0]}"
    labels = {m: KNOBS[m].label if m in KNOBS else "" for m in pts["method"].unique()}
    return plots.frontier(pts, knob_labels=labels, front=front, chance_y=findings.CHANCE_TOP5,
                          xlabel="uniqueness: distinct isomorphism classes / valid samples (%)",
                          ylabel="generated architectures in the top 5 % (%)", scale=100.0,
                          title=f"Quality against diversity: generated architectures on {where}")


def main(argv: Sequence[str] | None = None, prog: str = "studies/quality_diversity.py") -> int:
    """``python studies/quality_diversity.py …`` and ``gnas study quality_diversity …``."""
    return kit.main(argv, parser(prog), study_kind="quality_diversity", preset_seeds=SEEDS, build=build,
                    report=report)


if __name__ == "__main__":
    sys.exit(main())
