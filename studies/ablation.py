"""Loss-weight and noise ablation: Optuna searches one generator's knobs, winners are re-seeded.

Stage 1 — search (through the orchestrator: Ray Tune + Optuna, every suggestion run on the
search seeds and averaged): single-objective (top-5 % share on the *validation* field,
``val_top5_pct``; TPE, ASHA stops weak trials early when the generator reports it every epoch)
or multi-objective (that share vs queries spent, NSGA-II). Search and early stopping never see
the evaluation (test) field.
Stage 2 — re-seeding: the best configs (single) or the Pareto configs (multi), chosen on the
validation field, and the generator's default config run again on fresh seeds and are reported
on the evaluation field (``top5_pct``); a winner is only a winner if it beats the default on
seeds the search never saw (paired comparison).

Output in ``<out>/studies/<name>/``: ``report.md``; Optuna parameter importances (PED-ANOVA,
computed from the store's trials; needs nothing beyond Optuna); the Pareto front (multi); re-seeded results with 95 % CIs;
the tables behind them.

Presets: smoke (CI), local (default, laptop-sized), full (a GPU cluster).
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Any, Sequence

from studies import findings, kit, plots, stats
from orchestrator.spec import SchedulerSpec, SearchParam, SpecError

SEEDS = {"smoke": 1, "local": 2, "full": 3}  # search seeds per suggestion
SAMPLES = {"smoke": 3, "local": 10, "full": 100}  # Optuna suggestions
RESEED = {"smoke": 2, "local": 3, "full": 10}  # fresh seeds for the winners
WINNERS = {"smoke": 1, "local": 2, "full": 3}  # configs re-seeded (single objective)
BUDGET = {"smoke": 30, "local": 100, "full": 100}
SAMPLES_PER_TRIAL = {"smoke": 100, "local": 500, "full": 1000}
RESEED_BASE = 1000  # re-seeding seeds start this far above the first search seed: disjoint from them

# What the study searches, per generator: loss weights, noise/temperature, and (multi-objective)
# the knob that sets its query use.
SPACES: dict[str, dict[str, Any]] = {
    "gnn2gnn": {
        "params": [
            SearchParam("lambda_adv", "float", 0.0, 1.0),
            SearchParam("w_val", "float", 0.1, 10.0, log=True),
            SearchParam("w_entropy", "float", 0.0, 2.0),
            SearchParam("tau", "float", 0.05, 2.0, log=True),
            SearchParam("noise_dim", "categorical", choices=(4, 16, 64)),
            SearchParam("good_top_pct", "float", 5.0, 50.0),
        ],
        "queries": SearchParam("n_labelled", "int", 10, 100),
        "asha": True,  # reports val_top5_pct every epoch
    },
    "graphpnas": {
        "params": [
            SearchParam("node_weight", "float", 0.1, 2.0, log=True),
            SearchParam("temperature", "float", 0.5, 2.0),
            SearchParam("elite_size", "int", 3, 20),
            SearchParam("entropy_weight", "float", 0.0, 0.1),
            SearchParam("reward", "categorical", choices=("rank", "cdf", "uniform")),
        ],
        "queries": None,  # spends its whole budget by design
        "asha": False,  # reports val_top5_pct only at the end
    },
}
# What search ranks by (validation field) and what the re-seeded winners are reported on (test).
OBJECTIVES = {"single": (["val_top5_pct"], ["max"]), "multi": (["val_top5_pct", "queries"], ["max", "min"])}
REPORTED = {"val_top5_pct": "top5_pct", "queries": "queries"}


def parser(prog: str = "studies/ablation.py") -> argparse.ArgumentParser:
    p = kit.parser(
        prog, __doc__.split("\n\n")[0], default_trainables="gnn2gnn",
        presets_help="smoke: 3 suggestions × 1 seed, winner re-seeded on 2 (CI); local: 10 suggestions × "
                     "2 seeds, 2 winners re-seeded on 3; full: 100 × 3, 3 winners on 10.",
        epilog="examples:\n  python studies/ablation.py\n  python studies/ablation.py --objective multi\n"
               "  python studies/ablation.py --trainables graphpnas --space nb201 --data-dir ../shared/data")
    p.add_argument("--objective", choices=tuple(OBJECTIVES), default="single",
                   help="single: top-5 %% share on the validation field (TPE + ASHA); multi: that share vs "
                        "queries (NSGA-II); winners are reported on the evaluation field")
    p.add_argument("--samples", type=int, metavar="N", help="Optuna suggestions (default: the preset's)")
    p.add_argument("--reseeds", type=int, metavar="N",
                   help="fresh seeds the winners and the default are re-run on (default: the preset's; at least 3 "
                        "for a claim)")
    return p


def _generator(s: kit.Setup) -> str:
    if len(s.trainables) != 1:
        raise SpecError("--trainables: an ablation studies one generator at a time")
    t = s.trainables[0]
    if t not in SPACES:
        raise SpecError(f"no ablation search space for {t!r}; expected one of {', '.join(SPACES)}")
    return t


def build(s: kit.Setup, args: argparse.Namespace) -> tuple[list[kit.Part], dict[str, Any]]:
    t = _generator(s)
    space = SPACES[t]
    reseeds = RESEED[s.preset] if args.reseeds is None else args.reseeds
    if not 1 <= reseeds <= kit.RESEED_ROOM - RESEED_BASE:
        raise SpecError(f"--reseeds must be in [1, {kit.RESEED_ROOM - RESEED_BASE}], got {reseeds}")
    if len(s.seeds) > RESEED_BASE:
        raise SpecError(f"--seeds must be at most {RESEED_BASE}: re-seeding starts {RESEED_BASE} above the first seed")
    samples = SAMPLES[s.preset] if args.samples is None else args.samples
    if samples < 2:
        raise SpecError(f"--samples must be at least 2, got {samples}")
    params = list(space["params"])
    if args.objective == "multi":
        if space["queries"] is None:
            raise SpecError(f"--objective multi: {t} always spends its whole budget; nothing trades queries")
        params.append(space["queries"])
    config = {**s.benchmark(), "n_samples": SAMPLES_PER_TRIAL[s.preset], **kit.trainable_config(t, s.preset)}
    config = {k: v for k, v in config.items() if k not in {p.name for p in params}}
    metrics, modes = OBJECTIVES[args.objective]
    scheduler = SchedulerSpec(kind="fifo")
    if args.objective == "single" and space["asha"]:
        epochs = int(config.get("epochs") or _default(t, "epochs"))
        scheduler = SchedulerSpec(kind="asha", max_t=epochs, grace_period=max(1, epochs // 3))
    spec = kit.part_spec(s, f"{t}-search", t, config, metric=metrics, mode=modes, search=tuple(params),
                         samples=samples, scheduler=scheduler, query_budget=BUDGET[s.preset])
    settings = {"trainable": t, "objective": args.objective, "metrics": metrics, "modes": modes,
                "params": [p.name for p in params], "samples": samples, "search_seeds": list(s.seeds),
                "query_budget": BUDGET[s.preset], "scheduler": scheduler.kind,
                "reseed_seeds": [s.seeds[0] + RESEED_BASE + i for i in range(reseeds)]}
    return [kit.Part(spec, t, tags={"stage": "search"})], settings


def _default(trainable: str, key: str) -> Any:
    from trainables import resolve

    return resolve(trainable).import_module().DEFAULTS[key]


def config_means(frame, params: list[str], metrics: list[str]):
    """Per searched config (its seeds pooled): the params and the mean of each objective."""
    cols = {f"config/{p}": p for p in params}
    grouped = frame.groupby("config_id", sort=True)
    means = grouped[metrics].mean()
    first = grouped[list(cols)].first().rename(columns=cols)
    return first.join(means).join(grouped.size().rename("seeds")).reset_index()


def pareto_mask(values, modes: list[str]) -> list[bool]:
    """Non-dominated rows of ``values`` (n × k) under ``modes`` (max/min per column)."""
    sign = [1.0 if m == "max" else -1.0 for m in modes]
    pts = [[s * v for s, v in zip(sign, row)] for row in values]
    out = []
    for i, p in enumerate(pts):
        dominated = any(all(q[k] >= p[k] for k in range(len(p))) and any(q[k] > p[k] for k in range(len(p)))
                        for j, q in enumerate(pts) if j != i)
        out.append(not dominated and all(math.isfinite(x) for x in p))
    return out


def winners(s: kit.Setup, manifest: dict[str, Any]):
    """The configs stage 2 re-seeds, as ``{variant name: params}`` (deterministic)."""
    st = manifest["settings"]
    frame = kit.trials_frame(s, {"parts": [e for e in manifest["parts"] if e["tags"].get("stage") == "search"]})
    if frame.empty:
        raise SpecError("the search finished no trial; nothing to re-seed")
    means = config_means(frame, st["params"], st["metrics"])
    if st["objective"] == "single":
        means = means.sort_values([st["metrics"][0], "config_id"], ascending=[st["modes"][0] == "min", True])
        chosen = means.head(WINNERS[s.preset])
    else:
        chosen = means[pareto_mask(means[st["metrics"]].to_numpy(), st["modes"])]
    return {f"best-{i + 1}": {p: _plain(r[p]) for p in st["params"]}
            for i, (_, r) in enumerate(chosen.iterrows())}


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def follow_up(s: kit.Setup, args: argparse.Namespace, manifest: dict[str, Any]) -> list[kit.Part]:
    st = manifest["settings"]
    t = st["trainable"]
    config = {**s.benchmark(), "n_samples": SAMPLES_PER_TRIAL[s.preset], **kit.trainable_config(t, s.preset)}
    variants = {"default": {}, **winners(s, manifest)}
    reported = [REPORTED.get(m, m) for m in st["metrics"]]  # grid only: the test field may be the metric
    spec = kit.part_spec(s, f"{t}-reseed", t, config, variants=variants, seeds=st["reseed_seeds"],
                         metric=reported, mode=st["modes"], query_budget=st["query_budget"])
    return [kit.Part(spec, t, tags={"stage": "reseed"})]


MIN_ABOVE_TARGET = 5
"""PED-ANOVA is stable with at least this many configs above its target quantile (Optuna's note)."""


def importance_quantile(n_configs: int) -> float:
    """PED-ANOVA's target quantile for ``n_configs``: the top 10 %, widened so that at least
    :data:`MIN_ABOVE_TARGET` configs lie above it, and never past half of them."""
    return min(0.5, max(0.1, MIN_ABOVE_TARGET / max(n_configs, 1)))


def importances(frame, params: list[str], metric: str, mode: str) -> tuple[dict[str, float], float]:
    """Optuna's PED-ANOVA importances of the searched params for ``metric`` — how much each
    param's distribution among the best configs (the top :func:`importance_quantile`) differs
    from its distribution among all — from the store's trials (one Optuna trial per config, its
    seeds averaged). Returns the importances and the quantile.

    PED-ANOVA, not fANOVA: it needs nothing beyond Optuna (fANOVA's random forest needs
    scikit-learn, which a user's install does not have), it is what optuna-dashboard shows, and it
    is built for few trials.
    """
    import warnings

    import optuna

    from orchestrator.spec import thaw

    spec_params = {p.name: p for p in _all_params()}
    means = config_means(frame, params, [metric]).dropna(subset=[metric])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    for _, r in means.iterrows():
        dists = {p: spec_params[p].distribution() for p in params}
        values = {p: (thaw(r[p]) if spec_params[p].type == "categorical" else
                      int(r[p]) if spec_params[p].type == "int" else float(r[p])) for p in params}
        study.add_trial(optuna.trial.create_trial(params=values, distributions=dists, value=float(r[metric])))
    quantile = importance_quantile(len(means))
    evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=quantile)
    with warnings.catch_warnings():  # e.g. tied values: "the top and all configs are the same set"
        warnings.simplefilter("error", UserWarning)
        try:
            return dict(optuna.importance.get_param_importances(study, evaluator=evaluator)), quantile
        except UserWarning as exc:
            raise ValueError(f"PED-ANOVA: {exc}") from None


