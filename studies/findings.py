"""What a study found, in sentences written from its data: the *Findings* a report opens with.

Every function here is pure: it takes the study's tidy table (one row per trial, or per trial
and target; a ``seed`` column, shares as fractions) and returns Markdown bullet lines, each
with its numbers and their 95 % confidence intervals. A claim ("degrades least", "beats
training on the target", "above uniform sampling") is made only where a paired t-test over the
shared seeds survives Holm's correction over the claim's family (:func:`studies.stats.holm`,
family-wise error 5 %); where it does not, the sentence says so plainly. Tests build these
sentences from synthetic tables with a known answer (``tests/test_findings.py``). "Above" is
asked one-sided, per sentence (a generator against one reference over the points run); a mean
at or below the reference is said to be "not above" it, a higher mean the seeds cannot separate
is said to be just that.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from studies import stats

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

QUALITY = "top5_pct"
CHANCE_TOP5 = 0.05
"""The top-5 % share of a sampler that ignores the labels: 5 % of the space, in expectation."""
REFERENCES = ("uniform", "random_search")
"""What a generator must be above at the same budget: sampling without training, and search."""


# ----------------------------------------------------------------------------- formatting
def pct(mean: float, lo: float = math.nan, hi: float = math.nan, digits: int = 1) -> str:
    """A share as ``31.2 % [23.4, 39.0]``: the interval only where there is one (NaN bounds: a
    fixed level), clipped to [0, 100] % like the report's tables (a share cannot leave it)."""
    return num(mean * 100, max(lo, 0.0) * 100, min(hi, 1.0) * 100, digits, " %")


def num(mean: float, lo: float = math.nan, hi: float = math.nan, digits: int = 2, unit: str = "") -> str:
    """``0.95 [0.80, 1.10]``; ``—`` for no value."""
    if not math.isfinite(mean):
        return "—"
    text = f"{mean:.{digits}f}{unit}"
    if math.isfinite(lo) and math.isfinite(hi):
        text += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return text


def _ci(values: "pd.Series") -> dict[str, Any]:
    from trainables.stats import seed_ci

    return seed_ci(values.astype(float).dropna().tolist())


def _diff_text(res: Mapping[str, Any], scale: float = 100.0, digits: int = 1, unit: str = " points") -> str:
    return (f"{res['diff'] * scale:+.{digits}f}{unit} [{res['lo'] * scale:+.{digits}f}, {res['hi'] * scale:+.{digits}f}]"
            if math.isfinite(res["lo"]) else f"{res['diff'] * scale:+.{digits}f}{unit}")


def _p(res: Mapping[str, Any]) -> str:
    from trainables.stats import MIN_PAIRS_FOR_CLAIM

    p = res["p_holm"]
    if not math.isfinite(p) or res["n"] < MIN_PAIRS_FOR_CLAIM:
        return f"{res['n']} seed{'s' if res['n'] != 1 else ''}: too few for a claim"
    return "Holm-adjusted p < 0.001" if p < 0.001 else f"Holm-adjusted p = {p:.3g}"


def few_seeds_note(n: int, option: str = "--seeds N") -> list[str]:
    """The sentence that says why no claim can pass with ``n`` seeds (empty when some can)."""
    from trainables.stats import MIN_PAIRS_FOR_CLAIM

    if n >= MIN_PAIRS_FOR_CLAIM:
        return []
    return [f"- With {n} seed{'s' if n != 1 else ''} per condition no claim can pass: a paired comparison needs at "
            f"least {MIN_PAIRS_FOR_CLAIM} (run `{option}`)."]


def constant(series: "pd.Series", value: float) -> "pd.Series":
    """``value`` on ``series``' seeds: a one-sample test against a fixed level as a paired one."""
    import pandas as pd

    return pd.Series(value, index=series.index, dtype=float)


