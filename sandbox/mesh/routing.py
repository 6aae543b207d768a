"""Client-side routing as an Istio sidecar does it: VirtualService and DestinationRule semantics.

Pure functions over stored objects, so the sidecar proxies stay thin and the rules are testable
without traffic. Selection follows Istio's visibility rules (`exportTo`, a VirtualService applies
to sidecars only when it is bound to the `mesh` gateway) and matching follows Envoy's route table
(rules tried in order, first match wins, regexes must match the whole value).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import parse_qsl

from multidict import CIMultiDict

from sandbox import catalog
from sandbox.store import Store

VIRTUAL_SERVICES = catalog.get("networking.istio.io", "virtualservices")
DESTINATION_RULES = catalog.get("networking.istio.io", "destinationrules")
ROOT_NAMESPACE = "istio-system"  # Istio's root configuration namespace
DOMAIN = "svc.cluster.local"
MESH_GATEWAY = "mesh"


class Retries(NamedTuple):
    attempts: int
    per_try_timeout: float | None
    retry_on: frozenset[str]  # Envoy retry conditions; bare status codes ("503") stand for themselves


# What Istio applies to every outbound route whose VirtualService does not say otherwise.
DEFAULT_RETRY_ON = frozenset(
    {"connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes", "503"}
)
DEFAULT_RETRIES = Retries(2, None, DEFAULT_RETRY_ON)


# ---- durations and regexes ----------------------------------------------------------------------
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(s: str) -> float:
    """Seconds in an Istio duration ("1s", "250ms", "1.5s", "1m", "1h30m"); Go's syntax, as Istio accepts.

    Raises ValueError for anything else (a bare number other than "0", unknown units, empty text).
    """
    if not isinstance(s, str):
        raise ValueError(f"duration must be a string such as 1s or 250ms, not {s!r}")
    text = s.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if m is None:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if not body or pos != len(body):
        raise ValueError(f"invalid duration {s!r}: use a number with a unit, such as 1s, 250ms or 1m")
    return sign * total


# RE2 (which Envoy and Istio's validation use) has no lookaround, backreferences, atomic groups,
# possessive quantifiers or conditionals; Python's `re` has them, so they are refused explicitly.
# The checks run on the pattern with escapes and character classes blanked out.
_RE2_UNSUPPORTED = (
    (re.compile(r"\(\?<?[=!]"), "lookaround assertions are not supported"),
    (re.compile(r"\(\?P="), "backreferences are not supported"),
    (re.compile(r"\(\?>"), "atomic groups are not supported"),
    (re.compile(r"\(\?\("), "conditional groups are not supported"),
    (re.compile(r"[*+?}]\+"), "possessive quantifiers are not supported"),
)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_CLASS = re.compile(r"\[\^?\]?[^\]]*\]")
_regex_cache: dict[str, re.Pattern[str]] = {}


def compile_regex(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern with Python's `re`; raises ValueError with RE2's reason when invalid."""
    if not isinstance(pattern, str):
        raise ValueError(f"regex must be a string, not {pattern!r}")
    cached = _regex_cache.get(pattern)
    if cached is not None:
        return cached
    if any(m.group(1) in "123456789" for m in _ESCAPE.finditer(pattern)):
        raise ValueError("backreferences are not supported")
    scrubbed = _CLASS.sub("x", _ESCAPE.sub("x", pattern))
    for bad, why in _RE2_UNSUPPORTED:
        if bad.search(scrubbed):
            raise ValueError(why)
    translated = re.sub(r"(?<!\\)\(\?<", "(?P<", pattern).replace("\\z", "\\Z")  # RE2 spellings
    try:
        compiled = re.compile(translated)
    except re.error as e:
        raise ValueError(str(e)) from None
    _regex_cache[pattern] = compiled
    return compiled


# ---- hosts, visibility and selection ------------------------------------------------------------
def resolve_host(host: str, namespace: str) -> str:
    """Istio's short-name rule: a name without dots is a Service in the rule's own namespace."""
    host = host.strip().lower().rstrip(".")
    if host and "." not in host and host != "*":
        return f"{host}.{namespace}.{DOMAIN}"
    return host


