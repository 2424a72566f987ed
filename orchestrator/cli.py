"""The ``gnas`` command (also ``python -m orchestrator``).

Subcommands::

    gnas run SPEC.yaml [--resume] [--out DIR] …    one orchestrator study from a YAML spec
    gnas study degradation|generalisation|ablation|quality_diversity …  a published study (= python studies/<name>.py …)
    gnas report NAME [--out DIR]                     rebuild a published study's report from the store
    gnas status [STORE]                              studies in a store: trials done/running/errored, GPU-hours
    gnas wandb …                                     W&B dashboards and sync (orchestrator.wandb_commands)

Exit status: 0 when everything finished, 1 when some trial errored, 2 when nothing could start
(one ``error: …`` line on stderr; nothing started, nothing written). ``--help`` imports neither
Ray nor torch: heavy imports happen inside the handlers, once a command really runs.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Sequence

from orchestrator.spec import SpecError  # imports neither Ray nor torch

EXIT_OK, EXIT_TRIALS_FAILED, EXIT_BAD_SPEC = 0, 1, 2
EXIT_INTERRUPTED = {"SIGINT": 130, "SIGTERM": 143}  # the shells' 128 + signal number; 130 otherwise
STUDY_ENTRY_POINTS = "gnas.studies"  # pyproject.toml: name = "module:main" of each published study


def study_entry_points() -> dict:
    """The published studies installed (``gnas.studies`` entry points), by name; nothing is
    imported until one runs."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in sorted(entry_points(group=STUDY_ENTRY_POINTS), key=lambda ep: ep.name)}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gnas", description="Generative neural-architecture search studies on Ray Tune.",
        epilog="quick start: gnas study degradation   (the local preset on the embedded NAS-Bench-Graph)\n"
               "each command has its own --help, e.g. gnas study degradation --help",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(commands)
    _add_study(commands)
    _add_report(commands)
    _add_status(commands)
    _add_wandb(commands)
    return p


def _add_run(commands) -> None:
    run = commands.add_parser("run", help="run (or resume) one study described by a YAML spec",
                              description="Run (or resume) one orchestrator study described by a YAML spec "
                                          "(see orchestrator/spec.py for every key).")
    run.add_argument("spec", help="study spec (YAML)")
    run.add_argument("--resume", action="store_true",
                     help="continue an interrupted study: finished trials are kept, the rest continue")
    run.add_argument("--no-wandb", action="store_true", help="turn W&B tracking off")
    run.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    run.add_argument("--out", metavar="DIR",
                     help="store root: a folder, s3://bucket/prefix or gs://bucket/prefix (overrides the spec's"
                          " 'storage'; cloud credentials come from the environment / instance profile)")
    run.add_argument("--no-resource-check", action="store_true",
                     help="skip the CPU/GPU availability check (autoscaling clusters that add GPU nodes on demand)")
    verbosity(run)
    run.set_defaults(func=_run)


