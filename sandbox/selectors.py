"""Label and field selectors: the `labelSelector`/`fieldSelector` query parameters and `spec.selector`.

Label selector callables take an object's labels (a dict, None meaning no labels); field selector
callables take the whole object.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """A selector that does not parse or names an unsupported field; the server answers 400."""


_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _check_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise SelectorError(f"invalid label key {key!r}: prefix part must be a DNS subdomain")
    if len(name) > 63 or not _NAME.match(name):
        raise SelectorError(
            f"invalid label key {key!r}: name part must be at most 63 alphanumeric characters, '-', '_' or "
            "'.', starting and ending with an alphanumeric character"
        )


def _check_value(value: str) -> None:
    if value and (len(value) > 63 or not _NAME.match(value)):
        raise SelectorError(
            f"invalid label value {value!r}: must be empty or at most 63 alphanumeric characters, '-', '_' "
            "or '.', starting and ending with an alphanumeric character"
        )


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector. `op` is one of =, !=, in, notin, exists, !."""

    key: str
    op: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # != and notin


@dataclass(frozen=True)
class LabelSelector:
    """All requirements must hold; no requirements match everything."""

    requirements: tuple[Requirement, ...]

    def __call__(self, labels: Mapping[str, str] | None) -> bool:
        return all(r.matches(labels or {}) for r in self.requirements)


# ---------------------------------------------------------------------------------------------------
# labelSelector=... (the string form)
# ---------------------------------------------------------------------------------------------------

_SYMBOLS = ("!=", "==", "=", "!", "(", ")", ",")
_WORD_END = re.compile(r"[\s!=(),]")


def _tokenize(text: str) -> list[str]:
    """Split into the symbols above and words (runs of anything else); whitespace only separates."""
    tokens: list[str] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        symbol = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
        if symbol is not None:
            tokens.append(symbol)
            i += len(symbol)
            continue
        end = _WORD_END.search(text, i)
        stop = end.start() if end else len(text)
        tokens.append(text[i:stop])
        i = stop
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.pos += 1
        return token

    def fail(self, found: str | None, expected: str) -> SelectorError:
        return SelectorError(f"unable to parse requirement: found '{found or ''}', expected: {expected}")

    def word(self, expected: str) -> str:
        token = self.take()
        if token is None or token in _SYMBOLS:
            raise self.fail(token, expected)
        return token

    def selector(self) -> LabelSelector:
        requirements: list[Requirement] = []
        if self.peek() is None:
            return LabelSelector(())
        while True:
            requirements.append(self.requirement())
            token = self.take()
            if token is None:
                return LabelSelector(tuple(requirements))
            if token != ",":
                raise self.fail(token, "',' or end of selector")

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            key = self.word("identifier")
            _check_key(key)
            return Requirement(key, "!")
        key = self.word("!, identifier")
        _check_key(key)
        token = self.peek()
        if token in (None, ","):
            return Requirement(key, "exists")
        self.take()
        if token in ("=", "==", "!="):
            value = self.word("identifier") if self.peek() not in (None, ",") else ""
            _check_value(value)
            return Requirement(key, "!=" if token == "!=" else "=", frozenset({value}))
        if token in ("in", "notin"):
            return Requirement(key, token, self.value_set(token))
        raise self.fail(token, "=, ==, !=, in, notin")

    def value_set(self, op: str) -> frozenset[str]:
        token = self.take()
        if token != "(":
            raise self.fail(token, "(")
        values: set[str] = set()
        if self.peek() == ")":
            raise SelectorError(f"for '{op}' operator, values set can't be empty")
        while True:
            value = self.word("identifier")
            _check_value(value)
            values.add(value)
            token = self.take()
            if token == ")":
                return frozenset(values)
            if token != ",":
                raise self.fail(token, "',' or ')'")


def parse_label_selector(s: str) -> Callable[[Mapping[str, str] | None], bool]:
    """Parse `app=web,tier!=db,env in (a,b),!canary,track`; the empty string matches everything."""
    return _Parser(s).selector()