def not_above(tests: "pd.DataFrame", subject: Callable[[Mapping[str, Any]], str],
              reference: Callable[[Mapping[str, Any]], str], point: Callable[[Mapping[str, Any]], str]) -> list[str]:
    """Sentences for "is ``a`` above ``b``?" at every point (rows of :func:`_test_row` with
    ``subject``/``reference`` keys, uncorrected). Each (subject, reference) is one family: its
    one-sided tests are Holm-corrected together, and its points are said in three groups — above
    (a claim), **not above** (the mean is at or below the reference: said plainly), and higher
    but not separable from it with the seeds run."""
    lines: list[str] = []
    if tests.empty:
        return lines
    for _, g in tests.groupby(["subject", "reference"], sort=False):
        g = stats.holm(g.reset_index(drop=True))
        first = g.iloc[0]
        who, ref = subject(first), reference(first)
        level = bool(g[["b_mean", "b_lo", "b_hi"]].nunique(dropna=False).max() == 1)  # one reference: say it once
        ref_text = f"{ref} ({pct(first['b_mean'], first['b_lo'], first['b_hi'])})" if level else ref

        def listed(rows: "pd.DataFrame") -> str:
            return "; ".join(f"{point(r)}: {pct(r['a_mean'], r['a_lo'], r['a_hi'])}"
                             + ("" if level else f" vs {pct(r['b_mean'], r['b_lo'], r['b_hi'])}")
                             + f" (difference {_diff_text(r)}, {_p(r)})" for _, r in rows.iterrows())

        above = g[g["verdict"] == "a>b"]
        below = g[(g["verdict"] != "a>b") & ~(g["diff"] > 0)]
        unclear = g[(g["verdict"] != "a>b") & (g["diff"] > 0)]
        tests_said = f"{len(g)} one-sided paired tests, Holm-corrected together"
        if len(above) == len(g):
            lines.append(f"- {who} is above {ref_text} at every point run ({tests_said}).")
            continue
        if len(below):
            lines.append(f"- **{who} is not above {ref_text}** at {len(below)} of {len(g)} points: its mean is at or "
                         f"below it — {listed(below)}.")
        if len(unclear):
            lines.append(f"- {who} is higher than {ref_text} but **not separable from it** with the seeds run at "
                         f"{len(unclear)} of {len(g)} points — {listed(unclear)}.")
        if len(above):
            lines.append(f"- {who} is above {ref_text} at the other {len(above)} points ({tests_said}).")
    return lines


def _test_row(a: "pd.Series", b: "pd.Series", fixed: bool = False, one_sided: bool = True,
              **keys: Any) -> dict[str, Any]:
    """One paired comparison of ``a`` with ``b`` (series by seed): the difference ``a − b`` with its
    CI, each side's mean and CI, and ``p_t`` — one-sided (is ``a`` above ``b``?) unless
    ``one_sided`` is false. ``fixed``: ``b`` is a level, not a measurement (no interval)."""
    ca, cb = _ci(a), _ci(b)
    if fixed:
        cb = {**cb, "lo": math.nan, "hi": math.nan}
    res = stats.paired_by_seed(a, b)
    if one_sided and math.isfinite(res["p_t"]):
        res["p_t"] = res["p_t"] / 2 if res["diff"] > 0 else 1 - res["p_t"] / 2
    return {**res, **keys, "a_mean": ca["mean"], "a_lo": ca["lo"], "a_hi": ca["hi"],
            "b_mean": cb["mean"], "b_lo": cb["lo"], "b_hi": cb["hi"]}


def _holm(rows: list[dict[str, Any]]) -> "pd.DataFrame":
    return stats.holm(_frame(rows)) if rows else _frame(rows)


def _frame(rows: list[dict[str, Any]]) -> "pd.DataFrame":
    import pandas as pd

    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- degradation
