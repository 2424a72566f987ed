"""One trial lifecycle for every generator: a small run class and the one driver that runs it.

A generator is a :class:`GeneratorRun` subclass; its module's ``train(config)`` is
``lifecycle.train(MyRun, config)``. The driver (:func:`train`) does, in order::

    cfg   = parse_config(MyRun.Config, config)      # validating is parsing: ValueError, one line
    trial = MyRun.open_trial(config)                # oracle + evaluator (common.open_trial)
    run   = MyRun(cfg, trial)                       # builds the model (torch seeded by the trial)
    restore the checkpoint, if Tune (or a test) hands one over:
        run.load_state_dict(...), the oracle's query ledger, every named RNG stream
        a finished checkpoint is reported again, as it is, and the trial ends
    while not run.done:
        metrics = run.step()                        # one reported iteration
        report metrics with a checkpoint            # (the last step's go into the final report)
    final = run.conclude(last step's metrics)       # once: e.g. a last search that queries
    report run.finish(final, directory) + done      # samples, scores, writes archs.parquet

Like Optuna's ``BaseSampler``, a subclass implements a few methods and never calls the
reporting door itself: :meth:`~GeneratorRun.step`, :attr:`~GeneratorRun.done`,
:meth:`~GeneratorRun.sample` and :meth:`~GeneratorRun.state_dict` /
:meth:`~GeneratorRun.load_state_dict`. A checkpoint is one file, ``trial.pt``
(:data:`CHECKPOINT_FILE`), written atomically: the run's state, the oracle's ledger, the named
RNG states (:meth:`~GeneratorRun.rngs` plus torch's global one) and, once finished, the final
metrics — so a resumed trial is the uninterrupted one, step for step. It is read back with
``torch.load(weights_only=True)``: a checkpoint can hold tensors and plain data, never code.

Random streams are named (:func:`numpy_stream`, :func:`torch_stream`): ``(seed, stream id)``
seeds a stream, so drawing more from one never shifts another.

Threads: every run's config also takes ``torch_threads`` (:data:`RUN_KEYS`, default 1), the
torch intra-op threads the trial runs with whatever its caller set (a test, a plain script,
a Tune worker with several CPUs). CPU kernels sum in an order that depends on the thread count,
and the last-bit differences grow through training (a GHN trial's held-out τ moved from 0.29 to
0.47 between 1 and 2 threads), so the same seed gives the same result for one value of it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from trainables import common, reporting
from trainables.config import parse_config  # noqa: F401 - the generators' name for it: lifecycle.parse_config
from trainables.arch import ArchGraph
from trainables.atomic import atomic_write

CHECKPOINT_FILE = "trial.pt"
CHECKPOINT_FORMAT = 1
SEARCH_BUDGET = 100
"""``query_budget`` of a search (GraphPNAS, random search, regularized evolution) whose config
gives none: a search is measured by what it spends, so it always has a budget."""

__all__ = ["CHECKPOINT_FILE", "SEARCH_BUDGET", "GeneratorRun", "numpy_stream", "parse_config", "read_checkpoint", "torch_stream",
           "train", "validate"]


BENCHMARK_KEYS = tuple(f.name for f in dataclasses.fields(common.BenchmarkConfig))
RUN_KEYS = ("torch_threads",)
"""Keys every run's config takes besides its own and the benchmark's (see the module docstring)."""


def torch_threads(config: Mapping[str, Any], owner: str) -> int:
    """The trial's ``torch_threads`` (default 1), or a one-line ``ValueError``."""
    n = config.get("torch_threads", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{owner}: torch_threads must be an integer >= 1, got {n!r}")
    return n


@contextlib.contextmanager
def pinned_threads(n: int):
    """Run the block with ``n`` torch intra-op threads; the caller's setting comes back after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def positive(owner: str, cfg: Any, *names: str, zero_ok: bool = False) -> None:
    """``ValueError`` unless each field ``names`` of ``cfg`` is ≥ 1 (≥ 0 with ``zero_ok``)."""
    for n in names:
        v = getattr(cfg, n)
        if v is not None and v < (0 if zero_ok else 1):
            raise ValueError(f"{owner}: {n} must be {'>= 0' if zero_ok else '>= 1'}, got {v!r}")


# ============================================================================ random streams
def numpy_stream(seed: int, stream: int, *more: int) -> np.random.Generator:
    """The numpy generator of stream ``stream`` of a trial with ``seed`` (``more``: a sub-stream,
    e.g. an iteration)."""
    return np.random.default_rng([int(seed), int(stream), *map(int, more)])


def torch_stream(seed: int, stream: int, *more: int, device: Any = "cpu"):
    """A ``torch.Generator`` on ``device`` for stream ``stream`` of a trial with ``seed``."""
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence([int(seed), int(stream), *map(int, more)]).generate_state(1)[0]))
    return g


# ============================================================================ the run
class GeneratorRun(ABC):
    """One trial of one generator (subclass it; :func:`train` drives it).

    Lifecycle: ``__init__(cfg, trial)`` once (fresh or before a restore), then
    :meth:`load_state_dict` when resuming, then :meth:`step` until :attr:`done`, then
    :meth:`conclude` once, then :meth:`finish` (by default :meth:`sample` and
    :func:`common.finish`). A run never reports or checkpoints by itself.

    Class attributes:
        name: the trainable's registry name (error messages).
        Config: the frozen dataclass of the generator's own config keys.
        uses_benchmark: the config also holds :class:`common.BenchmarkConfig`'s keys and the
            trial is :func:`common.open_trial`'s.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    uses_benchmark: ClassVar[bool] = True

    def __init__(self, cfg: Any, trial: Any) -> None:
        self.cfg, self.trial = cfg, trial

    # ------------------------------------------------------------------ the driver's hooks
    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> Any:
        """The run's config dataclass from a trial config (``ValueError``: one line)."""
        torch_threads(config, cls.name)
        return parse_config(cls.Config, config, cls.name,
                            allowed=(*BENCHMARK_KEYS, *RUN_KEYS) if cls.uses_benchmark else RUN_KEYS)

    @classmethod
    def open_trial(cls, config: Mapping[str, Any], cfg: Any) -> Any:
        """What the run reads the benchmark through (default :func:`common.open_trial`; a
        search without a ``query_budget`` gets :data:`SEARCH_BUDGET`)."""
        if cls.is_search(cfg) and config.get("query_budget") is None:
            config = {**config, "query_budget": SEARCH_BUDGET}
        return common.open_trial(dict(config))

    @classmethod
    def is_search(cls, cfg: Any) -> bool:
        """Whether the run is a search that spends its ``query_budget`` (so always has one)."""
        return False

    @property
    @abstractmethod
    def done(self) -> bool:
        """No step left."""

    @abstractmethod
    def step(self) -> dict[str, Any]:
        """One iteration; its metrics (reported with a checkpoint unless it was the last)."""

    def conclude(self, last: dict[str, Any]) -> dict[str, Any]:
        """After the last step, once (it may query): the final report's own metrics."""
        return last

    @abstractmethod
    def sample(self, n: int) -> tuple[list[ArchGraph], dict[str, Any]]:
        """``n`` generated architectures and metrics about the draw; from a named stream of
        its own, so drawing never perturbs training."""

    def finish(self, final: dict[str, Any], directory: str) -> dict[str, Any]:
        """The final metrics; writes ``archs.parquet`` into ``directory``."""
        archs, extra = self.sample(self.trial.config.n_samples)
        return common.finish(self.trial, archs, directory, extra={**final, **extra})

    def rngs(self) -> dict[str, Any]:
        """The run's random generators by name (numpy ``Generator`` or ``torch.Generator``),
        saved and restored with every checkpoint."""
        return {"trial": self.trial.rng} if self.uses_benchmark else {}

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything that changes during the run (tensors, numbers, strings, lists, dicts)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


# ============================================================================ checkpoints
def _rng_state(g: Any) -> Any:
    return g.bit_generator.state if isinstance(g, np.random.Generator) else g.get_state()


def _set_rng_state(g: Any, state: Any) -> None:
    if isinstance(g, np.random.Generator):
        g.bit_generator.state = state
    else:
        g.set_state(state.to(g.get_state().device))


def save_checkpoint(run: GeneratorRun, directory: str, final: dict[str, Any] | None = None) -> None:
    """Write ``trial.pt`` (atomically) into ``directory``."""
    import torch

    blob: dict[str, Any] = {"format": CHECKPOINT_FORMAT, "trainable": run.name, "run": run.state_dict(),
                            "rngs": {k: _rng_state(g) for k, g in run.rngs().items()},
                            "torch_rng": torch.get_rng_state(), "final": final}
    if run.uses_benchmark:
        blob["oracle"] = run.trial.oracle.state_dict()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        blob["cuda_rng"] = torch.cuda.get_rng_state_all()
    atomic_write(Path(directory, CHECKPOINT_FILE), lambda tmp: torch.save(blob, tmp))


def read_checkpoint(directory: str | Path, device: Any = "cpu") -> dict[str, Any]:
    """The contents of a checkpoint's ``trial.pt`` (tensors and plain data only)."""
    import torch

    path = Path(directory, CHECKPOINT_FILE)
    if not path.is_file():
        raise ValueError(f"{directory}: not a trial checkpoint (no {CHECKPOINT_FILE})")
    return torch.load(path, map_location=device, weights_only=True)


def _restore(run: GeneratorRun, directory: str) -> dict[str, Any] | None:
    """Load a checkpoint into ``run``; its final metrics when it is a finished one."""
    import torch

    blob = read_checkpoint(directory, getattr(run, "device", "cpu"))
    if blob.get("format") != CHECKPOINT_FORMAT or blob.get("trainable") != run.name:
        raise ValueError(f"{directory}: a checkpoint of {blob.get('trainable')!r} (format {blob.get('format')}), "
                         f"not of {run.name!r} (format {CHECKPOINT_FORMAT})")
    run.load_state_dict(blob["run"])
    if run.uses_benchmark:
        run.trial.oracle.load_state_dict(blob["oracle"])
    for name, g in run.rngs().items():
        _set_rng_state(g, blob["rngs"][name])
    torch.set_rng_state(blob["torch_rng"])
    if "cuda_rng" in blob and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["cuda_rng"])
    return blob["final"]


