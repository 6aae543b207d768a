"""Patch semantics of the Kubernetes API: merge patch, strategic merge patch, JSON patch and server-side apply.

Everything here is a pure function over plain JSON dicts. Inputs are never mutated; each function works on
deep copies and returns a new object.

Strategic merge patch and server-side apply need to know how each list merges. Real servers read that from
the Go types (`patchStrategy`/`patchMergeKey`, `listType`/`listMapKey`); here a small table of the
well-known fields of the built-in kinds stands in for the schema (`_list_rule`). Custom resources have no
schema here, so every one of their lists is atomic.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox import catalog


class PatchError(ValueError):
    """The patch cannot be applied (bad shape, bad path, failed test); the server answers 4xx."""


class ApplyConflict(Exception):
    """Server-side apply would change fields another manager owns, and `force` was not set."""

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        self.conflicts = conflicts
        super().__init__(f"{len(conflicts)} apply conflict(s): {conflicts}")


# --------------------------------------------------------------------------------------------------
# How lists merge
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ListRule:
    """`atomic`: replaced as a whole; `map`: items merge by `key`; `set`: primitive values merge as a set."""

    type: Literal["atomic", "map", "set"]
    key: str = ""


_ATOMIC = _ListRule("atomic")
_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})
_BY_NAME = _CONTAINER_LISTS | {"env", "volumes", "imagePullSecrets"}


def _list_rule(kind: str | None, names: tuple[str, ...]) -> _ListRule:
    """The merge rule for the list at field path `names` (list items do not add names).

    `kind` is None for kinds without a schema (custom resources). Lists not named here, for example
    `spec.template.spec.tolerations` or a container's `args`, are atomic, as in the real types.
    """
    if kind is None or not names:
        return _ATOMIC
    last = names[-1]
    if last in _BY_NAME:
        return _ListRule("map", "name")
    if last == "volumeMounts":
        return _ListRule("map", "mountPath")
    if last == "ports":
        if kind == "Service" and names == ("spec", "ports"):
            return _ListRule("map", "port")
        if len(names) >= 2 and names[-2] in _CONTAINER_LISTS:
            return _ListRule("map", "containerPort")
    if last == "conditions":
        return _ListRule("map", "type")
    if names == ("metadata", "ownerReferences"):
        return _ListRule("map", "uid")
    if names == ("metadata", "finalizers"):
        return _ListRule("set")
    return _ATOMIC


def _schema_kind(api_version: str, kind: str) -> str | None:
    """`kind` when the built-in table applies to it, None for custom resources and unknown kinds."""
    rt = catalog.by_kind(api_version, kind)
    return kind if rt is not None and rt.builtin else None


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: unlike Python's `==`, `true` is not `1`, but `1` is `1.0`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _identity(value: Any) -> str:
    """A hashable, canonical form of a JSON value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------------------------------
# RFC 7386 merge patch
# --------------------------------------------------------------------------------------------------


def merge_patch(target: dict, patch: dict) -> dict:
    """Apply an RFC 7386 JSON merge patch: maps merge recursively, null deletes, lists are replaced."""
    if not isinstance(patch, dict):
        raise PatchError("a merge patch must be a JSON object")
    return _merge(copy.deepcopy(target), copy.deepcopy(patch))


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


# --------------------------------------------------------------------------------------------------
# Strategic merge patch
# --------------------------------------------------------------------------------------------------

_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_ORDER_PREFIX = "$setElementOrder/"
_DELETE_PREFIX = "$deleteFromPrimitiveList/"


def strategic_merge_patch(target: dict, patch: dict, kind: str) -> dict:
    """Apply a strategic merge patch to an object of a built-in `kind`.

    Like a merge patch, but the lists of `_list_rule` merge by key (or as sets), and the directives
    `$patch` (replace/delete/merge), `$retainKeys`, `$setElementOrder/<f>` and
    `$deleteFromPrimitiveList/<f>` are honoured. Other `$` keys are dropped.
    """
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _smp_map(copy.deepcopy(target), copy.deepcopy(patch), (), kind)


