"""The study-level progress view, fed synthetic trial events: counts, ETA, best in the report's
units, plain lines without control codes off a terminal, one live line on a terminal."""
from __future__ import annotations

import io
import pickle

import pytest

from orchestrator.progress import Objective, StudyProgress, clock


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def study(stream, *, live=False, interval=0.0, objective=Objective.of("top5_pct", "max")):
    now = Clock()
    return StudyProgress(objective, stream=stream, live=live, interval=interval, now=now), now


def test_shares_are_shown_in_percent_and_other_metrics_as_they_are():
    assert Objective.of("top5_pct", "max").show(0.1234) == "12.34 %"
    assert Objective.of("val_top5_pct", "max").show(0.05) == "5.00 %"
    assert Objective.of("top5_pct@nb201:cifar100/test/200", "max").scale == 100.0
    assert Objective.of("novelty", "max").unit == " %"
    assert Objective.of("acc_best", "max").show(91.5) == "91.50"
    assert Objective.of("queries", "min").show(None) == "—"


def test_plain_lines_count_parts_trials_and_best_without_control_codes():
    out = io.StringIO()
    progress, now = study(out)
    progress.plan(2, 6)
    progress.start_part("study-gnn2gnn", 4)
    progress.running_now(4)
    now.t += 10
    progress.trial_finished("a", "TERMINATED", {"top5_pct": 0.10})
    progress.trial_finished("b", "ERROR", {})
    progress.trial_finished("b", "ERROR", {})  # a trial is counted once
    now.t += 10
    progress.trial_finished("c", "TERMINATED", {"top5_pct": 0.30})
    progress.trial_finished("d", "TERMINATED", {"top5_pct": 0.20})
    progress.end_part()
    progress.start_part("study-references", 2)
    progress.trial_finished("e", "TERMINATED", {"top5_pct": 0.05})
    progress.close()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[0].startswith("part 1/2 study-gnn2gnn | 0/6 trials: 0 done, 0 running, 0 errored")
    after_c = next(line for line in lines if "3/6 trials" in line)
    # 3 trials in 20 s, 3 left: 20 s more; the best is c's 30 %, shown in percent
    assert "2 done, 1 running, 1 errored" in after_c and "elapsed 0:20, ETA 0:20" in after_c
    assert after_c.endswith("best top5_pct 30.00 %")
    assert lines[-1].startswith("part 2/2 study-references | 5/6 trials: 4 done, 0 running, 1 errored")
    assert lines[-1].endswith("best top5_pct 30.00 %")  # e's 5 % is not better


def test_plain_lines_are_periodic_not_one_per_event():
    out = io.StringIO()
    progress, now = study(out, interval=30.0)
    progress.plan(1, 100)
    progress.start_part("big", 100)
    for i in range(60):  # one trial a second for a minute
        now.t += 1
        progress.trial_finished(str(i), "TERMINATED", {"top5_pct": 0.01 * (i % 7)})
    progress.end_part()
    lines = out.getvalue().splitlines()
    assert 3 <= len(lines) <= 5  # start, every 30 s, end
    assert "60/100 trials" in lines[-1] and "ETA 0:40" in lines[-1]


def test_minimised_objective_and_resumed_trials():
    out = io.StringIO()
    progress, now = study(out, objective=Objective.of("queries", "min"))
    progress.start_part("resumed", 10, done=6, errored=1)  # no plan: a single run plans as it goes
    now.t += 5
    progress.trial_finished("x", "TERMINATED", {"queries": 40})
    progress.trial_finished("y", "TERMINATED", {"queries": 25})
    progress.trial_finished("z", "TERMINATED", {"queries": float("nan")})
    line = progress.line()
    # ETA from this run's pace only: 3 trials in 5 s, 0 left
    assert "part 1/1 resumed | 10/10 trials: 9 done, 0 running, 1 errored" in line
    assert "ETA 0:00" in line and line.endswith("best queries 25.00")


def test_live_view_redraws_one_line_in_place():
    out = io.StringIO()
    progress, now = study(out, live=True)
    progress.plan(1, 3)
    progress.start_part("study-part", 3)
    for i in range(3):
        now.t += 1
        progress.trial_finished(str(i), "TERMINATED", {"top5_pct": 0.1 * (i + 1)})
    progress.close()
    text = out.getvalue()
    assert "\r" in text  # tqdm redraws the line in place
    final = text.split("\r")[-1]
    assert "part 1/1 study-part" in final and "3/3" in final and "best top5_pct 30.00 %" in final
    assert text.count("\n") <= 1  # one line, closed once


def test_clock_formats():
    assert clock(5) == "0:05" and clock(125) == "2:05" and clock(3725) == "1:02:05"


def test_progress_callback_pickles_without_its_view():
    pytest.importorskip("ray")
    from orchestrator.callbacks import ProgressCallback

    out = io.StringIO()
    progress, _ = study(out)
    restored = pickle.loads(pickle.dumps(ProgressCallback(progress)))
    assert restored.progress is None  # Tune's experiment state holds no stream
    restored.attach(progress)
    assert restored.progress is progress


def test_eta_counts_from_the_first_trial_start_not_from_ray_start_up():
    progress, now = study(io.StringIO())
    progress.start_part("part", 4)
    now.t += 30  # Ray starting, actors importing
    progress.running_now(2)
    now.t += 10
    progress.trial_finished("a", "TERMINATED", {})
    progress.trial_finished("b", "TERMINATED", {})
    assert progress.eta() == 10.0  # 2 trials in the 10 s since the first started, 2 left


def test_a_quiet_stretch_still_gets_a_line_every_interval():
    out = io.StringIO()
    progress, now = study(out, interval=30.0)
    progress.start_part("slow", 2)
    for _ in range(90):  # Tune's loop steps for 90 s while one long trial runs
        now.t += 1
        progress.running_now(1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and lines[-1].endswith("elapsed 1:30, ETA — | best top5_pct —")


class Tty(io.StringIO):
    """A stream that says it is a terminal, with a file descriptor to ask for its size."""

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 99


@pytest.mark.parametrize("columns, live", [(0, False), (120, True)])
def test_a_terminal_that_reports_zero_columns_gets_plain_lines(monkeypatch, columns, live):
    import os

    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((columns, 0 if not columns else 40)))
    out = Tty()
    progress = StudyProgress(Objective.of("top5_pct", "max"), stream=out, interval=0.0)
    assert progress.live is live
    progress.plan(1, 2)
    progress.start_part("study-gnn2gnn", 2)
    progress.trial_finished("t1", "TERMINATED", {"top5_pct": 0.25})
    progress.close()
    if not live:  # every state on a line of its own, ended: a pty without a size shows each one
        lines = out.getvalue().splitlines()
        assert lines and all("\r" not in line and "\x1b" not in line for line in lines)
        assert "part 1/1 study-gnn2gnn | 1/2 trials: 1 done, 0 running, 0 errored" in out.getvalue()
        assert "best top5_pct 25.00 %" in lines[-1]


def test_a_stream_whose_size_cannot_be_read_is_not_live(monkeypatch):
    import os

    def no_size(fd):
        raise OSError("not a terminal")

    monkeypatch.setattr(os, "get_terminal_size", no_size)
    assert StudyProgress(None, stream=Tty()).live is False
