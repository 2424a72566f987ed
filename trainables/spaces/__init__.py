"""Search spaces and their benchmark tables, by name.

``get_space(name)`` is cheap; ``load_table(name, path)`` reads a table once per process
(cached) — every trial in an actor shares it.
"""
from __future__ import annotations

import contextlib
import contextvars
import weakref
from functools import lru_cache
from pathlib import Path
from typing import Callable

from trainables.spaces.base import BenchmarkTable, Field, SearchSpace

SPACES = ("nbgraph", "nb201", "nb101", "enas6")

# Where each space's table is found inside a data directory (nbgraph needs none: its wheel).
DEFAULT_FILES = {"nb201": "nb201.csv", "nb101": "nb101_sample500.csv", "enas6": "enas6_final_structures6.txt"}


def get_space(name: str) -> SearchSpace:
    if name == "nb201":
        from trainables.spaces.nb201 import NB201Space
        return NB201Space()
    if name == "nbgraph":
        from trainables.spaces.nbgraph import NBGraphSpace
        return NBGraphSpace()
    if name == "nb101":
        from trainables.spaces.nb101 import NB101Space
        return NB101Space()
    if name == "enas6":
        from trainables.spaces.enas6 import ENAS6Space
        return ENAS6Space()
    raise ValueError(f"unknown search space {name!r}; expected one of {', '.join(SPACES)}")


def table_path(name: str, data: str | Path | None) -> Path | None:
    """Resolve ``data`` (a file, or a directory holding the default file) for a space."""
    if name == "nbgraph" and not (data and Path(data).suffix in (".yaml", ".yml")):
        return Path(data) if data else None
    if data is None:
        raise ValueError(f"space {name!r} needs a benchmark file: pass --data-dir (e.g. ../shared/data)")
    p = Path(data)
    if p.suffix in (".yaml", ".yml"):  # a bring-your-own table spec (trainables/spaces/table.py)
        if not p.is_file():
            raise ValueError(f"table spec not found: {p}")
        return p
    if p.is_dir() and (p / DEFAULT_FILES[name]).exists():
        p = p / DEFAULT_FILES[name]
    elif p.is_dir() and name != "nb201":  # only NB201 reads a whole folder (the NATS release)
        p = p / DEFAULT_FILES[name]
    elif p.is_dir() and not _is_nats_release(p):
        raise ValueError(f"no {DEFAULT_FILES[name]} in {p} (nor the official NATS-Bench release folder);"
                         " point --data-dir at the folder holding nb201.csv")
    if not p.exists():
        raise ValueError(f"benchmark file for {name!r} not found: {p}")
    return p


def _is_nats_release(folder: Path) -> bool:
    """Whether ``folder`` looks like NATS-Bench's topology release (its per-cell pickles)."""
    return folder.name.startswith("NATS-tss") or any(folder.glob("*.pickle.pbz2")) or any(folder.glob("*.pickle"))


@lru_cache(maxsize=8)
def _load(name: str, path: str | None) -> BenchmarkTable:
    if path is not None and Path(path).suffix in (".yaml", ".yml"):
        from trainables.spaces import table
        t = table.load_spec(path, get_space)
        if t.space.name != name:
            raise ValueError(f"{path} describes a {t.space.name!r} table, not {name!r}")
        return t
    if name == "nb201":
        from trainables.spaces import nb201
        p = Path(path)  # type: ignore[arg-type]
        return nb201.load_nats(p) if p.is_dir() or p.suffix == ".pth" else nb201.load_csv(p)
    if name == "nbgraph":
        from trainables.spaces import nbgraph
        return nbgraph.load(path)
    if name == "nb101":
        from trainables.spaces import nb101
        p = Path(path)  # type: ignore[arg-type]
        return nb101.load_tfrecord(p) if p.suffix == ".tfrecord" else nb101.load_sample_csv(p)
    if name == "enas6":
        from trainables.spaces import enas6
        return enas6.load(path)  # type: ignore[arg-type]
    raise ValueError(f"unknown search space {name!r}; expected one of {', '.join(SPACES)}")


_TRAINING: contextvars.ContextVar[Callable[[], object] | None] = contextvars.ContextVar("gnas_training", default=None)


@contextlib.contextmanager
def _unsealed():
    """Loads by the library itself (opening a trial) while a trial trains in this thread."""
    token = _TRAINING.set(None)
    try:
        yield
    finally:
        _TRAINING.reset(token)


def seal_while(trial: object) -> None:
    """From now until ``trial`` finishes or is gone, :func:`load_table` refuses in this thread
    (and Ray runs each trial in its own thread): training code gets the oracle, never a table
    (docs/DESIGN.md, "Held-out privacy")."""
    _TRAINING.set(weakref.ref(trial))


def unseal() -> None:
    _TRAINING.set(None)


def load_table(name: str, data: str | Path | None = None) -> BenchmarkTable:
    """The benchmark table of ``name`` (cached per process). Refused while a trial trains."""
    ref = _TRAINING.get()
    if ref is not None and ref() is not None:
        raise PermissionError("training code may not load a benchmark table; it learns labels through its "
                              "oracle (docs/DESIGN.md, 'Held-out privacy')")
    if name not in SPACES:
        raise ValueError(f"unknown search space {name!r}; expected one of {', '.join(SPACES)}")
    p = table_path(name, data)
    return _load(name, str(p) if p is not None else None)


__all__ = ["BenchmarkTable", "Field", "SearchSpace", "SPACES", "get_space", "load_table", "table_path"]