# ---------------------------------------------------------------------------------------------------
# spec.selector (LabelSelector objects) and Service selectors
# ---------------------------------------------------------------------------------------------------

_SPEC_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def selector_from_spec(sel: dict | None) -> Callable[[Mapping[str, str] | None], bool]:
    """A `{"matchLabels": ..., "matchExpressions": [...]}` selector; empty or None matches everything."""
    if not sel:
        return LabelSelector(())
    requirements = [Requirement(k, "=", frozenset({str(v)})) for k, v in (sel.get("matchLabels") or {}).items()]
    for expr in sel.get("matchExpressions") or []:
        key, operator, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if not isinstance(key, str) or not key:
            raise SelectorError("matchExpressions[].key: Required value")
        if operator not in _SPEC_OPERATORS:
            raise SelectorError(f"{operator!r} is not a valid label selector operator")
        op = _SPEC_OPERATORS[operator]
        if op in ("in", "notin") and not values:
            raise SelectorError(f"matchExpressions[].values: must be specified when `operator` is {operator!r}")
        if op in ("exists", "!") and values:
            raise SelectorError(f"matchExpressions[].values: may not be specified when `operator` is {operator!r}")
        requirements.append(Requirement(key, op, frozenset(str(v) for v in values)))
    return LabelSelector(tuple(requirements))


def matches_labels(selector_map: dict | None, labels: Mapping[str, str] | None) -> bool:
    """A Service-style selector map; an empty map matches nothing (no selector, no endpoints)."""
    if not selector_map:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector_map.items())


# ---------------------------------------------------------------------------------------------------
# fieldSelector=...
# ---------------------------------------------------------------------------------------------------

_COMMON_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
_KIND_FIELDS: dict[str, frozenset[str]] = {
    "Pod": frozenset({"status.phase", "spec.nodeName"}),
    # `kubectl describe` lists a pod's events with involvedObject.{name,namespace,uid}.
    "Event": frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "type",
        }
    ),
}


def _supported_fields(kind: str | None) -> frozenset[str]:
    if kind is None:
        return _COMMON_FIELDS.union(*_KIND_FIELDS.values())
    return _COMMON_FIELDS | _KIND_FIELDS.get(kind, frozenset())


def _split_unescaped(text: str, sep: str) -> list[str]:
    """Split on `sep` where it is not escaped with a backslash (escapes are kept for the next step)."""
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _split_term(term: str) -> tuple[str, str, str]:
    """(field, operator, value) at the first unescaped `!=`, `==` or `=`."""
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return _unescape(term[:i]).strip(), op, _unescape(term[i + len(op) :]).strip()
        i += 1
    raise SelectorError(f"invalid selector: '{term}'; can't understand '{term}'")


def _field_value(obj: dict, dotted: str) -> str:
    node: Any = obj
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return ""
        node = node[part]
    if isinstance(node, bool):
        return "true" if node else "false"
    return "" if node is None else str(node)


@dataclass(frozen=True)
class FieldSelector:
    """(field, equal?, value) terms that must all hold; no terms match everything."""

    terms: tuple[tuple[str, bool, str], ...]

    def __call__(self, obj: dict) -> bool:
        return all((_field_value(obj, f) == v) == equal for f, equal, v in self.terms)


def parse_field_selector(s: str, kind: str | None = None) -> Callable[[dict], bool]:
    """Parse `metadata.name=web,status.phase!=Failed` for objects of `kind`.

    Every kind supports metadata.name and metadata.namespace; Pods add status.phase and spec.nodeName,
    Events their involvedObject fields. With kind None every field known here is accepted.
    """
    supported = _supported_fields(kind)
    terms = []
    for raw in _split_unescaped(s, ","):
        if not raw.strip():
            continue
        name, op, value = _split_term(raw)
        if name not in supported:
            raise SelectorError(f"field label not supported: {name}")
        terms.append((name, op != "!=", value))
    return FieldSelector(tuple(terms))
