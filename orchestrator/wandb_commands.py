"""``gnas wandb …``: complete a study's runs from the store, upload them, build its dashboards.

* ``gnas wandb complete STORE_OR_STUDY_DIR [--study NAME]`` — every trial one complete offline
  run, written from the store where missing or incomplete (and, for a published study, its
  report run from the study folder's tables and figures);
* ``gnas wandb sync STORE_OR_STUDY_DIR [--study NAME] [--jobs N]`` — upload the offline runs,
  ``N`` ``wandb sync`` processes at a time; a run uploaded once is remembered (a marker in its
  folder) and skipped by the next call, so an interrupted upload resumes;
* ``gnas wandb dashboards STORE_OR_STUDY_DIR [--study NAME] [--save]`` — the study's workspace
  and report (:mod:`orchestrator.dashboards`) as JSON definitions in the study folder, and
  saved to W&B with ``--save`` (needs an account).

``STORE_OR_STUDY_DIR`` is a study folder (``<root>/studies/<name>``, holding ``study.json``) or a
store root with ``--study NAME`` (a published study or a single orchestrator study). Wiring:
:func:`register` adds the commands to the ``gnas`` command line (:mod:`orchestrator.cli`);
imports stay inside the handlers, so ``gnas --help`` loads no W&B.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
SYNCED_MARKER = "gnas-synced.json"  # in an offline-run folder: what `wandb sync` uploaded from it


def register(commands) -> None:
    """Add ``wandb`` and its subcommands to ``commands`` (an argparse sub-parsers object)."""
    top = commands.add_parser("wandb", help="W&B: complete runs from the store, sync them, build dashboards",
                              description="Complete a study's W&B runs from the store, upload them, build its dashboards.")
    sub = top.add_subparsers(dest="wandb_command", metavar="{complete,sync,dashboards}", required=True)

    def where(p: argparse.ArgumentParser) -> None:
        p.add_argument("path", metavar="STORE_OR_STUDY_DIR", help="a study folder (<root>/studies/<name>) or a store root")
        p.add_argument("--study", metavar="NAME", help="the study, when the path is a store root")
        p.add_argument("--wandb-project", metavar="NAME", help="W&B project (default: the study's, else gnas)")
        p.add_argument("--wandb-entity", metavar="NAME", help="W&B entity (default: the study's, else your default)")

    complete = sub.add_parser("complete", help="write every trial's run from the store where missing or incomplete")
    where(complete)
    complete.set_defaults(func=complete_command)
    sync = sub.add_parser("sync", help="upload the study's offline runs, several at a time, resumably")
    where(sync)
    sync.add_argument("--jobs", type=int, default=4, metavar="N", help="uploads at a time (default: 4)")
    sync.set_defaults(func=sync_command)
    dashboards = sub.add_parser("dashboards", help="the study's W&B workspace and report: JSON definitions, or --save")
    where(dashboards)
    dashboards.add_argument("--save", action="store_true", help="save them to W&B (needs an account and network)")
    dashboards.set_defaults(func=dashboards_command)


# ----------------------------------------------------------------------------- locating a study
@dataclass(frozen=True)
class Target:
    """A study as the commands see it."""

    root: str  # store root
    study: str
    manifest: dict[str, Any] | None  # a published study's study.json; None for an orchestrator study
    folder: Path | None  # the published study's folder
    project: str
    entity: str | None

    @property
    def parts(self) -> list[str]:
        return [e["name"] for e in self.manifest["parts"]] if self.manifest else [self.study]

    def run_dirs(self) -> list[Path]:
        """Every ``dir=`` its runs were written to: one per part, and the report run's."""
        from orchestrator.tracking import wandb_dir

        dirs = [wandb_dir(self.root, p) for p in self.parts]
        if self.manifest is not None:
            dirs.append(wandb_dir(self.root, self.study))
        return dirs


class BadInput(Exception):
    pass


def locate(args: argparse.Namespace) -> Target:
    """The study ``args`` name; raises :class:`BadInput` with one line."""
    from orchestrator.layout import saved_spec
    from orchestrator.storage import StorageError, resolve_root
    from orchestrator.store import Store

    path = Path(args.path)
    if (path / "study.json").is_file():
        folder, root, name = path, str(path.resolve().parent.parent), path.name
    else:
        if not args.study:
            raise BadInput(f"{args.path} holds no study.json: pass a study folder, or a store root with --study NAME")
        try:
            root = resolve_root(args.path).uri
        except StorageError as exc:
            raise BadInput(f"{args.path}: {exc}") from None
        folder, name = Path(root) / "studies" / args.study, args.study
    manifest = None
    if (folder / "study.json").is_file():
        try:
            manifest = json.loads((folder / "study.json").read_text())
        except ValueError as exc:
            raise BadInput(f"{folder / 'study.json'} is not valid JSON ({exc})") from None
    store = Store(root)
    first = manifest["parts"][0]["name"] if manifest and manifest["parts"] else name
    spec = saved_spec(store.location, first)
    if spec is None and not store.has_study(first):
        raise BadInput(f"no study {name!r} in the store at {root}")
    wandb = (spec or {}).get("wandb") or {}
    return Target(root=root, study=name, manifest=manifest, folder=folder if manifest else None,
                  project=args.wandb_project or wandb.get("project") or "gnas",
                  entity=args.wandb_entity or wandb.get("entity"))


