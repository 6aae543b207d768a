"""Naming rules: Kubernetes namespace names, label values, class slugs and join codes.

Pure functions so the rules can be tested without a database or a cluster.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable

from django.utils.text import slugify

NAMESPACE_PREFIX = "mc-"
DNS_LABEL_MAX = 63
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
# Usernames the roster accepts: exactly the strings that are also valid label values, so the
# `meshconsole.io/student` label can carry the username unchanged.
USERNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
USERNAME_RULE = "1-63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit"

_JOIN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: codes are read aloud in class
_HASH_LENGTHS = (6, 8, 12, 16)


def is_dns_label(name: str) -> bool:
    return len(name) <= DNS_LABEL_MAX and bool(DNS_LABEL_RE.match(name))


def sanitise_dns(text: str) -> str:
    """Lower-case `text` and squeeze every run of characters outside [a-z0-9] into one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def namespace_name(username: str, taken: Callable[[str], bool] = lambda name: False) -> str:
    """The namespace for `username`: `mc-<sanitised username>`, a valid DNS-1123 label.

    When that name is too long, empty after sanitising, or `taken` (e.g. `john.doe` after `john_doe`),
    a short hash of the exact username is appended (cutting the readable part to fit), so the result
    is stable for a given username.
    """
    readable = sanitise_dns(username)
    plain = NAMESPACE_PREFIX + readable
    if readable and is_dns_label(plain) and not taken(plain):
        return plain
    digest = hashlib.sha256(username.encode()).hexdigest()
    for length in _HASH_LENGTHS:
        room = DNS_LABEL_MAX - len(NAMESPACE_PREFIX) - length - 1
        stem = readable[:room].strip("-")
        candidate = f"{NAMESPACE_PREFIX}{stem}-{digest[:length]}" if stem else NAMESPACE_PREFIX + digest[:length]
        if not taken(candidate):
            return candidate
    raise ValueError(f"no free namespace name for user {username!r}")


def label_value(text: str) -> str:
    """`text` as a Kubernetes label value: unchanged when valid, otherwise invalid characters become '-'
    and the value is cut to 63 characters with letters or digits at both ends."""
    if len(text) <= DNS_LABEL_MAX and LABEL_VALUE_RE.match(text):
        return text
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:DNS_LABEL_MAX]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def class_slug(name: str) -> str:
    """URL- and label-safe slug of a class name ('' when the name has no letters or digits)."""
    return re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", slugify(name)[:DNS_LABEL_MAX])


def make_join_code() -> str:
    return "".join(secrets.choice(_JOIN_ALPHABET) for _ in range(8))
