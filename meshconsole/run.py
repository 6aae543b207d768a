"""`python -m meshconsole.run` (what `make run` calls): the whole console on one machine, in one terminal.

In order: take the runtime directory's lock and stop whatever a killed earlier start left running;
check the port and, when KUBECONFIG is set, that its cluster answers; start the built-in Redis (unless
REDIS_URL is set); migrate and collect static files (when DEBUG is off) while the sandbox cluster starts
(unless KUBECONFIG is set); then make sure the demo class exists while the Celery worker (plus beat when
the settings schedule periodic tasks), the traffic worker (when that app exists) and the ASGI server
start. Once the login page answers it prints `MeshConsole ready at <url>` and how to log in.

Each child runs in its own process group, so Ctrl-C reaches only this supervisor, which stops the
children in reverse order (the sandbox, launched by `sandbox.process`, shares our group and simply
stops on Ctrl-C too). Children log to var/log/<name>.log; their warnings and errors are echoed here
prefixed with their name. If one dies, its name and last log lines are shown and everything stops
with exit status 1. On Linux the children also die with the supervisor if it is killed outright.

Environment: HOST (default 127.0.0.1; 0.0.0.0 serves a classroom network), PORT (8000),
MESHCONSOLE_VAR_DIR (var/), REDIS_URL, KUBECONFIG, DATABASE_URL, CELERY_CONCURRENCY, ALLOWED_HOSTS,
SECURE_COOKIES (default off here, because this server speaks plain HTTP).
"""

from __future__ import annotations

import ctypes
import fcntl
import http.client
import importlib.util
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from meshconsole import redis_embedded

ROOT = Path(__file__).resolve().parent.parent
POLL = 0.1  # seconds between looks at the children
READY_TIMEOUT = 120.0  # for the ASGI server to answer once started (a busy classroom server is slow)
SANDBOX_TIMEOUT = 120.0  # for the sandbox to write its kubeconfig (restoring saved state takes a while)
STOP_TIMEOUT = 10.0  # per child, after SIGTERM, before SIGKILL
TAIL_LINES = 20
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1"}
# Log lines worth echoing on the terminal; the rest stays in the child's log file.
NOTEWORTHY = re.compile(r"\b(WARNING|ERROR|CRITICAL|FATAL)\b|^Traceback|^\w+(Error|Exception):")
PR_SET_PDEATHSIG = 1  # prctl(2) option: a signal for the child when its parent dies
# What the terminal calls each child.
LABELS = {
    "sandbox": "sandbox cluster",
    "worker": "Celery worker",
    "beat": "Celery beat scheduler",
    "traffic": "traffic worker",
    "graph": "graph worker",
    "prometheus": "Prometheus",
    "web": "web server",
}


PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: sandbox-proxies
    metrics_path: /stats/prometheus
    file_sd_configs:
      - files: ["{targets}"]
        refresh_interval: 1s
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StartError(Exception):
    """Something the person at the terminal must fix; the message says what and how."""


class Interrupted(Exception):
    """Ctrl-C, SIGTERM or SIGHUP arrived: stop everything and exit 0."""