def _smp_map(original: dict, patch: dict, names: tuple[str, ...], kind: str) -> dict:
    directive = patch.get(_PATCH)
    if directive == "replace":
        # Merging into an empty map applies nested directives and drops nulls instead of storing them.
        return _smp_map({}, {k: v for k, v in patch.items() if k != _PATCH}, names, kind)
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise PatchError(f"unknown $patch directive {directive!r} at {_dotted(names)}")

    result = dict(original)
    if _RETAIN_KEYS in patch:
        _retain_keys(result, patch, names)
    for key, value in patch.items():
        if key.startswith(_DELETE_PREFIX):
            _delete_from_primitive_list(result, key.removeprefix(_DELETE_PREFIX), value, names)

    for key, value in patch.items():
        if key.startswith("$"):
            continue
        child = names + (key,)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            result[key] = _smp_map(current if isinstance(current, dict) else {}, value, child, kind)
        elif isinstance(value, list):
            current = result.get(key)
            result[key] = _smp_list(current if isinstance(current, list) else [], value, child, kind)
        else:
            result[key] = value

    for key, order in patch.items():
        if key.startswith(_ORDER_PREFIX):
            name = key.removeprefix(_ORDER_PREFIX)
            if isinstance(result.get(name), list):
                rule = _list_rule(kind, names + (name,))
                before = original.get(name)
                result[name] = _reorder(
                    result[name],
                    order,
                    before if isinstance(before, list) else [],
                    rule,
                )
    return result


def _retain_keys(result: dict, patch: dict, names: tuple[str, ...]) -> None:
    """Drop every key of the original not listed in `$retainKeys` (e.g. strategy.rollingUpdate)."""
    keep = patch[_RETAIN_KEYS]
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise PatchError(f"$retainKeys at {_dotted(names)} must be a list of strings")
    for key in patch:
        if not key.startswith("$") and key not in keep:
            raise PatchError(f"field {key!r} at {_dotted(names)} is not present in the $retainKeys list")
    for key in list(result):
        if key not in keep:
            del result[key]


def _delete_from_primitive_list(result: dict, name: str, values: Any, names: tuple[str, ...]) -> None:
    if not isinstance(values, list):
        raise PatchError(f"{_DELETE_PREFIX}{name} at {_dotted(names)} must be a list")
    current = result.get(name)
    if isinstance(current, list):
        result[name] = [x for x in current if not any(_json_equal(x, v) for v in values)]


def _smp_list(original: list, patch: list, names: tuple[str, ...], kind: str) -> list:
    rule = _list_rule(kind, names)
    items: list[Any] = []
    deletes: list[dict] = []
    replace = False
    for element in patch:
        directive = element.get(_PATCH) if isinstance(element, dict) else None
        if directive is None:
            items.append(element)
        elif directive == "replace":
            replace = True
        elif directive == "delete":
            deletes.append(element)
        elif directive != "merge":  # `merge` is the default for merging lists: nothing to do
            raise PatchError(f"unknown $patch directive {directive!r} in list {_dotted(names)}")

    if replace or rule.type == "atomic":
        if deletes and not replace:
            raise PatchError(f"$patch: delete needs a list merged by key, but {_dotted(names)} is replaced as a whole")
        return [_smp_map({}, x, names, kind) if isinstance(x, dict) else x for x in items]

    if rule.type == "set":
        if deletes:
            raise PatchError(f"use {_DELETE_PREFIX}{names[-1]} to remove values from {_dotted(names)}")
        result = list(original)
        for value in items:
            if not any(_json_equal(value, x) for x in result):
                result.append(value)
        return result

    key = rule.key
    result = list(original)
    for element in deletes:
        if key not in element:
            raise PatchError(f"$patch: delete in {_dotted(names)} needs the merge key {key!r}")
        result = [x for x in result if not (isinstance(x, dict) and _json_equal(x.get(key), element[key]))]
    for element in items:
        if not isinstance(element, dict) or key not in element:
            raise PatchError(f"every item of {_dotted(names)} must be an object with the merge key {key!r}")
        at = next(
            (i for i, x in enumerate(result) if isinstance(x, dict) and _json_equal(x.get(key), element[key])),
            None,
        )
        if at is None:
            result.append(_smp_map({}, element, names, kind))
        else:
            result[at] = _smp_map(result[at], element, names, kind)
    return result


