"""Live traffic windows through the real stack: worker -> Redis -> channel layer -> uvicorn -> websocket.

1. Freshness: a traffic worker runs the lab's three streams (100 req/s in all) against the echo target;
   one websocket client watches the run. For each window, lag = time the client got it - window end.
   A response is visible at most (window + lag) after it was received (goal: p95 <= window + 300 ms).
2. Fan-out: 300 websocket clients, each subscribed to its own run, then all 300 to one run (a class
   watching the instructor's demo); a publisher process plays a worker holding the runs, closing one
   window per run per second (all at the second boundary, as real workers do) through the same
   append-and-publish path. Delivery lag = receive time - window end; lost = windows published while
   a client was connected that it never got (goal: p95 < 500 ms, nothing lost).

The ASGI server is one uvicorn process, as `make run` starts it. Everything runs in a private runtime
directory with its own SQLite database and embedded Redis.
Run: .venv/bin/python benchmarks/traffic_stream.py [CLIENTS] [SECONDS] [--no-deflate]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] if ordered else float("nan")


def summary_ms(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"p50 {percentile(ms, 50):.0f} ms, p95 {percentile(ms, 95):.0f} ms, p99 {percentile(ms, 99):.0f} ms, max {max(ms):.0f} ms"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


# --- the publisher process (fan-out): one window per run per second, as a worker holding them all would


def synthetic_windows(start: float) -> dict:
    """Windows of the lab's three streams at 5 req/s each, as a generator would have filled them."""
    from traffic.windows import StreamWindow

    streams = {}
    for name in ("clear", "clear (user: test)", "transfer"):
        window = StreamWindow(start=start, end=start + 1, rate=5, sent=5, in_flight=0)
        for _ in range(5):
            latency = int(random.lognormvariate(8, 0.5))
            window.record_result(random.choice(("200", "200", "200", "500")), latency, latency - 50)
            window.send_lag.record(random.randint(100, 900))
        streams[name] = window
    return streams


async def publish(run_ids: list[str], seconds: int) -> None:
    import orjson
    import redis.asyncio as aioredis
    from django.conf import settings

    from traffic import conf
    from traffic.store import Keys
    from traffic.stream import publish_window
    from traffic.worker import WindowAppender, WorkerConfig

    config = WorkerConfig(redis_url=settings.REDIS_URL, prefix=conf.get("TRAFFIC_KEY_PREFIX"))
    keys = Keys(config.prefix)
    pool = aioredis.BlockingConnectionPool.from_url(settings.REDIS_URL, max_connections=32, decode_responses=True)
    r = aioredis.Redis(connection_pool=pool)
    appender = WindowAppender(r, config, "bench", publish_window)
    for run_id in run_ids:
        await r.set(keys.lease(run_id), "bench")
    await publish_window("warm-up", 0, "{}")  # connect the channel layer before the first boundary
    done_after: list[float] = []  # seconds from the window end until the group_send returned

    async def one(run_id: str, start: float, windows: dict) -> None:
        # What Worker._emit does at a window boundary, plus a timestamp for the benchmark.
        message = {"type": "window", "run": run_id, "worker": "bench", "start": start, "end": start + 1}
        message["streams"] = {name: w.to_json() for name, w in windows.items()}
        message["published"] = time.time()
        await appender.emit(run_id, orjson.dumps(message).decode(), 1.0)
        done_after.append(time.time() - start - 1)

    for _ in range(seconds):
        boundary = int(time.time()) + 1
        filled = {run_id: synthetic_windows(boundary - 1) for run_id in run_ids}  # during the window
        await asyncio.sleep(boundary + 0.01 - time.time())  # a worker's window close, 10 ms grace
        await asyncio.gather(*(one(run_id, boundary - 1, filled[run_id]) for run_id in run_ids))
    await r.aclose()
    print(json.dumps({"published_after": done_after}))


# --- websocket clients


async def watch(url: str, cookie: str, origin: str, until: asyncio.Event, ready: asyncio.Event | None = None) -> dict:
    from websockets.asyncio.client import connect

    lags, seqs, deliveries = [], [], []
    t0 = time.monotonic()
    async with connect(
        url, additional_headers={"Cookie": cookie}, origin=origin, open_timeout=60, max_queue=None
    ) as ws:
        history = json.loads(await ws.recv())
        connected = time.monotonic() - t0
        seqs += [w["seq"] for w in history["windows"]]
        if ready is not None:
            ready.set()
        while not until.is_set():
            try:
                text = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            now = time.time()
            message = json.loads(text)
            seqs.append(message["seq"])
            lags.append(now - message["end"])
            if "published" in message:
                deliveries.append(now - message["published"])
    return {"lags": lags, "seqs": seqs, "deliveries": deliveries, "connect": connected}


async def freshness(base_ws: str, origin: str, cookie: str, owner_id: int, target: str, windows: int) -> None:
    from asgiref.sync import sync_to_async

    from traffic import control
    from traffic.specs import lab_streams

    streams = lab_streams(transfer_rate=30)
    for s in streams[:2]:
        s["rate"] = 35
    run_id = await sync_to_async(control.start_run)(owner_id, "bench", target, streams, allow_target=lambda n, t: True)
    until = asyncio.Event()
    task = asyncio.create_task(watch(f"{base_ws}/ws/traffic/{run_id}/", cookie, origin, until))
    deadline = time.monotonic() + windows + 30
    while time.monotonic() < deadline and not until.is_set():
        await asyncio.sleep(0.2)
        if len(await sync_to_async(control.history_texts)(run_id)) >= windows + 2:
            until.set()
    result = await task
    lags = result["lags"][1:]  # the first window is partial (the run began inside it)
    print(f"\n1. freshness: {len(lags)} windows of the lab's 3 streams at 100 req/s, 1 s windows")
    print(f"   window end -> visible in the websocket client: {summary_ms(lags)}")
    print(
        f"   response received -> visible, worst case (window + lag): p95 {1000 + percentile(lags, 95) * 1000:.0f} ms"
    )
    print(f"   goal: p95 <= window + 300 ms: {'met' if percentile(lags, 95) <= 0.3 else 'NOT met'}")
    await sync_to_async(control.stop_run)(run_id, owner_id)


async def fanout(
    base_ws: str,
    origin: str,
    cookie: str,
    owner_id: int,
    env: dict,
    clients: int,
    runs: int,
    seconds: int,
    server_pid: int,
) -> None:
    """`clients` websocket clients spread over `runs` runs (one run: a whole class watching a demo)."""
    import psutil
    from asgiref.sync import sync_to_async

    from traffic import control

    def start_runs() -> list[str]:
        return [
            control.start_run(owner_id, "bench", "http://127.0.0.1:9", [{"rate": 1}], allow_target=lambda n, t: True)
            for _ in range(runs)
        ]

    run_ids = await sync_to_async(start_runs)()
    until = asyncio.Event()
    readies = [asyncio.Event() for _ in range(clients)]
    started = time.monotonic()
    tasks = [
        asyncio.create_task(watch(f"{base_ws}/ws/traffic/{run_ids[i % runs]}/", cookie, origin, until, ready))
        for i, ready in enumerate(readies)
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=120)
    connect_all = time.monotonic() - started
    server = psutil.Process(server_pid)
    cpu0, own0 = sum(server.cpu_times()[:2]), time.process_time()
    ids_file = Path(env["MESHCONSOLE_VAR_DIR"]) / "runs.json"
    ids_file.write_text(json.dumps(run_ids))
    publisher = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--publish", str(ids_file), str(seconds), env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await publisher.communicate()
    published_after = json.loads(out.decode().strip().splitlines()[-1])["published_after"]
    await asyncio.sleep(2)  # let the last windows arrive
    cpu, own = sum(server.cpu_times()[:2]) - cpu0, time.process_time() - own0
    until.set()
    results = await asyncio.gather(*tasks)
    lags = [lag for r in results for lag in r["lags"]]
    lost = sum(seconds - len(r["seqs"]) for r in results)
    gaps = sum(1 for r in results if r["seqs"] != list(range(1, len(r["seqs"]) + 1)))
    spread = "each on its own run" if runs == clients else f"on {runs} run(s)"
    print(f"\nfan-out: {clients} websocket clients {spread}, 1 window/s per run, {seconds} s")
    print(
        f"   all connected (history received) in {connect_all:.1f} s; connect p95 {percentile([r['connect'] for r in results], 95) * 1000:.0f} ms"
    )
    print(f"   delivery lag (window end -> client): {summary_ms(lags)}")
    print(f"   window end -> publisher done (append + group_send): {summary_ms(published_after)}")
    print(f"   window built -> client: {summary_ms([d for r in results for d in r['deliveries']])}")
    print(f"   messages received {len(lags)} of {clients * seconds}; lost {lost}; clients with gaps or disorder {gaps}")
    print(
        f"   CPU while streaming: uvicorn {cpu / (seconds + 2):.2f} cores, the {clients} clients {own / (seconds + 2):.2f}"
    )
    print(
        f"   goal: p95 < 500 ms and nothing lost: {'met' if percentile(lags, 95) < 0.5 and lost == 0 and gaps == 0 else 'NOT met'}"
    )
    await sync_to_async(lambda: [control.stop_run(run_id, owner_id) for run_id in run_ids])()


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    clients = int(args[0]) if args else 300
    seconds = int(args[1]) if len(args) > 1 else 20
    # uvicorn compresses websocket messages by default (permessage-deflate); --no-deflate measures without.
    deflate = [] if "--no-deflate" not in sys.argv else ["--ws-per-message-deflate", "false"]
    var_dir = tempfile.mkdtemp(prefix="mc-traffic-bench-")
    os.environ.update(
        {
            "MESHCONSOLE_VAR_DIR": var_dir,
            "DJANGO_SETTINGS_MODULE": "meshconsole.settings",
            "TRAFFIC_KEY_PREFIX": f"bench-{secrets.token_hex(4)}",
            "TRAFFIC_MAX_RATE_PER_STUDENT": "1000000",
            "TRAFFIC_MAX_RATE_PER_CLASS": "1000000",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django
    import uvloop

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from meshconsole import redis_embedded

    server = None
    try:
        call_command("migrate", verbosity=0)
        user = get_user_model().objects.create_user("bench")
        client = Client()
        client.force_login(user)
        cookie = f"sessionid={client.cookies['sessionid'].value}"
        env = dict(os.environ, REDIS_URL=settings.REDIS_URL)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "meshconsole.asgi:application", "--lifespan", "off"]
            + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *deflate],
            cwd=REPO,
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        print(
            f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; one uvicorn process"
            f" (permessage-deflate {'off' if deflate else 'on'})"
        )
        base_ws, origin = f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}"
        echo = subprocess.Popen([sys.executable, "-m", "traffic.echo"], cwd=REPO, stdout=subprocess.PIPE, text=True)
        worker = subprocess.Popen([sys.executable, "-m", "traffic.worker"], cwd=REPO, env=env)
        try:
            target = echo.stdout.readline().split()[-1]
            uvloop.run(freshness(base_ws, origin, cookie, user.pk, target, windows=20))
        finally:
            stop(worker)
            stop(echo)
        for runs in (clients, 1):
            uvloop.run(fanout(base_ws, origin, cookie, user.pk, env, clients, runs, seconds, server.pid))
        print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    finally:
        if server is not None:
            stop(server)
        redis_embedded.stop(Path(var_dir))
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshconsole.settings")
        asyncio.run(publish(json.loads(Path(sys.argv[2]).read_text()), int(sys.argv[3])))
    else:
        main()