def say(text: str = "") -> None:
    try:
        print(text, flush=True)
    except OSError:  # the terminal is gone (SIGHUP): stopping the children matters more
        pass


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    var_dir: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Options:
        raw_port = environ.get("PORT") or "8000"
        if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
            raise StartError(f"PORT={raw_port!r} is not a port number (1-65535).")
        var_dir = Path(environ.get("MESHCONSOLE_VAR_DIR") or ROOT / "var").resolve()
        return cls(environ.get("HOST") or "127.0.0.1", int(raw_port), var_dir)

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def run_dir(self) -> Path:
        return self.var_dir / "run"

    @property
    def local_host(self) -> str:
        """Where a browser on this machine reaches the server (a wildcard bind answers on loopback)."""
        return WILDCARD_HOSTS.get(self.host, self.host)

    @property
    def url(self) -> str:
        return url_for(self.local_host, self.port)


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def worker_concurrency(environ: Mapping[str, str] = os.environ) -> int:
    """Celery processes for this machine: tasks mostly wait on the cluster, so two per core, but each
    process holds a whole Django (~150 MB) and a laptop must stay usable. CELERY_CONCURRENCY overrides."""
    raw = environ.get("CELERY_CONCURRENCY", "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise StartError(f"CELERY_CONCURRENCY={raw!r} must be a whole number of processes (1 or more).")
        return int(raw)
    by_memory = psutil.virtual_memory().available // (300 * 1024 * 1024)
    return max(2, min(2 * (os.cpu_count() or 1), by_memory, 16))


def network_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback: what students on the classroom network type."""
    found = {
        address.address
        for addresses in psutil.net_if_addrs().values()
        for address in addresses
        if address.family == socket.AF_INET and not ipaddress.ip_address(address.address).is_loopback
    }
    return sorted(found)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"  (no log at {path})"
    last = text.splitlines()[-lines:] or ["(the log is empty)"]
    return f"Last lines of {path}:\n" + "\n".join(f"  | {line}" for line in last)


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path
    own_group: bool = True  # started in a process group of its own (all but the sandbox)
    scanned: int = 0  # bytes of the log already looked at for the terminal summary

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def label(self) -> str:
        return LABELS.get(self.name, self.name)


@dataclass(frozen=True)
class ChildRecord:
    """A started child as remembered in var/run/children.json, to clean up after a crashed supervisor."""

    name: str
    pid: int
    started: float  # psutil create_time: tells our process apart from a later one with the same PID
    group: bool


class Supervisor:
    """Starts children, echoes their noteworthy log lines, notices deaths and stops them all."""

    def __init__(self, options: Options, env: dict[str, str]) -> None:
        self.options = options
        self.env = env
        self.children: list[Child] = []
        self.stop_signal: int | None = None
        self.hurry = False  # a second Ctrl-C: kill instead of waiting
        self._prctl = _load_prctl()
        self._pid = os.getpid()

    # --- signals
    def request_stop(self, signum: int, _frame: object) -> None:
        self.hurry = self.stop_signal is not None
        self.stop_signal = signum

    def checkpoint(self) -> None:
        if self.stop_signal is not None:
            raise Interrupted

    # --- starting
    def launch(self, name: str, argv: list[str]) -> Child:
        log_path = self.options.log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
                preexec_fn=self._die_with_parent,
            )
        child = Child(name, process, log_path)
        self.adopt(child)
        return child

    def adopt(self, child: Child) -> None:
        self.children.append(child)
        self._record()

    def _die_with_parent(self) -> None:
        """In the child, Linux only: SIGTERM it if this supervisor is killed outright (SIGKILL, OOM)."""
        if self._prctl is not None:
            self._prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != self._pid:  # the supervisor died before the request took effect
                os._exit(1)

    def finish(self, child: Child, what: str) -> str:
        """Wait for a one-shot command (migrate, ...) and return its output; StartError if it failed."""
        while True:
            self.checkpoint()
            self.echo(child)
            try:
                code = child.process.wait(POLL)
                break
            except subprocess.TimeoutExpired:
                continue
        self.echo(child)
        self.children.remove(child)
        self._record()
        if code != 0:
            raise StartError(f"{what} failed ({describe_exit(code)}).\n{log_tail(child.log_path)}")
        return child.log_path.read_text(errors="replace")

    # --- watching
    def echo(self, child: Child) -> None:
        """Print the child's new noteworthy log lines, prefixed with its name."""
        try:
            if child.log_path.stat().st_size <= child.scanned:
                return
            with child.log_path.open("rb") as log:
                log.seek(child.scanned)
                chunk = log.read(1 << 20)
        except OSError:
            return
        end = chunk.rfind(b"\n") + 1  # a partial last line waits for its end ...
        if end == 0 and len(chunk) == 1 << 20:  # ... unless it alone fills the chunk
            end = len(chunk)
        child.scanned += end
        for line in chunk[:end].decode(errors="replace").splitlines():
            if NOTEWORTHY.search(line):
                say(f"{child.name:>8} | {line}")

    def check(self) -> None:
        """Echo new log lines; raise StartError naming the first child that has died."""
        self.checkpoint()
        for child in self.children:
            self.echo(child)
            code = child.process.poll()
            if code is not None:
                self.checkpoint()  # a Ctrl-C that also reached the sandbox is not a crash
                raise StartError(
                    f"The {child.label} stopped unexpectedly ({describe_exit(code)}).\n{log_tail(child.log_path)}"
                )

    # --- stopping
    def stop_all(self) -> None:
        for child in reversed(self.children):
            self._stop(child)
        self.children.clear()
        self._record()

    def _stop(self, child: Child) -> None:
        if child.process.poll() is None:
            self._signal(child, signal.SIGTERM)
            if not self._wait(child.process, STOP_TIMEOUT):
                say(f"The {child.label} did not stop in time; killing it.")
                self._signal(child, signal.SIGKILL)
                try:
                    child.process.wait(5)
                except subprocess.TimeoutExpired:
                    say(f"The {child.label} (pid {child.pid}) does not die; it may need a manual kill.")
        self.echo(child)
        if child.own_group:
            stop_group(child.pid)  # e.g. Celery's pool processes when the worker itself was killed

    def _signal(self, child: Child, sig: int) -> None:
        try:
            if child.own_group:
                os.killpg(child.pid, sig)
            else:
                child.process.send_signal(sig)
        except ProcessLookupError:
            pass

    def _wait(self, process: subprocess.Popen, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.hurry:
            try:
                process.wait(POLL)
                return True
            except subprocess.TimeoutExpired:
                continue
        return process.poll() is not None

    def _record(self) -> None:
        records = [
            asdict(ChildRecord(c.name, c.pid, _create_time(c.pid), c.own_group))
            for c in self.children
            if c.process.poll() is None
        ]
        path = self.options.run_dir / "children.json"
        if records:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(records))
        else:
            path.unlink(missing_ok=True)


def _load_prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True).prctl  # loaded before fork: the child only calls it


