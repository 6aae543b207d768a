"""The Kubernetes REST API over HTTP: discovery, OpenAPI, CRUD, patches, watch, Table output.

Routing follows the real URL scheme (`/api/v1/...`, `/apis/{group}/{version}/...`); every error is a
`Status` body with the code and reason clients map to exceptions (kubeapi.md §10).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import random
from datetime import UTC, datetime

import orjson
import yaml
from aiohttp import web

from sandbox import catalog, discovery, patching, selectors, tables
from sandbox.admission import Invalid, default, validate
from sandbox.catalog import ResourceType
from sandbox.registry import ApiError, Registry, invalid, not_found
from sandbox.store import Store, now_iso

log = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024  # the real API server's request limit
JSON = "application/json"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSONPATCH = "application/json-patch+json"
WATCH_DEFAULT_TIMEOUT = 1800


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    body["details"] = details or {}
    return body


def error_response(e: ApiError) -> web.Response:
    return web.json_response(status_body(e.code, e.reason, e.message, e.details), status=e.code)


def _dumps(obj: object) -> bytes:
    return orjson.dumps(obj)


def respond(obj: object, status: int = 200, content_type: str = JSON) -> web.Response:
    return web.Response(body=_dumps(obj), status=status, headers={"Content-Type": content_type})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


class Target:
    """A parsed resource URL."""

    def __init__(
        self, rt: ResourceType, version: str, namespace: str | None, name: str | None, sub: str | None
    ) -> None:
        self.rt = rt
        self.version = version
        self.namespace = namespace
        self.name = name
        self.sub = sub

    @property
    def api_version(self) -> str:
        return self.rt.api_version(self.version)


class Api:
    def __init__(self, store: Store, registry: Registry, server_address: str = "127.0.0.1:6443") -> None:
        self.store = store
        self.reg = registry
        self.server_address = server_address
        self.app = web.Application(client_max_size=MAX_BODY)
        self.app.router.add_route("*", "/{tail:.*}", self.dispatch)
        self._stopping = asyncio.Event()

    def stop_watches(self) -> None:
        self._stopping.set()

    # ---- dispatch --------------------------------------------------------------------------
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except ApiError as e:
            return error_response(e)
        except web.HTTPRequestEntityTooLarge:
            return error_response(
                ApiError(413, "RequestEntityTooLarge", f"the request body is larger than the limit of {MAX_BODY} bytes")
            )
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("internal error on %s %s", request.method, request.path)
            return error_response(ApiError(500, "InternalError", "an internal error occurred in the sandbox"))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        accept = request.headers.get("Accept", "")
        if request.method not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if parts and parts[0] in ("healthz", "readyz", "livez"):
            return web.Response(text="ok")
        if parts == ["version"]:
            return respond(discovery.version_info())
        if parts == ["api"]:
            if discovery.wants_aggregated(accept):
                return respond(
                    discovery.aggregated_discovery(core=True), content_type=discovery.AGGREGATED_CONTENT_TYPE
                )
            return respond(discovery.api_versions(self.server_address))
        if parts == ["apis"]:
            if discovery.wants_aggregated(accept):
                return respond(
                    discovery.aggregated_discovery(core=False), content_type=discovery.AGGREGATED_CONTENT_TYPE
                )
            return respond(discovery.api_group_list())
        if parts[:2] == ["openapi", "v3"]:
            doc = discovery.openapi_index() if len(parts) == 2 else discovery.openapi_document("/".join(parts[2:]))
            if doc is None:
                raise _generic_not_found()
            return respond(doc)
        if parts == ["apis", "apiextensions.k8s.io", "v1", "customresourcedefinitions"] and request.method == "GET":
            # kubectl's validation looks here for kinds it cannot find; the sandbox's kinds are all built in.
            return respond(
                {
                    "kind": "CustomResourceDefinitionList",
                    "apiVersion": "apiextensions.k8s.io/v1",
                    "metadata": {"resourceVersion": str(self.store.rv)},
                    "items": [],
                }
            )
        if parts == ["api", "v1"]:
            return respond(discovery.api_resource_list("", "v1"))
        if len(parts) == 2 and parts[0] == "apis":
            doc = discovery.api_group(parts[1])
            if doc is None:
                raise _generic_not_found()
            return respond(doc)
        if len(parts) == 3 and parts[0] == "apis":
            doc = discovery.api_resource_list(parts[1], parts[2])
            if doc is None:
                raise _generic_not_found()
            return respond(doc)
        target = self._parse(parts)
        if target is None:
            raise _generic_not_found()
        return await self._resource(request, target)

    def _parse(self, parts: list[str]) -> Target | None:
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            return None
        rt = catalog.lookup(group, version, rest[0])
        if rt is None or (namespace is not None and not rt.namespaced):
            return None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in rt.subresources:
            return None
        return Target(rt, version, namespace, name, sub)

    async def _resource(self, request: web.Request, t: Target) -> web.StreamResponse:
        m = request.method
        if t.name is None:
            if t.rt.namespaced is False and t.namespace is not None:
                raise _generic_not_found()
            if m in ("GET", "HEAD"):
                if _truthy(request.query.get("watch")):
                    return await self._watch(request, t)
                return self._list(request, t)
            if m == "POST":
                return await self._create(request, t)
            if m == "DELETE":
                return self._delete_collection(request, t)
            raise _method_not_allowed()
        if t.rt.namespaced and t.namespace is None:
            raise _generic_not_found()
        if m in ("GET", "HEAD"):
            return self._get(request, t)
        if m == "PUT":
            return await self._replace(request, t)
        if m == "PATCH":
            return await self._patch(request, t)
        if m == "DELETE":
            return await self._delete(request, t)
        raise _method_not_allowed()

    # ---- reads -----------------------------------------------------------------------------
    def _out(self, t: Target, obj: dict) -> dict:
        out = {**obj, "apiVersion": t.api_version}
        if t.sub == "scale":
            return self._scale(t, obj)
        return out

    def _scale(self, t: Target, obj: dict) -> dict:
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: obj["metadata"][k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in obj["metadata"]
            },
            "spec": {"replicas": obj["spec"].get("replicas", 1)},
            "status": {
                "replicas": obj.get("status", {}).get("replicas", 0),
                "selector": selectors_string(obj["spec"].get("selector")),
            },
        }

    def _filters(self, request: web.Request):
        try:
            label = selectors.parse_label_selector(request.query.get("labelSelector", ""))
            field = selectors.parse_field_selector(request.query.get("fieldSelector", ""))
        except selectors.SelectorError as e:
            raise bad_request(str(e)) from None

        def ok(obj: dict) -> bool:
            return label(obj["metadata"].get("labels") or {}) and field(obj)

        return ok

    def _list(self, request: web.Request, t: Target) -> web.Response:
        ok = self._filters(request)
        items = sorted(
            (o for o in self.store.list(t.rt, t.namespace) if ok(o)),
            key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]),
        )
        rv = str(self.store.rv)
        if tables.wants_table(request.headers.get("Accept", "")):
            return respond(tables.to_table(t.rt, items, rv, datetime.now(UTC)))
        return respond(
            {
                "kind": f"{t.rt.kind}List",
                "apiVersion": t.api_version,
                "metadata": {"resourceVersion": rv},
                "items": [{**o, "apiVersion": t.api_version, "kind": t.rt.kind} for o in items],
            }
        )

    def _live(self, t: Target) -> dict:
        obj = self.store.get(t.rt, t.namespace, t.name)
        if obj is None:
            raise not_found(t.rt, t.name)
        return obj

    def _get(self, request: web.Request, t: Target) -> web.Response:
        obj = self._live(t)
        if t.sub is None and tables.wants_table(request.headers.get("Accept", "")):
            return respond(tables.to_table(t.rt, [obj], obj["metadata"]["resourceVersion"], datetime.now(UTC)))
        return respond(self._out(t, obj))

    # ---- bodies ----------------------------------------------------------------------------
    async def _body(self, request: web.Request, yaml_ok: bool = False) -> object:
        raw = await request.read()
        if not raw.strip():
            raise bad_request("the request body is empty")
        try:
            if yaml_ok or request.content_type == "application/yaml":
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as e:
            where = ""
            if isinstance(e, json.JSONDecodeError):
                where = f" at line {e.lineno}, column {e.colno}"
            elif getattr(e, "problem_mark", None) is not None:
                where = f" at line {e.problem_mark.line + 1}, column {e.problem_mark.column + 1}"
            raise bad_request(
                f"the request body could not be decoded{where}: {getattr(e, 'msg', None) or getattr(e, 'problem', None) or e}"
            ) from None

    def _check_object(self, t: Target, obj: object, name_required: bool = True) -> dict:
        if not isinstance(obj, dict):
            raise bad_request("the request body must be a JSON object")
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if api_version is not None and api_version != t.api_version:
            if catalog.by_kind(str(api_version), str(kind)) is not t.rt:
                raise bad_request(
                    f"the API version in the data ({api_version}) does not match the expected API "
                    f"version ({t.api_version})"
                )
        if kind is not None and kind != t.rt.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({t.rt.kind})")
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if t.rt.namespaced:
            if meta.get("namespace") not in (None, "", t.namespace):
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = t.namespace
        elif "namespace" in meta:
            meta.pop("namespace")
        if t.name is not None and meta.get("name") not in (None, t.name):
            raise bad_request("the name of the object does not match the name on the URL")
        if t.name is not None:
            meta["name"] = t.name
        obj["apiVersion"] = t.rt.api_version()
        obj["kind"] = t.rt.kind
        return obj

    def _manager(self, request: web.Request) -> str:
        manager = request.query.get("fieldManager")
        if manager:
            if len(manager) > 128:
                raise ApiError(422, "Invalid", "fieldManager: Too long: may not be more than 128 bytes")
            return manager
        agent = request.headers.get("User-Agent", "unknown")
        return agent.split("/", 1)[0][:128] or "unknown"

    # ---- writes ----------------------------------------------------------------------------
    def _dry_run(self, request: web.Request) -> bool:
        return "All" in request.query.getall("dryRun", [])

    async def _create(self, request: web.Request, t: Target) -> web.Response:
        _require_json(request)
        obj = self._check_object(t, await self._body(request))
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{''.join(random.choices('bcdfghjklmnpqrstvwxz2456789', k=5))}"
        now = now_iso()
        obj = patching.record_update(None, obj, self._manager(request), "Update", t.api_version, now)
        if self._dry_run(request):
            return respond(self._out(t, self._admit_only(t, obj)), 201)
        created = self.reg.create(t.rt, obj)
        return respond(self._out(t, created), 201)

    def _admit_only(self, t: Target, obj: dict) -> dict:
        try:
            validate(t.rt, obj)
        except Invalid as e:
            raise invalid(t.rt, obj["metadata"].get("name", ""), e) from None
        self.reg.check_namespace(t.rt, obj["metadata"].get("namespace"))
        default(t.rt, obj)
        return obj

    def _precondition(self, t: Target, live: dict, body: dict) -> None:
        want = (body.get("metadata") or {}).get("resourceVersion")
        if want and want != live["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {t.rt.qualified} "{t.name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                {"name": t.name, "kind": t.rt.plural, **({"group": t.rt.group} if t.rt.group else {})},
            )

    async def _replace(self, request: web.Request, t: Target) -> web.Response:
        _require_json(request)
        live = self._live(t)
        body = self._check_object(t, await self._body(request))
        if t.sub == "scale":
            replicas = (body.get("spec") or {}).get("replicas")
            return self._set_scale(t, live, replicas)
        self._precondition(t, live, body)
        if not t.rt.builtin and not (body.get("metadata") or {}).get("resourceVersion") and t.sub is None:
            raise ApiError(
                422,
                "Invalid",
                f'{t.rt.kind}.{t.rt.group} "{t.name}" is invalid: metadata.resourceVersion: '
                "Invalid value: 0x0: must be specified for an update",
            )
        new = patching.record_update(live, body, self._manager(request), "Update", t.api_version, now_iso())
        if self._dry_run(request):
            return respond(self._out(t, new))
        return respond(self._out(t, self.reg.update(t.rt, new, status_only=t.sub == "status")))

    async def _patch(self, request: web.Request, t: Target) -> web.Response:
        ctype = request.content_type
        force = request.query.get("force")
        if ctype != APPLY and force is not None:
            raise ApiError(422, "Invalid", "force: Forbidden: may not be specified for non-apply patch")
        if ctype == APPLY:
            return await self._apply(request, t)
        if ctype not in (MERGE, STRATEGIC, JSONPATCH):
            raise _unsupported(t)
        if ctype == STRATEGIC and not t.rt.builtin:
            raise _unsupported(t)
        live = self._live(t)
        patch = await self._body(request)
        base = copy.deepcopy(self._out(t, live))
        try:
            if ctype == JSONPATCH:
                if not isinstance(patch, list):
                    raise bad_request("a json patch must be a JSON array of operations")
                new = patching.json_patch(base, patch)
            else:
                if not isinstance(patch, dict):
                    raise bad_request("a merge patch must be a JSON object")
                self._precondition(t, live, patch)
                new = (
                    patching.strategic_merge_patch(base, patch, t.rt.kind)
                    if ctype == STRATEGIC
                    else patching.merge_patch(base, patch)
                )
        except patching.PatchError as e:
            raise ApiError(
                422 if ctype == JSONPATCH else 400, "Invalid" if ctype == JSONPATCH else "BadRequest", str(e)
            ) from None
        if t.sub == "scale":
            return self._set_scale(t, live, (new.get("spec") or {}).get("replicas"))
        new = self._check_object(t, new)
        new = patching.record_update(live, new, self._manager(request), "Update", t.api_version, now_iso())
        if self._dry_run(request):
            return respond(self._out(t, new))
        return respond(self._out(t, self.reg.update(t.rt, new, status_only=t.sub == "status")))

    async def _apply(self, request: web.Request, t: Target) -> web.Response:
        manager = request.query.get("fieldManager")
        if not manager:
            raise ApiError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
                {
                    "group": "meta.k8s.io",
                    "kind": "PatchOptions",
                    "causes": [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value: is required for apply patch",
                            "field": "fieldManager",
                        }
                    ],
                },
            )
        force = _truthy(request.query.get("force"))
        applied = self._check_object(t, await self._body(request, yaml_ok=True))
        live = self.store.get(t.rt, t.namespace, t.name)
        if live is not None:
            self._precondition(t, live, applied)
        try:
            new = patching.apply(
                copy.deepcopy(self._out(t, live)) if live else None,
                applied,
                manager,
                force,
                t.rt.kind,
                t.api_version,
                now_iso(),
            )
        except patching.ApplyConflict as e:
            msg = patching.conflict_message(e.conflicts, t.api_version)
            causes = [
                {"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using {t.api_version}', "field": f}
                for m, f in e.conflicts
            ]
            raise ApiError(409, "Conflict", msg, {"causes": causes}) from None
        except patching.PatchError as e:
            raise bad_request(str(e)) from None
        new = self._check_object(t, new)
        if self._dry_run(request):
            return respond(
                self._out(t, self._admit_only(t, new) if live is None else new), 201 if live is None else 200
            )
        if live is None:
            if t.sub is not None:
                raise not_found(t.rt, t.name)
            return respond(self._out(t, self.reg.create(t.rt, new)), 201)
        return respond(self._out(t, self.reg.update(t.rt, new, status_only=t.sub == "status")))

    def _set_scale(self, t: Target, live: dict, replicas: object) -> web.Response:
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(
                422,
                "Invalid",
                f'Scale.autoscaling "{t.name}" is invalid: spec.replicas: Invalid value: '
                f"{replicas}: must be greater than or equal to 0",
            )
        new = copy.deepcopy(live)
        new["spec"]["replicas"] = replicas
        updated = self.reg.update(t.rt, new)
        return respond(self._scale(t, updated))

    async def _delete(self, request: web.Request, t: Target) -> web.Response:
        live = self._live(t)
        raw = await request.read()
        if raw.strip():
            try:
                opts = json.loads(raw)
            except ValueError:
                raise bad_request("the DeleteOptions body could not be decoded") from None
            pre = (opts or {}).get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != live["metadata"]["uid"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in "
                    f"object meta: {live['metadata']['uid']}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != live["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", "Precondition failed: resourceVersion does not match")
        if self._dry_run(request):
            return respond(self._out(t, live))
        gone = self.reg.delete(t.rt, t.namespace, t.name)
        if t.rt.kind == "Namespace":
            return respond(self._out(t, gone))
        details = {"name": t.name, "kind": t.rt.plural, "uid": live["metadata"]["uid"]}
        if t.rt.group:
            details["group"] = t.rt.group
        return respond({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})

    def _delete_collection(self, request: web.Request, t: Target) -> web.Response:
        ok = self._filters(request)
        items = [o for o in self.store.list(t.rt, t.namespace) if ok(o)]
        for o in items:
            self.reg.delete(t.rt, o["metadata"].get("namespace"), o["metadata"]["name"])
        return respond(
            {
                "kind": f"{t.rt.kind}List",
                "apiVersion": t.api_version,
                "metadata": {"resourceVersion": str(self.store.rv)},
                "items": [{**o, "apiVersion": t.api_version} for o in items],
            }
        )

    # ---- watch -----------------------------------------------------------------------------
    async def _watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        ok = self._filters(request)
        q = request.query
        as_table = tables.wants_table(request.headers.get("Accept", ""))
        initial = _truthy(q.get("sendInitialEvents"))
        rv_param = q.get("resourceVersion", "")
        try:
            timeout = float(q.get("timeoutSeconds") or WATCH_DEFAULT_TIMEOUT)
        except ValueError:
            raise bad_request("timeoutSeconds must be a number") from None
        if rv_param not in ("", "0"):
            try:
                since = int(rv_param)
            except ValueError:
                raise bad_request(f'invalid resource version "{rv_param}"') from None
        else:
            since = None
        watcher = self.store.watch(t.rt, t.namespace)
        resp = web.StreamResponse(headers={"Content-Type": JSON})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        last = 0

        async def send(kind: str, obj: dict) -> None:
            if as_table and kind in ("ADDED", "MODIFIED", "DELETED"):
                payload = tables.to_table(t.rt, [obj], obj["metadata"]["resourceVersion"], datetime.now(UTC))
            else:
                payload = {**obj, "apiVersion": t.api_version, "kind": t.rt.kind} if kind != "ERROR" else obj
            await resp.write(_dumps({"type": kind, "object": payload}) + b"\n")

        try:
            if since is None or initial:
                for o in sorted(self.store.list(t.rt, t.namespace), key=lambda o: o["metadata"]["name"]):
                    if ok(o):
                        await send("ADDED", o)
                last = self.store.rv
                if initial:
                    await send(
                        "BOOKMARK",
                        {
                            "kind": t.rt.kind,
                            "apiVersion": t.api_version,
                            "metadata": {
                                "resourceVersion": str(last),
                                "annotations": {"k8s.io/initial-events-end": "true"},
                            },
                        },
                    )
            else:
                if since < self.store.oldest_rv() - 1:
                    await send(
                        "ERROR", status_body(410, "Expired", f"too old resource version: {since} ({self.store.rv})")
                    )
                    return resp
                for ev in list(self.store.events_since(since)):
                    if ev.rt is t.rt and (t.namespace is None or ev.obj["metadata"].get("namespace") == t.namespace):
                        await self._send_event(send, ev, ok)
                last = self.store.rv
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            stop = asyncio.ensure_future(self._stopping.wait())
            get: asyncio.Future | None = None
            try:
                while True:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    get = asyncio.ensure_future(watcher.queue.get())
                    done, _ = await asyncio.wait({get, stop}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                    if get not in done:
                        break
                    ev = get.result()
                    if ev.rv <= last:
                        continue
                    await self._send_event(send, ev, ok)
            finally:
                stop.cancel()
                if get is not None:
                    get.cancel()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.unwatch(watcher)
        return resp

    @staticmethod
    async def _send_event(send, ev, ok) -> None:
        now_ok = ok(ev.obj)
        was_ok = ok(ev.old) if ev.old is not None else now_ok
        if ev.type == "MODIFIED":
            if now_ok and not was_ok:
                await send("ADDED", ev.obj)
            elif was_ok and not now_ok:
                await send("DELETED", ev.obj)
            elif now_ok:
                await send("MODIFIED", ev.obj)
        elif now_ok:
            await send(ev.type, ev.obj)


def selectors_string(selector: dict | None) -> str:
    parts = [f"{k}={v}" for k, v in ((selector or {}).get("matchLabels") or {}).items()]
    return ",".join(parts)


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")


def _generic_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def _method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def _unsupported(t: Target) -> ApiError:
    accepted = [JSONPATCH, MERGE, APPLY] + ([STRATEGIC] if t.rt.builtin else [])
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}",
    )


def _require_json(request: web.Request) -> None:
    ctype = request.content_type
    if ctype not in (JSON, "application/yaml", "application/octet-stream") and request.can_read_body:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted "
            f'media types include: application/json, application/yaml (got "{ctype}")',
        )
