"""What every published study shares: parts, presets, the command line, running.

Reports live apart: :mod:`studies.report` (the report folder and its atomic files),
:mod:`studies.stats` (means with CIs, paired tests, Holm's correction) and
:mod:`studies.findings` (the sentences a report opens with, written from the data).

A study (``studies/degradation.py``, ``generalisation.py``, ``ablation.py``) is a list of
:class:`Part` s. A part is one orchestrator study — one method under one condition, a
:class:`~orchestrator.spec.StudySpec` — run by :func:`orchestrator.run.run_study` into the
shared store (``--out``). The study's own folder, ``<out>/studies/<study>/``, holds:

* ``study.json`` — the manifest: which parts belong to the study and what they stand for;
* ``report.md``, ``figures/*.png|svg``, ``tables/*.parquet|csv`` — built from the store only.

With an object-store ``--out`` (``s3://…``, ``gs://…``) the folder is built locally, in
``<report-dir>/studies/<study>/`` (``--report-dir``, default ``./results``), and copied to
``<out>/studies/<study>/`` in the store: the manifest as soon as it changes, the report once
built. The store's copy of the manifest is the one read (merging parts, ``--report-only``), so
a study run on a cluster can be reported on from any machine that reaches the store.

Lifecycle of :func:`main` (what a study script calls):

1. parse and validate the arguments and every part's spec — a problem is one ``error:`` line,
   exit status 2, nothing started or written;
2. plan each part: not in the store → run it; finished with the same spec → keep it (a rerun
   is free, and new parts — another trainable, another kind — merge into the same study);
   unfinished → continue it with ``--resume`` (else refuse);
3. merge the manifest, run the parts one after another on one Ray instance;
4. read every part back from the store and build the report. ``--report-only`` is just this
   step, so a report can be rebuilt (identically) without rerunning anything.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from orchestrator.cli import EXIT_INTERRUPTED, interrupted, level, verbosity
from orchestrator.spec import SpecError, StudySpec
from studies.report import (  # noqa: F401 - the studies' names for them
    Report, fmt_ci, log_report_to_wandb, markdown_table, write_text)
from studies.stats import (  # noqa: F401 - re-exported: callers outside studies/ use kit.<name>
    ACCURACY_METRICS, ALPHA, BOUNDS_NOTE, SHARE_METRICS, correction_note, holm, metric_bounds, paired, summarise)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from orchestrator.progress import StudyProgress

PRESETS = ("smoke", "local", "full")
MANIFEST = "study.json"
EXTENSION = "-more-"  # a part that adds variants or seeds to an earlier part: <part>-more-<digest>
EXIT_OK, EXIT_TRIALS_FAILED, EXIT_BAD_INPUT = 0, 1, 2
SEED_CEIL = 2**31 - 1  # numpy, torch and Ray accept seeds below this
RESEED_ROOM = 10_000  # seeds a study may add above its own (the ablation re-seeds its winners there)


@dataclass(frozen=True)
class Part:
    """One orchestrator study inside a published study.

    ``method`` labels its line or heatmap (``gnn2gnn``, ``random_search``…); ``role`` is
    ``generator`` or ``reference`` (a baseline drawn for comparison); ``tags`` say which
    condition it stands for (e.g. ``{"kind": "label_noise"}``), for the report.
    """

    spec: StudySpec
    method: str
    role: str = "generator"
    tags: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def manifest_entry(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "role": self.role, "tags": dict(self.tags),
                "trainable": self.spec.trainable}


@dataclass(frozen=True)
class Setup:
    """The arguments every study takes (after validation)."""

    kind: str  # which study script: degradation, generalisation, ablation
    study: str
    preset: str
    space: str
    dataset: str | None
    data_dir: str | None
    trainables: tuple[str, ...]
    seeds: tuple[int, ...]
    gpus_per_trial: float
    out: str  # the store root: an absolute path or an object-store URI
    resume: bool
    wandb: bool
    report_only: bool
    address: str | None
    verbose: int  # 0 --quiet, 1 the progress view, 2 --verbose (orchestrator.run.run_study)
    report_dir: Path  # local: the study's folder is report_dir/studies/<study> (= out when out is a path)
    wandb_project: str = "gnas"
    wandb_entity: str | None = None

    @property
    def folder(self) -> Path:
        return self.report_dir / "studies" / self.study

    @functools.cached_property
    def store_folder(self) -> tuple[Any, str] | None:
        """``(StorageRoot, path)`` of the study folder's copy in an object store; ``None`` when
        ``out`` is a local folder (then :attr:`folder` is the only copy)."""
        from orchestrator.storage import resolve_root

        location = resolve_root(self.out)
        return None if location.is_local else (location, location.join("studies", self.study))

    def benchmark(self) -> dict[str, Any]:
        """The benchmark part of every trial's config."""
        cfg: dict[str, Any] = {"space": self.space}
        if self.dataset:
            cfg["dataset"] = self.dataset
        if self.data_dir:
            cfg["data_dir"] = self.data_dir
        return cfg