def _reorder(merged: list, order: Any, original: list, rule: _ListRule) -> list:
    """Apply `$setElementOrder`: items it names follow its order; the others keep their original places.

    The two runs are interleaved by position in the original list, the way the real server does it:
    an item named in the order goes first only when both it and the competing item were in the original
    and it came earlier there.
    """
    if not isinstance(order, list) or rule.type == "atomic":
        return merged

    def ident(item: Any) -> str | None:
        if rule.type == "set":
            return _identity(item)
        return _identity(item.get(rule.key)) if isinstance(item, dict) and rule.key in item else None

    rank = {ident(o): i for i, o in enumerate(order) if ident(o) is not None}
    before = {ident(x): i for i, x in enumerate(original)}
    named = sorted((x for x in merged if ident(x) in rank), key=lambda x: rank[ident(x)])
    others = [x for x in merged if ident(x) not in rank]
    out: list = []
    while named and others:
        a, b = before.get(ident(named[0])), before.get(ident(others[0]))
        out.append(named.pop(0) if a is not None and b is not None and a < b else others.pop(0))
    return out + named + others


def _dotted(names: tuple[str, ...]) -> str:
    return ".".join(names) or "<root>"


# --------------------------------------------------------------------------------------------------
# RFC 6902 JSON patch
# --------------------------------------------------------------------------------------------------