def host_specificity(pattern: str, host: str) -> tuple[int, int] | None:
    """How well a (resolved) host pattern matches `host`: exact beats wildcard, longer beats shorter."""
    if pattern == host:
        return (1, len(pattern))
    if pattern == "*":
        return (0, 0)
    if pattern.startswith("*") and host.endswith(pattern[1:]):
        return (0, len(pattern))
    return None


def visible_to(obj: dict, namespace: str) -> bool:
    """`exportTo`: absent means every namespace, "." the object's own, "~" none, others by name."""
    export = (obj.get("spec") or {}).get("exportTo") or ["*"]
    own = obj["metadata"].get("namespace", "")
    for entry in export:
        if entry == "*" or (entry == "." and namespace == own) or entry == namespace:
            return True
    return False


def _age_key(obj: dict) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return (meta.get("creationTimestamp", ""), meta.get("namespace", ""), meta.get("name", ""))


def _binds_mesh(spec: dict) -> bool:
    gateways = spec.get("gateways") or [MESH_GATEWAY]
    return MESH_GATEWAY in gateways


def find_virtual_service(store: Store, client_namespace: str, host: str, port: int) -> dict | None:
    """The VirtualService a sidecar in `client_namespace` applies to requests for `host` (an FQDN).

    `port` does not take part: a VirtualService binds a host on every port, and per-port rules
    are `match.port` conditions that `route` evaluates. Among several candidates the client's own
    namespace wins, then the most specific host, then the oldest object.
    """
    host = host.lower().rstrip(".")
    best: tuple | None = None
    chosen = None
    for vs in store.list(VIRTUAL_SERVICES):
        spec = vs.get("spec") or {}
        ns = vs["metadata"].get("namespace", "")
        if not _binds_mesh(spec) or not visible_to(vs, client_namespace):
            continue
        scores = [host_specificity(resolve_host(h, ns), host) for h in spec.get("hosts") or [] if isinstance(h, str)]
        score = max((s for s in scores if s is not None), default=None)
        if score is None:
            continue
        key = (ns != client_namespace, (-score[0], -score[1]), _age_key(vs))
        if best is None or key < best:
            best, chosen = key, vs
    return chosen


def select_destination_rule(rules: Iterable[dict], client_namespace: str, host_fqdn: str) -> dict | None:
    """Istio's DestinationRule lookup among `rules`: the client's namespace first, then the
    Service's namespace, then the root namespace; within one, the most specific host, then the oldest.

    An empty `client_namespace` means the caller has already chosen the candidates: no visibility
    check and no namespace preference.
    """
    host = host_fqdn.lower().rstrip(".")
    parts = host.split(".")
    service_ns = parts[1] if len(parts) > 2 and host.endswith("." + DOMAIN) else None
    best: tuple | None = None
    chosen = None
    for dr in rules:
        spec = dr.get("spec") or {}
        ns = dr["metadata"].get("namespace", "")
        if client_namespace:
            if not visible_to(dr, client_namespace):
                continue
            if ns == client_namespace:
                rank = 0
            elif ns == service_ns:
                rank = 1
            elif ns == ROOT_NAMESPACE:
                rank = 2
            else:
                continue
        else:
            rank = 0
        pattern = spec.get("host")
        score = host_specificity(resolve_host(pattern, ns), host) if isinstance(pattern, str) else None
        if score is None:
            continue
        key = (rank, (-score[0], -score[1]), _age_key(dr))
        if best is None or key < best:
            best, chosen = key, dr
    return chosen


def find_destination_rule(store: Store, client_ns: str, host_fqdn: str) -> dict | None:
    """The DestinationRule a sidecar in `client_ns` uses for `host_fqdn` (see `select_destination_rule`)."""
    return select_destination_rule(store.list(DESTINATION_RULES), client_ns, host_fqdn)