# ----------------------------------------------------------------------------- command line
def parser(prog: str, description: str, *, default_trainables: str, presets_help: str,
           epilog: str = "") -> argparse.ArgumentParser:
    """The shared command line; a study adds its own options to the returned parser."""
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=PRESETS, default="local",
                   help=f"study size (default: local). {presets_help}")
    p.add_argument("--space", default="nbgraph",
                   help="search space: nbgraph (default; NAS-Bench-Graph, embedded, no download), nb201, "
                        "nb101, or a bring-your-own table spec (.yaml)")
    p.add_argument("--dataset", help="dataset of the space (default: the space's first, e.g. cora, cifar10)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder with the benchmark tables (nb201, nb101; e.g. ../shared/data)")
    p.add_argument("--trainables", default=default_trainables, metavar="A,B",
                   help=f"generators to study, comma-separated (default: {default_trainables})")
    p.add_argument("--seeds", type=int, metavar="N",
                   help="seeds per condition (default: the preset's): seeds 0..N-1, as 'seeds: {count: N}' in a "
                        "study spec; shared by every method so comparisons are paired")
    p.add_argument("--seed-offset", type=int, default=0, metavar="K",
                   help="first seed (default 0): seeds K..K+N-1. Headline numbers belong on seeds no default was "
                        "tuned on, e.g. --seed-offset 1000000 (bench/seeds.py keeps tuning below 1,000,000)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, metavar="F",
                   help="GPU share per trial, e.g. 0.25 packs 4 trials per GPU (default: 0, CPU)")
    p.add_argument("--out", default="results", metavar="DIR",
                   help="store root: a folder, s3://bucket/prefix or gs://bucket/prefix; the study's report goes"
                        " to DIR/studies/<name>/ (default: results)")
    p.add_argument("--report-dir", metavar="DIR",
                   help="local folder for the study's report when --out is an object store: DIR/studies/<name>/,"
                        " also copied to the store (default: results)")
    p.add_argument("--name", help="study name (default: <study>-<preset>-<space>-<dataset>)")
    p.add_argument("--resume", action="store_true",
                   help="continue parts a previous run left unfinished (finished parts are always kept)")
    p.add_argument("--report-only", action="store_true",
                   help="rebuild the report from the store without running anything")
    p.add_argument("--no-wandb", action="store_true", help="no W&B runs (default: offline runs, one group per study)")
    p.add_argument("--wandb-project", default="gnas", metavar="NAME", help="W&B project of the runs (default: gnas)")
    p.add_argument("--wandb-entity", metavar="NAME", help="W&B entity (team or user; default: your default entity)")
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    verbosity(p)
    return p


