"""Command line: ``python -m orchestrator run STUDY.yaml [--resume] [--no-wandb] [--address ADDR] [--out DIR]``.

Exit status: 0 when every trial finished, 1 when some trial errored, 2 when the study could
not start (one ``error: …`` line on stderr; nothing started, nothing written).
Heavy imports (Ray, torch, W&B) happen only once a study is really launched.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

EXIT_OK, EXIT_TRIALS_FAILED, EXIT_BAD_SPEC = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m orchestrator",
                                description="Run generative-NAS studies on Ray Tune.")
    commands = p.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run (or resume) a study described by a YAML spec")
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
    run.add_argument("--quiet", action="store_true", help="no progress table, only the summary line")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from orchestrator.spec import SpecError, load_spec

    try:
        spec = load_spec(args.spec)
        from orchestrator.run import run_study

        result = run_study(spec, resume=args.resume, wandb=False if args.no_wandb else None,
                           storage=args.out, address=args.address,
                           check_resources=not args.no_resource_check, verbose=0 if args.quiet else 1)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_SPEC
    if args.quiet:
        print(result.summary())
    return EXIT_TRIALS_FAILED if result.errored else EXIT_OK