# ============================================================================ the driver
def validate(run_cls: type[GeneratorRun], config: Mapping[str, Any]) -> Any:
    """Parse ``config`` and check its benchmark part (data, fields); the parsed config."""
    cfg = run_cls.parse(config)
    if run_cls.uses_benchmark:
        common.validate_benchmark(dict(config))
    return cfg


def train(run_cls: type[GeneratorRun], config: Mapping[str, Any]) -> None:
    """Run one trial of ``run_cls`` (the trainable contract; resumable from any checkpoint)."""
    cfg = run_cls.parse(config)
    with pinned_threads(torch_threads(config, run_cls.name)):
        _drive(run_cls, cfg, config)


def _drive(run_cls: type[GeneratorRun], cfg: Any, config: Mapping[str, Any]) -> None:
    trial = run_cls.open_trial(config, cfg)
    run = run_cls(cfg, trial)
    if (ckpt := reporting.load_checkpoint()) is not None:
        final = _restore(run, ckpt)
        if final is not None:  # restored from the final checkpoint: report it again, as it was
            with reporting.checkpoint_dir() as d:
                shutil.copytree(ckpt, d, dirs_exist_ok=True)
                reporting.report(final, d)
            return
    last: dict[str, Any] = {}
    while not run.done:
        metrics = run.step()
        if run.done:
            last = metrics
            break
        with reporting.checkpoint_dir() as d:
            save_checkpoint(run, d)
            reporting.report(metrics, d)
    final = run.conclude(last)
    with reporting.checkpoint_dir() as d:
        metrics = {**run.finish(final, d), "done": True}
        save_checkpoint(run, d, final=metrics)
        reporting.report(metrics, d)
