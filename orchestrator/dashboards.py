"""Dashboards as code (wandb-workspaces): per published study a saved W&B workspace and a
report mirroring its ``report.md``, built offline from the study's manifest and report folder.

* degradation — a section per degradation kind: each study metric against the level, one line
  per generator and the reference methods alongside (flat: they run at the clean setting), read
  from the report run's history (:func:`report_series`: the report's mean over seeds per level);
* generalisation — per method the transfer matrix (the report's heatmap) and the summary table;
* ablation — parallel coordinates of the searched knobs against the objective, and the
  knobs' importances for it, over the search's trial runs (their config and summary);
* every study — the report's figures and tables (report run).

:func:`build` returns the objects, :func:`write_definitions` writes them as JSON into the study
folder (no account needed: wandb-workspaces builds its objects offline), :func:`save` saves them
to W&B (account and network). :func:`referenced_keys` lists every metric and config key the
panels name, which tests check against the keys the study's runs really hold.
"""
from __future__ import annotations

import dataclasses
import enum
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

DEGRADATION_METRICS = ("top5_pct", "acc_best", "novelty", "heldout_hit_pct")
MEASURED_WHERE = {"heldout_hit_pct": ("holdout_top",)}
"""Metrics a degradation kind measures only where it says: the held-out hit share is 0 by
construction unless the top is held out, so only that kind gets its panel."""
GENERALISATION_METRIC = "top5_pct"
METRIC_WORDS = {
    "top5_pct": "top-5 % share: generated architectures in the space's top 5 %",
    "top1_pct": "top-1 % share: generated architectures in the space's top 1 %",
    "top10_pct": "top-10 % share: generated architectures in the space's top 10 %",
    "heldout_hit_pct": "held-out hit share: generated architectures from the held-out top",
    "novelty": "novelty: valid architectures unseen in training",
    "uniqueness": "uniqueness: distinct isomorphism classes / valid samples",
    "validity": "validity: valid samples",
    "acc_best": "best accuracy",
    "acc_mean": "mean accuracy",
    "queries": "benchmark queries spent",
}


def metric_words(metric: str, *, fraction: bool = False, short: bool = False) -> str:
    """``metric`` in words with its unit, for an axis title: shares in % (the report's units),
    or — ``fraction`` — saying they are fractions where a tool shows the raw value; ``val_…`` is
    on the validation field, ``…@field`` on another field. ``short``: the name without its
    explanation (``top-5 % share``), for a narrow axis."""
    from orchestrator.progress import Objective

    base, _, field = metric.partition("@")
    validation = base.startswith("val_")
    words = METRIC_WORDS.get(base.removeprefix("val_"), base.removeprefix("val_").replace("_", " "))
    if short:
        words = words.split(":")[0]
    if validation:
        words += ", validation field"
    if field:
        words += f", on {field}"
    share = Objective.of(metric, "max").scale == 100.0
    if share:
        return words + (" (fraction: 0.05 = 5 %)" if fraction else " (%)")
    return words + (" (%)" if base.startswith("acc_") else "")
WORKSPACE_FILE, REPORT_FILE = "wandb-workspace.json", "wandb-report.json"
FIGURE = re.compile(r"!\[[^\]]*\]\(figures/([^)]+)\.png\)")


@dataclass
class Dashboards:
    """A study's workspace and report (wandb-workspaces objects, not yet saved)."""

    study: str
    workspace: Any  # wandb_workspaces.workspaces.Workspace
    report: Any  # wandb_workspaces.reports.v2.Report


