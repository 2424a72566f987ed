"""The studies' figures (matplotlib, Agg): curves with CI bands, heatmaps, Pareto fronts.

Every function takes the tidy summary a study wrote to its tables (``mean``/``lo``/``hi``/``n``
per group, see :func:`studies.kit.summarise`) and returns a ``Figure``; the caller saves it
(:meth:`studies.kit.Report.figure`). Figures are meant for a paper: titles in words, methods
and benchmarks by their human names (:func:`method_name`, :func:`space_name`), units in the
axis labels, and the legend says how many seeds each line has and what its band is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

METHOD_NAMES = {
    "gnn2gnn": "GNN2GNN",
    "graphpnas": "GraphPNAS",
    "graphvae": "graph VAE",
    "ghn": "GHN",
    "random_search": "random search",
    "regularized_evolution": "regularized evolution",
    "uniform": "uniform sampling",
    "marginals": "product of marginals",
}
SPACE_NAMES = {"nb201": "NAS-Bench-201", "nb101": "NAS-Bench-101", "nbgraph": "NAS-Bench-Graph",
               "enas6": "ENAS-6"}
BAND = "bands: 95 % CI of the mean over seeds"


def method_name(method: str) -> str:
    """``random_search`` → ``random search`` (unknown names: underscores become spaces)."""
    return METHOD_NAMES.get(method, method.replace("_", " "))


def space_name(space: str) -> str:
    """``nb201`` → ``NAS-Bench-201``; ``nb201:cifar10`` → ``NAS-Bench-201 cifar10``."""
    head, _, rest = space.partition(":")
    name = SPACE_NAMES.get(head, head)
    return f"{name} {rest}" if rest else name


def seeds_label(n: Sequence[float]) -> str:
    """``3 seeds`` (or ``2–3 seeds`` when the points differ)."""
    values = sorted({int(v) for v in n if np.isfinite(v)})
    if not values:
        return "no seeds"
    span = f"{values[0]}" if len(values) == 1 else f"{values[0]}–{values[-1]}"
    return f"{span} seed{'s' if values[-1] != 1 else ''}"


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


CHANCE_LABEL = "chance: a sampler that ignores the labels"
BAND_REACH = 1.0
"""A CI band may widen a panel's y range by at most this many times the span of the lines,
references and chance levels it shows: beyond that it is cut at the edge (and the legend says
so), so one wide band cannot squash every line into a corner."""


def curves(summary: "pd.DataFrame", panels: Sequence[Panel], *, x: str, xlabel: str, title: str,
           references: "pd.DataFrame | None" = None, invert_x: bool = False, log_x: bool = False,
           reference_label: str = "clean data",
           chance: Mapping[str, Sequence[tuple[float | None, float]]] | None = None,
           chance_note: str = "") -> "Figure":
    """One panel per metric, side by side (two rows of two for four); x = ``summary[x]``, one
    line per ``method`` with its CI band.

    ``references`` (rows with ``method``, ``metric``, ``mean``, ``lo``, ``hi``, ``n``) are
    baselines that do not depend on x: a dashed line at their mean and, so that their
    intervals do not cover the methods' bands, their 95 % CI as a bar just right of the panel.
    ``chance`` maps a metric to its chance level (unscaled, like the summary): ``[(None, y)]``
    is one level at every x, ``[(x, y), …]`` a level per x; drawn dotted black.
    Each panel's y range is its own: the lines, references and chance levels, with the bands
    up to :data:`BAND_REACH`. A log x axis says so in its label.
    """
    import matplotlib.transforms as mtransforms

    plt = _pyplot()
    cols = len(panels) if len(panels) <= 3 else 2
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols + 0.6, 3.5 * rows + 1.3), squeeze=False,
                             layout="constrained")
    methods = sorted(summary["method"].unique()) if not summary.empty else []
    ref_methods = sorted(references["method"].unique()) if references is not None and not references.empty else []
    colours = {m: f"C{i}" for i, m in enumerate([*methods, *ref_methods])}
    handles: dict[str, object] = {}
    cut = uneven = False
    for ax, panel in zip(axes.flat, panels):
        data = summary[summary["metric"] == panel.metric]
        core: list[float] = list(data["mean"].dropna() * panel.scale)  # what the y range must show
        bands: list[float] = list(pd_values(data, ("lo", "hi")) * panel.scale)
        ref_bars: list[tuple] = []  # (x in axes units, mean, lo, hi, colour, transform): drawn once scaled
        for m in methods:
            d = data[data["method"] == m].sort_values(x)
            if d.empty:
                continue
            xs = d[x].to_numpy(dtype=float)
            label = f"{method_name(m)} ({seeds_label(d['n'])})" if "n" in d else method_name(m)
            (line,) = ax.plot(xs, d["mean"] * panel.scale, marker="o", color=colours[m], label=label, zorder=3)
            handles.setdefault(label, line)
            ok = np.isfinite(d["lo"].to_numpy(dtype=float))
            if ok.any():
                ax.fill_between(xs[ok], d["lo"][ok] * panel.scale, d["hi"][ok] * panel.scale,
                                color=colours[m], alpha=0.2, linewidth=0, zorder=2)
        if references is not None and panel.references:
            beside = mtransforms.blended_transform_factory(ax.transAxes, ax.transData)
            for i, m in enumerate(ref_methods):
                r = references[(references["method"] == m) & (references["metric"] == panel.metric)]
                if r.empty:
                    continue
                r = r.iloc[0]
                core.append(r["mean"] * panel.scale)
                bands += [v * panel.scale for v in (r["lo"], r["hi"]) if np.isfinite(v)]
                n = f", {seeds_label([r['n']])}" if "n" in r else ""
                label = f"{method_name(m)} ({reference_label}{n})"
                line = ax.axhline(r["mean"] * panel.scale, color=colours[m], linestyle="--", linewidth=1.1,
                                  alpha=0.9, label=label, zorder=1)
                handles.setdefault(label, line)
                if np.isfinite(r["lo"]):
                    ref_bars.append((1.025 + 0.03 * i, r["mean"] * panel.scale, r["lo"] * panel.scale,
                                     r["hi"] * panel.scale, colours[m], beside))
        levels = sorted(summary[x].dropna().unique()) if not summary.empty else []
        level = (chance or {}).get(panel.metric)
        if level:
            if level[0][0] is None:
                line = ax.axhline(level[0][1] * panel.scale, color="black", linestyle=":", linewidth=1.4, zorder=1)
            else:
                pts = sorted(level)
                (line,) = ax.plot([p[0] for p in pts], [p[1] * panel.scale for p in pts], color="black",
                                  linestyle=":", linewidth=1.4, marker=".", zorder=1)
            core += [y * panel.scale for _, y in level]
            handles.setdefault(CHANCE_LABEL, line)
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel(xlabel + (" — not to scale" if log_x and _uneven(levels) else ""))
        uneven |= log_x and _uneven(levels)
        ax.set_ylabel(panel.ylabel)
        if log_x:
            ax.set_xscale("symlog", linthresh=1.0)
        if levels:  # tick exactly the levels that were run, in plain numbers
            ax.set_xticks(levels, labels=[f"{v:g}" for v in levels])
            ax.minorticks_off()
            ax.margins(x=0.06)
        if invert_x:
            ax.invert_xaxis()
        if core:
            cut |= _own_range(ax, core, bands, share=panel.scale == 100.0)
        low, high = ax.get_ylim()
        for bx, mean, lo, hi, colour, beside in ref_bars:  # beside the panel, so clipped to its range by hand
            lo_c, hi_c = max(lo, low), min(hi, high)
            ax.errorbar([bx], [mean], yerr=[[mean - lo_c], [hi_c - mean]], transform=beside, color=colour,
                        capsize=2.5, marker="_", linewidth=1.2, clip_on=False)
            cut |= lo_c > lo or hi_c < hi
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if handles:
        note = f"lines: mean over seeds; {BAND}"
        if ref_methods:
            note += "; dashed: references (their CI: bars right of each panel)"
        if uneven:
            note += "\nx axis not to scale: linear from 0 to 1, logarithmic above (the levels run are unevenly spaced)"
        if chance_note:
            note += "\n" + chance_note
        if cut:
            note += "\na band that would dwarf the lines is cut at the panel's edge (the tables hold it whole)"
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(len(handles), 3),
                   fontsize=9, frameon=False, title=note, title_fontsize=8.5)
    fig.suptitle(title, fontsize=11)
    return fig


def pd_values(frame: "pd.DataFrame", columns: Sequence[str]) -> np.ndarray:
    """The finite values of ``columns`` of ``frame``, flat."""
    values = frame[[c for c in columns if c in frame]].to_numpy(dtype=float).ravel()
    return values[np.isfinite(values)]


def _uneven(levels: Sequence[float]) -> bool:
    steps = np.diff(np.asarray(levels, dtype=float))
    return len(steps) > 1 and not np.allclose(steps, steps[0])


def _own_range(ax, core: Sequence[float], bands: Sequence[float], *, share: bool) -> bool:
    """Scale ``ax``'s y axis to ``core`` values, widened by ``bands`` up to :data:`BAND_REACH`
    times their span (a share in percent stays within [0, 100]); returns whether a band is cut."""
    low, high = float(np.min(core)), float(np.max(core))
    span = max(high - low, 0.05 * max(abs(high), 1.0))
    reach_low, reach_high = low - BAND_REACH * span, high + BAND_REACH * span
    b_low = min([low, *bands]) if len(bands) else low
    b_high = max([high, *bands]) if len(bands) else high
    cut = b_low < reach_low or b_high > reach_high
    low, high = max(b_low, reach_low), min(b_high, reach_high)
    pad = 0.06 * (high - low)
    low, high = low - pad, high + pad
    if share:
        low, high = max(low, -1.0), min(high, 101.0)
    ax.set_ylim(low, high)
    return cut


def heatmap(mean: np.ndarray, lo: np.ndarray, hi: np.ndarray, rows: Sequence[str], cols: Sequence[str], *,
            title: str, xlabel: str, ylabel: str, cbar: str, scale: float = 1.0, digits: int = 1,
            diagonal: Mapping[int, int] | None = None, cmap: str = "viridis",
            vmin: float | None = None, vmax: float | None = None, separator: int | None = None) -> "Figure":
    """A matrix of ``mean`` with ``[lo, hi]`` written in each cell; ``diagonal`` maps a row to
    the column that is its in-dataset reference (outlined); rows from ``separator`` on are set
    apart by a white gap (a reference row). ``vmin``/``vmax`` are in displayed units: give every
    heatmap of one study the same ones, so one colour means one value."""
    plt = _pyplot()
    m = np.asarray(mean, dtype=float) * scale
    height = max(3.4, 0.8 * len(rows) + 2.4)  # a one-row map still has room for its colourbar's label
    fig, ax = plt.subplots(figsize=(1.5 * len(cols) + 3.2, height), layout="constrained")
    im = ax.imshow(m, cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(cols)), labels=cols, rotation=25, ha="right", fontsize=9)
    ax.set_yticks(range(len(rows)), labels=rows, fontsize=9)
    colormap = im.get_cmap()
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if not np.isfinite(m[i, j]):
                ax.text(j, i, "—", ha="center", va="center", fontsize=9)
                continue
            text = f"{m[i, j]:.{digits}f}"
            if np.isfinite(lo[i, j]) and np.isfinite(hi[i, j]):
                text += f"\n[{lo[i, j] * scale:.{digits}f}, {hi[i, j] * scale:.{digits}f}]"
            ax.text(j, i, text, ha="center", va="center", fontsize=9,
                    color=_ink(colormap(im.norm(m[i, j]))))
    for i, j in (diagonal or {}).items():
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    if separator is not None:  # rows from ``separator`` on are references, not more of the same
        ax.axhline(separator - 0.5, color="white", linewidth=5)
    bar = fig.colorbar(im, ax=ax, shrink=0.9)
    bar.set_label(cbar, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return fig


def _ink(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on the colour ``rgba`` (its relative luminance)."""
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3])
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.25 else "white"


