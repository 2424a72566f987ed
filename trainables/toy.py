"""A small deterministic trainable that exercises every part of the trainable contract.

It knows no architectures: its "metrics" are a smooth function of its knobs (so a searcher
has an optimum to find) plus seed-determined jitter, and its "architectures" are fake rows.
It exists so the orchestrator can be tested and benchmarked end to end with a trainable that
trial actors import from the installed package.

Knobs (all optional; see :data:`DEFAULTS`):

* ``steps`` iterations, each reported with a checkpoint; ``sleep_s`` seconds per iteration;
* ``w_adv``, ``noise`` (loss-weight / noise-level stand-ins, best near 0.3 / 0.05) and
  ``level`` (a degradation level in [0, 1] that lowers every score);
* ``n_archs`` rows written to ``archs.parquet`` in the final checkpoint;
* ``fail_at_step`` + ``marker_dir``: raise once, at that step, the first time this exact
  config runs (a marker file remembers it) — to test retries from checkpoints;
* ``trace_dir``: append a line per start (``start <step>``), per reported step (``step <n>``)
  and per finish (``done``) to ``<trace_dir>/<fingerprint>.log`` — to test that a resumed
  study reruns no finished trial and continues unfinished ones from their checkpoints;
* ``data_path``: checked to exist by :func:`validate_config` (the "missing data" error path);
* ``rendezvous_dir`` + ``rendezvous_count``: before its first step, a trial signs in to the
  folder and waits until that many trials have — to test how many run *at once* without
  depending on how fast a loaded machine starts them (``rendezvous_timeout_s``, then it fails);
* ``hold_at_step`` + ``hold_dir``: before that step, while ``<hold_dir>/hold`` exists, the trial
  traces ``held`` and waits — to interrupt a study at a known point (some trials finished,
  some mid-run, some pending) however slowly a loaded machine runs it.
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainables import reporting

@dataclass(frozen=True)
class ToyConfig:
    """The toy's knobs (see the module docstring)."""

    seed: int = 0
    steps: int = 3
    sleep_s: float = 0.0
    w_adv: float = 0.5
    noise: float = 0.1
    level: float = 0.0
    query_budget: int | None = 100
    n_archs: int = 8
    fail_at_step: int | None = None
    marker_dir: str | None = None
    trace_dir: str | None = None
    data_path: str | None = None
    rendezvous_dir: str | None = None
    rendezvous_count: int = 1
    rendezvous_timeout_s: float = 300.0
    hold_at_step: int | None = None
    hold_dir: str | None = None

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"toy: steps must be a positive integer, got {self.steps!r}")
        if self.data_path is not None and not Path(self.data_path).exists():
            raise ValueError(f"toy: data_path does not exist: {self.data_path}")
        if self.fail_at_step is not None and self.marker_dir is None:
            raise ValueError("toy: fail_at_step needs marker_dir (where the one failure is remembered)")
        if self.rendezvous_count > 1 and self.rendezvous_dir is None:
            raise ValueError("toy: rendezvous_count needs rendezvous_dir (where trials sign in)")
        if self.hold_at_step is not None and self.hold_dir is None:
            raise ValueError("toy: hold_at_step needs hold_dir (where the hold file is)")


DEFAULTS: dict[str, Any] = asdict(ToyConfig())

ARCHS_FILE = "archs.parquet"
STATE_FILE = "state.json"


def reported_metrics(config: dict[str, Any]) -> dict[str, str]:
    """The metrics :func:`train` reports → role. The toy reads no benchmark field, so every
    one is ``"free"`` (see :func:`trainables.common.metric_role`)."""
    return {name: "free" for name in metrics_at({**DEFAULTS, **config, "steps": 1}, 1) if name != "iteration"}


def validate_config(config: dict[str, Any]) -> None:
    """Raise ``ValueError`` (one line) for a config this trainable cannot run."""
    from trainables.lifecycle import parse_config

    parse_config(ToyConfig, config, "toy")


