"""Discovery documents and a minimal OpenAPI v3, built from the resource catalogue.

Everything here is a pure function returning a JSON-able dict; the HTTP layer only picks which one
to serve. The shapes follow what the `kubernetes` Python DynamicClient and kubectl were seen to
accept (see the team's kubeapi research, sections 2 and 4).
"""

from __future__ import annotations

import hashlib
import json
import re

from sandbox.catalog import ResourceType, group_versions, resources_in

SERVER_VERSION = "v1.32.0-sandbox"
OPENAPI_INFO_VERSION = "v1.32.0"

# client-go decides between legacy and aggregated discovery from the response Content-Type alone.
AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")
SCALE_KIND = {"group": "autoscaling", "version": "v1", "kind": "Scale"}

_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_info() -> dict:
    """`GET /version`. DynamicClient stores it whole and reads `gitVersion`."""
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": SERVER_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict:
    """`GET /api` in the legacy format: the core group only has `v1`."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key putting versions in Kubernetes priority order: GA, then beta, then alpha.

    Within a level the higher major (then minor) comes first; names that are not Kubernetes-style
    versions go last, alphabetically.
    """
    m = _KUBE_VERSION.match(version)
    if not m:
        return (3, 0, 0, version)
    major, level, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[level]
    return (rank, -major, -minor, "")


def _sorted_groups() -> list[tuple[str, list[str]]]:
    return [(g, sorted(vs, key=version_priority)) for g, vs in group_versions()]


def _group_entry(group: str, versions: list[str]) -> dict:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    # DynamicClient compares preferredVersion to each entry as whole dicts: reuse an entry's contents.
    return {"name": group, "versions": entries, "preferredVersion": dict(entries[0])}


def api_group_list() -> dict:
    """`GET /apis` in the legacy format."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_entry(g, vs) for g, vs in _sorted_groups()],
    }


def api_group(group: str) -> dict | None:
    """`GET /apis/{group}`, or None for a group the sandbox does not serve."""
    for g, vs in _sorted_groups():
        if g == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(g, vs)}
    return None


def _group_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _resource_entry(rt: ResourceType) -> dict:
    entry: dict = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(ALL_VERBS),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    return entry


def _subresource_entry(rt: ResourceType, sub: str) -> dict:
    entry: dict = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced}
    if sub == "scale":
        entry.update(group=SCALE_KIND["group"], version=SCALE_KIND["version"], kind=SCALE_KIND["kind"])
    else:
        entry["kind"] = rt.kind
    entry["verbs"] = list(SUBRESOURCE_VERBS)
    return entry


def api_resource_list(group: str, version: str) -> dict | None:
    """`GET /api/v1` (group "") or `GET /apis/{group}/{version}`; None if nothing is served there."""
    types = resources_in(group, version)
    if not types:
        return None
    resources: list[dict] = []
    for rt in types:
        resources.append(_resource_entry(rt))
        resources.extend(_subresource_entry(rt, sub) for sub in rt.subresources)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": _group_version(group, version),
        "resources": resources,
    }


def wants_aggregated(accept: str) -> bool:
    """True if the Accept header lists aggregated discovery v2 (kubectl asks for it first)."""
    for media_range in accept.split(","):
        params = {p.strip() for p in media_range.split(";")[1:]}
        if {"as=APIGroupDiscoveryList", "g=apidiscovery.k8s.io", "v=v2"} <= params:
            return True
    return False


def _aggregated_resource(rt: ResourceType, version: str) -> dict:
    kind = {"group": rt.group, "version": version, "kind": rt.kind}
    entry: dict = {
        "resource": rt.plural,
        "responseKind": kind,
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(ALL_VERBS),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    if rt.subresources:
        entry["subresources"] = [
            {
                "subresource": sub,
                "responseKind": dict(SCALE_KIND) if sub == "scale" else dict(kind),
                "verbs": list(SUBRESOURCE_VERBS),
            }
            for sub in rt.subresources
        ]
    return entry


def _aggregated_group(group: str, versions: list[str]) -> dict:
    return {
        "metadata": {"name": group, "creationTimestamp": None},
        "versions": [
            {
                "version": v,
                "freshness": "Current",
                "resources": [_aggregated_resource(rt, v) for rt in resources_in(group, v)],
            }
            for v in versions
        ],
    }


def aggregated_discovery(core: bool) -> dict:
    """`GET /api` (core=True) or `GET /apis` answered as an `APIGroupDiscoveryList` (apidiscovery v2)."""
    groups = [("", ["v1"])] if core else _sorted_groups()
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": [_aggregated_group(g, vs) for g, vs in groups],
    }


def _served_paths() -> list[tuple[str, str, str]]:
    """(openapi path, group, version) for every served group-version, core first."""
    out = [("api/v1", "", "v1")]
    out.extend((f"apis/{g}/{v}", g, v) for g, vs in _sorted_groups() for v in vs)
    return out


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[.\-]", text) if part)


def _patch_operation(rt: ResourceType, group: str, version: str) -> tuple[str, dict]:
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    scope = "Namespaced" if rt.namespaced else ""
    if rt.namespaced:
        path = f"{prefix}/namespaces/{{namespace}}/{rt.plural}/{{name}}"
    else:
        path = f"{prefix}/{rt.plural}/{{name}}"
    path_params = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    if rt.namespaced:
        path_params.append({"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}})
    operation = {
        "operationId": f"patch{_camel(group or 'core')}{_camel(version)}{scope}{rt.kind}",
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": rt.kind},
        # kubectl looks for this query parameter to hand validation to the server (fieldValidation=Strict).
        "parameters": [
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
            {"name": "force", "in": "query", "schema": {"type": "boolean"}},
        ],
        "responses": {"200": {"description": "OK"}, "201": {"description": "Created"}},
    }
    return path, {"parameters": path_params, "patch": operation}


def _build_document(group: str, version: str) -> dict:
    paths = dict(_patch_operation(rt, group, version) for rt in resources_in(group, version))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": OPENAPI_INFO_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    }


def openapi_document(path: str) -> dict | None:
    """`GET /openapi/v3/{path}` for `api/v1` or `apis/{group}/{version}`; None for anything else.

    `components.schemas` is present (kubectl dereferences it) but empty. kubectl's client-side
    apply would take strategic-merge-patch metadata (list merge keys) from a kind's schema found
    there; a skeletal schema carries none, so at best it is ignored (kubectl 1.37 fell back to its
    compiled-in types either way) and at worst lists such as `containers` lose their merge keys.
    """
    wanted = path.strip("/")
    for doc_path, group, version in _served_paths():
        if doc_path == wanted:
            return _build_document(group, version)
    return None


def _document_hash(doc: dict) -> str:
    """Content hash in the style kube-apiserver uses, so a changed catalogue busts kubectl's cache."""
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha512(blob).hexdigest().upper()


def openapi_index() -> dict:
    """`GET /openapi/v3`: every served group-version with a stable, content-derived `?hash=`."""
    paths = {}
    for doc_path, group, version in _served_paths():
        digest = _document_hash(_build_document(group, version))
        paths[doc_path] = {"serverRelativeURL": f"/openapi/v3/{doc_path}?hash={digest}"}
    return {"paths": paths}