def degradation(data: "pd.DataFrame", *, kinds: Sequence[str], invert: Mapping[str, bool],
                titles: Mapping[str, str], level_text: Callable[[str, float], str],
                name: Callable[[str], str], chance_hits: bool = True) -> list[str]:
    """Findings of a degradation study from its tidy table (``studies.degradation.tidy``: ``kind``,
    ``level``, ``method``, ``role``, ``variant``, ``seed``, metrics; a generator's clean trials
    appear under every kind as variant ``clean``; references are clean only).

    Per kind and generator: the top-5 % share clean and at the most degraded level, the drop
    (absolute, points; relative, % of the clean mean) with its paired CI, and the normalised
    area under the curve — the mean over the levels run (clean first, equally spaced whatever the
    level values) of the share divided by the method's clean mean: 1 = nothing lost, 0 = all
    lost. Which generator degrades least (largest area) where a Holm-corrected paired test says
    so. Every (kind, level) where a generator is not above uniform sampling or random search at
    the same budget; for ``holdout_top``, every level where its held-out hit share is not above
    chance (the held-out share itself).
    """
    gens = sorted(data.loc[data["role"] == "generator", "method"].unique())
    lines: list[str] = []
    areas: dict[tuple[str, str], "pd.Series"] = {}
    for kind in kinds:
        for m in gens:
            d = data[(data["kind"] == kind) & (data["method"] == m) & (data["role"] == "generator")]
            clean = d[d["variant"] == "clean"].set_index("seed")[QUALITY]
            levels = sorted(d.loc[d["variant"] != "clean", "level"].unique(), reverse=bool(invert.get(kind)))
            if clean.empty or not levels:
                continue
            worst = d[(d["variant"] != "clean") & (d["level"] == levels[-1])].set_index("seed")[QUALITY]
            drop = stats.paired_by_seed(clean, worst)  # clean − degraded
            c, w = _ci(clean), _ci(worst)
            # the mean drop lies between −(1 − clean) and clean (a share stays in [0, 1]): its interval too
            drop["lo"], drop["hi"] = max(drop["lo"], c["mean"] - 1.0), min(drop["hi"], c["mean"])
            area = normalised_area(d, levels)
            areas[(kind, m)] = area
            a = _ci(area)
            a["lo"] = max(a["lo"], 0.0)  # an area of non-negative shares
            rel = (f"{drop['diff'] / c['mean'] * 100:.0f} % of clean" if c["mean"] > 0 else "clean share 0: no relative drop")
            if c["mean"] > 0 and math.isfinite(drop["lo"]):
                rel += f" [{drop['lo'] / c['mean'] * 100:.0f}, {drop['hi'] / c['mean'] * 100:.0f}]"
            lines.append(f"- **{name(m)}**, {titles[kind].lower()}: top-5 % share {pct(c['mean'], c['lo'], c['hi'])} "
                         f"clean, {pct(w['mean'], w['lo'], w['hi'])} at {level_text(kind, levels[-1])}; drop "
                         f"{_diff_text(drop)} ({rel}); normalised area under the curve "
                         f"{num(a['mean'], a['lo'], a['hi'])} (1 = nothing lost over the {len(levels)} "
                         f"level{'s' if len(levels) != 1 else ''} run).")
    lines += _least_degraded(areas, kinds, titles, name)
    lines += _against_references(data, kinds, gens, level_text, name)
    if chance_hits and "holdout_top" in kinds:
        lines += _heldout_hits(data, gens, level_text, name)
    n = int(data.groupby(["method", "variant"])["seed"].nunique().min()) if len(data) else 0
    return lines + few_seeds_note(n)


def normalised_area(rows: "pd.DataFrame", levels: Sequence[float], metric: str = QUALITY) -> "pd.Series":
    """Per seed: the trapezoid area under ``metric`` over clean, ``levels`` (in degradation order,
    equally spaced) divided by the number of steps and by the clean mean over seeds."""
    clean = rows[rows["variant"] == "clean"].set_index("seed")[metric].astype(float)
    columns = [clean] + [rows[(rows["variant"] != "clean") & (rows["level"] == lv)].set_index("seed")[metric]
                         .astype(float) for lv in levels]
    import pandas as pd

    wide = pd.concat(columns, axis=1, keys=range(len(columns))).dropna()
    base = float(clean.mean())
    if wide.empty or not base > 0:
        return pd.Series(dtype=float)
    values = wide.to_numpy(float)
    area = (values[:, :-1] + values[:, 1:]).sum(axis=1) / 2 / (values.shape[1] - 1)
    return pd.Series(area / base, index=wide.index)


