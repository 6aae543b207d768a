"""Progress events fanned in to instructors' dashboards: 100 events/s to 5 instructor websockets.

Target (issue 7): p95 lag < 1 s from publishing an event to an instructor's screen receiving it.

A publisher process plays the Celery workers: it publishes progress events of the 100 students of one
class through the real path (meshconsole.events.publish -> channels_redis pub/sub layer on Redis), open
loop at a fixed rate against absolute time, each event carrying the time it was due. Five websocket
clients, logged in as the class's instructors, are connected to one uvicorn process serving
/ws/teach/<slug>/ (the dashboard consumer, after its authz check). Lag = receive time - due time, so
a publisher that falls behind shows as lag too. Lost = events a client never received.
Everything runs in a private runtime directory with its own SQLite database and embedded Redis.
Wall time is noisy on a shared machine: the CPU time of uvicorn and of the publisher is reported too.
Run: .venv/bin/python benchmarks/dashboard_fanout.py [RATE] [SECONDS] [SCREENS]
"""

from __future__ import annotations

import asyncio
import json
import os
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

STUDENTS = 100
SLUG = "bench-class"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] if ordered else float("nan")


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


# --- the publisher process


async def publish(rate: float, seconds: float, student_ids: list[int]) -> None:
    from meshconsole.events import Event, apublish

    total = int(rate * seconds)
    steps = ["preliminaries", "deploy-splitdim", "observability", "ingress-gateway"]
    cpu0 = time.process_time()
    start = time.time() + 0.5
    behind = []
    for n in range(total):
        due = start + n / rate
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            behind.append(-delay)
        student = student_ids[n % len(student_ids)]
        payload = {"step": steps[n % len(steps)], "state": "in_progress", "updated": "2026-01-01T00:00:00+00:00"}
        extra = {"attempts": n, "attempt": n, "last_status": "applying", "seq": n, "due": due}
        await apublish(Event("progress", student, (SLUG,), payload, extra))
    print(json.dumps({"published": total, "cpu": time.process_time() - cpu0, "behind_max": max(behind, default=0)}))


# --- instructor screens


async def screen(url: str, cookie: str, origin: str, until: asyncio.Event, ready: asyncio.Event, got: dict) -> dict:
    from websockets.asyncio.client import connect

    lags, seqs = got["lags"], got["seqs"]
    async with connect(url, additional_headers={"Cookie": cookie}, origin=origin, open_timeout=60) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello", hello
        ready.set()
        while not until.is_set():
            try:
                text = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            now = time.time()
            message = json.loads(text)
            if "due" in message:
                lags.append(now - message["due"])
                seqs.append(message["seq"])
    return {"lags": lags, "seqs": seqs}


async def run(base_ws: str, origin: str, cookies: list[str], env: dict, rate: float, seconds: float, pid: int) -> bool:
    import psutil

    until = asyncio.Event()
    readies = [asyncio.Event() for _ in cookies]
    received = [{"lags": [], "seqs": []} for _ in cookies]
    tasks = [
        asyncio.create_task(screen(f"{base_ws}/ws/teach/{SLUG}/", cookie, origin, until, ready, got))
        for cookie, ready, got in zip(cookies, readies, received, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=60)
    server = psutil.Process(pid)
    server_cpu0 = sum(server.cpu_times()[:2])
    own0 = time.process_time()
    publisher = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--publish", str(rate), str(seconds), env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(publisher.communicate(), timeout=seconds + 120)
    stats = json.loads(out.decode().strip().splitlines()[-1])
    deadline = time.monotonic() + 5  # let the last events arrive (bounded)
    while time.monotonic() < deadline and any(len(got["seqs"]) < stats["published"] for got in received):
        await asyncio.sleep(0.1)
    server_cpu = sum(server.cpu_times()[:2]) - server_cpu0
    own = time.process_time() - own0
    until.set()
    results = await asyncio.gather(*tasks)
    lags = [lag * 1000 for r in results for lag in r["lags"]]
    lost = sum(stats["published"] - len(set(r["seqs"])) for r in results)
    disorder = sum(1 for r in results if r["seqs"] != sorted(r["seqs"]))
    print(
        f"{stats['published']} progress events at {rate:.0f}/s for {seconds:.0f} s -> {len(cookies)} instructor screens"
    )
    print(
        f"   lag due -> screen: p50 {percentile(lags, 50):.0f} ms, p95 {percentile(lags, 95):.0f} ms, "
        f"p99 {percentile(lags, 99):.0f} ms, max {max(lags):.0f} ms"
    )
    print(
        f"   delivered {len(lags)} of {stats['published'] * len(cookies)}; lost {lost}; screens out of order {disorder}"
    )
    print(f"   publisher: CPU {stats['cpu']:.2f} s, furthest behind schedule {stats['behind_max'] * 1000:.0f} ms")
    span = seconds + 1
    print(f"   CPU: uvicorn {server_cpu / span:.2f} cores, the {len(cookies)} clients {own / span:.2f} cores")
    met = percentile(lags, 95) < 1000 and lost == 0
    print(f"goal: p95 < 1 s, nothing lost: {'met' if met else 'NOT met'}")
    return met


def main() -> None:
    args = sys.argv[1:]
    rate = float(args[0]) if args else 100.0
    seconds = float(args[1]) if len(args) > 1 else 20.0
    screens = int(args[2]) if len(args) > 2 else 5
    var_dir = tempfile.mkdtemp(prefix="mc-dashboard-fanout-")
    os.environ.update(MESHCONSOLE_VAR_DIR=var_dir, DJANGO_SETTINGS_MODULE="meshconsole.settings", LOG_LEVEL="WARNING")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from classroom.models import Classroom, Membership
    from meshconsole import redis_embedded

    server = None
    try:
        call_command("migrate", verbosity=0)
        User = get_user_model()
        room = Classroom.objects.create(name="Bench class", slug=SLUG)
        students = User.objects.bulk_create(User(username=f"student{i:03d}") for i in range(STUDENTS))
        Membership.objects.bulk_create(Membership(user=u, classroom=room, role="student") for u in students)
        cookies = []
        for i in range(screens):
            teacher = User.objects.create_user(f"teacher{i}")
            Membership.objects.create(user=teacher, classroom=room, role="instructor")
            client = Client()
            client.force_login(teacher)
            cookies.append(f"sessionid={client.cookies['sessionid'].value}")
        ids = [u.pk for u in User.objects.filter(username__startswith="student").order_by("pk")]
        (Path(var_dir) / "students.json").write_text(json.dumps(ids))
        env = dict(os.environ, REDIS_URL=settings.REDIS_URL)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "meshconsole.asgi:application", "--lifespan", "off"]
            + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=REPO,
            env=env,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("uvicorn did not start") from None
                time.sleep(0.1)
        print(f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; one uvicorn process; pub/sub layer")
        met = asyncio.run(
            run(f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}", cookies, env, rate, seconds, server.pid)
        )
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
        sys.exit(0 if met else 1)
    finally:
        if server is not None:
            stop(server)
        redis_embedded.stop(Path(var_dir))
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshconsole.settings")
        import django

        django.setup()
        ids = json.loads((Path(os.environ["MESHCONSOLE_VAR_DIR"]) / "students.json").read_text())
        asyncio.run(publish(float(sys.argv[2]), float(sys.argv[3]), ids))
    else:
        main()