def _fingerprint(cfg: dict[str, Any]) -> str:
    """Identifies a full config (seed included): names its trace and failure-marker files."""
    return hashlib.sha1(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


def metrics_at(cfg: dict[str, Any], step: int) -> dict[str, float]:
    """The metrics reported at ``step`` (1-based): deterministic in ``cfg``."""
    rng = random.Random(f"{cfg['seed']}:{step}")
    progress = step / cfg["steps"]
    quality = math.exp(-8.0 * ((cfg["w_adv"] - 0.3) ** 2 + (cfg["noise"] - 0.05) ** 2))
    quality *= 1.0 - 0.5 * float(cfg["level"])
    jitter = 0.02 * (rng.random() - 0.5)
    # Units as the real trainables report them: shares as fractions, accuracies in percent.
    top5 = max(0.0, min(1.0, quality * progress + jitter))
    queries = min(int(cfg["query_budget"]), 10 * step)
    return {
        "iteration": step,
        "validity": round(0.9 + 0.1 * progress, 6),
        "uniqueness": round(0.8 + 0.2 * rng.random(), 6),
        "novelty": round(0.5 + 0.5 * rng.random(), 6),
        "top1_pct": top5 / 5.0,
        "top5_pct": top5,
        "top10_pct": min(1.0, top5 * 1.5),
        "heldout_hit_pct": top5 / 10.0,
        "acc_mean": 60.0 + 30.0 * quality * progress,
        "acc_best": 70.0 + 25.0 * quality * progress,
        "queries": queries,
        "loss/total": 1.0 - quality * progress,
    }


def _archs_table(cfg: dict[str, Any]):
    import pyarrow as pa

    rng = random.Random(f"archs:{cfg['seed']}:{_fingerprint(cfg)}")
    keys = [f"toy-{rng.getrandbits(48):012x}" for _ in range(cfg["n_archs"])]
    return pa.table(
        {
            "key": pa.array(keys, pa.string()),
            "valid": pa.array([rng.random() < 0.9 for _ in keys], pa.bool_()),
            "acc": pa.array([round(rng.uniform(0.5, 0.95), 6) for _ in keys], pa.float64()),
        }
    )


def _trace(cfg: dict[str, Any], line: str) -> None:
    if cfg["trace_dir"] is not None:
        with open(Path(cfg["trace_dir"], f"{_fingerprint(cfg)}.log"), "a") as fh:
            fh.write(line + "\n")


def _report(cfg: dict[str, Any], step: int) -> None:
    with reporting.checkpoint_dir() as d:
        Path(d, STATE_FILE).write_text(json.dumps({"step": step}))
        if step == cfg["steps"]:
            import pyarrow.parquet as pq

            pq.write_table(_archs_table(cfg), Path(d, ARCHS_FILE))
        reporting.report(metrics_at(cfg, step), d)
    _trace(cfg, f"step {step}")


def _rendezvous(cfg: dict[str, Any]) -> None:
    """Sign in to ``rendezvous_dir``; return once ``rendezvous_count`` trials have signed in."""
    folder = Path(cfg["rendezvous_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    Path(folder, _fingerprint(cfg)).touch()
    deadline = time.monotonic() + cfg["rendezvous_timeout_s"]
    while (present := sum(1 for _ in folder.iterdir())) < cfg["rendezvous_count"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"toy: only {present} of {cfg['rendezvous_count']} trials ran at once")
        time.sleep(0.05)


def _hold(cfg: dict[str, Any]) -> None:
    """Wait while ``<hold_dir>/hold`` exists (at most ``rendezvous_timeout_s``)."""
    hold = Path(cfg["hold_dir"], "hold")
    if hold.exists():
        _trace(cfg, "held")
    deadline = time.monotonic() + cfg["rendezvous_timeout_s"]
    while hold.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("toy: held longer than rendezvous_timeout_s")
        time.sleep(0.05)


def train(config: dict[str, Any]) -> None:
    """Run the toy: ``steps`` reported iterations, resumable from its checkpoints."""
    validate_config(config)
    cfg = {**DEFAULTS, **config}
    start = 0
    if (ckpt := reporting.load_checkpoint()) is not None:
        start = json.loads(Path(ckpt, STATE_FILE).read_text())["step"]
    _trace(cfg, f"start {start}")
    if cfg["rendezvous_dir"] is not None:
        _rendezvous(cfg)
    if start >= cfg["steps"]:  # restored from its final checkpoint: report it again
        _report(cfg, cfg["steps"])
    for step in range(start + 1, cfg["steps"] + 1):
        if cfg["sleep_s"]:
            time.sleep(cfg["sleep_s"])
        if cfg["hold_at_step"] == step:
            _hold(cfg)
        if cfg["fail_at_step"] == step:
            marker = Path(cfg["marker_dir"], f"{_fingerprint(cfg)}.failed")
            if not marker.exists():
                marker.touch()
                raise RuntimeError(f"toy: injected failure at step {step}")
        _report(cfg, step)
    _trace(cfg, "done")
