"""The kubelet: gives pods an address, runs their containers as built-in apps, and reports status.

Container images map to built-in workloads (`images.py`); an unknown image leaves the container in
`ImagePullBackOff` exactly where a real node would. Every pod also gets an egress proxy on
`<podIP>:15001`, which its apps use as `HTTP_PROXY` to reach cluster names.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping
from pathlib import Path

import aiohttp
from aiohttp import web

from sandbox import catalog, images
from sandbox.apphost import AppHost, AppHostError
from sandbox.gateway import GatewayServer
from sandbox.mesh.pki import MeshCA
from sandbox.mesh.sidecar import OUTBOUND_PORT, MeshProxy, Sidecar
from sandbox.mesh.workload import has_sidecar
from sandbox.network import Network
from sandbox.proxies import EgressProxy
from sandbox.store import Event, Store, now_iso

log = logging.getLogger(__name__)

PODS = catalog.get("", "pods")
CONFIGMAPS = catalog.get("", "configmaps")
SECRETS = catalog.get("", "secrets")
EGRESS_PORT = OUTBOUND_PORT  # the same port whether a sidecar or the plain egress proxy holds it
NODE_NAME = "sandbox"


class ConfigError(Exception):
    """A container cannot be configured (CreateContainerConfigError)."""


class ContainerRun:
    """One running container: a server app, a run-to-completion command, or an idle process."""

    def __init__(self, name: str, workload: images.Workload) -> None:
        self.name = name
        self.workload = workload
        self.runner: web.AppRunner | None = None
        self.host: AppHost | None = None  # the app host serving this container, when not this process
        self.host_id = 0
        self.task: asyncio.Task | None = None
        self.exit_code: int | None = None
        self.output = ""

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()
        if self.host is not None:
            host, self.host = self.host, None
            try:
                await host.stop_app(self.host_id)
            except AppHostError as e:
                log.warning("stopping container %s: %s", self.name, e)
        if self.task and not self.task.done():
            self.task.cancel()


class PodRun:
    def __init__(self, uid: str, namespace: str, name: str, ip: str) -> None:
        self.uid = uid
        self.namespace = namespace
        self.name = name
        self.ip = ip
        self.app_ip = ip  # where the pod's apps listen: the pod address, or its private one behind a sidecar
        self.containers: list[ContainerRun] = []
        self.egress: EgressProxy | None = None
        self.proxy: MeshProxy | None = None  # the sidecar, or the gateway proxy of a gateway pod
        self.bound: list[tuple[str, int]] = []


class Kubelet:
    def __init__(
        self, store: Store, network: Network, volumes_dir: Path | None, ca: MeshCA, app_workers: int = 0
    ) -> None:
        self.store = store
        # Server apps run in these worker processes (none: in this process, on its event loop).
        self.app_hosts = [AppHost(i) for i in range(app_workers)]
        self.network = network
        self.volumes_dir = volumes_dir
        self.ca = ca
        self.pods: dict[str, PodRun] = {}
        self._tasks: set[asyncio.Task] = set()
        self.session: aiohttp.ClientSession | None = None
        store.add_listener(self._on_event)

    async def start(self) -> None:
        for host in self.app_hosts:
            host.start_process()
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=256, ttl_dns_cache=None),
            timeout=aiohttp.ClientTimeout(total=30),
            auto_decompress=False,
        )
        for pod in list(self.store.list(PODS)):
            if pod.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
                ip = pod.get("status", {}).get("podIP")
                if ip:
                    self.network.pods.reserve(ip)
                self._spawn(self._run_pod(pod, recovered_ip=ip))

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for run in list(self.pods.values()):
            await self._stop_pod(run)
        if self.session:
            await self.session.close()
        for host in self.app_hosts:
            host.stop_process()

    def _spawn(self, coro) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _on_event(self, ev: Event) -> None:
        if ev.rt is not PODS:
            return
        if ev.type == "ADDED":
            self._spawn(self._run_pod(ev.obj))
        elif ev.type == "DELETED":
            run = self.pods.pop(ev.obj["metadata"]["uid"], None)
            if run:
                self._spawn(self._stop_pod(run))

    # ---- pod lifecycle ---------------------------------------------------------------------
    def _current(self, run: PodRun) -> dict | None:
        pod = self.store.get(PODS, run.namespace, run.name)
        if pod is None or pod["metadata"]["uid"] != run.uid:
            return None
        return pod

    def _write_status(self, run: PodRun, status: dict, node: bool = False) -> None:
        pod = self._current(run)
        if pod is None:
            return
        new = {**pod, "status": status}
        if node and pod.get("spec", {}).get("nodeName") != NODE_NAME:
            new["spec"] = {**pod["spec"], "nodeName": NODE_NAME}
        self.store.update(PODS, new, keep_generation=True)

    async def _run_pod(self, pod: dict, recovered_ip: str | None = None) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        if uid in self.pods:
            return
        ip = recovered_ip or self.network.pods.take()
        run = PodRun(uid, meta["namespace"], meta["name"], ip)
        self.pods[uid] = run
        started = pod.get("status", {}).get("startTime") or now_iso()
        base = {
            "phase": "Pending",
            "hostIP": self.network.node_ip,
            "hostIPs": [{"ip": self.network.node_ip}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": started,
            "qosClass": "BestEffort",
        }
        self._write_status(run, {**base, "conditions": [_cond("PodScheduled", True, started)]}, node=True)

        if self.session is None:
            return
        if has_sidecar(pod):
            run.app_ip = self.network.inner(ip)
            run.proxy = Sidecar(self.store, self.network, self.ca, pod, ip, run.app_ip)
            await run.proxy.start()
        else:
            sock = self.network.listen(ip, EGRESS_PORT)
            run.bound.append((ip, EGRESS_PORT))
            run.egress = EgressProxy(self.store, self.network, run.namespace, self.session)
            await run.egress.start(sock)

        spec = pod.get("spec", {})
        init_statuses = [_terminated_status(c, 0, "Completed", started) for c in spec.get("initContainers") or []]
        statuses: dict[str, dict] = {}
        for c in spec.get("containers") or []:
            statuses[c["name"]] = await self._start_container(run, pod, c, started)
        if self._current(run) is None:
            await self._stop_pod(run)
            return
        self._publish(run, pod, base, init_statuses, statuses)

    async def _start_container(self, run: PodRun, pod: dict, c: dict, started: str) -> dict:
        image = c.get("image", "")
        workload = images.workload_for(image, pod)
        if workload is None:
            return _waiting_status(c, "ImagePullBackOff", f'Back-off pulling image "{image}"')
        try:
            env = self._env(run, pod, c)
        except ConfigError as e:
            return _waiting_status(c, "CreateContainerConfigError", str(e))
        cr = ContainerRun(c["name"], workload)
        run.containers.append(cr)
        if workload.kind == "server":
            host = min(self.app_hosts, key=lambda h: h.apps) if self.app_hosts else None
            if host is None:
                cr.runner = web.AppRunner(workload.factory(env), access_log=None)
                await cr.runner.setup()
            port = int(env.get("PORT") or workload.port)
            try:
                sock = self.network.listen(run.app_ip, port)
                if isinstance(run.proxy, Sidecar):
                    await run.proxy.add_inbound(port)
            except OSError as e:
                return _terminated_status(c, 1, "Error", started, f"cannot listen on {run.ip}:{port}: {e}")
            run.bound.append((run.app_ip, port))
            if run.app_ip != run.ip:
                run.bound.append((run.ip, port))
            if host is None:
                await web.SockSite(cr.runner, sock).start()
            else:
                cr.host, cr.host_id = host, host.place()  # set first: the pod may be deleted while the app starts
                try:
                    await host.start_app(cr.host_id, workload.name, env, sock)
                except AppHostError as e:
                    cr.host = None
                    return _terminated_status(c, 1, "Error", started, str(e))
                finally:
                    sock.close()  # the app host holds its own copy now
        elif workload.kind == "gateway":
            gw_name = (pod["metadata"].get("labels") or {}).get("gateway.networking.k8s.io/gateway-name", "")
            run.proxy = GatewayServer(self.store, self.network, self.ca, pod, run.ip, gw_name)
            await run.proxy.start()
        elif workload.kind == "command":
            args = list(c.get("command") or []) + list(c.get("args") or [])
            cr.task = asyncio.get_running_loop().create_task(self._run_command(run, pod, cr, args, env))
            return _running_status(c, started, ready=False)
        return _running_status(c, started, ready=True)

    async def _run_command(self, run: PodRun, pod: dict, cr: ContainerRun, args: list[str], env: dict) -> None:
        try:
            cr.exit_code, cr.output = await cr.workload.run(args, env)
        except Exception as e:  # a crashing command exits non-zero, as a process would
            cr.exit_code, cr.output = 1, f"{type(e).__name__}: {e}"
        current = self._current(run)
        if current is None:
            return
        status = dict(current.get("status", {}))
        finished = now_iso()
        statuses = []
        for cs in status.get("containerStatuses") or []:
            if cs["name"] == cr.name:
                reason = "Completed" if cr.exit_code == 0 else "Error"
                cs = {
                    **cs,
                    "ready": False,
                    "started": False,
                    "state": {
                        "terminated": {
                            "exitCode": cr.exit_code,
                            "reason": reason,
                            "message": cr.output[-1024:],
                            "startedAt": status.get("startTime"),
                            "finishedAt": finished,
                        }
                    },
                }
            statuses.append(cs)
        status["containerStatuses"] = statuses
        terminated = [cs["state"].get("terminated") for cs in statuses]
        if all(terminated) and pod.get("spec", {}).get("restartPolicy") in ("Never", "OnFailure"):
            ok = all(t["exitCode"] == 0 for t in terminated)
            status["phase"] = "Succeeded" if ok else "Failed"
            status["conditions"] = [
                _cond("PodScheduled", True, status.get("startTime")),
                _cond("Initialized", True, status.get("startTime")),
                _cond("ContainersReady", False, finished, "PodCompleted"),
                _cond("Ready", False, finished, "PodCompleted"),
            ]
        self._write_status(run, status)

    def _publish(self, run: PodRun, pod: dict, base: dict, init: list, statuses: dict[str, dict]) -> None:
        current = self._current(run)
        if current is None:
            return
        status = dict(current.get("status", {}))
        # A command container may have finished already and written its own terminated state.
        for cs in status.get("containerStatuses") or []:
            if cs.get("state", {}).get("terminated"):
                statuses[cs["name"]] = cs
        all_ready = all(s.get("ready") for s in statuses.values())
        started = base["startTime"]
        now = now_iso()
        waiting = any("waiting" in s.get("state", {}) for s in statuses.values())
        terminated = all("terminated" in s.get("state", {}) for s in statuses.values())
        phase = (
            status.get("phase")
            if terminated and status.get("phase") in ("Succeeded", "Failed")
            else ("Pending" if waiting else "Running")
        )
        new = {
            **base,
            "phase": phase,
            "conditions": status.get("conditions")
            if phase in ("Succeeded", "Failed")
            else [
                _cond("PodReadyToStartContainers", True, now),
                _cond("Initialized", True, started),
                _cond("Ready", all_ready, now, None if all_ready else "ContainersNotReady"),
                _cond("ContainersReady", all_ready, now, None if all_ready else "ContainersNotReady"),
                _cond("PodScheduled", True, started),
            ],
            "containerStatuses": list(statuses.values()),
        }
        if init:
            new["initContainerStatuses"] = init
        self._write_status(run, new)

    async def _stop_pod(self, run: PodRun) -> None:
        for cr in run.containers:
            try:
                await cr.stop()
            except Exception:
                log.exception("stopping container %s of %s/%s", cr.name, run.namespace, run.name)
        if run.egress:
            await run.egress.stop()
        if run.proxy:
            await run.proxy.stop()
        for ip, port in run.bound:
            self.network.forget(ip, port)
        self.network.pods.release(run.ip)

    # ---- environment -----------------------------------------------------------------------
    def _env(self, run: PodRun, pod: dict, c: dict) -> dict[str, str]:
        ns = run.namespace
        env: dict[str, str] = {
            "HOSTNAME": run.name,
            "KUBERNETES_SERVICE_HOST": self.network.node_ip,
            "HTTP_PROXY": "http://{}:{}".format(*self.network.real(run.ip, EGRESS_PORT)),  # egress or sidecar
        }
        if self.volumes_dir is not None:
            env["SANDBOX_VOLUME_ROOT"] = str(self.volumes_dir / ns)
        for src in c.get("envFrom") or []:
            prefix = src.get("prefix", "")
            if "configMapRef" in src:
                ref = src["configMapRef"]
                env.update({prefix + k: v for k, v in self._config_data(CONFIGMAPS, ns, ref).items()})
            elif "secretRef" in src:
                env.update({prefix + k: v for k, v in self._config_data(SECRETS, ns, src["secretRef"]).items()})
        for e in c.get("env") or []:
            name = e.get("name")
            if "value" in e:
                env[name] = _expand(str(e["value"]), env)
            elif "valueFrom" in e:
                value = self._value_from(ns, pod, e["valueFrom"], run)
                if value is not None:
                    env[name] = value
        volume_dir = self._volume_dir(run, pod, c)
        if volume_dir is not None:
            env.setdefault("KVSTORE_DATA_DIR", str(volume_dir))
        return env

    def _config_data(self, rt, ns: str, ref: Mapping) -> dict[str, str]:
        obj = self.store.get(rt, ns, ref.get("name", ""))
        if obj is None:
            if ref.get("optional"):
                return {}
            raise ConfigError(f'{rt.kind.lower()} "{ref.get("name")}" not found')
        data = dict(obj.get("data") or {})
        if rt is SECRETS:
            data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
        return data

    def _value_from(self, ns: str, pod: dict, src: Mapping, run: PodRun) -> str | None:
        for key, rt in (("configMapKeyRef", CONFIGMAPS), ("secretKeyRef", SECRETS)):
            if key in src:
                ref = src[key]
                data = self._config_data(rt, ns, ref)
                if ref.get("key") not in data:
                    if ref.get("optional"):
                        return None
                    raise ConfigError(f"couldn't find key {ref.get('key')} in {rt.kind} {ns}/{ref.get('name')}")
                return data[ref["key"]]
        if "fieldRef" in src:
            path = src["fieldRef"].get("fieldPath", "")
            return {
                "metadata.name": run.name,
                "metadata.namespace": ns,
                "status.podIP": run.ip,
                "status.hostIP": self.network.node_ip,
                "spec.nodeName": NODE_NAME,
                "spec.serviceAccountName": pod.get("spec", {}).get("serviceAccountName", "default"),
            }.get(path, "")
        return None

    def _volume_dir(self, run: PodRun, pod: dict, c: dict) -> Path | None:
        """A persistent directory for a container mounting a PersistentVolumeClaim."""
        if self.volumes_dir is None:
            return None
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in pod.get("spec", {}).get("volumes") or []
            if "persistentVolumeClaim" in v
        }
        for m in c.get("volumeMounts") or []:
            claim = claims.get(m.get("name"))
            if claim:
                path = self.volumes_dir / run.namespace / claim
                path.mkdir(parents=True, exist_ok=True)
                return path
        return None


def _expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion over variables defined earlier."""
    for k, v in env.items():
        value = value.replace(f"$({k})", v)
    return value


def _cond(kind: str, ok: bool, when: str | None, reason: str | None = None) -> dict:
    c = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None, "lastTransitionTime": when}
    if reason:
        c["reason"] = reason
    return c


def _base_status(c: dict) -> dict:
    return {"name": c["name"], "image": c.get("image", ""), "imageID": "", "restartCount": 0}


def _running_status(c: dict, started: str, ready: bool) -> dict:
    return {
        **_base_status(c),
        "ready": ready,
        "started": True,
        "containerID": f"sandbox://{c['name']}",
        "state": {"running": {"startedAt": started}},
    }


def _waiting_status(c: dict, reason: str, message: str) -> dict:
    return {
        **_base_status(c),
        "ready": False,
        "started": False,
        "state": {"waiting": {"reason": reason, "message": message}},
    }


def _terminated_status(c: dict, code: int, reason: str, started: str, message: str = "") -> dict:
    term = {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": started}
    if message:
        term["message"] = message
    return {
        **_base_status(c),
        "ready": code == 0 and reason == "Completed",
        "started": False,
        "state": {"terminated": term},
    }