def verbosity(p: argparse.ArgumentParser) -> None:
    """``--quiet`` / ``--verbose``, shared by ``gnas run`` and the studies (:func:`level`)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--quiet", action="store_true", help="no progress view, only a summary line per study")
    group.add_argument("--verbose", action="store_true",
                       help="Ray Tune's own trial tables and the trials' log lines, besides the progress view")


def level(args: argparse.Namespace) -> int:
    """0 quiet, 1 the progress view (default), 2 verbose (see :func:`orchestrator.run.run_study`)."""
    return 0 if args.quiet else 2 if args.verbose else 1


def _run(args: argparse.Namespace) -> int:
    from orchestrator.spec import SpecError, load_spec

    try:
        spec = load_spec(args.spec)
        from orchestrator.run import StudyInterrupted, run_study

        try:
            result = run_study(spec, resume=args.resume, wandb=False if args.no_wandb else None,
                               storage=args.out, address=args.address,
                               check_resources=not args.no_resource_check, verbose=level(args))
        except StudyInterrupted as stop:
            again = " ".join(["gnas run", args.spec, "--resume", *(["--out", args.out] if args.out else [])])
            return interrupted(stop, again)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_SPEC
    except KeyboardInterrupt:  # before the study started: nothing was written
        print("interrupted before the study started: nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED["SIGINT"]
    if args.quiet:  # otherwise run_study printed it under its progress view
        print(result.summary())
    return EXIT_TRIALS_FAILED if result.errored else EXIT_OK


def interrupted(stop, resume_command: str) -> int:
    """Say in one line what an interrupted study kept and how to resume it; the exit status."""
    print(f"interrupted: {stop}; resume with: {resume_command}", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED.get(stop.signal_name, EXIT_INTERRUPTED["SIGINT"])


def _add_study(commands) -> None:
    names = tuple(study_entry_points())
    study = commands.add_parser(
        "study", help="run a published study: " + (", ".join(names) or "none installed"),
        description="Run a published study (the same as python studies/<name>.py): "
                    f"{', '.join(names) or 'none installed (pip install -e .)'}.\n\n"
                    "Every option after the name goes to the study: gnas study NAME --help describes it and lists them.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    study.add_argument("name", choices=names, metavar="NAME", help=f"one of {', '.join(names)}")
    study.add_argument("args", nargs=argparse.REMAINDER, help="the study's own options")
    study.set_defaults(func=_study)


def study_main(name: str):
    """The ``main(argv, prog)`` of the published study ``name`` (imports its module)."""
    return study_entry_points()[name].load()


def _study(args: argparse.Namespace) -> int:
    return study_main(args.name)(args.args, prog=f"gnas study {args.name}")


def _add_report(commands) -> None:
    report = commands.add_parser(
        "report", help="rebuild a published study's report from the store",
        description="Rebuild a published study's report (report.md, figures, tables) from the store, running "
                    "nothing: the same as the study's --report-only.")
    report.add_argument("name", help="the study's name (its folder under OUT/studies/, e.g. degradation-local-nbgraph)")
    report.add_argument("--out", default="results", metavar="DIR",
                        help="the store root the study ran into (default: results)")
    report.add_argument("--report-dir", metavar="DIR",
                        help="local folder for the report when --out is an object store (default: results)")
    report.add_argument("--no-wandb", action="store_true", help="do not log the report to W&B")
    report.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from orchestrator.spec import SpecError

    try:
        kind = study_kind(args.out, check_name(args.name), args.report_dir)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_SPEC
    argv = ["--report-only", "--name", args.name, "--out", args.out]
    argv += ["--report-dir", args.report_dir] if args.report_dir else []
    argv += ["--no-wandb"] if args.no_wandb else []
    return study_main(kind)(argv, prog=f"gnas study {kind}")


def study_kind(out: str, name: str, report_dir: str | None = None) -> str:
    """Which study script wrote study ``name`` in store ``out`` (its manifest's ``kind``; older
    manifests: the name's first word). Raises :class:`SpecError` when there is no such study."""
    import json

    from orchestrator.layout import MANIFEST_FILE, study_folder
    from orchestrator.storage import StorageError, resolve_root

    try:
        location = resolve_root(out)
    except StorageError as exc:
        raise SpecError(f"--out: {exc}") from None
    folder = study_folder(location, name)
    path = f"{folder}/{MANIFEST_FILE}"
    text = location.read_bytes(path).decode("utf-8", "replace") if location.is_file(path) else None
    where = location.uri_of(folder)
    if text is None:
        raise SpecError(f"no study {name!r} at {where} (no {MANIFEST_FILE}); check the name and --out "
                        "(gnas status lists the studies of a store)")
    try:
        kind = json.loads(text).get("kind") or name.split("-")[0]
    except (ValueError, AttributeError) as exc:
        raise SpecError(f"{where}/{MANIFEST_FILE} is not valid JSON ({exc})") from None
    studies = study_entry_points()
    if kind not in studies:
        raise SpecError(f"study {name!r} was not written by one of {', '.join(studies)} (kind {kind!r})")
    return kind


def _add_status(commands) -> None:
    status = commands.add_parser(
        "status", help="what a store holds: studies, trials done/running/interrupted/errored, GPU-hours",
        description="One line per study in a store (a published study's parts under it): trials done / running"
                    " / interrupted / pending / errored, GPU-hours spent and when a trial last finished. With a"
                    " study's NAME: also each errored or interrupted trial with the last line of its error."
                    " Reads the store only (no Ray).")
    status.add_argument("where", nargs="*", metavar="[STORE] [NAME]",
                        help="store root (a folder, s3://bucket/prefix or gs://bucket/prefix; default: results)"
                             " and/or a study's name")
    status.set_defaults(func=_status)


def _status(args: argparse.Namespace) -> int:
    from orchestrator.storage import StorageError

    try:
        root, name = _status_target(args.where)
        store = _open_store(root)
        with _warnings_as_lines():
            rows = store.status(details=name is not None)
        groups = _published_parts(store)
        if name is not None:
            parts = [r for r in rows if r.study == name or groups.get(r.study) == name]
            if not parts:
                raise SpecError(f"no study {name!r} in store {store.root} (gnas status {root} lists them)")
            print(status_details(parts, store.root))
        else:
            print(status_table(rows, store.root, groups))
    except (SpecError, StorageError, OSError) as exc:
        print(f"error: {_first_line(exc)}", file=sys.stderr)
        return EXIT_BAD_SPEC
    return EXIT_OK


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _status_target(where: Sequence[str]) -> tuple[str, str | None]:
    """``gnas status [STORE] [NAME]``: a lone argument is a store if it names a folder, file or
    URI, else a study in the default store ``results``."""
    if len(where) > 2:
        raise SpecError("gnas status takes at most a store and a study name")
    if len(where) == 2:
        return where[0], check_name(where[1])
    if not where:
        return "results", None
    if "://" in where[0] or Path(where[0]).exists() or "/" in where[0]:
        return where[0], None
    return "results", check_name(where[0])


NAME_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit"


def check_name(name: str) -> str:
    """A study's name as given on the command line: a name, never a path (``../x``, ``a/b``)."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or ".." in name:
        raise SpecError(f"study name {name!r} is not a name: use {NAME_RULE}")
    return name


def _open_store(root: str):
    """The :class:`Store` at ``root``; :class:`SpecError` if there is none there."""
    from orchestrator.layout import FORMAT_FILE, STUDIES_DIR, TABLES, TUNE_DIR
    from orchestrator.store import Store

    store = Store(root)
    if store.location.is_local:
        path = Path(store.root)
        if path.is_file():
            raise SpecError(f"store {root}: is a file, not a store folder")
        if not path.is_dir():
            raise SpecError(f"store {root}: no such folder")
        if not any((path / entry).exists() for entry in (*TABLES, TUNE_DIR, STUDIES_DIR, FORMAT_FILE)):
            raise SpecError(f"store {root}: not a gnas store (none of trials/, tune/, studies/ in it)")
    store.check_format()
    return store


@contextlib.contextmanager
def _warnings_as_lines():
    """Show the store's :class:`~orchestrator.store.DamagedFileWarning` as ``warning: …`` lines."""
    import warnings

    from orchestrator.store import DamagedFileWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DamagedFileWarning)
        try:
            yield
        finally:
            for w in caught:
                if issubclass(w.category, DamagedFileWarning):
                    print(f"warning: {w.message}", file=sys.stderr)
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _published_parts(store) -> dict[str, str]:
    """Part (orchestrator study) name → the published study it belongs to, from the studies'
    manifests (``studies/<name>/study.json``) in a local store."""
    import json

    if not store.location.is_local:
        return {}
    groups = {}
    from orchestrator.layout import MANIFEST_FILE, STUDIES_DIR

    for manifest in sorted(Path(store.root, STUDIES_DIR).glob(f"*/{MANIFEST_FILE}")):
        try:
            parts = json.loads(manifest.read_text()).get("parts") or []
        except (OSError, ValueError, AttributeError):
            continue
        for part in parts:
            if isinstance(part, dict) and isinstance(part.get("name"), str):
                groups[part["name"]] = manifest.parent.name
    return groups


