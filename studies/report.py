"""A study's report folder — ``report.md``, tables (Parquet + CSV), figures (PNG + SVG) — and
the small text helpers reports are written with. Every file goes through the one atomic writer
(:mod:`trainables.atomic`).
"""
from __future__ import annotations

import math
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