def workspaces_api():
    """``(wandb_workspaces.workspaces, wandb_workspaces.reports.v2)``. Their import emits
    pydantic's deprecation warnings about the package's own validators: silenced here."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import wandb_workspaces.reports.v2 as wr
        import wandb_workspaces.workspaces as ws
    return ws, wr


KINDS = ("degradation", "generalisation", "ablation", "quality_diversity")


def study_kind(manifest: Mapping[str, Any]) -> str:
    """``degradation``, ``generalisation``, ``ablation`` or ``quality_diversity``: the manifest's
    ``kind`` (older manifests: inferred from what they record)."""
    if manifest.get("kind") in KINDS:
        return manifest["kind"]
    settings = manifest.get("settings") or {}
    if settings.get("conditions"):
        return "degradation"
    if settings.get("targets"):
        return "generalisation"
    if any((e.get("tags") or {}).get("stage") == "search" for e in manifest["parts"]):
        return "ablation"
    raise ValueError(f"study {manifest.get('study')!r}: not a degradation, generalisation or ablation study")


# ----------------------------------------------------------------------------- report run series
def report_series(manifest: Mapping[str, Any], tables: Mapping[str, Any]) -> list[dict[str, float]]:
    """History steps for the report run that the degradation workspace plots: per kind and
    level one step with ``level/<kind>`` and ``<kind>/<method>/<metric>`` (mean over seeds, in
    the report's units — shares in % —, from the report's ``summary`` table; references:
    ``references``, the same at every level), for the metrics the kind measures.
    Other studies: none (their panels read tables, figures and the trial runs)."""
    if study_kind(manifest) != "degradation" or "summary" not in tables:
        return []
    from orchestrator.progress import Objective

    summary, refs = tables["summary"], tables.get("references")
    kinds = (manifest.get("settings") or {}).get("kinds") or []
    steps = []
    for kind in kinds:
        here = summary[summary["kind"] == kind]
        for level in sorted(here["level"].unique()):
            step: dict[str, float] = {f"level/{kind}": float(level)}
            at = here[here["level"] == level]
            shown = [m for m in DEGRADATION_METRICS if kind in MEASURED_WHERE.get(m, (kind,))]
            for rows in (at, refs if refs is not None else at.iloc[:0]):
                for r in rows.itertuples():
                    if r.metric in shown:  # in the report's units: shares in %
                        step[f"{kind}/{r.method}/{r.metric}"] = float(r.mean) * Objective.of(r.metric, "max").scale
            steps.append(step)
    return steps


# ----------------------------------------------------------------------------- building
def build(manifest: Mapping[str, Any], *, store_root: str, folder: Path, project: str,
          entity: str | None = None) -> Dashboards:
    """The workspace and report of the published study ``manifest`` (its report in ``folder``)."""
    import pandas as pd

    from orchestrator.wandb_runs import report_run_id

    ws, wr = workspaces_api()

    study, kind = manifest["study"], study_kind(manifest)
    tables = {p.stem: pd.read_parquet(p) for p in sorted((Path(folder) / "tables").glob("*.parquet"))}
    figures = [p.stem for p in sorted((Path(folder) / "figures").glob("*.png"))]
    sections = []
    if kind == "degradation":
        sections += _degradation_sections(manifest, tables, ws, wr)
    elif kind == "generalisation":
        sections += _generalisation_sections(tables, figures, ws, wr)
    elif kind == "quality_diversity":
        sections += _quality_diversity_sections(ws, wr)
    else:
        sections += _ablation_sections(manifest, store_root, ws, wr)
    sections.append(ws.Section(name="Report figures", is_open=True,
                               panels=[wr.MediaBrowser(title=f, media_keys=[f"figure/{f}"]) for f in figures]))
    sections.append(ws.Section(name="Report tables", panels=[
        wr.WeavePanelSummaryTable(table_name=f"table/{t}") for t in tables if t not in ("trials", "tidy")]))
    workspace = ws.Workspace(
        entity=entity or "", project=project, name=f"{study} ({kind})", sections=sections,
        runset_settings=ws.RunsetSettings(filters=ws.And(ws.Config("published_study") == study),
                                          groupby=[ws.Config("method")]))
    report = ws_report(study, Path(folder) / "report.md", figures, project=project, entity=entity,
                       report_id=report_run_id(study), wr=wr)
    return Dashboards(study, workspace, report)


def _degradation_sections(manifest, tables, ws, wr) -> list:
    series = report_series(manifest, tables)
    settings = manifest.get("settings") or {}
    kinds = settings.get("kinds") or []
    axes = settings.get("level_axes") or {}  # the study's x-axis labels, in words
    sections = []
    for kind in kinds:
        keys = sorted({k for step in series if f"level/{kind}" in step for k in step if k.startswith(f"{kind}/")})
        level = axes.get(kind) or f"{kind.replace('_', ' ')} level"
        panels = []
        for metric in DEGRADATION_METRICS:
            lines = [k for k in keys if k.endswith(f"/{metric}")]
            if lines:
                words = metric_words(metric)
                panels.append(wr.LinePlot(title=f"{words.split(':')[0]} against {level.split(' (')[0]}",
                                          x=f"level/{kind}", y=lines, title_x=level, title_y=words,
                                          line_titles={k: k.split("/")[1].replace("_", " ") for k in lines}))
        sections.append(ws.Section(name=f"Degradation: {kind.replace('_', ' ')}", is_open=True, panels=panels))
    return sections


def _generalisation_sections(tables, figures, ws, wr) -> list:
    methods = sorted(tables["summary"]["method"].unique()) if "summary" in tables else []
    return [ws.Section(name=f"Transfer matrix: {m}", is_open=True, panels=[
        wr.MediaBrowser(title=f"{m}: {GENERALISATION_METRIC}, trained on a row, scored on a column",
                        media_keys=[f"figure/transfer_{m}"]),
        wr.WeavePanelSummaryTable(table_name="table/summary")]) for m in methods if f"transfer_{m}" in figures]


def _quality_diversity_sections(ws, wr) -> list:
    """Every trial run as a point: uniqueness against top-5 % share (runs grouped by method)."""
    return [ws.Section(name="Quality against diversity", is_open=True, panels=[
        wr.ScatterPlot(title="top-5 % share (fraction, y) against uniqueness: distinct isomorphism classes / valid "
                             "samples (fraction, x), one point per trial",
                       x=wr.SummaryMetric("uniqueness"), y=wr.SummaryMetric("top5_pct"))])]


def _ablation_sections(manifest, store_root, ws, wr) -> list:
    from orchestrator.layout import saved_spec
    from orchestrator.spec import StudySpec
    from orchestrator.store import Store

    search = [e for e in manifest["parts"] if (e.get("tags") or {}).get("stage") == "search"]
    spec = StudySpec.from_dict(saved_spec(Store(store_root).location, search[0]["name"]))
    knobs = [p.name for p in spec.search]
    objective = spec.objectives[0].metric
    columns = [wr.ParallelCoordinatesPlotColumn(metric=wr.Config(k)) for k in knobs]
    columns.append(wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric(objective)))
    return [ws.Section(name="Search", is_open=True, panels=[
        wr.ParallelCoordinatesPlot(title=f"searched knobs against {metric_words(objective, fraction=True)}",
                                   columns=columns),
        wr.ParameterImportancePlot(with_respect_to=objective)])]


def ws_report(study: str, report_md: Path, figures: Sequence[str], *, project: str, entity: str | None,
              report_id: str, wr) -> Any:
    """A W&B report with ``report.md``'s text, each figure shown from the report run."""
    text = report_md.read_text() if report_md.is_file() else ""
    blocks: list[Any] = []
    title = study
    chunk: list[str] = []

    def flush() -> None:
        if "".join(chunk).strip():
            blocks.append(wr.MarkdownBlock(text="\n".join(chunk).strip()))
        chunk.clear()

    for line in text.splitlines():
        if line.startswith("# ") and not blocks and not chunk:
            title = line[2:].strip()
            continue
        figure = FIGURE.search(line)
        if figure and figure.group(1) in figures:
            flush()
            blocks.append(wr.PanelGrid(
                runsets=[wr.Runset(entity=entity or "", project=project, name="report run",
                                   filters=f"Config('published_study') = '{study}'")],
                panels=[wr.MediaBrowser(title=figure.group(1), media_keys=[f"figure/{figure.group(1)}"])]))
        else:
            chunk.append(line)
    flush()
    return wr.Report(project=project, entity=entity or "", title=title,
                     description=f"Mirror of {study}/report.md (report run {report_id})", blocks=blocks)