def setup(args: argparse.Namespace, study_kind: str, preset_seeds: Mapping[str, int]) -> Setup:
    """Validate the shared arguments; raises :class:`SpecError` with one line."""
    from trainables import ENTRIES
    from trainables.spaces import SPACES

    space = args.space
    if space not in SPACES and not space.endswith((".yaml", ".yml")):
        raise SpecError(f"--space must be one of {', '.join(SPACES)} or a table spec .yaml, got {space!r}")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise SpecError(f"--data-dir {args.data_dir} is not a directory")
    names = tuple(t.strip() for t in args.trainables.split(",") if t.strip())
    if not names:
        raise SpecError("--trainables names no trainable")
    for t in names:
        if t not in ENTRIES or ENTRIES[t].role != "generator":
            known = sorted(n for n, e in ENTRIES.items() if e.role == "generator")
            raise SpecError(f"--trainables: unknown generator {t!r}; expected some of {', '.join(known)}")
    if len(set(names)) != len(names):
        raise SpecError("--trainables names a generator twice")
    n_seeds = preset_seeds[args.preset] if args.seeds is None else args.seeds
    if n_seeds < 1:
        raise SpecError(f"--seeds must be at least 1, got {n_seeds}")
    offset = getattr(args, "seed_offset", 0) or 0
    if not 0 <= offset <= SEED_CEIL - n_seeds - RESEED_ROOM:
        raise SpecError(f"--seed-offset must be in [0, {SEED_CEIL - n_seeds - RESEED_ROOM}], got {offset}")
    if not (args.gpus_per_trial >= 0 and (args.gpus_per_trial <= 1 or float(args.gpus_per_trial).is_integer())):
        raise SpecError(f"--gpus-per-trial must be a fraction in [0, 1] or a whole number, got {args.gpus_per_trial}")
    dataset = args.dataset
    space_tag = Path(space).stem if space.endswith((".yaml", ".yml")) else space
    name = args.name or "-".join(x for x in (study_kind, args.preset, space_tag, dataset) if x)
    data_dir = str(Path(args.data_dir).absolute()) if args.data_dir else None  # trials may run elsewhere
    from orchestrator.storage import StorageError, resolve_root

    try:
        root = resolve_root(args.out)
    except StorageError as exc:
        raise SpecError(f"--out: {exc}") from None
    report_dir = getattr(args, "report_dir", None) or (root.uri if root.is_local else "results")
    return Setup(kind=study_kind, study=name, preset=args.preset, space=space, dataset=dataset, data_dir=data_dir,
                 trainables=names, seeds=tuple(range(offset, offset + n_seeds)), gpus_per_trial=float(args.gpus_per_trial),
                 out=root.uri, resume=args.resume, wandb=not args.no_wandb,
                 report_only=args.report_only, address=args.address, verbose=level(args),
                 report_dir=Path(report_dir).expanduser().absolute(),
                 wandb_project=getattr(args, "wandb_project", None) or "gnas",
                 wandb_entity=getattr(args, "wandb_entity", None))


def part_spec(s: Setup, part: str, trainable: str, config: Mapping[str, Any], *,
              grid: Mapping[str, Sequence[Any]] | None = None, metric: str | Sequence[str] = "top5_pct",
              mode: str | Sequence[str] = "max", query_budget: int | None = None,
              seeds: Sequence[int] | None = None, **more: Any) -> StudySpec:
    """The :class:`StudySpec` of one part (named ``<study>-<part>``), with the study's shared
    settings: seeds, resources, store, W&B group = the study."""
    from orchestrator.spec import Objective, Resources, WandbSpec

    metrics = [metric] if isinstance(metric, str) else list(metric)
    modes = [mode] * len(metrics) if isinstance(mode, str) else list(mode)
    return StudySpec(
        name=f"{s.study}-{part}", trainable=trainable, config=dict(config), grid=dict(grid or {}),
        seeds=tuple(seeds) if seeds is not None else s.seeds, objectives=tuple(Objective(m, o) for m, o in zip(metrics, modes)),
        query_budget=query_budget, resources=Resources(cpu=1.0, gpu=s.gpus_per_trial), storage=str(s.out),
        wandb=WandbSpec(enabled=s.wandb, group=s.study, project=s.wandb_project, entity=s.wandb_entity), **more)