STATUS_COUNTS = ("done", "running", "interrupted", "pending", "errored")


def status_table(rows, root: str, groups: dict[str, str] | None = None) -> str:
    """``gnas status``'s text: one aligned line per :class:`orchestrator.status.StudyStatus`, the
    parts of a published study (``groups``: part → study) indented under a line of its totals."""
    import datetime

    if not rows:
        return f"no studies in {root}"
    groups = groups or {}
    header = ("study", *STATUS_COUNTS, "GPU-h", "last update (UTC)")

    def line(label: str, members) -> tuple[str, ...]:
        last = max((r.last_update for r in members if r.last_update is not None), default=None)
        when = "—" if last is None else datetime.datetime.fromtimestamp(
            last, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        return (label, *(str(sum(getattr(r, k) for r in members)) for k in STATUS_COUNTS),
                f"{sum(r.gpu_hours for r in members):.3f}", when)

    lines, seen = [header], set()
    for r in rows:
        study = groups.get(r.study)
        if study is None:
            lines.append(line(r.study, [r]))
        elif study not in seen:
            seen.add(study)
            members = [m for m in rows if groups.get(m.study) == study]
            lines.append(line(study, members))
            lines += [line("  " + m.study, [m]) for m in members]
    lines.append((*line("total", rows)[:-1], ""))
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
            for row in lines]
    studies = len({groups.get(r.study, r.study) for r in rows})
    unfinished = [r for r in rows if r.interrupted]
    hint = ([f"{sum(r.interrupted for r in unfinished)} trials interrupted: resume their study with --resume"]
            if unfinished else [])
    return "\n".join([f"store {root}: {studies} studies", *text, *hint])


def status_details(rows, root: str) -> str:
    """``gnas status NAME``: the study's table, then each errored or interrupted trial."""
    text = [status_table(rows, root)]
    for r in rows:
        for problem in r.problems:
            what = (f"error: {problem.error}" if problem.error else "no error recorded") if problem.status == "ERROR" \
                else "stopped before it finished; --resume continues it from its last checkpoint"
            text.append(f"{r.study}  {problem.trial_id}  {problem.status} at iteration {problem.iteration}: {what}")
    return "\n".join(text)


def _add_wandb(commands) -> None:
    """The W&B commands (:mod:`orchestrator.wandb_commands`), when that module is present."""
    if importlib.util.find_spec("orchestrator.wandb_commands") is None:
        return
    from orchestrator import wandb_commands

    wandb_commands.register(commands)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)
