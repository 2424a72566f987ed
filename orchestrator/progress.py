"""Study-level progress: one view of a study's parts and trials, fed by Ray Tune's callbacks.

:class:`StudyProgress` counts what a person wants to see while a study runs — part k of n,
trials done / running / errored of the total, elapsed time, ETA, and the best value so far of
the study's first objective in the report's units (a share such as ``top5_pct`` in percent) —
and shows it:

* on a terminal, as one live ``tqdm`` line that redraws in place (Ray's and Tune's own output
  is quiet unless ``--verbose``, so nothing else writes between redraws);
* elsewhere (CI logs, pipes, files, a terminal that reports zero columns), as plain lines — at each part's start and end and at most
  every ``interval`` seconds in between — with no control codes.

:class:`orchestrator.callbacks.ProgressCallback` is the Ray Tune callback that feeds it. This
module imports neither Ray nor tqdm at import time.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, TextIO

# Metrics reported as fractions in [0, 1] that every report shows in percent: the top-k shares
# (``top5_pct``…, ``heldout_hit_pct``) and these; also as ``val_<metric>`` and ``<metric>@<field>``.
PERCENT_METRICS = frozenset({"validity", "uniqueness", "novelty"})
DONE, ERRORED = "TERMINATED", "ERROR"


@dataclass(frozen=True)
class Objective:
    """The value the view calls "best": a reported metric, its direction, how to show it."""

    metric: str
    mode: str  # "max" or "min"
    scale: float = 1.0  # shown value = reported value × scale
    unit: str = ""

    @classmethod
    def of(cls, metric: str, mode: str) -> "Objective":
        """``metric`` in the report's units: shares (``top5_pct``, ``novelty``, ``top5_pct@field``…) in %."""
        base = metric.split("@")[0].removeprefix("val_")
        share = base.endswith("_pct") or base in PERCENT_METRICS
        return cls(metric, mode, 100.0 if share else 1.0, " %" if share else "")

    def better(self, value: float, than: float | None) -> bool:
        return than is None or (value > than if self.mode == "max" else value < than)

    def show(self, value: float | None) -> str:
        if value is None:
            return "—"
        shown = value * self.scale
        return f"{shown:.2f}{self.unit}" if abs(shown) >= 0.01 or shown == 0 else f"{shown:.3g}{self.unit}"