# ---- the decision ---------------------------------------------------------------------------------
@dataclass
class HeaderOps:
    """Header manipulation in Envoy's order: remove, then set (replace), then add (append)."""

    set: dict[str, str] = field(default_factory=dict)
    add: dict[str, str] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)

    def merge(self, spec: object) -> None:
        """Fold in an Istio `request`/`response` operations block; later blocks win on `set`."""
        if not isinstance(spec, dict):
            return
        self.set.update({str(k): str(v) for k, v in (spec.get("set") or {}).items()})
        self.add.update({str(k): str(v) for k, v in (spec.get("add") or {}).items()})
        self.remove.extend(str(h) for h in spec.get("remove") or [] if str(h) not in self.remove)

    def apply(self, headers: CIMultiDict[str]) -> None:
        for name in self.remove:
            headers.popall(name, None)
        for name, value in self.set.items():
            headers[name] = value
        for name, value in self.add.items():
            headers.add(name, value)

    def __bool__(self) -> bool:
        return bool(self.set or self.add or self.remove)


@dataclass
class RouteDecision:
    """What a sidecar does with one request. Only `destination_host` is set when no VirtualService applies.

    `abort`/`delay` carry the configured percentage (0–100); the proxy rolls the dice. `retries`
    None means the VirtualService did not set any, so `DEFAULT_RETRIES` applies; `timeout` None
    means no route timeout. `missing_subset` is a route to a subset no DestinationRule defines
    (Envoy answers 503, response flag NC); `no_route` is a VirtualService with no matching rule
    (404, flag NR).
    """

    destination_host: str
    port: int | None = None
    subset: str | None = None
    subset_labels: dict[str, str] = field(default_factory=dict)
    missing_subset: bool = False
    abort: tuple[int, float] | None = None
    delay: tuple[float, float] | None = None
    timeout: float | None = None
    retries: Retries | None = None
    rule_index: int | None = None
    rule_name: str | None = None
    request_headers: HeaderOps = field(default_factory=HeaderOps)
    response_headers: HeaderOps = field(default_factory=HeaderOps)
    rewrite_path: str | None = None  # the request path (and query) after `rewrite.uri`
    rewrite_authority: str | None = None
    redirect: tuple[int, str] | None = None  # (status, Location)
    direct_response: tuple[int, str] | None = None  # (status, body)
    no_route: bool = False


# ---- matching -------------------------------------------------------------------------------------
def _string_matches(spec: object, value: str | None, ignore_case: bool = False) -> bool:
    """An Istio StringMatch (exact / prefix / regex); an empty one only asks that the value exist."""
    if value is None or not isinstance(spec, dict):
        return False
    if "exact" in spec:
        expected = str(spec["exact"])
        return value.lower() == expected.lower() if ignore_case else value == expected
    if "prefix" in spec:
        expected = str(spec["prefix"])
        return value.lower().startswith(expected.lower()) if ignore_case else value.startswith(expected)
    if "regex" in spec:
        try:
            return compile_regex(spec["regex"]).fullmatch(value) is not None
        except ValueError:
            return False  # validation rejects these; a stored bad regex simply never matches
    return True


def _labels_match(selector: object, labels: Mapping[str, str]) -> bool:
    return isinstance(selector, dict) and all(labels.get(k) == v for k, v in selector.items())


@dataclass
class _Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    port: int
    source_namespace: str | None
    source_labels: Mapping[str, str] | None