def _least_degraded(areas: Mapping[tuple[str, str], "pd.Series"], kinds: Sequence[str], titles: Mapping[str, str],
                    name: Callable[[str], str]) -> list[str]:
    rows = []
    for kind in kinds:
        methods = sorted(m for k, m in areas if k == kind)
        for i, a in enumerate(methods):
            for b in methods[i + 1:]:
                rows.append({"kind": kind, "a": a, "b": b, **stats.paired_by_seed(areas[(kind, a)], areas[(kind, b)])})
    table = _holm(rows)
    lines = []
    for kind in kinds:
        sub = table[table["kind"] == kind] if not table.empty else table
        if sub.empty:
            continue
        methods = sorted(set(sub["a"]) | set(sub["b"]))
        winner = None
        for m in methods:
            if all((r["a"] == m and r["verdict"] == "a>b") or (r["b"] == m and r["verdict"] == "a<b")
                   for _, r in sub.iterrows() if m in (r["a"], r["b"])):
                winner = m
        means = ", ".join(f"{name(m)} {num(**_mlh(_ci(areas[(kind, m)])))}" for m in methods)  # unclipped: as tested
        diffs = "; ".join(f"{name(r['a'])} − {name(r['b'])} {_diff_text(r, 1.0, 2, '')}, {_p(r)}"
                          for _, r in sub.iterrows())
        if winner is not None:
            lines.append(f"- **{name(winner)} degrades least** under {titles[kind].lower()}: normalised areas {means} "
                         f"(paired: {diffs}).")
        else:
            lines.append(f"- Under {titles[kind].lower()}, **no method is distinguishable** in how much it degrades: "
                         f"normalised areas {means} (paired: {diffs}).")
    return lines


def _mlh(ci: Mapping[str, Any]) -> dict[str, float]:
    return {"mean": ci["mean"], "lo": ci["lo"], "hi": ci["hi"]}


def _against_references(data: "pd.DataFrame", kinds: Sequence[str], gens: Sequence[str],
                        level_text: Callable[[str, float], str], name: Callable[[str], str]) -> list[str]:
    refs = data[data["role"] == "reference"]
    present = [r for r in REFERENCES if r in set(refs["method"])]
    rows = []
    for m in gens:
        mine = data[(data["method"] == m) & (data["role"] == "generator")]
        points = [("clean", math.nan, mine[(mine["variant"] == "clean") & (mine["kind"] == kinds[0])])]
        for kind in kinds:
            deg = mine[(mine["kind"] == kind) & (mine["variant"] != "clean")]
            points += [(kind, lv, deg[deg["level"] == lv]) for lv in sorted(deg["level"].unique())]
        for ref in present:
            theirs = refs[refs["method"] == ref].set_index("seed")[QUALITY]
            for kind, lv, rows_at in points:
                rows.append(_test_row(rows_at.set_index("seed")[QUALITY], theirs, subject=m, reference=ref,
                                      kind=kind, level=lv))
    return not_above(_frame(rows), lambda r: name(r["subject"]),
                     lambda r: f"{name(r['reference'])} at the same budget on clean data",
                     lambda r: "clean data" if r["kind"] == "clean" else level_text(r["kind"], r["level"]))


def _heldout_hits(data: "pd.DataFrame", gens: Sequence[str], level_text: Callable[[str, float], str],
                  name: Callable[[str], str]) -> list[str]:
    rows = []
    held = data[(data["kind"] == "holdout_top") & (data["variant"] != "clean") & (data["role"] == "generator")]
    for m in gens:
        for lv in sorted(held.loc[held["method"] == m, "level"].unique()):
            hits = held[(held["method"] == m) & (held["level"] == lv)].set_index("seed")["heldout_hit_pct"]
            rows.append(_test_row(hits, constant(hits, lv / 100.0), fixed=True, subject=m, reference="chance",
                                  kind="holdout_top", level=lv))
    return not_above(_frame(rows), lambda r: f"{name(r['subject'])}'s held-out hit share",
                     lambda _r: "chance (a sampler that ignores the labels hits the held-out share itself)",
                     lambda r: level_text("holdout_top", r["level"]))


