"""The studies' figures (matplotlib, Agg): curves with CI bands, heatmaps, Pareto fronts.

Every function takes the tidy summary a study wrote to its tables (``mean``/``lo``/``hi`` per
group, see :func:`studies.kit.summarise`) and returns a ``Figure``; the caller saves
it (:meth:`studies.kit.Report.figure`). Units go in the axis labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


@dataclass(frozen=True)
class Panel:
    """One metric panel: its column, title, axis label (with unit) and display scale."""

    metric: str
    title: str
    ylabel: str
    scale: float = 1.0  # e.g. 100 to show a share as percent
    references: bool = True  # draw the reference lines here (not where they mean nothing)


def curves(summary: "pd.DataFrame", panels: Sequence[Panel], *, x: str, xlabel: str, title: str,
           references: "pd.DataFrame | None" = None, invert_x: bool = False, log_x: bool = False) -> "Figure":
    """One panel per metric; x = ``summary[x]``, one line per ``method`` with its CI band.

    ``references`` (rows with ``method``, ``metric``, ``mean``, ``lo``, ``hi``) are drawn as
    dashed horizontal lines with their bands — baselines that do not depend on x.
    """
    plt = _pyplot()
    cols = min(len(panels), 2)
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    methods = sorted(summary["method"].unique()) if not summary.empty else []
    ref_methods = sorted(references["method"].unique()) if references is not None and not references.empty else []
    colours = {m: f"C{i}" for i, m in enumerate([*methods, *ref_methods])}
    for ax, panel in zip(axes.flat, panels):
        data = summary[summary["metric"] == panel.metric]
        for m in methods:
            d = data[data["method"] == m].sort_values(x)
            if d.empty:
                continue
            xs = d[x].to_numpy(dtype=float)
            ax.plot(xs, d["mean"] * panel.scale, marker="o", color=colours[m], label=m)
            ok = np.isfinite(d["lo"].to_numpy(dtype=float))
            if ok.any():
                ax.fill_between(xs[ok], d["lo"][ok] * panel.scale, d["hi"][ok] * panel.scale,
                                color=colours[m], alpha=0.2, linewidth=0)
        if references is not None and panel.references:
            for m in ref_methods:
                r = references[(references["method"] == m) & (references["metric"] == panel.metric)]
                if r.empty:
                    continue
                r = r.iloc[0]
                ax.axhline(r["mean"] * panel.scale, color=colours[m], linestyle="--", linewidth=1.2,
                           label=f"{m} (clean)")
                if np.isfinite(r["lo"]):
                    ax.axhspan(r["lo"] * panel.scale, r["hi"] * panel.scale, color=colours[m], alpha=0.06,
                               linewidth=0)
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(panel.ylabel)
        if log_x:
            ax.set_xscale("symlog", linthresh=1.0)
        levels = sorted(summary[x].dropna().unique()) if not summary.empty else []
        if levels:  # tick exactly the levels that were run, in plain numbers
            ax.set_xticks(levels, labels=[f"{v:g}" for v in levels])
            ax.minorticks_off()
            ax.margins(x=0.06)
        if invert_x:
            ax.invert_xaxis()
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.08 if rows == 1 else 0.05, 1, 0.95))
    return fig


def heatmap(mean: np.ndarray, lo: np.ndarray, hi: np.ndarray, rows: Sequence[str], cols: Sequence[str], *,
            title: str, xlabel: str, ylabel: str, cbar: str, scale: float = 1.0, digits: int = 1,
            diagonal: Mapping[int, int] | None = None, cmap: str = "viridis",
            vmin: float | None = None, vmax: float | None = None) -> "Figure":
    """A matrix of ``mean`` with ``[lo, hi]`` written in each cell; ``diagonal`` maps a row to
    the column that is its in-dataset reference (outlined)."""
    plt = _pyplot()
    m = np.asarray(mean, dtype=float) * scale
    fig, ax = plt.subplots(figsize=(1.25 * len(cols) + 2.8, 0.75 * len(rows) + 2.2))
    im = ax.imshow(m, cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(cols)), labels=cols, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), labels=rows, fontsize=8)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if not np.isfinite(m[i, j]):
                ax.text(j, i, "—", ha="center", va="center", fontsize=7)
                continue
            text = f"{m[i, j]:.{digits}f}"
            if np.isfinite(lo[i, j]) and np.isfinite(hi[i, j]):
                text += f"\n[{lo[i, j] * scale:.{digits}f}, {hi[i, j] * scale:.{digits}f}]"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="black" if im.norm(m[i, j]) > 0.6 else "white")  # readable on both ends
    for i, j in (diagonal or {}).items():
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    fig.colorbar(im, ax=ax, label=cbar, shrink=0.85)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def pareto(points: "pd.DataFrame", front: "pd.DataFrame", *, x: str, y: str, xlabel: str, ylabel: str,
           title: str, x_scale: float = 1.0, y_scale: float = 1.0) -> "Figure":
    """All trials (grey) and the non-dominated ones (connected, with CI bars when present)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.scatter(points[x] * x_scale, points[y] * y_scale, s=14, color="0.65", label="searched configs (mean over seeds)")
    f = front.sort_values(x)
    yerr = None
    if {"lo", "hi"} <= set(f.columns):
        yerr = np.vstack([(f[y] - f["lo"]) * y_scale, (f["hi"] - f[y]) * y_scale])
        yerr = np.where(np.isfinite(yerr), yerr, 0.0)
    ax.errorbar(f[x] * x_scale, f[y] * y_scale, yerr=yerr, color="C3", marker="o", capsize=3,
                label="Pareto front" + (" (95 % CI)" if yerr is not None else ""))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def bars(names: Sequence[str], values: Sequence[float], *, xlabel: str, title: str) -> "Figure":
    """Horizontal bars, largest on top (parameter importances)."""
    plt = _pyplot()
    order = np.argsort(values)
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(names) + 1.6))
    ax.barh([names[i] for i in order], [values[i] for i in order], color="C0")
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig
