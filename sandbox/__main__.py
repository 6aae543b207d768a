"""`python -m sandbox --kubeconfig PATH [--state-dir DIR] [--prometheus-sd PATH]`: run the sandbox cluster.

Runs in the foreground, writes the kubeconfig only once the API is serving, and stops cleanly on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import time
from pathlib import Path

from sandbox.cluster import Sandbox

log = logging.getLogger("sandbox")


def default_app_workers() -> int:
    """SANDBOX_APP_WORKERS when set, else 0.

    One process is the default because it costs the least CPU per request: at the lab's 500 req/s the
    whole sandbox then uses about a quarter of one core (benchmarks/mesh_path.py), while app hosts add
    about a quarter more CPU per request in cross-process wake-ups and only pay off when the proxies'
    process itself runs out of CPU (higher rates, machines with cores to spare).
    """
    configured = os.environ.get("SANDBOX_APP_WORKERS", "").strip()
    if not configured:
        return 0
    try:
        return int(configured)
    except ValueError:
        raise SystemExit(f"SANDBOX_APP_WORKERS must be a whole number, not {configured!r}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sandbox", description="Run the MeshConsole sandbox cluster.")
    p.add_argument("--kubeconfig", required=True, type=Path, help="where to write the kubeconfig once ready")
    p.add_argument("--state-dir", type=Path, help="keep objects and volumes here across restarts")
    p.add_argument("--prometheus-sd", type=Path, help="write a Prometheus file_sd target list here")
    p.add_argument("--port", type=int, default=0, help="API port on 127.0.0.1 (default: a free port)")
    p.add_argument(
        "--single-address",
        action="store_true",
        help="use only 127.0.0.1, with a distinct port per pod address (automatic where needed)",
    )
    p.add_argument(
        "--app-workers",
        type=int,
        default=default_app_workers(),
        help="processes that run the pods' server apps, beside the one running the API and the mesh proxies "
        "(default: SANDBOX_APP_WORKERS, else 0: everything in one process, the least CPU per request)",
    )
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    if args.app_workers < 0:
        raise SystemExit("--app-workers must be 0 or more")
    sandbox = Sandbox(
        args.state_dir,
        single_address=True if args.single_address else None,
        port=args.port,
        app_workers=args.app_workers,
    )
    if sandbox.network.single_address:
        log.warning("only 127.0.0.1 can be bound here: pods share it, each with its own ports")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await sandbox.start()
    # What start-up built lives as long as the process: keep it out of every full garbage collection.
    gc.collect()
    gc.freeze()
    if args.prometheus_sd:
        sandbox.enable_prometheus_sd(args.prometheus_sd)
    sandbox.write_kubeconfig(args.kubeconfig)
    log.info("sandbox cluster ready at %s (kubeconfig %s)", sandbox.url, args.kubeconfig)
    for warning in sandbox.proxy.warnings:
        log.warning("%s", warning)
    await stop.wait()
    log.info("stopping the sandbox cluster")
    await sandbox.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s sandbox %(levelname)s %(message)s")
    profile_to = os.environ.get("SANDBOX_PROFILE")  # benchmarks: where to write a cProfile of the whole run
    profiler = None
    if profile_to:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU time: waits and preemption do not count
        profiler.enable()
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_to)
    return 0


if __name__ == "__main__":
    sys.exit(main())