def pareto(points: "pd.DataFrame", front: "pd.DataFrame", *, x: str, y: str, xlabel: str, ylabel: str,
           title: str, x_scale: float = 1.0, y_scale: float = 1.0) -> "Figure":
    """All trials (grey) and the non-dominated ones (connected, with CI bars when present)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2), layout="constrained")
    ax.scatter(points[x] * x_scale, points[y] * y_scale, s=14, color="0.65", label="searched configs (mean over seeds)")
    f = front.sort_values(x)
    yerr = None
    if {"lo", "hi"} <= set(f.columns):
        yerr = np.vstack([(f[y] - f["lo"]) * y_scale, (f["hi"] - f[y]) * y_scale])
        yerr = np.where(np.isfinite(yerr), yerr, 0.0)
    ax.errorbar(f[x] * x_scale, f[y] * y_scale, yerr=yerr, color="C3", marker="o", capsize=3,
                label="Pareto front" + (" (bars: 95 % CI over seeds)" if yerr is not None else ""))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def bars(names: Sequence[str], values: Sequence[float], *, xlabel: str, title: str) -> "Figure":
    """Horizontal bars, largest on top (parameter importances)."""
    plt = _pyplot()
    order = np.argsort(values)
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(names) + 1.6), layout="constrained")
    ax.barh([names[i] for i in order], [values[i] for i in order], color="C0")
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    return fig


def frontier(points: "pd.DataFrame", *, knob_labels: Mapping[str, str], xlabel: str, ylabel: str, title: str,
             x: str = "uniqueness", y: str = "top5_pct", scale: float = 1.0, front: Sequence[int] = (),
             chance_y: float | None = None) -> "Figure":
    """Two metrics at once, one line per ``method`` through its knob ``value``s in order.

    ``points`` has one row per (method, value) with ``x``/``y`` means and their ``_lo``/``_hi``
    95 % CI columns and ``n`` seeds; a method with a single point (no knob, NaN value) is a lone
    marker. Every point carries CI bars on both axes and, small, its knob value, placed where it
    overlaps no other label or point; the legend names each method's knob. ``front`` (indices of
    ``points``) are ringed as the non-dominated points; ``chance_y`` (unscaled) is drawn dotted.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 5.8), layout="constrained")
    markers = "osD^vP*X"
    labels: list[tuple[float, float, str, str]] = []  # (x, y, text, colour), placed once the axes are final
    for i, (method, d) in enumerate(points.groupby("method", sort=True)):
        d = d.sort_values("value")
        xs, ys = d[x].to_numpy(float) * scale, d[y].to_numpy(float) * scale

        def err(col: str, mid: np.ndarray) -> np.ndarray:
            lo, hi = d[f"{col}_lo"].to_numpy(float) * scale, d[f"{col}_hi"].to_numpy(float) * scale
            return np.nan_to_num(np.vstack([mid - lo, hi - mid]), nan=0.0).clip(min=0.0)

        knob = knob_labels.get(method, "")
        label = f"{method_name(method)}, {seeds_label(d['n'])}" + (f" (knob: {knob})" if knob else "")
        ax.errorbar(xs, ys, xerr=err(x, xs), yerr=err(y, ys), color=f"C{i}", marker=markers[i % len(markers)],
                    markersize=5, capsize=2.5, linewidth=1.3, elinewidth=0.9, label=label, zorder=3)
        labels += [(vx, vy, f"{v:g}", f"C{i}") for vx, vy, v in zip(xs, ys, d["value"]) if np.isfinite(v)]
    if len(front):
        f = points.loc[list(front)]
        ax.scatter(f[x] * scale, f[y] * scale, s=190, facecolors="none", edgecolors="black", linewidths=1.4,
                   zorder=4, label="non-dominated: no other point is higher on both axes")
    if chance_y is not None:
        ax.axhline(chance_y * scale, color="black", linestyle=":", linewidth=1.3, zorder=1,
                   label=f"{CHANCE_LABEL} ({chance_y * scale:g} %)" if scale == 100.0 else CHANCE_LABEL)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if scale == 100.0:
        for get, put in ((ax.get_xlim, ax.set_xlim), (ax.get_ylim, ax.set_ylim)):
            low, high = get()
            put(max(low, -1.0), min(high, 101.0))
    rings = [(px * scale, py * scale, 11.0) for px, py in zip(points.loc[list(front), x], points.loc[list(front), y])]
    _place_labels(fig, ax, labels, [(px * scale, py * scale, 5.0) for px, py in zip(points[x], points[y])] + rings)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=11)
    fig.legend(loc="outside lower center", ncol=2, fontsize=8.5, frameon=False,
               title="points: mean over seeds, labelled with the knob's value\n"
                     "bars: 95 % CI on both axes; up and right is better", title_fontsize=8.5)
    return fig