def trainable_config(name: str, preset: str) -> dict[str, Any]:
    """A generator's model/training config for ``preset`` (its module's ``PRESETS``)."""
    from trainables import resolve

    entry = resolve(name)
    presets = entry.presets
    if preset not in presets:
        raise SpecError(f"trainable {name!r} defines no {preset!r} preset (PRESETS in {entry.module})")
    return dict(presets[preset])


# ----------------------------------------------------------------------------- running
def plan(parts: Sequence[Part], s: Setup) -> list[tuple[Part, str]]:
    """``(part, action)`` with action ``run``, ``resume`` or ``keep``; raises :class:`SpecError`
    — before anything starts — for a part that cannot go on."""
    from orchestrator.run import preflight
    from orchestrator.store import Store

    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        raise SpecError("two parts of the study share a name")  # a bug in the study script
    store = Store(s.out)
    out = []
    for part in parts:
        try:
            p = preflight(part.spec, resume=True)  # same spec if it exists; trainable accepts the config
        except SpecError:
            more = extensions(part, s, store)
            if more is None:
                raise
            out.append((part, "keep"))
            out.extend(plan(more, s))
            continue
        if not (p.experiment_exists() or store.has_study(part.name)):
            out.append((part, "run"))
        elif finished(store, part.spec):
            out.append((part, "keep"))
        elif s.resume:
            out.append((part, "resume"))
        else:
            raise SpecError(f"part {part.name} of study {s.study} is unfinished in {s.out}; pass --resume "
                            "to continue it")
    return out


def extensions(part: Part, s: Setup, store) -> list[Part] | None:
    """Parts that run what ``part`` asks for beyond what the store holds, when the only change
    since ``part`` first ran is more variants (levels, kinds, sources) or more seeds; ``None``
    when anything else changed.

    What a study already covers is every (variant, seed) of the part's first run and of its
    finished extensions (manifest entries named ``<part>-more-<digest>``). The rest is grouped into parts
    of one seed set each, named by a digest of their content — so a rerun with the same
    arguments finds them (kept, or continued with ``--resume``). Reports read every part of
    the manifest, so the rows merge.
    """
    from orchestrator.layout import saved_spec
    from orchestrator.run import spec_changes

    first = saved_spec(store.location, part.name)
    if first is None or part.spec.search or set(spec_changes(first, part.spec)) - {"variants", "seeds"}:
        return None
    if not finished(store, StudySpec.from_dict(first)):
        raise SpecError(f"part {part.name} of study {s.study} is unfinished in {s.out} and its settings changed; "
                        "finish it with the original settings (--resume) before adding levels or seeds")
    want = {str(k): dict(v) for k, v in part.spec.variants.items()}
    covered: set[tuple[str | None, int]] = set()
    done = []  # finished extensions of earlier runs: planned again, so they show as kept
    if _has_manifest(s):
        done = [spec for e in load_manifest(s)["parts"] if e["name"].startswith(f"{part.name}{EXTENSION}")
                and (spec := saved_spec(store.location, e["name"])) is not None
                and finished(store, StudySpec.from_dict(spec))]
    runs = [first, *done]
    for run in runs:
        variants = run.get("variants") or {}
        for name, overlay in variants.items():
            if name in want and dict(overlay) != want[name]:
                return None  # the same name now means another condition: not an addition
        covered |= {(v, int(seed)) for v in (list(variants) or [None]) for seed in run["seeds"]}
    missing: dict[str | None, set[int]] = {}
    for v in list(want) or [None]:
        for seed in part.spec.seeds:
            if (v, seed) not in covered:
                missing.setdefault(v, set()).add(seed)
    blocks: dict[tuple[int, ...], list[str | None]] = {}
    for v, seeds in missing.items():
        blocks.setdefault(tuple(sorted(seeds)), []).append(v)
    out = [dataclasses.replace(part, spec=dataclasses.replace(part.spec, name=d["name"], variants=d.get("variants") or {},
                                                              seeds=tuple(d["seeds"]))) for d in done]
    for seeds, names in sorted(blocks.items()):
        digest = hashlib.sha1(json.dumps([sorted(map(str, names)), seeds]).encode()).hexdigest()[:8]
        variants = {v: want[v] for v in names if v is not None}
        spec = dataclasses.replace(part.spec, name=f"{part.name}{EXTENSION}{digest}", variants=variants, seeds=seeds)
        out.append(Part(spec, part.method, part.role, part.tags))
    return out