def json_patch(target: dict, ops: list) -> dict:
    """Apply RFC 6902 operations in order; all or nothing."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc: Any = copy.deepcopy(target)
    for index, op in enumerate(ops):
        doc = _apply_op(doc, op, index)
    if not isinstance(doc, dict):
        raise PatchError("the patched document must be a JSON object")
    return doc


def _apply_op(doc: Any, op: Any, index: int) -> Any:
    if not isinstance(op, dict) or not isinstance(op.get("op"), str):
        raise PatchError(f"json patch operation {index} must be an object with an 'op' string")
    name = op["op"]
    where = f"json patch operation {index} ({name})"

    def pointer(member: str) -> list[str]:
        if not isinstance(op.get(member), str):
            raise PatchError(f"{where}: missing or invalid '{member}'")
        return _parse_pointer(op[member], where)

    def value() -> Any:
        if "value" not in op:
            raise PatchError(f"{where}: missing 'value'")
        return copy.deepcopy(op["value"])

    if name == "add":
        return _add(doc, pointer("path"), value(), where)
    if name == "remove":
        doc, _ = _remove(doc, pointer("path"), where)
        return doc
    if name == "replace":
        return _replace(doc, pointer("path"), value(), where)
    if name == "move":
        source, path = pointer("from"), pointer("path")
        if path[: len(source)] == source and len(path) > len(source):
            raise PatchError(f"{where}: cannot move {op['from']!r} into its own child {op['path']!r}")
        doc, moved = _remove(doc, source, where)
        return _add(doc, path, moved, where)
    if name == "copy":
        return _add(
            doc,
            pointer("path"),
            copy.deepcopy(_get(doc, pointer("from"), where)),
            where,
        )
    if name == "test":
        path, expected = pointer("path"), value()
        actual = _get(doc, path, where)
        if not _json_equal(actual, expected):
            raise PatchError(
                f"{where}: test failed: value at {op['path']!r} is {json.dumps(actual)}, "
                f"expected {json.dumps(expected)}"
            )
        return doc
    raise PatchError(f"{where}: unknown operation {name!r}")


def _parse_pointer(text: str, where: str) -> list[str]:
    if text == "":
        return []
    if not text.startswith("/"):
        raise PatchError(f"{where}: JSON pointer {text!r} must start with '/'")
    return [t.replace("~1", "/").replace("~0", "~") for t in text[1:].split("/")]


def _index(container: list, token: str, where: str, *, for_insert: bool) -> int:
    if for_insert and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"{where}: {token!r} is not a valid array index")
    i = int(token)
    if i > len(container) or (i == len(container) and not for_insert):
        raise PatchError(f"{where}: array index {i} is out of range (length {len(container)})")
    return i


def _get(doc: Any, path: list[str], where: str) -> Any:
    node = doc
    for depth, token in enumerate(path):
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, where, for_insert=False)]
        else:
            missing = "/" + "/".join(path[: depth + 1])
            raise PatchError(f"{where}: path {missing!r} does not exist")
    return node


def _add(doc: Any, path: list[str], value: Any, where: str) -> Any:
    if not path:
        return value
    parent = _get(doc, path[:-1], where)
    token = path[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, where, for_insert=True), value)
    else:
        raise PatchError(f"{where}: the parent of {'/' + '/'.join(path)!r} is not an object or array")
    return doc


def _replace(doc: Any, path: list[str], value: Any, where: str) -> Any:
    _get(doc, path, where)  # the target must exist
    if not path:
        return value
    parent = _get(doc, path[:-1], where)
    if isinstance(parent, list):
        parent[_index(parent, path[-1], where, for_insert=False)] = value
    else:
        parent[path[-1]] = value
    return doc


def _remove(doc: Any, path: list[str], where: str) -> tuple[Any, Any]:
    if not path:
        raise PatchError(f"{where}: cannot remove the whole document")
    parent = _get(doc, path[:-1], where)
    token = path[-1]
    if isinstance(parent, dict) and token in parent:
        return doc, parent.pop(token)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, token, where, for_insert=False))
    raise PatchError(f"{where}: path {'/' + '/'.join(path)!r} does not exist")


# --------------------------------------------------------------------------------------------------
# Field sets (the model behind metadata.managedFields)
# --------------------------------------------------------------------------------------------------

# A path element is ("f", field name), ("k", '{"name":"web"}') for an item of a keyed list, or
# ("v", '"x"') for a value of a set list; the text is what follows "f:", "k:" or "v:" in FieldsV1.
PathElement = tuple[str, str]
FieldPath = tuple[PathElement, ...]

# Server-owned bookkeeping: never part of anyone's field set (the real server strips the same ones).
_BOOKKEEPING = frozenset(
    {
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "selfLink",
    }
)
_UNOWNED_META = _BOOKKEEPING | {"name", "namespace"}
_METADATA: FieldPath = (("f", "metadata"),)


def _unowned(path: FieldPath) -> bool:
    """apiVersion, kind, identity and bookkeeping metadata, and status (owned through /status writes)."""
    if len(path) == 1:
        return path[0] in (("f", "apiVersion"), ("f", "kind"), ("f", "status"))
    return len(path) == 2 and path[0] == _METADATA[0] and path[1][0] == "f" and path[1][1] in _UNOWNED_META


def _names(path: FieldPath) -> tuple[str, ...]:
    return tuple(text for kind, text in path if kind == "f")


def _list_items(rule: _ListRule, items: list) -> dict[PathElement, Any] | None:
    """The items of a keyed or set list by path element; None when the list has to be treated as atomic."""
    out: dict[PathElement, Any] = {}
    for item in items:
        if rule.type == "set":
            pe = ("v", _identity(item))
        elif isinstance(item, dict) and item.get(rule.key) is not None:
            pe = ("k", _identity({rule.key: item[rule.key]}))
        else:
            return None
        if pe in out:
            return None
        out[pe] = item
    return out


def _field_set(value: Any, path: FieldPath, kind: str | None) -> set[FieldPath]:
    """The fields `value` sets at `path`: leaves, atomic lists, empty maps, and each list item itself."""
    out: set[FieldPath] = set()
    if isinstance(value, dict):
        if not value and path:
            out.add(path)
        for key, child in value.items():
            sub = path + (("f", key),)
            if not _unowned(sub):
                out |= _field_set(child, sub, kind)
        return out
    if isinstance(value, list):
        rule = _list_rule(kind, _names(path))
        items = _list_items(rule, value) if rule.type != "atomic" else None
        if items is None:
            return {path}
        for pe, item in items.items():
            out.add(path + (pe,))
            if rule.type == "map":
                out |= _field_set(item, path + (pe,), kind)
        return out
    return {path}


@dataclass
class _Diff:
    changed: set[FieldPath] = field(default_factory=set)  # added or modified
    removed: set[FieldPath] = field(default_factory=set)  # roots of subtrees that disappeared


def _compare(old: Any, new: Any, path: FieldPath, kind: str | None, diff: _Diff) -> None:
    if isinstance(old, dict) and isinstance(new, dict) and (new or not path):
        for key in old.keys() | new.keys():
            sub = path + (("f", key),)
            if _unowned(sub):
                continue
            if key not in new:
                diff.removed.add(sub)
            elif key not in old:
                diff.changed |= _field_set(new[key], sub, kind)
            else:
                _compare(old[key], new[key], sub, kind, diff)
        return
    if isinstance(old, list) and isinstance(new, list):
        rule = _list_rule(kind, _names(path))
        before = _list_items(rule, old) if rule.type != "atomic" else None
        after = _list_items(rule, new) if rule.type != "atomic" else None
        if before is not None and after is not None:
            diff.removed |= {path + (pe,) for pe in before.keys() - after.keys()}
            for pe, item in after.items():
                if pe not in before:
                    diff.changed.add(path + (pe,))
                    if rule.type == "map":
                        diff.changed |= _field_set(item, path + (pe,), kind)
                else:
                    _compare(before[pe], item, path + (pe,), kind, diff)
            return
    if not _json_equal(old, new):
        diff.changed.add(path)
        if isinstance(old, (dict, list)):  # the shape changed: whatever was below is gone
            diff.removed |= _field_set(old, path, kind) - {path}


def _under_any(path: FieldPath, roots: set[FieldPath]) -> bool:
    return any(path[:i] in roots for i in range(1, len(path) + 1))


def _with_ancestors(paths: set[FieldPath]) -> set[FieldPath]:
    return {p[:i] for p in paths for i in range(1, len(p) + 1)}


def _remove_field(obj: dict, path: FieldPath) -> None:
    """Remove the node at `path` if it is there."""
    node: Any = obj
    for i, (kind, text) in enumerate(path):
        last = i == len(path) - 1
        if kind == "f" and isinstance(node, dict) and text in node:
            if last:
                del node[text]
                return
            node = node[text]
        elif kind in ("k", "v") and isinstance(node, list):
            wanted = json.loads(text)
            at = next(
                (j for j, item in enumerate(node) if _matches_element(item, kind, wanted)),
                None,
            )
            if at is None:
                return
            if last:
                del node[at]
                return
            node = node[at]
        else:
            return


def _matches_element(item: Any, kind: str, wanted: Any) -> bool:
    if kind == "v":
        return _json_equal(item, wanted)
    return isinstance(item, dict) and all(_json_equal(item.get(k), v) for k, v in wanted.items())


def path_string(path: FieldPath) -> str:
    """The path as the real server prints it in conflicts: `.spec.containers[name="web"].image`."""
    parts = []
    for kind, text in path:
        if kind == "f":
            parts.append("." + text)
        elif kind == "k":
            keys = json.loads(text)
            parts.append("[" + ",".join(f"{k}={json.dumps(keys[k])}" for k in sorted(keys)) + "]")
        elif kind == "v":
            parts.append(f"[={text}]")
        else:
            parts.append(f"[{text}]")
    return "".join(parts)


# --------------------------------------------------------------------------------------------------
# metadata.managedFields
# --------------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    time: str | None
    fields: set[FieldPath]
    subresource: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)


def _decode_fields(tree: dict, path: FieldPath = ()) -> set[FieldPath]:
    out: set[FieldPath] = set()
    for key, sub in tree.items():
        if key == ".":
            out.add(path)
            continue
        prefix, _, text = key.partition(":")
        child = path + ((prefix, text),)
        if isinstance(sub, dict) and sub:
            out |= _decode_fields(sub, child)
        else:
            out.add(child)
    return out


def _encode_fields(paths: set[FieldPath]) -> dict:
    """FieldsV1: nested `f:`/`k:`/`v:` keys; `.` marks a node that is owned itself and has children."""
    tree: dict = {}
    for path in paths:
        node = tree
        for pe in path:
            node = node.setdefault(pe, {})

    def emit(node: dict, path: FieldPath) -> dict:
        out: dict = {".": {}} if node and path in paths else {}
        for pe in sorted(node):
            out[f"{pe[0]}:{pe[1]}"] = emit(node[pe], path + (pe,))
        return out

    return emit(tree, ())


def _read_managers(obj: dict) -> dict[tuple[str, str, str], _Entry]:
    out: dict[tuple[str, str, str], _Entry] = {}
    for raw in (obj.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(raw, dict) or not isinstance(raw.get("fieldsV1"), dict):
            continue
        entry = _Entry(
            manager=raw.get("manager", ""),
            operation=raw.get("operation", ""),
            api_version=raw.get("apiVersion", ""),
            time=raw.get("time"),
            fields=_decode_fields(raw["fieldsV1"]),
            subresource=raw.get("subresource", ""),
        )
        out[entry.key] = entry
    return out


def _write_managers(obj: dict, managers: dict[tuple[str, str, str], _Entry]) -> None:
    """Store the non-empty entries, ordered like the real server (operation, time, manager)."""
    entries = sorted(
        (e for e in managers.values() if e.fields),
        key=lambda e: (
            e.operation,
            e.time or "",
            e.manager,
            e.api_version,
            e.subresource,
        ),
    )
    if not entries:
        if isinstance(obj.get("metadata"), dict):
            obj["metadata"].pop("managedFields", None)
        return
    metadata = obj.setdefault("metadata", {})
    out = []
    for e in entries:
        raw = {
            "manager": e.manager,
            "operation": e.operation,
            "apiVersion": e.api_version,
            "time": e.time,
        }
        raw.update(fieldsType="FieldsV1", fieldsV1=_encode_fields(e.fields))
        if e.subresource:
            raw["subresource"] = e.subresource
        out.append(raw)
    metadata["managedFields"] = out


# --------------------------------------------------------------------------------------------------
# Server-side apply and ownership of ordinary writes
# --------------------------------------------------------------------------------------------------


def apply(
    live: dict | None,
    applied: dict,
    manager: str,
    force: bool,
    kind: str,
    api_version: str,
    now: str,
) -> dict:
    """Server-side apply of `applied` by `manager` onto `live` (None: create).

    Applied fields are set (maps merge, keyed lists merge by key, other lists are replaced; a null means
    "not applied"). Fields this manager applied last time and no longer applies are removed unless
    someone else still owns them. Changing a field another manager owns raises `ApplyConflict`
    unless `force`, which moves the ownership to `manager`. A `status` in `applied` is merged but never
    owned: resetting it on main-resource writes is the server's job, as for every other write.
    """
    if not isinstance(applied, dict):
        raise PatchError("an apply configuration must be a JSON object")
    schema = _schema_kind(api_version, kind)
    config = _without_nulls(copy.deepcopy(applied))
    config_meta = config.get("metadata")
    if isinstance(config_meta, dict):
        for name in _BOOKKEEPING:
            config_meta.pop(name, None)
    before = copy.deepcopy(live) if live is not None else {}
    merged = _ssa_merge(copy.deepcopy(before), config, (), schema)

    managers = _read_managers(before)
    key = (manager, "Apply", "")
    previous = managers.get(key)
    applied_set = _field_set(config, (), schema)
    owned = set(applied_set).union(*(e.fields for k, e in managers.items() if k != key))
    if previous is not None:
        stale = _with_ancestors(previous.fields) - _with_ancestors(owned)
        for path in sorted((p for p in stale if not _unowned(p) and p != _METADATA), key=len):
            _remove_field(merged, path)

    diff = _Diff()
    _compare(before, merged, (), schema, diff)
    conflicts = sorted(
        (e.manager, path_string(p)) for k, e in managers.items() if k != key for p in e.fields & diff.changed
    )
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    for k, e in managers.items():
        if k != key:
            e.fields = {p for p in e.fields - diff.changed if not _under_any(p, diff.removed)}

    if previous is None or previous.fields != applied_set or diff.changed or diff.removed:
        time = now
    else:
        time = previous.time
    managers[key] = _Entry(manager, "Apply", api_version, time, applied_set)
    _write_managers(merged, managers)
    return merged


def record_update(
    old: dict | None,
    new: dict,
    manager: str,
    operation: Literal["Update"],
    api_version: str,
    now: str,
) -> dict:
    """Record the ownership a non-apply write (POST, PUT, merge/strategic/JSON patch) takes.

    Like the real server, an update takes every field it adds or changes, from whoever owned it, and
    nobody keeps fields that disappeared. `old` carries the current managedFields; `new`'s are ignored.
    """
    schema = _schema_kind(api_version, new.get("kind", ""))
    before = copy.deepcopy(old) if old is not None else {}
    result = copy.deepcopy(new)
    diff = _Diff()
    _compare(before, result, (), schema, diff)

    managers = _read_managers(before)
    for e in managers.values():
        e.fields = {p for p in e.fields - diff.changed if not _under_any(p, diff.removed)}
    key = (manager, operation, "")
    entry = managers.setdefault(key, _Entry(manager, operation, api_version, now, set()))
    if diff.changed:
        entry.fields |= diff.changed
        entry.api_version, entry.time = api_version, now
    _write_managers(result, managers)
    return result


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _ssa_merge(live: Any, config: Any, path: FieldPath, kind: str | None) -> Any:
    if isinstance(config, dict):
        result = dict(live) if isinstance(live, dict) else {}
        for key, value in config.items():
            result[key] = _ssa_merge(result.get(key), value, path + (("f", key),), kind)
        return result
    if not isinstance(config, list):
        return config
    rule = _list_rule(kind, _names(path))
    if rule.type == "atomic":
        return config
    items = _list_items(rule, config)
    if items is None:
        what = f"an object with a {rule.key!r}" if rule.type == "map" else "a distinct value"
        raise PatchError(f"every item of {path_string(path)} must be {what}")
    result = list(live) if isinstance(live, list) else []
    current = _list_items(rule, result) or {}
    for pe, item in items.items():
        if pe in current:
            at = next(i for i, x in enumerate(result) if x is current[pe])
            result[at] = _ssa_merge(result[at], item, path + (pe,), kind)
        else:
            result.append(item)
    return result


def conflict_message(conflicts: list[tuple[str, str]], api_version: str) -> str:
    """The `message` of the 409 Status for an apply conflict, worded like the real server."""
    if len(conflicts) == 1:
        manager, path = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {json.dumps(manager)} using {api_version}: {path}"
    lines = []
    for manager in sorted({m for m, _ in conflicts}):
        lines.append(f"conflicts with {json.dumps(manager)} using {api_version}:")
        lines.extend(f"- {p}" for m, p in conflicts if m == manager)
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


def conflict_causes(conflicts: list[tuple[str, str]], api_version: str) -> list[dict]:
    """The `details.causes` of that 409 Status."""
    return [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {json.dumps(manager)} using {api_version}",
            "field": path,
        }
        for manager, path in conflicts
    ]
