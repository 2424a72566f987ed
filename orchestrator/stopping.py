"""How a study's driver stops: one path for Ctrl-C, SIGTERM and a second Ctrl-C
(docs/DESIGN.md, "Stopping, resuming, and what the store says meanwhile")."""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Any, Iterator


class StudyInterrupted(Exception):
    """The driver was stopped (Ctrl-C, SIGTERM, a second Ctrl-C) before ``study`` finished.

    Nothing unfinished was stored as finished: trials that finished keep their rows, trials
    stopped mid-run are stored ``INTERRUPTED`` with their last iteration (or not at all, if
    the driver could not wait for them), and Tune's state lets ``--resume`` continue exactly
    the unfinished ones from their checkpoints. ``str()`` is the one line to show.
    """

    def __init__(self, study: str, signal_name: str, finished: int, planned: int, root: str) -> None:
        self.study, self.signal_name, self.finished, self.planned, self.root = study, signal_name, finished, planned, root
        super().__init__(f"study {study} interrupted ({signal_name}): {finished} of {planned} trials finished and"
                         f" kept in {root}; the unfinished ones continue from their checkpoints with --resume")


class StopSignals:
    """How a study's driver stops: Ctrl-C (SIGINT) and SIGTERM (``ray job stop``, preemption)
    alike.

    The first signal during ``Tuner.fit`` asks Tune to stop gracefully — through its SIGUSR1
    handler, the same as its own Ctrl-C handling, which is off (``TUNE_DISABLE_SIGINT_HANDLER``)
    so that SIGTERM and SIGINT take one path: Tune saves its state once more, stops the trials
    and hands every trial to the callbacks, which store the unfinished ones as ``INTERRUPTED``.
    Outside ``fit`` (between parts, compaction, the report), or a second time, a signal stops
    the driver at once (``KeyboardInterrupt``); Tune's last saved state and the store's atomic
    files then still resume exactly. ``received`` lists the signals, first first.
    """

    def __init__(self) -> None:
        self.received: list[str] = []
        self.leaving = False  # the driver is on its way out: signals are noted, nothing more
        self._fitting = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def caught(self, name: str) -> None:
        if not self.received:
            self.received.append(name)

    def _handle(self, signum: int, frame: Any) -> None:
        self.received.append(signal.Signals(signum).name)
        if self.leaving:
            return
        tune_handler = signal.getsignal(signal.SIGUSR1)
        if len(self.received) == 1 and self._fitting and callable(tune_handler):
            print(f"{self.received[0]}: stopping the study after Tune saves its state"
                  " (send it again to stop at once)", file=sys.stderr, flush=True)
            tune_handler(signal.SIGUSR1, frame)
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def during_fit(self) -> Iterator[None]:
        """Around ``Tuner.fit``: Tune installs its SIGUSR1 handler once it runs (none before:
        SIGUSR1's default ends the process, so a stop that early is a ``KeyboardInterrupt``)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        usr1 = signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        self._fitting = True
        try:
            yield
        finally:
            self._fitting = False
            signal.signal(signal.SIGUSR1, usr1)  # Tune's handler outlives fit(): it would swallow a stop