def _create_time(pid: int) -> float:
    """When `pid` started, or 0.0 if it is gone (a zombie counts as gone: it only waits to be reaped)."""
    try:
        process = psutil.Process(pid)
        return 0.0 if process.status() == psutil.STATUS_ZOMBIE else process.create_time()
    except psutil.Error:
        return 0.0


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes in process group `pgid`."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (OSError, psutil.Error):
            continue
    return members


def stop_group(pgid: int, timeout: float = 3.0) -> None:
    """SIGTERM what is left of a child's process group, then SIGKILL what is still there."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        members = group_members(pgid)
        if not members:
            return
        for member in members:
            try:
                member.send_signal(sig)
            except psutil.Error:
                pass
        psutil.wait_procs(members, timeout=timeout)


def stop_leftovers(run_dir: Path) -> None:
    """Stop the children of an earlier supervisor that was killed before it could stop them."""
    path = run_dir / "children.json"
    try:
        records = [ChildRecord(**item) for item in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return
    for record in reversed(records):
        if record.started and _create_time(record.pid) == record.started:
            say(f"Stopping the {LABELS.get(record.name, record.name)} left running by an earlier start.")
            if record.group:
                stop_group(record.pid, STOP_TIMEOUT)
            else:
                try:
                    process = psutil.Process(record.pid)
                    process.terminate()
                    if psutil.wait_procs([process], timeout=STOP_TIMEOUT)[1]:
                        process.kill()
                except psutil.Error:
                    pass
    path.unlink(missing_ok=True)


@contextmanager
def runtime_lock(options: Options) -> Iterator[None]:
    """One supervisor per runtime directory: a second one would share its database, Redis and sandbox."""
    options.run_dir.mkdir(parents=True, exist_ok=True)
    with open(options.run_dir / "lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StartError(
                f"MeshConsole is already running from {options.var_dir} (in another terminal?).\n"
                "Stop it there with Ctrl-C, or start a second one with its own MESHCONSOLE_VAR_DIR and PORT."
            ) from None
        yield


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StartError(
                f"Cannot listen on {host} port {port}: {exc.strerror}.\n"
                f"Is MeshConsole (or another program) already using it? Choose another port, e.g. PORT={port + 1} make run"
            ) from None


def check_cluster(source: str, timeout: float = 5.0) -> str:
    """Make sure the cluster of kubeconfig `source` (a path or a colon-separated list) answers; return its
    API server address."""
    import urllib3
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=source, client_configuration=configuration)
    except (ConfigException, OSError, ValueError) as exc:
        raise StartError(
            f"KUBECONFIG={source} is not a usable kubeconfig: {exc}\n"
            "Fix it, or unset KUBECONFIG to use the built-in sandbox cluster."
        ) from None
    configuration.retries = 1
    with client.ApiClient(configuration) as api:
        try:
            client.VersionApi(api).get_code(_request_timeout=timeout)
        except ApiException as exc:
            raise StartError(
                f"The cluster at {configuration.host} (from KUBECONFIG={source}) refused the console: "
                f"{exc.status} {exc.reason}. Check the credentials in that kubeconfig."
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StartError(
                f"Cannot reach the cluster at {configuration.host} (from KUBECONFIG={source}): {exc}\n"
                "Start that cluster (or fix the kubeconfig), or unset KUBECONFIG to use the built-in sandbox."
            ) from None
    return configuration.host


def http_status(host: str, port: int, path: str, timeout: float = 2.0) -> int | None:
    """Status of GET `path`, or None while nothing answers."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent package is missing
        return False