def _match_applies(m: dict, req: _Request) -> bool:
    if not _string_matches(m.get("uri", {}), req.path, bool(m.get("ignoreUriCase"))):
        return False
    if "scheme" in m and not _string_matches(m["scheme"], "http"):
        return False
    if "method" in m and not _string_matches(m["method"], req.method):
        return False
    if "authority" in m and not _string_matches(m["authority"], req.headers.get("host")):
        return False
    if "port" in m and m["port"] != req.port:
        return False
    if m.get("gateways") and MESH_GATEWAY not in m["gateways"]:
        return False
    if "sourceNamespace" in m and m["sourceNamespace"] != req.source_namespace:
        return False
    if "sourceLabels" in m and (req.source_labels is None or not _labels_match(m["sourceLabels"], req.source_labels)):
        return False
    for name, spec in (m.get("headers") or {}).items():
        if not _string_matches(spec, req.headers.get(name.lower())):
            return False
    for name, spec in (m.get("withoutHeaders") or {}).items():
        # Istio inverts the match and treats a missing header as empty, so an absent header passes
        # a value condition; an empty condition (presence) passes only when the header is absent.
        value = req.headers.get(name.lower())
        if spec in ({}, None):
            if value is not None:
                return False
        elif _string_matches(spec, value if value is not None else ""):
            return False
    params = dict(req.query)
    for name, spec in (m.get("queryParams") or {}).items():
        if not _string_matches(spec, params.get(name)):
            return False
    return True


def _matching_entry(rule: dict, req: _Request) -> dict | None:
    """The `match` entry that selects this request ({} for a rule without conditions), else None."""
    matches = rule.get("match")
    if not matches:
        return {}
    return next((m for m in matches if isinstance(m, dict) and _match_applies(m, req)), None)


# ---- building the decision -------------------------------------------------------------------------
def _percentage(spec: dict) -> float:
    """`percentage.value`, else the deprecated integer `percent`; unset means 0 (Istio's behaviour)."""
    pct = spec.get("percentage")
    if isinstance(pct, dict) and "value" in pct:
        return float(pct["value"])
    return float(spec.get("percent", 0))


def _pick_weighted(dests: list[dict], rnd: Callable[[], float]) -> dict:
    if len(dests) == 1:
        return dests[0]
    weights = [max(int(d.get("weight") or 0), 0) for d in dests]
    total = sum(weights)
    if total <= 0:
        return dests[0]
    x = rnd() * total
    for d, w in zip(dests, weights, strict=True):
        if x < w:
            return d
        x -= w
    return next(d for d, w in zip(dests, weights, strict=True) if w > 0)


def _retries(spec: dict) -> Retries:
    attempts = int(spec.get("attempts") or 0)
    if attempts <= 0:
        return Retries(0, None, frozenset())
    per_try = parse_duration(spec["perTryTimeout"]) if spec.get("perTryTimeout") else None
    raw = spec.get("retryOn")
    if not raw:
        return Retries(attempts, per_try, DEFAULT_RETRY_ON)
    conditions = {c.strip() for c in str(raw).split(",") if c.strip()}
    if any(c.isdigit() for c in conditions):
        conditions.add("retriable-status-codes")  # Istio adds it when status codes are listed
    return Retries(attempts, per_try, frozenset(conditions))


def _redirect(spec: dict, req: _Request, host_fqdn: str) -> tuple[int, str]:
    status = int(spec.get("redirectCode") or 301)
    scheme = spec.get("scheme") or "http"
    authority = spec.get("authority") or req.headers.get("host") or host_fqdn
    if spec.get("port"):
        authority = f"{authority.rsplit(':', 1)[0]}:{spec['port']}"
    path = spec.get("uri") or req.path
    return status, f"{scheme}://{authority}{path}"


def _destination(decision: RouteDecision, dest: dict, vs_ns: str, rules: list[dict], client_ns: str) -> None:
    decision.destination_host = resolve_host(str(dest.get("host", "")), vs_ns)
    port = dest.get("port")
    if isinstance(port, dict) and port.get("number"):
        decision.port = int(port["number"])
    subset = dest.get("subset")
    if not subset:
        return
    decision.subset = subset
    dr = select_destination_rule(rules, client_ns, decision.destination_host)
    for s in ((dr or {}).get("spec") or {}).get("subsets") or []:
        if isinstance(s, dict) and s.get("name") == subset:
            decision.subset_labels = dict(s.get("labels") or {})
            return
    decision.missing_subset = True