# ----------------------------------------------------------------------------- JSON and saving
def describe(obj: Any) -> Any:
    """A JSON-ready description of a wandb-workspaces object tree (type names and fields)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {"type": type(obj).__name__}
        for f in dataclasses.fields(obj):
            if not f.name.startswith("_"):
                out[f.name] = describe(getattr(obj, f.name))
        return out
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Mapping):
        return {str(k): describe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [describe(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "name") and type(obj).__name__ in ("Config", "Metric", "SummaryMetric", "Summary", "Tags"):
        return {"type": type(obj).__name__, "name": obj.name}
    if hasattr(obj, "__dict__"):
        return {"type": type(obj).__name__, **{k: describe(v) for k, v in vars(obj).items() if not k.startswith("_")}}
    return str(obj)


def write_definitions(built: Dashboards, folder: Path) -> list[Path]:
    """Write the workspace and report as JSON into the study folder; returns the paths."""
    from trainables.atomic import atomic_write_text

    paths = []
    for name, obj in ((WORKSPACE_FILE, built.workspace), (REPORT_FILE, built.report)):
        text = json.dumps(describe(obj), indent=1, sort_keys=True, default=str) + "\n"
        paths.append(atomic_write_text(Path(folder) / name, text))
    return paths


def save(built: Dashboards) -> list[str]:
    """Save the workspace and the report to W&B; returns their URLs (needs a key and network)."""
    built.workspace.save()
    built.report.save()
    return [built.workspace.url, built.report.url]


def referenced_keys(definition: Any) -> set[tuple[str, str]]:
    """Every ``(kind, key)`` a JSON definition's panels read: ``history`` for line plots'
    axes, ``summary``/``config`` for parallel coordinates and importances, ``media`` for media
    and tables (media keys and table names live in the report run's history)."""
    found: set[tuple[str, str]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for v in node:
                walk(v)
            return
        if not isinstance(node, dict):
            return
        t = node.get("type")
        if t == "LinePlot":
            found.update({("history", node["x"]), *(("history", y) for y in node["y"])})
        elif t == "ParallelCoordinatesPlotColumn":
            m = node["metric"]
            found.add(("config" if m["type"] == "Config" else "summary", m["name"]))
        elif t == "ParameterImportancePlot":
            found.add(("summary", node["with_respect_to"]))
        elif t == "MediaBrowser":
            found.update(("history", k) for k in node["media_keys"])
        elif t in ("WeavePanelSummaryTable",):
            found.add(("history", node["table_name"]))
        elif t == "ScatterPlot":
            found.update(("summary", node[axis]["name"]) for axis in ("x", "y") if node.get(axis))
        elif t in ("BarPlot", "ScalarChart"):
            raise ValueError(f"referenced_keys does not read {t} panels")
        for v in node.values():
            walk(v)

    walk(definition)
    return found


def run_keys(transcripts: Iterable[Any]) -> set[tuple[str, str]]:
    """``(kind, key)`` of every history, summary and config key the runs hold."""
    keys: set[tuple[str, str]] = set()
    for t in transcripts:
        keys.update(("history", k) for k in t.history_keys)
        keys.update(("summary", k) for k in t.summary_keys)
        keys.update(("config", k) for k in t.config)
    return keys


# ----------------------------------------------------------------------------- optuna-dashboard
def name_optuna_objectives(spec: Any) -> bool:
    """Name the objectives of ``spec``'s search in its Optuna journal, in words with their unit
    (:func:`metric_words`, ``fraction=True``: the journal holds what trials report, so a share
    is a fraction there), so optuna-dashboard shows them instead of "Objective 0". Creates the
    study if the search has not yet (Ray's ``OptunaSearch`` loads it: ``load_if_exists``), so the
    names show from the first trial. Returns whether there was a journal to name them in."""
    from orchestrator.search import optuna_storage

    storage = optuna_storage(spec) if spec.search else None
    if storage is None:
        return False
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=spec.name, storage=storage, load_if_exists=True,
                                directions=["maximize" if o.mode == "max" else "minimize" for o in spec.objectives])
    names = [metric_words(o.metric, fraction=True, short=True) for o in spec.objectives]
    if study.metric_names != names:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    return True