# ----------------------------------------------------------------------------- generalisation
def generalisation(data: "pd.DataFrame", *, sources: Sequence[str], targets: Sequence[str],
                   name: Callable[[str], str], reference: str = "uniform") -> list[str]:
    """Findings of a generalisation study from its tidy table (``method``, ``source``,
    ``target``, ``seed``, ``top5_pct``): per generator and pair A → B the transfer gap —
    top-5 % share on B of a model trained on B (in-dataset) minus that of one trained on A, paired
    by seed — and the pairs where transfer beats training on the target (a significantly negative
    gap, Holm-corrected over every pair); then every point not above chance: uniform
    sampling's share where the study ran it (``reference`` rows, same source and seeds), else 5 %.
    """
    gens = sorted(set(data["method"]) - {reference})
    gap_rows = []
    for m in gens:
        sub = data[data["method"] == m]
        for b in targets:
            home = sub[(sub["source"] == b) & (sub["target"] == b)].set_index("seed")[QUALITY]
            if home.empty:
                continue
            for a in sources:
                away = sub[(sub["source"] == a) & (sub["target"] == b)].set_index("seed")[QUALITY]
                if a == b or away.empty:
                    continue
                gap_rows.append(_test_row(home, away, one_sided=False, subject=m, source=a, target=b))
    gaps = _holm(gap_rows)
    lines = []
    for m in gens:
        g = gaps[gaps["subject"] == m] if not gaps.empty else gaps
        if g.empty:
            continue
        pairs = "; ".join(f"{r['source']} → {r['target']} {_diff_text(r)} (in-dataset {pct(r['a_mean'], r['a_lo'], r['a_hi'])}, "
                          f"transferred {pct(r['b_mean'], r['b_lo'], r['b_hi'])})" for _, r in g.iterrows())
        lines.append(f"- **{name(m)}**, transfer gap (in-dataset minus cross-dataset top-5 % share): {pairs}.")
        wins = g[g["verdict"] == "a<b"]
        if wins.empty:
            lines.append(f"- {name(m)}: transfer beats training on the target in **no pair** "
                         f"({len(g)} paired tests, Holm-corrected).")
        else:
            lines.append(f"- {name(m)}: **transfer beats training on the target** for "
                         + "; ".join(f"{r['source']} → {r['target']} ({_diff_text(r)}, {_p(r)})" for _, r in wins.iterrows())
                         + ".")
    rows = []
    for m in gens:
        sub = data[data["method"] == m]
        for (a, b), g in sub.groupby(["source", "target"], sort=True):
            mine = g.set_index("seed")[QUALITY]
            chance = data[(data["method"] == reference) & (data["source"] == a) & (data["target"] == b)]
            ref = chance.set_index("seed")[QUALITY] if not chance.empty else constant(mine, CHANCE_TOP5)
            rows.append(_test_row(mine, ref, fixed=chance.empty, subject=m, reference="chance", source=a, target=b))
    lines += not_above(_frame(rows), lambda r: name(r["subject"]), lambda _r: "chance",
                       lambda r: f"{r['source']} → {r['target']}")
    if rows:
        lines.append("- Chance is uniform sampling's measured top-5 % share where the study ran it (its cells mapped "
                     "like the generator's), else 5 %: the share of a sampler that ignores the labels.")
    n = int(data.groupby(["method", "source"])["seed"].nunique().min()) if len(data) else 0
    return lines + few_seeds_note(n)


