"""Study specifications: frozen, typed, validated before anything launches.

A :class:`StudySpec` says *what* to run — a trainable, its fixed config, grid axes, searched
parameters, seeds, objectives, budget, resources — and nothing about architectures. It is
built from YAML (:func:`load_spec`) or in Python; either way ``__post_init__`` validates it and
raises :class:`SpecError` with one line naming the first problem. Checks that need the outside
world (is the trainable importable, does it accept the config, does the cluster have GPUs)
live in :func:`orchestrator.run.preflight`.

YAML form (every key but ``name``, ``trainable`` and ``metric``/``mode`` is optional)::

    name: toy-ablation
    trainable: toy                    # a registry name or "package.module:function"
    config: {steps: 5}                # fixed config, passed to every trial
    grid: {level: [0.0, 0.5]}         # axes: every value runs
    variants:                         # named config overlays: each runs (× grid × seeds)
      clean: {}
      noisy: {label_noise: 2.0}
    search:                           # Optuna distributions
      w_adv: {type: float, low: 0.0, high: 1.0}
      noise: {type: float, low: 0.01, high: 0.5, log: true}
      act:   {type: categorical, choices: [relu, gelu]}
    seeds: [0, 1, 2]                  # replicates of every config; or {count: 3}, or {range: [0, 3]}
    metric: top5_pct                  # or a list, with a list of modes (multi-objective)
    mode: max
    samples: 8                        # Optuna suggestions (each runs grid x seeds)
    concurrency: 2
    resources: {cpu: 1, gpu: 0.25}
    scheduler: auto                   # auto | fifo | asha, or {kind: asha, max_t: 10, ...}
    query_budget: 100
    max_failures: 2
    storage: results                  # the store root
    wandb: {project: gnas, mode: offline}
    search_seed: 0
    trials_per_experiment: 1000       # a larger grid study runs as several Tune experiments
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

__all__ = [
    "FrozenDict",
    "Objective",
    "Resources",
    "SchedulerSpec",
    "SearchParam",
    "SpecError",
    "StudySpec",
    "WandbSpec",
    "load_spec",
    "resolve_trainable",
    "thaw",
]

RESERVED_KEYS = ("seed", "query_budget")
"""Config keys the orchestrator sets itself (from ``seeds`` and ``query_budget``)."""
VARIANT_KEY = "variant"
"""The config key naming a trial's variant (its overlay is merged in before the trainable runs)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class SpecError(ValueError):
    """A study spec that cannot run; the message is one line meant for the user."""


# ----------------------------------------------------------------------------- freezing
class FrozenDict(Mapping):
    """A read-only, hashable, picklable mapping (the frozen spec's dicts)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] = ()) -> None:
        object.__setattr__(self, "_data", {k: _freeze(v) for k, v in dict(data).items()})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(tuple(self._data.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FrozenDict is read-only")

    def __reduce__(self):
        return (FrozenDict, (self._data,))


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return value if isinstance(value, FrozenDict) else FrozenDict(value)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def apply_variant(config: Mapping[str, Any], variants: Mapping[str, Mapping[str, Any]], *,
                  keep_name: bool = True) -> dict[str, Any]:
    """``config`` with the overlay of the variant it names (``config["variant"]``) merged in;
    ``keep_name=False`` drops the name (what a trainable receives). Unchanged without variants."""
    out = dict(config)
    name = out.get(VARIANT_KEY) if variants else None
    if name is not None:
        out.update(thaw(variants[name]))
        if not keep_name:
            del out[VARIANT_KEY]
    return out


def thaw(value: Any) -> Any:
    """Plain, mutable copy of a frozen value: mappings → dicts, tuples → lists."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


# ----------------------------------------------------------------------------- parts
@dataclass(frozen=True)
class Objective:
    """One metric the study optimises, and whether lower or higher is better."""

    metric: str
    mode: str = "max"

    def __post_init__(self) -> None:
        _require(isinstance(self.metric, str) and self.metric, f"metric must be a name, got {self.metric!r}")
        _require(self.mode in ("min", "max"), f"mode of {self.metric!r} must be 'min' or 'max', got {self.mode!r}")


