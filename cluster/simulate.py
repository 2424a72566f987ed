"""Rehearse a study on a simulated multi-node Ray cluster, in one process, without a cloud.

    python cluster/simulate.py STUDY.yaml --out DIR [--workers 2] [--cpus-per-worker 4]
                               [--gpus-per-worker 1] [--remove-worker 2 --when-trials 4]

The simulated cluster has the shape of ``cluster.yaml``: a head that offers no CPUs (and
no GPUs) to trials, and ``--workers`` worker nodes with *logical* GPUs (no CUDA needed; a
trial asking for 0.25 GPU gets a quarter of one). The head has the machine's address (Ray
resolves ``127.0.0.1`` to it), worker *i* the loopback address ``127.0.10.i`` — so the store's
``node_ip`` column says where each trial ran. ``--remove-worker I --when-trials K`` kills
worker *I* (1-based) once *K* trials running there have reported a result: the study must
retry them elsewhere.

The study runs through :func:`orchestrator.run.run_study` exactly as on a real cluster (W&B
off unless ``--wandb``). The last stdout line is a JSON summary (nodes, removed worker, trial
counts); the exit status is 0 when every trial finished, 1 when some errored, 2 for a spec
that cannot run. Everything this
starts — one Ray session in a private temporary directory — is shut down before exit, and
only that: other Ray instances on the machine are never touched.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Sequence


def worker_ip(i: int) -> str:
    """Loopback address of worker ``i`` (1-based)."""
    return f"127.0.10.{i}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python cluster/simulate.py", description=__doc__.split("\n\n")[0])
    p.add_argument("spec", help="study spec (YAML)")
    p.add_argument("--out", required=True, help="store root")
    p.add_argument("--workers", type=int, default=2, help="GPU worker nodes (default 2)")
    p.add_argument("--cpus-per-worker", type=int, default=4, help="default 4")
    p.add_argument("--gpus-per-worker", type=int, default=1, help="logical GPUs (default 1)")
    p.add_argument("--remove-worker", type=int, metavar="I", help="worker to kill mid-study (1-based)")
    p.add_argument("--when-trials", type=int, default=1, metavar="K",
                   help="kill it once K trials running there have reported a result (default 1)")
    p.add_argument("--release", metavar="FILE",
                   help="delete FILE once the worker is removed (a hold file the trials wait on: so the removal"
                        " comes while they run, however slowly a loaded machine starts them)")
    p.add_argument("--wandb", action="store_true", help="keep the spec's W&B setting (default: off)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.remove_worker is not None and not 1 <= args.remove_worker <= args.workers:
        raise SystemExit(f"--remove-worker must be in 1..{args.workers}")
    # Private Ray temp dir: the cluster's address file lands there, not in /tmp/ray, so no
    # other `ray.init()` on this machine can attach to this cluster by accident. Short path:
    # Ray's Unix sockets live under it (108-byte limit).
    parent = os.environ.get("RAY_TMPDIR")
    tmp = tempfile.mkdtemp(prefix="sim-" if parent else "gnas-sim-", dir=parent or "/tmp")
    os.environ["RAY_TMPDIR"] = tmp
    ray_tmp = os.path.join(tmp, "ray")  # Ray's default temp dir under RAY_TMPDIR
    os.makedirs(ray_tmp)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # loopback-only simulation

    from orchestrator.spec import SpecError, load_spec  # after RAY_TMPDIR: it may import Ray

    try:
        spec = load_spec(args.spec)  # a bad spec fails here, before any node starts
    except SpecError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import ray
    from ray.cluster_utils import Cluster

    cluster = None
    summary: dict[str, Any] = {"removed": None}
    removal: list[threading.Thread] = []
    try:
        cluster = Cluster(initialize_head=True, head_node_args=dict(
            num_cpus=0, num_gpus=0, temp_dir=ray_tmp,
            include_dashboard=False, dashboard_agent_listen_port=free_port(),
        ))
        workers = {}
        for i in range(1, args.workers + 1):
            workers[worker_ip(i)] = cluster.add_node(
                num_cpus=args.cpus_per_worker, num_gpus=args.gpus_per_worker,
                node_ip_address=worker_ip(i), temp_dir=ray_tmp)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, configure_logging=False, log_to_driver=False)
        head_ip = cluster.head_node.node_ip_address
        summary["nodes"] = [
            {"ip": n["NodeManagerAddress"], "head": n["NodeManagerAddress"] == head_ip,
             "CPU": n["Resources"].get("CPU", 0), "GPU": n["Resources"].get("GPU", 0)}
            for n in ray.nodes() if n["Alive"]
        ]
        callbacks = []
        if args.remove_worker is not None:
            callbacks.append(_remover(cluster, workers, worker_ip(args.remove_worker),
                                      args.when_trials, summary, removal, args.release))
        from orchestrator.run import run_study

        try:
            result = run_study(spec, storage=args.out, wandb=None if args.wandb else False,
                               callbacks=callbacks, verbose=0)
        except SpecError as exc:  # e.g. the study already exists in that store
            print(f"error: {exc}", file=sys.stderr)
            return 2
        summary.update(study=result.study, trials=result.trials, terminated=result.terminated,
                       errored=result.errored, seconds=round(result.seconds, 1))
    finally:
        for thread in removal:
            thread.join()
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(summary), flush=True)
    return 0 if summary.get("errored") == 0 else 1


def _remover(cluster, workers: dict, ip: str, when: int, summary: dict, threads: list, release: str | None = None):
    """A Tune callback that kills worker ``ip`` once ``when`` of its trials have reported, then
    deletes ``release`` (the hold file the trials wait on), if given."""
    from ray.tune import Callback

    class RemoveWorker(Callback):
        def __init__(self) -> None:
            self.reported: set[str] = set()

        def __reduce__(self):
            # Tune pickles its callbacks with the experiment state; this one holds the live
            # cluster, so a restored experiment gets a plain no-op Callback instead.
            return (Callback, ())

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            if threads or result.get("node_ip") != ip:
                return
            self.reported.add(trial.trial_id)
            if len(self.reported) < when:
                return
            running = sorted(t.trial_id for t in trials
                             if t.status == "RUNNING" and (t.last_result or {}).get("node_ip") == ip)
            summary["removed"] = {"ip": ip, "running_there": running}
            def remove() -> None:  # off Tune's event loop: killing a node's processes takes a moment
                cluster.remove_node(workers[ip])
                if release is not None:
                    Path(release).unlink(missing_ok=True)

            thread = threading.Thread(target=remove, daemon=True)
            threads.append(thread)
            thread.start()

    return RemoveWorker()


if __name__ == "__main__":
    sys.exit(main())