def _all_params() -> list[SearchParam]:
    return [p for sp in SPACES.values() for p in [*sp["params"], *([sp["queries"]] if sp["queries"] else [])]]


def report(s: kit.Setup, manifest: dict[str, Any], rep: kit.Report) -> None:
    import pandas as pd

    st = manifest["settings"]
    frame = kit.trials_frame(s, manifest)
    objective = " vs ".join(f"{m} ({o})" for m, o in zip(st["metrics"], st["modes"]))
    rep.add(f"# Ablation study `{s.study}` — {st['trainable']}", "",
            f"Space **{st['space']}**. Optuna searched {', '.join(f'`{p}`' for p in st['params'])} over "
            f"{st['samples']} suggestions × {len(st['search_seeds'])} seed(s), objective {objective}, "
            f"scheduler {st['scheduler']}; every trial spends at most {st['query_budget']} queries. "
            f"Winners were then re-run with the default config on {len(st['reseed_seeds'])} fresh seeds "
            f"({st['reseed_seeds'][0]}…). Preset: {st['preset']}.", "")
    if frame.empty:
        rep.add("No finished trials in the store yet.")
        return
    search = frame[frame["tag/stage"] == "search"]
    reseed = frame[frame["tag/stage"] == "reseed"]
    rep.table("trials", frame)
    means = config_means(search, st["params"], st["metrics"])
    rep.table("search_configs", means)
    metric, mode = st["metrics"][0], st["modes"][0]
    rep.add("## Parameter importances (PED-ANOVA)", "")
    imp, quantile, missing = {}, None, None
    try:
        imp, quantile = importances(search, st["params"], metric, mode)
    except (RuntimeError, ValueError) as exc:  # too few configs or no spread
        missing = f"not computable from {len(means)} configs ({exc})"
        rep.add(f"{missing[0].upper()}{missing[1:]}.", "")
    else:
        rep.table("importances", pd.DataFrame({"param": list(imp), "importance": list(imp.values())}))
        rep.add(f"Optuna's PED-ANOVA: how much each knob's spread among the top {quantile * 100:.0f} % of the "
                f"{len(means)} searched configs (by {metric}) differs from its spread among all of them; "
                "normalised to sum to 1. A point estimate: no interval.", "")
        fig = plots.bars(list(imp), list(imp.values()),
                         xlabel=f"importance for reaching the top {quantile * 100:.0f} % of configs (share, sums to 1)",
                         title=f"{plots.method_name(st['trainable'])}: which knobs matter (PED-ANOVA over {len(means)} searched configs)")
        rep.add(f"![importances]({rep.figure('importances', fig)})", "",
                *kit.markdown_table(["param", "importance"], [[k, f"{v:.3f}"] for k, v in imp.items()]), "")
    if st["objective"] == "multi":
        mask = pareto_mask(means[st["metrics"]].to_numpy(), st["modes"])
        fig = plots.pareto(means, means[mask], x=st["metrics"][1], y=metric, xlabel="benchmark queries spent",
                           ylabel="generated architectures in the validation top 5 % (%)", y_scale=100.0,
                           title=f"{plots.method_name(st['trainable'])}: top-5 % share vs queries spent (searched configs)")
        rep.add("## Pareto front", "", f"![pareto]({rep.figure('pareto', fig)})", "")
    if reseed.empty:
        rep.findings = findings.section(findings.ablation(pd.DataFrame(), pd.DataFrame(), metric=metric, importances=imp,
                                                          quantile=quantile, n_configs=len(means), missing=missing))
        rep.add("## Re-seeded winners", "", "Not run yet.")
        return
    reported = REPORTED.get(metric, metric)  # winners were chosen on validation; they are reported on test
    bounds = stats.metric_bounds(s.space, s.data_dir, str(reseed["eval_field"].iloc[0])) if "eval_field" in reseed else {}
    summary = stats.summarise(reseed.rename(columns={"config/variant": "variant"}), ["variant"],
                            list(dict.fromkeys([reported, "acc_best", "uniqueness", "queries"])), bounds)
    rep.table("reseeded", summary)
    rows = []
    for variant, g in reseed.groupby("config/variant", sort=True):
        cell = {r["metric"]: r for _, r in summary[summary["variant"] == variant].iterrows()}
        first = g.iloc[0]
        knobs = ", ".join(f"{p}={_short(first.get(f'config/{p}'))}" for p in st["params"]) if variant != "default" else "defaults"
        rows.append([variant, knobs, cell[reported]["n"], kit.fmt_ci(cell[reported], 100.0),
                     kit.fmt_ci(cell["acc_best"]), kit.fmt_ci(cell["queries"], digits=0)])
    rep.add("## Re-seeded winners (fresh seeds)", "",
            f"Chosen on `{metric}` (validation field); reported on the evaluation field; {stats.BOUNDS_NOTE}.", "",
            *kit.markdown_table(["config", "knobs", "seeds", "top-5 % share (%)", "best accuracy (%)", "queries"], rows),
            "")
    data = reseed.assign(method=reseed["config/variant"])  # paired() compares "methods": here, configs
    table = stats.holm(pd.DataFrame([{"variant": v, **stats.paired(data, v, "default", reported, {})}
                                   for v in sorted(set(data["method"]) - {"default"})]))
    rep.table("comparisons", table)
    rep.findings = findings.section(findings.ablation(table, summary, metric=reported, importances=imp,
                                                      quantile=quantile, n_configs=len(means), missing=missing))
    claims = []
    for _, res in table.iterrows():
        verdict = {"a>b": "beats the default", "a<b": "is worse than the default",
                   "n.s.": "does not beat the default on fresh seeds"}[res["verdict"]]
        claims.append(f"- **{res['variant']}** {verdict}: {reported} difference {res['diff'] * 100:.2f} points "
                      f"[{res['lo'] * 100:.2f}, {res['hi'] * 100:.2f}], n = {res['n']}, "
                      f"Holm-adjusted p = {res['p_holm']:.3g}")
    rep.add("Paired comparison with the default config on the same fresh seeds:", "", *claims, "",
            f"{stats.correction_note(table)}.", "")


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def main(argv: Sequence[str] | None = None, prog: str = "studies/ablation.py") -> int:
    """``python studies/ablation.py …`` and ``gnas study ablation …`` (``prog`` names which in messages)."""
    return kit.main(argv, parser(prog), study_kind="ablation", preset_seeds=SEEDS, build=build, report=report,
                    follow_up=follow_up)


if __name__ == "__main__":
    sys.exit(main())