@dataclass(frozen=True)
class SearchParam:
    """A searched parameter and its Optuna distribution (``float``, ``int`` or ``categorical``)."""

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()

    def __post_init__(self) -> None:
        where = f"search.{self.name}"
        object.__setattr__(self, "choices", _freeze(tuple(self.choices)))
        _require(self.type in ("float", "int", "categorical"),
                 f"{where}.type must be float, int or categorical, got {self.type!r}")
        if self.type == "categorical":
            _require(len(self.choices) > 0, f"{where}.choices must be a non-empty list")
            _require(self.low is None and self.high is None and self.step is None and not self.log,
                     f"{where}: a categorical parameter takes only 'choices'")
            return
        _require(not self.choices, f"{where}: only categorical parameters take 'choices'")
        for bound in ("low", "high"):
            value = getattr(self, bound)
            _require(_is_number(value), f"{where}.{bound} must be a number, got {value!r}")
        if self.type == "int":
            _require(float(self.low).is_integer() and float(self.high).is_integer(),
                     f"{where}: an int parameter needs integer bounds")
        _require(self.low < self.high, f"{where}: low ({self.low}) must be below high ({self.high})")
        _require(not self.log or self.low > 0, f"{where}: a log-scale parameter needs low > 0")
        _require(self.step is None or (_is_number(self.step) and self.step > 0),
                 f"{where}.step must be a positive number, got {self.step!r}")
        _require(not (self.log and self.step is not None), f"{where}: Optuna does not combine log and step")

    def distribution(self):
        """The ``optuna.distributions`` object for this parameter."""
        from optuna import distributions as d

        if self.type == "categorical":
            return d.CategoricalDistribution(list(thaw(self.choices)))
        if self.type == "int":
            return d.IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return d.FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)

    def representative(self) -> Any:
        """A value inside the distribution (used to pre-validate configs before launch)."""
        if self.type == "categorical":
            return thaw(self.choices[0])
        return int(self.low) if self.type == "int" else float(self.low)


@dataclass(frozen=True)
class Resources:
    """Per-trial resources; ``gpu`` may be a fraction (4 trials at 0.25 share one GPU)."""

    cpu: float = 1.0
    gpu: float = 0.0

    def __post_init__(self) -> None:
        _require(_is_number(self.cpu) and self.cpu >= 0, f"resources.cpu must be >= 0, got {self.cpu!r}")
        _require(_is_number(self.gpu) and self.gpu >= 0, f"resources.gpu must be >= 0, got {self.gpu!r}")
        _require(self.cpu > 0 or self.gpu > 0, "resources: a trial needs some cpu or gpu")
        _require(self.gpu <= 1 or float(self.gpu).is_integer(),
                 f"resources.gpu above 1 must be a whole number, got {self.gpu}")


@dataclass(frozen=True)
class SchedulerSpec:
    """Trial scheduler. ``auto``: ASHA for single-objective searches, FIFO otherwise.

    Grid-only studies run every trial to the end under ``auto``: early-stopping some seeds
    of a degradation level would bias the very comparison the grid is for.
    """

    kind: str = "auto"
    max_t: int = 100
    grace_period: int = 1
    reduction_factor: float = 3.0

    def __post_init__(self) -> None:
        _require(self.kind in ("auto", "fifo", "asha"),
                 f"scheduler.kind must be auto, fifo or asha, got {self.kind!r}")
        _require(_is_int(self.max_t) and self.max_t >= 1, f"scheduler.max_t must be an integer >= 1, got {self.max_t!r}")
        _require(_is_int(self.grace_period) and 1 <= self.grace_period <= self.max_t,
                 f"scheduler.grace_period must be an integer in [1, max_t], got {self.grace_period!r}")
        _require(_is_number(self.reduction_factor) and self.reduction_factor > 1,
                 f"scheduler.reduction_factor must be > 1, got {self.reduction_factor!r}")