def _handle(run) -> int:
    try:
        return run()
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


# ----------------------------------------------------------------------------- complete
def complete_command(args: argparse.Namespace) -> int:
    return _handle(lambda: _complete(locate(args)))


def _complete(t: Target) -> int:
    from orchestrator.dashboards import report_series
    from orchestrator.tracking import wandb_dir
    from orchestrator.wandb_runs import complete_published_study, complete_runs, write_report_run

    mode = "offline"
    if t.manifest is not None:
        done = complete_published_study(t.manifest, store_root=t.root, project=t.project, entity=t.entity, mode=mode)
        tables, figures = _report_files(t.folder)
        if (t.folder / "report.md").is_file():
            write_report_run(t.study, t.manifest.get("settings") or {}, tables, figures,
                             directory=wandb_dir(t.root, t.study), project=t.project, entity=t.entity, mode=mode,
                             series=report_series(t.manifest, tables))
    else:
        done = [complete_runs(t.root, t.study, directory=wandb_dir(t.root, t.study), project=t.project,
                              entity=t.entity, mode=mode)]
    failed = [f for d in done for f in d.failed]
    for d in done:
        print(f"{d.study}: {d.trials} trials, {d.kept} runs complete already, {d.written} written,"
              f" {d.removed} incomplete or duplicate removed")
    for f in failed:
        print(f"failed: {f}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _report_files(folder: Path):
    import pandas as pd

    tables = {p.stem: pd.read_parquet(p) for p in sorted((folder / "tables").glob("*.parquet"))}
    return tables, sorted((folder / "figures").glob("*.png"))


# ----------------------------------------------------------------------------- sync
def sync_command(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        print(f"error: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _handle(lambda: _sync(locate(args), args.jobs))


def offline_runs(t: Target) -> list[Path]:
    """The study's offline-run folders (one per run id: complete runs are never duplicated)."""
    folders = []
    for d in t.run_dirs():
        folders += sorted(p for p in (d / "wandb").glob("offline-run-*") if p.is_dir()) if (d / "wandb").is_dir() else []
    return folders


def is_synced(folder: Path) -> bool:
    """Whether ``folder``'s run was uploaded as it is now (a rewritten run is uploaded again)."""
    marker = folder / SYNCED_MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()) == _fingerprint(folder)
    except ValueError:
        return False


def _fingerprint(folder: Path) -> dict[str, Any]:
    files = sorted(folder.glob("run-*.wandb"))
    return {"file": files[0].name, "bytes": files[0].stat().st_size} if files else {}


def _sync(t: Target, jobs: int) -> int:
    from trainables.atomic import atomic_write_text

    executable = shutil.which("wandb") or str(Path(sys.executable).with_name("wandb"))
    runs = offline_runs(t)
    todo = [f for f in runs if not is_synced(f)]
    print(f"{t.study}: {len(runs)} offline runs, {len(runs) - len(todo)} uploaded before, {len(todo)} to upload"
          f" to {t.entity + '/' if t.entity else ''}{t.project}, {min(jobs, max(len(todo), 1))} at a time", flush=True)
    base = [executable, "sync", "--project", t.project, *(["--entity", t.entity] if t.entity else [])]

    def upload(folder: Path) -> str | None:
        done = subprocess.run([*base, str(folder)], capture_output=True, text=True, env={**os.environ, "WANDB_SILENT": "true"})
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()
            return f"{folder.name}: wandb sync exit {done.returncode}: {last[-1] if last else ''}"
        atomic_write_text(folder / SYNCED_MARKER, json.dumps(_fingerprint(folder)))
        return None

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        failed = [e for e in pool.map(upload, todo) if e]
    for e in failed:
        print(f"failed: {e}", file=sys.stderr)
    print(f"{len(todo) - len(failed)} uploaded, {len(failed)} failed" + ("; run the same command again to retry" if failed else ""))
    return EXIT_FAILED if failed else EXIT_OK


# ----------------------------------------------------------------------------- dashboards
def dashboards_command(args: argparse.Namespace) -> int:
    return _handle(lambda: _dashboards(locate(args), args.save))


def _dashboards(t: Target, save: bool) -> int:
    from orchestrator import dashboards

    if t.manifest is None:
        raise BadInput(f"{t.study} is not a published study (no study.json): dashboards are built per published study")
    built = dashboards.build(t.manifest, store_root=t.root, folder=t.folder, project=t.project, entity=t.entity)
    paths = dashboards.write_definitions(built, t.folder)
    print("definitions: " + ", ".join(str(p) for p in paths))
    if not save:
        return EXIT_OK
    try:
        for url in dashboards.save(built):
            print(f"saved: {url}")
    except Exception as exc:  # noqa: BLE001 - no key, no network: the definitions are written
        print(f"error: saving to W&B failed ({type(exc).__name__}: {exc}); the definitions are in {t.folder}",
              file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m orchestrator.wandb_commands …`` (the same as ``gnas wandb …``)."""
    parser = argparse.ArgumentParser(prog="gnas")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