def finished(store, spec: StudySpec) -> bool:
    """Whether every trial of ``spec`` ran to its end (or was stopped by its scheduler) in
    ``store``; an ``INTERRUPTED`` row is unfinished."""
    return store.has_study(spec.name) and store.finished_trials(spec.name) >= spec.num_trials


def unfinished_parts(s: "Setup", manifest: Mapping[str, Any]) -> tuple[int, str, list[str]]:
    """(trials finished, trials planned as text, names of unfinished parts) of the manifest's
    parts, as their saved specs plan them ("120+" when a part never started: its size is unknown)."""
    from orchestrator.layout import saved_spec
    from orchestrator.store import Store

    store = Store(s.out)
    done = planned = 0
    open_parts = []
    for entry in manifest.get("parts") or []:
        data = saved_spec(store.location, entry["name"])
        if data is None:  # never started: its size is not known here
            open_parts.append(entry["name"])
            continue
        want = StudySpec.from_dict(data).num_trials
        got = min(store.finished_trials(entry["name"]) if store.has_study(entry["name"]) else 0, want)
        done, planned = done + got, planned + want
        if got < want:
            open_parts.append(entry["name"])
    started_all = all(saved_spec(store.location, e["name"]) is not None for e in manifest.get("parts") or [])
    return done, f"{planned:,}" + ("" if started_all else "+"), open_parts


def run_parts(planned: Sequence[tuple[Part, str]], s: Setup, progress: "StudyProgress | None" = None) -> int:
    """Run the parts that need it, shown on ``progress`` (a study-level view; ``None`` with
    ``--quiet``: a summary line per part); returns the number of errored trials."""
    from orchestrator.run import run_study
    from orchestrator.store import Store

    errored = 0
    todo = [(p, a) for p, a in planned if a != "keep"]
    kept = len(planned) - len(todo)
    say = progress.write if progress is not None else print
    if kept:
        say(f"{kept} of {len(planned)} parts already finished in the store: kept")
    if progress is not None:
        progress.plan(len(todo), sum(p.spec.num_trials for p, _ in todo))
    for part, action in todo:
        if progress is not None:
            done = errors = 0
            if action == "resume":  # trials a previous run finished count as done
                statuses = Store(s.out).read("trials", studies=[part.name]).column("status").to_pylist()
                done = statuses.count("TERMINATED") + statuses.count("STOPPED")
                errors = statuses.count("ERROR")
            progress.start_part(part.name, part.spec.num_trials, done=done, errored=errors)
        result = run_study(part.spec, resume=action == "resume", address=s.address, verbose=s.verbose,
                           progress=progress, run_config=wandb_run_config(s, part) if s.wandb else None)
        if progress is not None:
            progress.end_part()
        else:
            print("  " + result.summary(), flush=True)
        errored += result.errored
    return errored


def study_progress(s: Setup, parts: Sequence[Part]) -> "StudyProgress | None":
    """The study's progress view (``None`` with ``--quiet``): best so far of the parts' first
    objective, in the report's units."""
    from orchestrator.progress import Objective, StudyProgress

    if not s.verbose:
        return None
    generators = [p for p in parts if p.role == "generator"] or list(parts)
    first = generators[0].spec.objectives[0] if generators else None
    return StudyProgress(Objective.of(first.metric, first.mode) if first else None)