def clock(seconds: float) -> str:
    """``h:mm:ss`` or ``m:ss``."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class StudyProgress:
    """What a study has done so far, and its display (see the module docstring).

    Lifecycle: ``plan(parts, trials)`` (may be called again when a study adds follow-up parts),
    then per part ``start_part(name, trials, done=…)``, the trial events
    (``trial_started`` / ``trial_finished`` / ``running``), ``end_part()``; ``close()`` at the end.
    ``stream`` defaults to stdout; ``live`` defaults to whether it is a terminal.
    """

    def __init__(self, objective: Objective | None = None, *, stream: TextIO | None = None,
                 live: bool | None = None, interval: float = 30.0,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.objective = objective
        self.stream = stream if stream is not None else sys.stdout
        self.live = _is_terminal(self.stream) if live is None else live
        self.interval = interval
        self.now = now
        self.started = now()
        self.parts = 0  # planned parts
        self.total = 0  # planned trials of every part
        self.part = 0  # the current part's number (1-based), 0 before the first
        self.part_name = ""
        self.done = 0
        self.errored = 0
        self.running = 0
        self.best: float | None = None
        self.first_running: float | None = None  # when this run's first trial started (the ETA's clock)
        self._finished: set[str] = set()  # trial ids counted (a trial reports once)
        self._bar: Any = None
        self._last_line = -math.inf  # when the last plain line was printed
        self._last_text = ""
        self._last_live = -math.inf

    # ---------------------------------------------------------------- the plan
    def plan(self, parts: int, trials: int) -> None:
        """Add ``parts`` parts of ``trials`` trials in all to what the study will run."""
        self.parts += parts
        self.total += trials

    def start_part(self, name: str, trials: int, *, done: int = 0, errored: int = 0) -> None:
        """The next part begins; ``done``/``errored`` of its ``trials`` already finished (a resume)."""
        if self.part >= self.parts:  # run without a plan (a single ``gnas run``): plan as it comes
            self.plan(1, trials)
        self.part += 1
        self.part_name = name
        self.done += done
        self.errored += errored
        self.running = 0
        self._draw(force=True)

    def end_part(self) -> None:
        self.running = 0
        self._draw(force=True)

    # ---------------------------------------------------------------- trial events
    def running_now(self, n: int) -> None:
        """``n`` trials of the current part are running."""
        if n and self.first_running is None:
            self.first_running = self.now()
        changed, self.running = n != self.running, n
        self._draw(tick=not changed)  # called every loop step: also the heartbeat of a quiet stretch

    def trial_finished(self, trial_id: str, status: str, result: Mapping[str, Any] | None = None) -> None:
        """A trial ended (``TERMINATED`` or ``ERROR``); ``result`` is its last report."""
        if trial_id in self._finished:
            return
        self._finished.add(trial_id)
        if status == ERRORED:
            self.errored += 1
        else:
            self.done += 1
            value = (result or {}).get(self.objective.metric) if self.objective else None
            if isinstance(value, (int, float)) and math.isfinite(value) and self.objective.better(value, self.best):
                self.best = float(value)
        self.running = max(0, self.running - 1)
        self._draw()

    # ---------------------------------------------------------------- display
    @property
    def finished(self) -> int:
        return self.done + self.errored

    def eta(self) -> float | None:
        """Seconds left at this run's pace so far (``None`` before the first trial ends): the
        time since the first trial started per trial finished in this run — Ray's start-up
        is not a trial's cost."""
        counted = len(self._finished)  # trials finished in this run (not the resumed ones)
        left = self.total - self.finished
        if counted == 0 or left <= 0:
            return None if left > 0 else 0.0
        since = self.first_running if self.first_running is not None else self.started
        return (self.now() - since) / counted * left

    def fields(self) -> dict[str, str]:
        eta = self.eta()
        out = {
            "part": f"part {self.part}/{self.parts}",
            "name": self.part_name,
            "trials": f"{self.finished}/{self.total} trials: {self.done} done, {self.running} running, "
                      f"{self.errored} errored",
            "elapsed": f"elapsed {clock(self.now() - self.started)}",
            "eta": f"ETA {clock(eta)}" if eta is not None else "ETA —",
        }
        if self.objective is not None:
            out["best"] = f"best {self.objective.metric} {self.objective.show(self.best)}"
        return out

    def line(self) -> str:
        """The plain one-line form (non-terminals)."""
        f = self.fields()
        parts = [f"{f['part']} {f['name']}", f["trials"], f"{f['elapsed']}, {f['eta']}"]
        if "best" in f:
            parts.append(f["best"])
        return " | ".join(parts)

    def _draw(self, force: bool = False, tick: bool = False) -> None:
        """Show the state: a live redraw (at most every half second for a mere ``tick``), or a
        plain line when ``force``-d or ``interval`` seconds after the last one."""
        t = self.now()
        if self.live:
            if not tick or t - self._last_live >= 0.5:
                self._last_live = t
                self._draw_live()
            return
        line = self.line()
        if line != self._last_text and (force or t - self._last_line >= self.interval):
            self._last_line, self._last_text = t, line
            print(line, file=self.stream, flush=True)

    def _draw_live(self) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, file=self.stream, unit="trial", dynamic_ncols=True,
                             bar_format="{desc} {bar:20} {n}/{total} trials [{elapsed}<{remaining}]{postfix}")
        f = self.fields()
        bar = self._bar
        bar.total = self.total
        bar.n = self.finished
        bar.set_description_str(f"{f['part']} {self.part_name}", refresh=False)
        postfix = f"{self.done} done, {self.running} running, {self.errored} errored"
        if "best" in f:
            postfix += f" | {f['best']}"
        bar.set_postfix_str(postfix, refresh=False)
        bar.refresh()

    def write(self, text: str) -> None:
        """Print ``text`` above the live line (or as a line of its own)."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif not self.live and self.part:
            self._draw(force=True)


def _is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal a live line can redraw on: a tty that reports a width.
    A pseudo-terminal that reports zero columns (some harnesses and containers allocate one
    without a size) gets plain lines: tqdm's in-place redraws never end a line there, so nothing
    showed for a whole study."""
    try:
        if not stream.isatty():
            return False
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, ValueError, OSError):
        return False