# ----------------------------------------------------------------------------- quality–diversity
def quality_diversity(points: "pd.DataFrame", front: Sequence[int], data: "pd.DataFrame", *,
                      label: Callable[[str, float], str], diversity: str = "uniqueness",
                      reference: str = "uniform") -> list[str]:
    """Findings of a quality–diversity study: the non-dominated set (``front``: indices of
    ``points``, one row per method and knob value with ``<metric>``, ``_lo``, ``_hi``), then every
    point whose top-5 % share is not above uniform sampling's (paired by seed on ``data``:
    ``method``, ``value``, ``seed``, ``top5_pct``; Holm-corrected)."""
    def both(p: Mapping[str, Any]) -> str:
        return (f"top-5 % share {pct(p[QUALITY], p[f'{QUALITY}_lo'], p[f'{QUALITY}_hi'])}, "
                f"{diversity} {pct(p[diversity], p[f'{diversity}_lo'], p[f'{diversity}_hi'])}")

    lines = []
    if len(front):
        lines.append(f"- **Non-dominated** ({len(front)} of {len(points)} points; no other point has a mean at "
                     "least as high on both axes and higher on one): "
                     + "; ".join(f"{label(points.loc[i, 'method'], points.loc[i, 'value'])}: {both(points.loc[i])}"
                                 for i in front) + ".")
    uni = data[data["method"] == reference].set_index("seed")[QUALITY]
    rows = []
    if not uni.empty:
        for (m, v), g in data[data["method"] != reference].groupby(["method", "value"], sort=True, dropna=False):
            rows.append(_test_row(g.set_index("seed")[QUALITY], uni, subject="Top-5 % share",
                                  reference="uniform sampling's", method=m, value=v))
    lines += not_above(_frame(rows), lambda r: r["subject"], lambda r: r["reference"],
                       lambda r: label(r["method"], r["value"]))
    n = int(data.groupby(["method", "value"], dropna=False)["seed"].nunique().min()) if len(data) else 0
    return lines + few_seeds_note(n)


# ----------------------------------------------------------------------------- ablation
def ablation(comparisons: "pd.DataFrame", reseeded: "pd.DataFrame", *, metric: str,
             importances: Mapping[str, float] | None = None, quantile: float | None = None,
             n_configs: int = 0, missing: str | None = None) -> list[str]:
    """Findings of an ablation: each re-seeded winner against the default on fresh seeds
    (``comparisons``: rows of :func:`stats.paired` with ``variant``, Holm-corrected; ``reseeded``:
    the summary with ``variant``, ``metric``, ``mean``, ``lo``, ``hi``), and the knob PED-ANOVA
    ranks first (a point estimate: no interval) or, ``missing``, why there is none."""
    lines = []
    cell = {(r["variant"], r["metric"]): r for _, r in reseeded.iterrows()}
    default = cell.get(("default", metric))
    for _, r in comparisons.iterrows():
        mine = cell.get((r["variant"], metric))
        if mine is None or default is None:
            continue
        verdict = {"a>b": "**beats the default**", "a<b": "**is worse than the default**"}.get(
            r["verdict"], "**is not distinguishable from the default**")
        lines.append(f"- {r['variant']} {verdict} on fresh seeds: {pct(mine['mean'], mine['lo'], mine['hi'])} vs "
                     f"{pct(default['mean'], default['lo'], default['hi'])} top-5 % share; difference {_diff_text(r)}, "
                     f"n = {r['n']}, {_p(r)}.")
    if importances:
        top, value = max(importances.items(), key=lambda kv: kv[1])
        lines.append(f"- The knob that matters most for reaching the top {quantile * 100:.0f} % of the {n_configs} searched "
                     f"configs: `{top}` (PED-ANOVA importance {value:.2f} of 1; a point estimate, no interval).")
    elif missing:
        lines.append(f"- Which knob matters most: {missing}.")
    if default is not None:
        lines += few_seeds_note(int(default["n"]), "--reseeds N")
    return lines


def section(lines: Sequence[str]) -> list[str]:
    """The report's *Findings* section (Markdown lines)."""
    body = list(lines) or ["- Nothing to state yet: no finished trials."]
    return ["## Findings", "", *body, "",
            "Each interval is a 95 % CI over seeds. Every claim is a paired t-test on shared seeds, Holm-corrected "
            "over its family (family-wise error 5 %): \"above\" is one-sided, its family the points of its sentence; "
            "\"degrades least\", transfer and the ablation's comparisons are two-sided, their family every pair "
            "compared. The sections below hold the tables behind these sentences.", ""]


__all__ = ["ablation", "degradation", "generalisation", "normalised_area", "quality_diversity", "section"]
