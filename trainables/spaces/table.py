"""Bring-your-own benchmark table: a CSV/Parquet file plus a small YAML spec.

Example spec (``my_bench.yaml``; relative paths are relative to the spec)::

    space: nb201                     # whose validity and sameness rules apply
    path: my_results.parquet         # .csv or .parquet
    arch:
      format: nb201_string           # nb201_string | nb101_matrix_ops | genotype
      column: arch_str               # nb101_matrix_ops: columns: [matrix, ops]
    fields:                          # column → accuracy field (percent)
      acc_c10: cifar10/test/200
    extras:                          # column → extra name (e.g. params, flops)
      n_params: params

Use it anywhere a data path goes: ``--space nb201 --data-dir my_bench.yaml``. Rows naming
the same cell (repeated seeds) are averaged; a row that is not a valid architecture of the
space is an error naming the row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from trainables.arch import ArchGraph
from trainables.spaces.base import BenchmarkTable, Field, SearchSpace

FORMATS = ("nb201_string", "nb101_matrix_ops", "genotype")


@dataclass(frozen=True)
class TableSpec:
    space: str
    path: Path
    arch_format: str
    arch_columns: tuple[str, ...]
    fields: dict[str, str] = field(default_factory=dict)
    extras: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, spec_path: str | Path) -> "TableSpec":
        import yaml

        spec_path = Path(spec_path)
        try:
            raw: Any = yaml.safe_load(spec_path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise ValueError(f"{spec_path}: cannot read table spec ({e})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{spec_path}: a table spec is a mapping")
        unknown = set(raw) - {"space", "path", "arch", "fields", "extras"}
        if unknown:
            raise ValueError(f"{spec_path}: unknown key(s) {', '.join(sorted(unknown))}")
        for k in ("space", "path", "arch", "fields"):
            if k not in raw:
                raise ValueError(f"{spec_path}: missing key {k!r}")
        arch = raw["arch"] or {}
        fmt = arch.get("format")
        if fmt not in FORMATS:
            raise ValueError(f"{spec_path}: arch.format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        cols = arch.get("columns") or ([arch["column"]] if "column" in arch else [])
        if fmt == "nb101_matrix_ops" and len(cols) != 2:
            raise ValueError(f"{spec_path}: nb101_matrix_ops needs arch.columns: [matrix, ops]")
        if fmt != "nb101_matrix_ops" and len(cols) != 1:
            raise ValueError(f"{spec_path}: {fmt} needs one arch.column")
        fields_ = {str(c): str(Field.parse(f)) for c, f in (raw["fields"] or {}).items()}
        if not fields_:
            raise ValueError(f"{spec_path}: fields must name at least one accuracy column")
        path = Path(raw["path"])
        return cls(str(raw["space"]), path if path.is_absolute() else spec_path.parent / path, fmt,
                   tuple(cols), fields_, {str(c): str(n) for c, n in (raw.get("extras") or {}).items()})


def _read(path: Path):
    if not path.is_file():
        raise ValueError(f"table file not found: {path}")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq
        return pq.read_table(path)
    if path.suffix == ".csv":
        import pyarrow.csv as pacsv
        return pacsv.read_csv(path)
    raise ValueError(f"{path}: a table must be .csv or .parquet")


def _arch(space: SearchSpace, fmt: str, values: list[Any]) -> ArchGraph:
    if fmt == "nb201_string":
        return space.from_string(str(values[0]))  # type: ignore[attr-defined]
    if fmt == "nb101_matrix_ops":
        from trainables.spaces.nb101 import from_matrix_ops
        return from_matrix_ops(values[0], str(values[1]).split(",") if isinstance(values[1], str) else values[1])
    g = [int(v) for v in str(values[0]).replace(";", ",").split(",")]
    if len(g) != len(space.cardinalities) or any(not 0 <= v < c for v, c in zip(g, space.cardinalities)):
        raise ValueError(f"genotype {values[0]!r} does not fit cardinalities {space.cardinalities.tolist()}")
    return space.decode(g)


def load_spec(spec_path: str | Path, get_space: Callable[[str], SearchSpace]) -> BenchmarkTable:
    """The table a spec file describes; ``get_space`` names its space (``trainables.spaces``'s
    lookup, handed in so this module never imports its own package)."""
    spec = TableSpec.from_yaml(spec_path)
    space = get_space(spec.space)
    t = _read(spec.path)
    missing = {*spec.arch_columns, *spec.fields, *spec.extras} - set(t.column_names)
    if missing:
        raise ValueError(f"{spec.path}: missing column(s) {', '.join(sorted(missing))}")
    arch_cols = [t.column(c).to_pylist() for c in spec.arch_columns]
    cells: dict[Any, list[int]] = {}
    archs: dict[Any, ArchGraph] = {}
    for i, vals in enumerate(zip(*arch_cols)):
        try:
            a = _arch(space, spec.arch_format, list(vals))
            c = space.cell_id(a)
        except ValueError as e:
            raise ValueError(f"{spec.path}: row {i}: {e}") from None
        cells.setdefault(c, []).append(i)
        archs.setdefault(c, a)
    order = list(cells)

    def grouped(col: str) -> np.ndarray:
        v = t.column(col).to_numpy(zero_copy_only=False).astype(np.float64)
        return np.array([np.nanmean(v[cells[c]]) if np.isfinite(v[cells[c]]).any() else np.nan for c in order])

    metrics = {f: grouped(c) for c, f in spec.fields.items()}
    extras = {n: grouped(c) for c, n in spec.extras.items()}
    genotypes = np.stack([space.encode(archs[c]) for c in order])
    keys = [space.key(archs[c]) for c in order]
    return BenchmarkTable(space, genotypes, keys, order, metrics, extras, source=str(spec.path))