LABEL_OFFSETS = ((6, 4), (6, -12), (-7, 5), (-7, -12), (12, 8), (-13, 8), (12, -17), (-13, -17), (0, 13), (0, -22),
                 (18, 0), (-19, 0))
"""Where a knob label may sit around its point (points, right/up positive), in order of preference."""


def _place_labels(fig, ax, labels: Sequence[tuple[float, float, str, str]],
                  markers: Sequence[tuple[float, float, float]]) -> None:
    """Annotate each ``(x, y, text, colour)`` at the first offset whose box overlaps no label
    placed before and no marker (``(x, y, radius in points)``; display coordinates, after the
    axes' limits are final)."""
    fig.canvas.draw()  # final layout: data → pixel transforms are what the saved file shows
    to_px = ax.transData.transform
    dpi_scale = fig.dpi / 72.0
    taken: list[tuple[float, float, float, float]] = []
    for mx, my, radius in markers:
        if np.isfinite(mx) and np.isfinite(my):
            px, py = to_px((mx, my))
            r = radius * dpi_scale
            taken.append((px - r, py - r, px + r, py + r))
    for vx, vy, text, colour in labels:
        px, py = to_px((vx, vy))
        w, h = (4.6 * len(text) + 2) * dpi_scale, 9 * dpi_scale
        choice = LABEL_OFFSETS[0]
        for dx, dy in LABEL_OFFSETS:
            x0 = px + dx * dpi_scale - (w if dx < 0 else 0)
            y0 = py + dy * dpi_scale
            box = (x0, y0, x0 + w, y0 + h)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in taken):
                choice = (dx, dy)
                break
        dx, dy = choice
        x0 = px + dx * dpi_scale - (w if dx < 0 else 0)
        taken.append((x0, py + dy * dpi_scale, x0 + w, py + dy * dpi_scale + h))
        ax.annotate(text, (vx, vy), textcoords="offset points", xytext=(dx, dy), fontsize=7.5, color=colour,
                    ha="right" if dx < 0 else "left", va="bottom", zorder=5,
                    bbox=dict(boxstyle="square,pad=0.05", facecolor="white", edgecolor="none", alpha=0.85))