@dataclass(frozen=True)
class WandbSpec:
    """Weights & Biases tracking: one run per trial, offline unless told otherwise."""

    enabled: bool = True
    project: str = "gnas"
    entity: str | None = None
    mode: str = "offline"
    group: str | None = None  # W&B group of every run (default: one group per config)

    def __post_init__(self) -> None:
        _require(isinstance(self.enabled, bool), f"wandb.enabled must be true or false, got {self.enabled!r}")
        _require(isinstance(self.project, str) and self.project, "wandb.project must be a non-empty name")
        _require(self.mode in ("offline", "online", "disabled"),
                 f"wandb.mode must be offline, online or disabled, got {self.mode!r}")
        _require(self.group is None or (isinstance(self.group, str) and self.group.strip()),
                 f"wandb.group must be a non-empty name, got {self.group!r}")


# ----------------------------------------------------------------------------- the spec
@dataclass(frozen=True)
class StudySpec:
    """Everything needed to run one study; immutable and validated on construction."""

    name: str
    trainable: str
    objectives: tuple[Objective, ...]
    config: FrozenDict = field(default_factory=FrozenDict)
    grid: FrozenDict = field(default_factory=FrozenDict)
    variants: FrozenDict = field(default_factory=FrozenDict)  # name -> config overlay
    search: tuple[SearchParam, ...] = ()
    seeds: tuple[int, ...] = (0,)
    samples: int = 1
    concurrency: int | None = None
    resources: Resources = field(default_factory=Resources)
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    query_budget: int | None = None
    max_failures: int = 2
    storage: str = "results"
    wandb: WandbSpec = field(default_factory=WandbSpec)
    search_seed: int = 0
    # A grid study (no search, FIFO) of more trials runs as several Tune experiments of at most
    # this many, one after another: Tune keeps every trial of an experiment in the driver and
    # rewrites them all into each snapshot (orchestrator.run.experiment_grids).
    trials_per_experiment: int = 1000

    def __post_init__(self) -> None:
        normalise = {
            "config": FrozenDict(self.config),
            "grid": FrozenDict({k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in dict(self.grid).items()}),
            "variants": FrozenDict(self.variants),
            "search": tuple(self.search),
            "seeds": tuple(self.seeds) if isinstance(self.seeds, (list, tuple)) else self.seeds,
            "objectives": tuple(self.objectives),
        }
        for key, value in normalise.items():
            object.__setattr__(self, key, value)
        self._validate()

    def _validate(self) -> None:
        _require(isinstance(self.name, str) and bool(_NAME.match(self.name)),
                 f"name must be letters, digits, '-' or '_' (at most 100), got {self.name!r}")
        _require(isinstance(self.trainable, str) and self.trainable.strip(),
                 "trainable must name a registered trainable or 'package.module:function'")
        for axis, values in self.grid.items():
            _require(isinstance(values, tuple) and len(values) > 0,
                     f"grid.{axis} must be a non-empty list of values")
            _require(all(v is None or isinstance(v, (str, int, float, bool)) for v in values),
                     f"grid.{axis} values must be scalars")
            _require(len({(type(v), v) for v in values}) == len(values), f"grid.{axis} repeats a value")
        for vname, overlay in self.variants.items():
            _require(isinstance(vname, str) and bool(_NAME.match(vname)),
                     f"variants: a name must be letters, digits, '-' or '_', got {vname!r}")
            _require(isinstance(overlay, Mapping), f"variants.{vname} must be a mapping of config keys")
            _require(all(v is None or isinstance(v, (str, int, float, bool)) for v in overlay.values()),
                     f"variants.{vname} values must be scalars")
            for key in overlay:
                _require(key not in self.grid and key not in {p.name for p in self.search},
                         f"variants.{vname}.{key} is also a grid axis or searched parameter")
                _require(key not in RESERVED_KEYS and key != VARIANT_KEY,
                         f"variants.{vname}.{key} is set by the orchestrator")
        _require(VARIANT_KEY not in self.config and VARIANT_KEY not in self.grid,
                 f"{VARIANT_KEY!r} is set by the orchestrator (from 'variants')")
        for name, part in (("resources", Resources), ("scheduler", SchedulerSpec), ("wandb", WandbSpec)):
            _require(isinstance(getattr(self, name), part), f"{name} must be a {part.__name__}")
        _require(all(isinstance(p, SearchParam) for p in self.search), "search must hold SearchParam items")
        names = [p.name for p in self.search]
        _require(len(set(names)) == len(names), "search names a parameter twice")
        sources = {"config": set(self.config), "grid": set(self.grid), "search": set(names)}
        for (a, ka), (b, kb) in _pairs(sources):
            if both := ka & kb:
                raise SpecError(f"{sorted(both)[0]!r} is both in {a} and in {b}")
        for where, keys in sources.items():
            if taken := keys & set(RESERVED_KEYS):
                raise SpecError(f"{where}.{sorted(taken)[0]} is set by the orchestrator "
                                "(use 'seeds' / 'query_budget')")
        _require(isinstance(self.seeds, tuple) and len(self.seeds) > 0 and all(_is_int(s) for s in self.seeds),
                 f"seeds must be a non-empty list of integers, got {self.seeds!r}")
        _require(len(set(self.seeds)) == len(self.seeds), "seeds repeats a seed")
        _require(len(self.objectives) > 0 and all(isinstance(o, Objective) for o in self.objectives),
                 "metric/mode: at least one objective is needed")
        metrics = [o.metric for o in self.objectives]
        _require(len(set(metrics)) == len(metrics), "metric names an objective twice")
        _require(_is_int(self.samples) and self.samples >= 1, f"samples must be an integer >= 1, got {self.samples!r}")
        _require(self.samples == 1 or self.search,
                 f"samples={self.samples} needs searched parameters ('search'); grid x seeds already run every config")
        _require(self.concurrency is None or (_is_int(self.concurrency) and self.concurrency >= 1),
                 f"concurrency must be an integer >= 1, got {self.concurrency!r}")
        _require(self.query_budget is None or (_is_int(self.query_budget) and self.query_budget >= 0),
                 f"query_budget must be a non-negative integer, got {self.query_budget!r}")
        _require(_is_int(self.max_failures) and self.max_failures >= 0,
                 f"max_failures must be a non-negative integer, got {self.max_failures!r}")
        _require(isinstance(self.storage, str) and self.storage.strip(), "storage must be a directory path")
        _require(_is_int(self.search_seed), f"search_seed must be an integer, got {self.search_seed!r}")
        _require(_is_int(self.trials_per_experiment) and self.trials_per_experiment >= 1,
                 f"trials_per_experiment must be an integer >= 1, got {self.trials_per_experiment!r}")
        _require(self.num_trials <= MAX_TRIALS,
                 f"the study has {self.num_trials:,} trials; one study holds at most {MAX_TRIALS:,}"
                 " (split it into several studies)")
        _require(not (self.scheduler.kind == "asha" and self.multi_objective),
                 "scheduler asha needs a single objective (ASHA ranks trials by one metric)")

    # ------------------------------------------------------------------ derived facts
    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def scheduler_kind(self) -> str:
        """``fifo`` or ``asha``, with ``auto`` resolved."""
        if self.scheduler.kind != "auto":
            return self.scheduler.kind
        return "asha" if self.search and not self.multi_objective else "fifo"

    @property
    def replicates(self) -> int:
        """Trials per distinct searched config: variants × grid points × seeds."""
        return max(len(self.variants), 1) * math.prod(len(v) for v in self.grid.values()) * len(self.seeds)

    @property
    def num_trials(self) -> int:
        return self.samples * self.replicates

    def with_variant(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` with its variant's overlay merged in (the variant's name stays, under
        ``variant``); unchanged for a study without variants."""
        return apply_variant(config, self.variants)

    def base_config(self) -> dict[str, Any]:
        """The fixed part of every trial's config (a fresh, mutable copy)."""
        config = thaw(self.config)
        if self.query_budget is not None:
            config["query_budget"] = self.query_budget
        return config

    def to_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`from_dict` turns back into an equal spec."""
        data = thaw(dataclasses.asdict(self))
        data.pop("objectives")
        data["metric"] = [o.metric for o in self.objectives]
        data["mode"] = [o.mode for o in self.objectives]
        data["search"] = {p["name"]: {k: v for k, v in p.items() if k != "name"} for p in data["search"]}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StudySpec":
        """Build from plain data (parsed YAML); unknown or misspelt keys are errors."""
        if not isinstance(data, Mapping):
            raise SpecError(f"a study spec must be a mapping, got {type(data).__name__}")
        known = [f.name for f in dataclasses.fields(cls) if f.name != "objectives"] + ["metric", "mode"]
        _check_keys(data, known, "")
        for required in ("name", "trainable", "metric"):
            _require(required in data, f"missing required key {required!r}")
        kwargs: dict[str, Any] = {k: v for k, v in data.items() if k not in ("metric", "mode")}
        kwargs["objectives"] = _objectives(data["metric"], data.get("mode", "max"))
        for key in ("config", "grid", "variants"):
            if key in kwargs:
                _require(isinstance(kwargs[key], Mapping), f"{key} must be a mapping")
                kwargs[key] = kwargs[key] or {}
        if "grid" in kwargs:
            kwargs["grid"] = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in kwargs["grid"].items()}
        for vname, overlay in dict(kwargs.get("variants") or {}).items():
            _require(overlay is None or isinstance(overlay, Mapping), f"variants.{vname} must be a mapping of config keys")
            kwargs["variants"][vname] = overlay or {}
        if "search" in kwargs:
            kwargs["search"] = _search(kwargs["search"] or {})
        if "seeds" in kwargs:
            kwargs["seeds"] = parse_seeds(kwargs["seeds"])
        parts = {"resources": Resources, "scheduler": SchedulerSpec, "wandb": WandbSpec}
        for key, part in parts.items():
            if key in kwargs:
                kwargs[key] = _part(part, kwargs[key], key)
        try:
            return cls(**kwargs)
        except TypeError as exc:  # a wrong type the checks above did not name
            raise SpecError(str(exc)) from None


def parse_seeds(value: Any) -> list[int]:
    """The seeds a spec names: a list (``[0, 1, 2]``), ``{count: N}`` (seeds ``0 … N-1``) or
    ``{range: [A, B]}`` (seeds ``A … B-1``). A bare integer is refused: it read as one seed
    here and as a count in the studies' ``--seeds``; the message names both spellings."""
    if _is_int(value):
        raise SpecError(f"seeds: {value} is ambiguous; write seeds: [{value}] for the single seed {value}, "
                        f"or seeds: {{count: {value}}} for seeds 0..{value - 1}")
    if isinstance(value, Mapping):
        _require(len(value) == 1 and next(iter(value)) in ("count", "range"),
                 f"seeds must be a list, {{count: N}} or {{range: [A, B]}}, got {dict(value)!r}")
        if "count" in value:
            n = value["count"]
            _require(_is_int(n) and n >= 1, f"seeds: {{count: N}} needs an integer N >= 1, got {n!r}")
            _require(n <= MAX_SEEDS, f"seeds: {{count: {n:,}}} is more than {MAX_SEEDS:,} seeds")
            return list(range(n))
        bounds = value["range"]
        _require(isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(_is_int(b) for b in bounds)
                 and bounds[0] < bounds[1], f"seeds: {{range: [A, B]}} needs integers A < B, got {bounds!r}")
        _require(bounds[1] - bounds[0] <= MAX_SEEDS,
                 f"seeds: {{range: {list(bounds)}}} is more than {MAX_SEEDS:,} seeds")
        return list(range(bounds[0], bounds[1]))
    _require(isinstance(value, (list, tuple)), f"seeds must be a list, {{count: N}} or {{range: [A, B]}}, got {value!r}")
    _require(len(value) <= MAX_SEEDS, f"seeds lists {len(value):,} seeds, more than {MAX_SEEDS:,}")
    return list(value)


# Sizes a spec may ask for. A driver holds a few KB per trial (bench/scale_results.md: 10,000
# trials in ~0.5 GB), so a million trials is already a cluster head's whole memory; larger
# numbers are typing errors, refused before anything allocates them.
MAX_SEEDS = 100_000
MAX_TRIALS = 1_000_000


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a YAML study spec; every problem is a one-line :class:`SpecError`."""
    import yaml

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read study spec {str(path)!r}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise SpecError(f"{path}: not UTF-8 text (a binary file, or another encoding such as UTF-16);"
                        " save the spec as UTF-8")
    try:
        data = yaml.load(text, Loader=_unique_key_loader())
    except DuplicateKey as exc:
        raise SpecError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise SpecError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    try:
        return StudySpec.from_dict(data if data is not None else {})
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


class DuplicateKey(ValueError):
    """A YAML mapping names a key twice (YAML's own loaders keep the last silently)."""


def _unique_key_loader():
    """yaml's SafeLoader, refusing a mapping that names a key twice."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise DuplicateKey(f"line {key_node.start_mark.line + 1}: key {key!r} appears twice in one mapping")
                try:
                    seen.add(key)
                except TypeError:  # an unhashable key: SafeLoader's own error follows
                    pass
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def resolve_trainable(name: str):
    """The :class:`trainables.TrainableEntry` of ``name`` (:func:`trainables.resolve`), its
    module imported and its function checked; every problem one :class:`SpecError` line."""
    from trainables import resolve

    try:
        entry = resolve(name)
    except LookupError as exc:
        raise SpecError(str(exc)) from None
    try:
        module = entry.import_module()
    except ImportError as exc:
        raise SpecError(f"trainable {name!r}: cannot import {entry.module!r}: {exc}") from None
    if not callable(getattr(module, entry.target.split(":")[1], None)):
        raise SpecError(f"trainable {name!r}: {entry.module!r} has no function {entry.target.split(':')[1]!r}")
    return entry


# ----------------------------------------------------------------------------- helpers
def _require(condition: Any, message: str) -> None:
    if not condition:
        raise SpecError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` as a string: accept numeric text for numeric fields."""
    if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
        return float(value)
    return value


def _pairs(d: Mapping[str, set]) -> Iterator[tuple[tuple[str, set], tuple[str, set]]]:
    items = list(d.items())
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            yield a, b


def _check_keys(data: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(known)}"
            raise SpecError(f"unknown key '{where}{key}'{hint}")


def _objectives(metric: Any, mode: Any) -> tuple[Objective, ...]:
    metrics = metric if isinstance(metric, (list, tuple)) else [metric]
    modes = mode if isinstance(mode, (list, tuple)) else [mode] * len(metrics)
    _require(len(metrics) == len(modes), f"metric has {len(metrics)} names but mode has {len(modes)}")
    return tuple(Objective(m, o) for m, o in zip(metrics, modes))


def _search(data: Any) -> list[SearchParam]:
    _require(isinstance(data, Mapping), "search must map parameter names to distributions")
    known = [f.name for f in dataclasses.fields(SearchParam) if f.name != "name"]
    params = []
    for name, dist in data.items():
        _require(isinstance(dist, Mapping), f"search.{name} must be a mapping such as "
                                            "{type: float, low: 0.0, high: 1.0}")
        _check_keys(dist, known, f"search.{name}.")
        dist = {k: (_number(v) if k in ("low", "high", "step") else v) for k, v in dist.items()}
        params.append(SearchParam(name=str(name), **dist))
    return params


def _part(cls: type, data: Any, where: str) -> Any:
    if isinstance(data, cls):
        return data
    if cls is SchedulerSpec and isinstance(data, str):
        data = {"kind": data}
    _require(isinstance(data, Mapping), f"{where} must be a mapping")
    _check_keys(data, [f.name for f in dataclasses.fields(cls)], f"{where}.")
    numeric = {f.name for f in dataclasses.fields(cls) if f.type in ("float", "int")}
    return cls(**{k: (_number(v) if k in numeric else v) for k, v in data.items()})