# ----------------------------------------------------------------------------- manifest
def write_manifest(s: Setup, parts: Sequence[Part], settings: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``parts`` into the study's manifest (atomically) and return it."""
    manifest = load_manifest(s) if _has_manifest(s) else {"study": s.study, "parts": []}
    entries = {e["name"]: e for e in manifest["parts"]}
    for part in parts:
        entries[part.name] = part.manifest_entry()
    manifest.update(study=s.study, kind=s.kind, settings=_merged_settings(manifest.get("settings", {}), settings),
                    parts=[entries[k] for k in sorted(entries)])
    write_text(s.folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    publish(s, [MANIFEST])
    return manifest


def _has_manifest(s: Setup) -> bool:
    remote = s.store_folder
    return remote[0].is_file(f"{remote[1]}/{MANIFEST}") if remote else (s.folder / MANIFEST).is_file()


def load_manifest(s: Setup) -> dict[str, Any]:
    """The study's manifest: the store's copy when ``out`` is an object store, else the folder's."""
    remote = s.store_folder
    if remote is None:
        return read_manifest(s.folder)
    location, folder = remote
    if not location.is_file(f"{folder}/{MANIFEST}"):
        raise SpecError(f"no study at {location.uri_of(folder)} (no {MANIFEST}); run the study first, or check --out/--name")
    try:
        return json.loads(location.read_bytes(f"{folder}/{MANIFEST}"))
    except ValueError as exc:
        raise SpecError(f"{location.uri_of(folder)}/{MANIFEST} is not valid JSON ({exc})") from None


def publish(s: Setup, names: Iterable[str] | None = None) -> None:
    """Copy the study folder's files (``names``, relative; default: all) to the object store's
    copy of the folder, each one upload (nothing to do when ``out`` is a local folder)."""
    remote = s.store_folder
    if remote is None:
        return
    location, folder = remote
    files = [s.folder / n for n in names] if names is not None else sorted(
        p for p in s.folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    for path in files:
        location.write_bytes(f"{folder}/{path.relative_to(s.folder).as_posix()}", path.read_bytes())


def _merged_settings(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Settings of all runs: lists (levels, trainables…) are unions, in first-seen order."""
    merged = dict(old)
    for k, v in new.items():
        if isinstance(v, list) and isinstance(merged.get(k), list):
            merged[k] = merged[k] + [x for x in v if x not in merged[k]]
        elif isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _merged_settings(merged[k], v)
        else:
            merged[k] = v
    return merged


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise SpecError(f"no study at {folder} (no {MANIFEST}); run the study first, or check --out/--name")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise SpecError(f"{path} is not valid JSON ({exc})") from None


def trials_frame(s: Setup, manifest: Mapping[str, Any]) -> "pd.DataFrame":
    """Finished trials of every part, one row each, with ``method``/``role``/``tag/…`` columns."""
    import pandas as pd

    from orchestrator.store import Store

    parts = {e["name"]: e for e in manifest["parts"]}
    store = Store(s.out)
    present = [n for n in parts if store.has_study(n)]
    if not present:
        return pd.DataFrame()
    df = store.read_pandas("trials", studies=present)
    df = df[df["status"] == "TERMINATED"].copy()
    df["part"] = df["study"].astype(str)
    df["method"] = df["part"].map(lambda n: parts[n]["method"])
    df["role"] = df["part"].map(lambda n: parts[n]["role"])
    for tag in sorted({t for e in parts.values() for t in e["tags"]}):
        df[f"tag/{tag}"] = df["part"].map(lambda n, t=tag: parts[n]["tags"].get(t))
    return df.sort_values(["part", "config_id", "seed"], kind="stable").reset_index(drop=True)


def wandb_run_config(s: Setup, part: Part):
    """What the study adds to each W&B run of ``part`` (method, role, degradation kind and
    level: :func:`orchestrator.wandb_runs.part_run_config`)."""
    from orchestrator.wandb_runs import part_run_config

    conditions = (load_manifest(s).get("settings") or {}).get("conditions") or {} if _has_manifest(s) else {}
    return part_run_config(s.study, part.manifest_entry(), part.spec.variants, conditions)


# ----------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None, p: argparse.ArgumentParser, *, study_kind: str,
         preset_seeds: Mapping[str, int],
         build: Callable[[Setup, argparse.Namespace], tuple[list[Part], dict[str, Any]]],
         report: Callable[[Setup, dict[str, Any], Report], None],
         follow_up: Callable[[Setup, argparse.Namespace, dict[str, Any]], list[Part]] | None = None) -> int:
    """Run a study script: ``build`` returns its parts and settings (validating the study's own
    options, raising :class:`SpecError`); ``report`` fills the :class:`Report` from the store.
    ``follow_up``, when given, returns parts that depend on the first parts' results (e.g.
    re-seeding a search's winners); they run after them, planned and merged the same way."""
    args = p.parse_args(argv)
    from orchestrator.run import StudyInterrupted  # after --help: Ray, pyarrow stay unimported there
    from orchestrator.store import StoreDamaged

    started = time.perf_counter()
    progress = None
    try:
        s = setup(args, study_kind, preset_seeds)
        if s.report_only:
            manifest = load_manifest(s)
            errored = 0
        else:
            parts, settings = build(s, args)
            planned = plan(parts, s)
            manifest = write_manifest(s, [p for p, _ in planned], {"preset": s.preset, "space": s.space, **settings})
            progress = study_progress(s, parts)
            errored = run_parts(planned, s, progress)
            if follow_up is not None:
                more = follow_up(s, args, manifest)
                planned = plan(more, s)
                manifest = write_manifest(s, [p for p, _ in planned], {})
                errored += run_parts(planned, s, progress)
            if progress is not None:
                progress.close()
        rep = Report(s.folder)
        report(s, manifest, rep)
        done, planned, open_parts = unfinished_parts(s, manifest)
        if open_parts:  # said first: everything below counts finished trials only
            again = ("run the study's own command again with --resume" if s.report_only
                     else resume_command(p.prog, argv))
            rep.notice = (f"> **Unfinished study:** {done:,} of {planned} trials finished ({len(open_parts)} of"
                          f" {len(manifest.get('parts') or [])} parts unfinished); every table and figure below"
                          f" counts finished trials only. Resume it: {again}")
        path = rep.write()
        publish(s)
        if s.wandb:
            log_report_to_wandb(s, manifest, rep)  # studies.report
    except (SpecError, StoreDamaged) as exc:
        if progress is not None:
            progress.close()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StudyInterrupted as stop:
        if progress is not None:
            progress.close()
        return interrupted(stop, resume_command(p.prog, argv))
    except KeyboardInterrupt:  # outside a part's trials: planning, or writing the report
        if progress is not None:
            progress.close()
        print("interrupted: every finished trial is in the store; rebuild the report with"
              f" {resume_command(p.prog, argv)}", file=sys.stderr)
        return EXIT_INTERRUPTED["SIGINT"]
    copy = f"; copied to {s.store_folder[0].uri_of(s.store_folder[1])}/" if s.store_folder else ""
    print(f"report: {path}{copy}  ({time.perf_counter() - started:.0f} s)")
    if not s.report_only:
        print(scale_up_hint(s, p.prog))
    return EXIT_TRIALS_FAILED if errored else EXIT_OK


def resume_command(prog: str, argv: Sequence[str] | None) -> str:
    """The command that continues this study: the same options, with ``--resume``."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = prog if prog.startswith("gnas") else f"python {prog}"
    return " ".join([command, *args, *([] if "--resume" in args or "--report-only" in args else ["--resume"])])


def scale_up_hint(s: Setup, prog: str) -> str:
    if s.preset == "full":
        return f"store: {s.out} (cost per part: orchestrator.store.Store('{s.out}').cost_ledger())"
    command = prog if prog.startswith("gnas") else f"python {prog}"
    return (f"to scale up: {command} --preset full --gpus-per-trial 0.25 --address auto  "
            "(on a Ray cluster; see cluster/README.md), or --seeds N for more seeds here")
