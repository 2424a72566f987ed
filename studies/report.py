"""A study's report folder — ``report.md``, tables (Parquet + CSV), figures (PNG + SVG) — the
small text helpers reports are written with, and the report's W&B view. Every file goes through
the one atomic writer (:mod:`trainables.atomic`).
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from trainables.atomic import atomic_write, atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write_text(path, text)


class Report:
    """The study's report folder: tables (Parquet + CSV), figures (PNG + SVG), ``report.md``.

    Every file is written atomically and deterministically (no timestamps, fixed SVG ids), so a
    report rebuilt from the same store is byte-identical.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.lines: list[str] = []
        self.tables: dict[str, "pd.DataFrame"] = {}
        self.figures: list[Path] = []
        self.findings: list[str] = []  # studies.findings.section(...): placed right under the title
        self.notice: str | None = None  # what a reader must know first (an unfinished study): line one

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, name: str, frame: "pd.DataFrame") -> str:
        """Save ``frame`` as ``tables/<name>.parquet`` and ``.csv``; returns the relative CSV path."""
        frame = frame.reset_index(drop=True)
        self.tables[name] = frame
        atomic_write(self.folder / "tables" / f"{name}.parquet", lambda tmp: frame.to_parquet(tmp, index=False))
        atomic_write(self.folder / "tables" / f"{name}.csv", lambda tmp: frame.to_csv(tmp, index=False))
        return f"tables/{name}.csv"

    def figure(self, name: str, fig: "Figure") -> str:
        """Save ``fig`` as ``figures/<name>.png`` and ``.svg``; returns the relative PNG path."""
        import matplotlib
        import matplotlib.pyplot as plt

        with matplotlib.rc_context({"svg.hashsalt": "gnas-report"}):
            atomic_write(self.folder / "figures" / f"{name}.png",
                         lambda tmp: fig.savefig(tmp, format="png", dpi=130, metadata={"Software": None}))
            atomic_write(self.folder / "figures" / f"{name}.svg",
                         lambda tmp: fig.savefig(tmp, format="svg", metadata={"Date": None, "Creator": None}))
        plt.close(fig)
        self.figures.append(self.folder / "figures" / f"{name}.png")
        return f"figures/{name}.png"

    def write(self) -> Path:
        path = self.folder / "report.md"
        lines = list(self.lines)
        if self.findings:  # the findings open the report: right after its title
            at = next((i + 1 for i, line in enumerate(lines) if line.startswith("# ")), 0)
            at += at < len(lines) and lines[at] == ""
            lines[at:at] = list(self.findings)
        if self.notice:
            lines[:0] = [self.notice, ""]
        write_text(path, "\n".join(lines).rstrip() + "\n")
        return path


def fmt_ci(row: Mapping[str, Any], scale: float = 1.0, digits: int = 2) -> str:
    """``mean [lo, hi]`` (or just the mean with one seed)."""
    m = row["mean"] * scale
    if not math.isfinite(m):
        return "—"
    if not (math.isfinite(row["lo"]) and math.isfinite(row["hi"])):
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} [{row['lo'] * scale:.{digits}f}, {row['hi'] * scale:.{digits}f}]"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


def log_report_to_wandb(s: Any, manifest: Mapping[str, Any], report: Report) -> None:
    """W&B, a view of the store: every trial of every part one complete run (written again from
    the store where missing or incomplete — also on ``--report-only`` and ``--resume``), and the
    report as one run of stable id ``<study>-report``. Offline unless ``WANDB_MODE=online``.
    Never fails the study: a W&B problem is one warning line (the store has everything).
    ``s`` is the study's :class:`studies.kit.Setup`."""
    from orchestrator import dashboards
    from orchestrator.wandb_runs import complete_published_study, write_report_run

    mode = os.environ.get("WANDB_MODE", "offline")
    where = dict(project=s.wandb_project, entity=s.wandb_entity, mode=mode)
    try:
        done = complete_published_study(manifest, store_root=s.out, **where)
        # local: W&B writes files (= <out>/wandb/<study> for a folder)
        write_report_run(s.study, manifest.get("settings") or {}, report.tables, report.figures,
                         directory=s.report_dir / "wandb" / s.study, series=dashboards.report_series(manifest, report.tables),
                         **where)
        # the workspace and report as JSON in the study folder; `gnas wandb dashboards --save` saves them
        dashboards.write_definitions(dashboards.build(manifest, store_root=s.out, folder=s.folder,
                                                      project=s.wandb_project, entity=s.wandb_entity), s.folder)
    except Exception as exc:  # noqa: BLE001 - tracking must not fail a finished study
        print(f"warning: W&B runs of the study not completed ({type(exc).__name__}: {exc}); "
              "the store has them: gnas wandb complete", file=sys.stderr)
        return
    failed = [f for d in done for f in d.failed]
    if failed:
        print(f"warning: {len(failed)} W&B runs could not be written (first: {failed[0]}); "
              "the store has them: gnas wandb complete", file=sys.stderr)
    trials, written = sum(d.trials for d in done), sum(d.written for d in done)
    print(f"W&B ({mode}): {trials - len(failed)} of {trials} trial runs complete ({written} rewritten by this check)"
          f" + the report run {s.study}-report, under {s.report_dir / 'wandb'}", flush=True)