def route(
    vs: dict | None,
    destination_rules: list[dict],
    host_fqdn: str,
    port: int,
    method: str,
    path: str,
    headers: Mapping[str, str],
    rnd: Callable[[], float] = random.random,
    *,
    query: Mapping[str, str] | None = None,
    client_namespace: str = "",
    source_labels: Mapping[str, str] | None = None,
) -> RouteDecision:
    """Route one request for `host_fqdn:port` through VirtualService `vs` (None: the default route).

    `path` may carry a query string; `query` adds parameters when the caller has split them off.
    `destination_rules` are the candidates for subset lookup: pass the ones `find_destination_rule`
    chose, or every stored rule together with `client_namespace` to apply Istio's lookup for each
    destination host. `source_labels` (the client pod's labels) feed `sourceLabels` matches.
    """
    host_fqdn = host_fqdn.lower().rstrip(".")
    decision = RouteDecision(destination_host=host_fqdn)
    if vs is None:
        return decision
    bare_path, _, qs = path.partition("?")
    req = _Request(
        method=method.upper(),
        path=bare_path,
        query=parse_qsl(qs, keep_blank_values=True) + list((query or {}).items()),
        headers={str(k).lower(): str(v) for k, v in headers.items()},
        port=port,
        source_namespace=client_namespace or None,
        source_labels=source_labels,
    )
    vs_ns = vs["metadata"].get("namespace", "")
    for index, rule in enumerate((vs.get("spec") or {}).get("http") or []):
        matched = _matching_entry(rule, req) if isinstance(rule, dict) else None
        if matched is None:
            continue
        decision.rule_index = index
        decision.rule_name = rule.get("name")
        if isinstance(rule.get("redirect"), dict):
            decision.redirect = _redirect(rule["redirect"], req, host_fqdn)
            return decision
        if isinstance(rule.get("directResponse"), dict):
            dr_spec = rule["directResponse"]
            body = (dr_spec.get("body") or {}).get("string") or ""
            decision.direct_response = (int(dr_spec.get("status") or 200), str(body))
            return decision
        dests = [d for d in rule.get("route") or [] if isinstance(d, dict)]
        chosen = _pick_weighted(dests, rnd) if dests else None
        if chosen is not None:
            _destination(decision, chosen.get("destination") or {}, vs_ns, destination_rules, client_namespace)
            decision.request_headers.merge((chosen.get("headers") or {}).get("request"))
            decision.response_headers.merge((chosen.get("headers") or {}).get("response"))
        decision.request_headers.merge((rule.get("headers") or {}).get("request"))
        decision.response_headers.merge((rule.get("headers") or {}).get("response"))
        fault = rule.get("fault") or {}
        abort = fault.get("abort")
        if isinstance(abort, dict) and abort.get("httpStatus"):
            decision.abort = (int(abort["httpStatus"]), _percentage(abort))
        delay = fault.get("delay")
        if isinstance(delay, dict) and delay.get("fixedDelay"):
            decision.delay = (parse_duration(delay["fixedDelay"]), _percentage(delay))
        if rule.get("timeout"):
            decision.timeout = parse_duration(rule["timeout"])
        if isinstance(rule.get("retries"), dict):
            decision.retries = _retries(rule["retries"])
        rewrite = rule.get("rewrite")
        if isinstance(rewrite, dict):
            if isinstance(rewrite.get("uri"), str):
                decision.rewrite_path = _rewritten(rewrite["uri"], matched, bare_path, qs)
            decision.rewrite_authority = rewrite.get("authority")
        return decision
    decision.no_route = True
    return decision


def _rewritten(new: str, matched: dict, path: str, qs: str) -> str:
    """Istio's `rewrite.uri`: replaces the matched prefix for a prefix match, else the whole path."""
    prefix = (matched.get("uri") or {}).get("prefix")
    rest = path[len(prefix) :] if isinstance(prefix, str) else ""
    return new + rest + (f"?{qs}" if qs else "")


def fires(percentage: float, rnd: Callable[[], float] = random.random) -> bool:
    """Whether a fault configured for `percentage` percent of requests applies to this one."""
    return rnd() * 100 < percentage