def child_environment(options: Options) -> dict[str, str]:
    """What every child (and this process's own settings import) sees."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="meshconsole.settings",
        MESHCONSOLE_VAR_DIR=str(options.var_dir),
        PYTHONUNBUFFERED="1",
    )
    # uvicorn here serves plain HTTP; Secure cookies would make logging in impossible from other machines.
    env.setdefault("SECURE_COOKIES", "0")
    if "ALLOWED_HOSTS" not in env and options.host != "127.0.0.1":
        if options.host in WILDCARD_HOSTS:
            served = [*network_addresses(), socket.gethostname()]
        else:
            served = [f"[{options.host}]" if ":" in options.host else options.host]
        env["ALLOWED_HOSTS"] = ",".join(["localhost", "127.0.0.1", "[::1]", *served])
    return env


class Console:
    """The start sequence of the whole console and what it has to undo at the end."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.kubeconfig = os.environ.get("KUBECONFIG")  # a cluster of the user's instead of the sandbox
        self.env = child_environment(options)
        self.supervisor = Supervisor(options, self.env)
        self.embedded_redis = False
        self._redis_checked = 0.0

    def python(self, *args: str) -> list[str]:
        return [sys.executable, *args]

    def run(self) -> int:
        """Start everything, then watch; the exit status for the shell."""
        try:
            self.start()
            while True:
                self.supervisor.check()
                self.check_redis()
                time.sleep(POLL)
        except Interrupted:
            name = signal.Signals(self.supervisor.stop_signal or signal.SIGINT).name
            say(f"\nStopping MeshConsole ({'Ctrl-C' if name == 'SIGINT' else name})...")
            return 0
        except StartError as exc:
            say(f"\n{exc}\n")
            if self.supervisor.children or self.embedded_redis:
                say("Stopping MeshConsole...")
            return 1

    def start(self) -> None:
        opts = self.options
        for directory in (opts.var_dir, opts.log_dir, opts.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        first = not (opts.var_dir / "demo-credentials.txt").exists()
        say(f"Starting MeshConsole (runtime files in {opts.var_dir}, logs in {opts.log_dir}).")
        if first:
            say("First start here: setting up the database, the practice cluster and a demo class.")
        check_port_free(opts.host, opts.port)
        if self.kubeconfig:
            say(f"Cluster: {check_cluster(self.kubeconfig)} (KUBECONFIG={self.kubeconfig})")
        self.start_redis()
        settings = self.load_settings()
        migrate = self.supervisor.launch("migrate", self.python("manage.py", "migrate", "--noinput"))
        static = None
        if not settings.DEBUG:
            static = self.supervisor.launch("static", self.python("manage.py", "collectstatic", "--noinput"))
        if not self.kubeconfig:
            self.start_sandbox()
        self.supervisor.finish(migrate, "Setting up the database (manage.py migrate)")
        if static is not None:
            self.supervisor.finish(static, "Collecting static files (manage.py collectstatic)")
        # The demo class needs only the database and the cluster: create it while the services start.
        demo = self.supervisor.launch("demo", self.python("manage.py", "ensuredemo"))
        self.start_services(settings)
        demo_text = self.supervisor.finish(demo, "Creating the demo class (manage.py ensuredemo)")
        self.wait_until_ready()
        say(f"MeshConsole ready at {opts.url}")
        if opts.host in WILDCARD_HOSTS:
            for address in network_addresses():
                say(f"  from other machines: {url_for(address, opts.port)}")
        say("\n" + "\n".join(f"  {line}" for line in demo_text.strip().splitlines()))
        say(
            "\nCreate your own class with: .venv/bin/python manage.py createclass NAME "
            "--instructor USER:PASS --student USER:PASS ...\nPress Ctrl-C to stop MeshConsole."
        )

    def start_redis(self) -> None:
        if os.environ.get("REDIS_URL"):
            say("Redis: the server at REDIS_URL")
            return
        var_dir = self.options.var_dir
        leftover = redis_embedded.running_pid(var_dir) is not None
        try:
            url = redis_embedded.ensure_running(var_dir)
        except redis_embedded.EmbeddedRedisError as exc:
            raise StartError(
                f"Could not start the built-in Redis: {exc}\nOr set REDIS_URL to use a Redis server."
            ) from None
        self.embedded_redis = True  # ours while we hold the runtime lock, leftover or not
        self.env["REDIS_URL"] = url
        say(f"Redis: built-in ({'left running by an earlier start' if leftover else 'started'})")

    def check_redis(self) -> None:
        """Once a second: the built-in Redis is not our child, so its death shows only by asking it."""
        if not self.embedded_redis or time.monotonic() - self._redis_checked < 1.0:
            return
        self._redis_checked = time.monotonic()
        if redis_embedded.running_pid(self.options.var_dir) is None:
            self.embedded_redis = False
            logfile = redis_embedded.layout(self.options.var_dir).logfile
            raise StartError(f"The built-in Redis stopped unexpectedly.\n{log_tail(logfile)}")

    def load_settings(self) -> Any:
        """The Django settings the children will see; bad environment values fail here, before any child."""
        os.environ.update(self.env)
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        try:
            settings.DEBUG  # noqa: B018 - the first access imports and validates the settings
        except ImproperlyConfigured as exc:
            raise StartError(f"The settings are invalid: {exc}") from None
        database = settings.DATABASES["default"]
        engine = database["ENGINE"].rsplit(".", 1)[-1]
        say(f"Database: SQLite, {database['NAME']}" if engine == "sqlite3" else f"Database: {engine} (DATABASE_URL)")
        return settings

    def start_sandbox(self) -> None:
        from sandbox import process

        opts = self.options
        try:
            sandbox = process.start(
                opts.var_dir,
                "--prometheus-sd",
                str(self.prometheus_targets),
                state_dir=opts.var_dir / "sandbox",
                timeout=SANDBOX_TIMEOUT,
                log_to=opts.log_dir / "sandbox.log",
            )
        except RuntimeError as exc:
            self.supervisor.checkpoint()  # Ctrl-C reaches the sandbox directly and ends it
            raise StartError(f"The practice cluster (sandbox) did not start: {exc}") from None
        self.supervisor.adopt(Child("sandbox", sandbox.process, sandbox.log_path, own_group=False))
        self.env["KUBECONFIG"] = str(sandbox.kubeconfig)
        say(f"Cluster: the built-in sandbox (for kubectl: export KUBECONFIG={sandbox.kubeconfig})")

    @property
    def prometheus_targets(self) -> Path:
        return self.options.var_dir / "prometheus" / "targets.json"

    def start_prometheus(self) -> None:
        """A real Prometheus scraping the sandbox each second when the binary is installed; else the graph
        scrapes the sandbox itself (the embedded source). A cluster of the user's brings its own Prometheus
        (PROMETHEUS_URL)."""
        if os.environ.get("PROMETHEUS_URL"):
            say(f"Metrics: Prometheus at {os.environ['PROMETHEUS_URL']}")
            return
        binary = shutil.which("prometheus")
        if self.kubeconfig or binary is None:
            say("Metrics: the graph scrapes the mesh proxies itself (no prometheus binary found).")
            return
        home = self.options.var_dir / "prometheus"
        home.mkdir(parents=True, exist_ok=True)
        config = home / "prometheus.yml"
        config.write_text(PROMETHEUS_CONFIG.format(targets=self.prometheus_targets))
        port = free_port()
        self.started(
            "prometheus",
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=6h",
            ],
        )
        self.env["PROMETHEUS_URL"] = f"http://127.0.0.1:{port}"
        self.env["PROMETHEUS_SCRAPE_SECONDS"] = "1"

    def start_services(self, settings: Any) -> None:
        self.start_prometheus()
        celery = self.python("-m", "celery", "-A", "meshconsole")
        concurrency = worker_concurrency()
        self.started(
            "worker",
            [*celery, "worker", "--loglevel", "INFO", "--concurrency", str(concurrency)]
            + ["--hostname", "meshconsole@%h", "--without-gossip", "--without-mingle"],
            f"{concurrency} processes",
        )
        if getattr(settings, "CELERY_BEAT_SCHEDULE", None):
            schedule = self.options.run_dir / "celerybeat-schedule"
            self.started("beat", [*celery, "beat", "--loglevel", "INFO", "--schedule", str(schedule)])
        if module_exists("traffic.worker"):
            self.started("traffic", self.python("-m", "traffic.worker"))
        else:
            say("Traffic worker: not installed yet (no traffic.worker module), skipped.")
        if module_exists("meshgraph.worker"):
            self.started("graph", self.python("-m", "meshgraph.worker"))
        self.started(
            "web",
            self.python("-m", "uvicorn", "meshconsole.asgi:application", "--lifespan", "off")
            + ["--host", self.options.host, "--port", str(self.options.port), "--timeout-graceful-shutdown", "5"],
        )

    def started(self, name: str, argv: list[str], note: str = "") -> None:
        child = self.supervisor.launch(name, argv)
        say(f"Started the {child.label} (pid {child.pid}{', ' + note if note else ''}), log {child.log_path}")

    def wait_until_ready(self) -> None:
        opts = self.options
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            self.supervisor.check()
            status = http_status(opts.local_host, opts.port, "/accounts/login/")
            if status is not None and status < 500:
                return
            if status is not None:
                raise StartError(
                    f"The web server answers, but its login page fails (HTTP {status}).\n"
                    f"{log_tail(opts.log_dir / 'web.log')}"
                )
            if time.monotonic() > deadline:
                raise StartError(
                    f"The web server did not answer within {READY_TIMEOUT:.0f}s.\n{log_tail(opts.log_dir / 'web.log')}"
                )
            time.sleep(POLL)

    def stop(self) -> None:
        self.supervisor.stop_all()
        if self.embedded_redis:
            try:
                redis_embedded.stop(self.options.var_dir)
            except redis_embedded.EmbeddedRedisError as exc:
                say(f"Could not stop the built-in Redis: {exc}")


def main() -> int:
    try:
        options = Options.from_env()
    except StartError as exc:
        say(str(exc))
        return 1
    console = Console(options)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, console.supervisor.request_stop)
    try:
        with runtime_lock(options):
            stop_leftovers(options.run_dir)
            try:
                code = console.run()
            finally:
                console.stop()
    except StartError as exc:
        say(str(exc))
        return 1
    say("MeshConsole stopped." if code == 0 else "MeshConsole stopped because of the problem above.")
    return code


if __name__ == "__main__":
    sys.exit(main())
