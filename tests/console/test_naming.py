"""Namespace names, label values, slugs and join codes."""

from __future__ import annotations

import hashlib

import pytest
from django.contrib.auth import get_user_model

from classroom.namespaces import allocate_namespace
from classroom.naming import (
    DNS_LABEL_RE,
    LABEL_VALUE_RE,
    class_slug,
    is_dns_label,
    label_value,
    make_join_code,
    namespace_name,
)


def short_hash(username: str, length: int = 6) -> str:
    return hashlib.sha256(username.encode()).hexdigest()[:length]


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("alice", "mc-alice"),
        ("Bob", "mc-bob"),
        ("john.doe", "mc-john-doe"),
        ("mary_ann--smith", "mc-mary-ann-smith"),
        ("-lead.trail_", "mc-lead-trail"),
        ("a" * 60, "mc-" + "a" * 60),  # exactly 63 characters: still plain
    ],
)
def test_plain_names(username: str, expected: str) -> None:
    assert namespace_name(username) == expected
    assert is_dns_label(expected)


def test_collision_gets_a_stable_hash_suffix() -> None:
    taken = {"mc-john-doe"}
    name = namespace_name("john_doe", taken.__contains__)
    assert name == f"mc-john-doe-{short_hash('john_doe')}"
    assert namespace_name("john_doe", taken.__contains__) == name


def test_second_collision_uses_a_longer_hash() -> None:
    taken = {"mc-x", f"mc-x-{short_hash('x')}"}
    assert namespace_name("x", taken.__contains__) == f"mc-x-{short_hash('x', 8)}"


def test_too_long_username_is_cut_and_hashed() -> None:
    username = "student." + "verylongname" * 10
    name = namespace_name(username)
    assert len(name) <= 63 and DNS_LABEL_RE.match(name)
    assert name.startswith("mc-student-verylongname") and name.endswith("-" + short_hash(username))


@pytest.mark.parametrize("username", ["___", "@@", "Zoë", "ÄÖÜ", "a" * 61, "UPPER CASE", "x" * 150])
def test_every_name_is_a_dns_label(username: str) -> None:
    name = namespace_name(username)
    assert len(name) <= 63 and DNS_LABEL_RE.match(name), name
    assert name.startswith("mc-")


def test_username_without_letters_gets_hash_only() -> None:
    assert namespace_name("___") == "mc-" + short_hash("___")


def test_label_values() -> None:
    assert label_value("alice.smith_2") == "alice.smith_2"
    assert label_value("a@b+c") == "a-b-c"
    assert label_value("@start-and-end.") == "start-and-end"
    long_value = label_value("x" * 100)
    assert len(long_value) == 63 and LABEL_VALUE_RE.match(long_value)


def test_class_slug() -> None:
    assert class_slug("Mesh 101: Istio!") == "mesh-101-istio"
    assert class_slug("!!!") == ""
    assert len(class_slug("long name " * 20)) <= 63


def test_join_code() -> None:
    codes = {make_join_code() for _ in range(50)}
    assert len(codes) == 50
    assert all(len(code) == 8 and not set(code) & set("01IO") for code in codes)


@pytest.mark.django_db
def test_allocation_avoids_names_already_in_the_database() -> None:
    users = get_user_model().objects
    first, created_first = allocate_namespace(users.create(username="sam.lee"))
    second, created_second = allocate_namespace(users.create(username="sam_lee"))
    assert created_first and created_second
    assert first.name == "mc-sam-lee"
    assert second.name == f"mc-sam-lee-{short_hash('sam_lee')}"
    again, created_again = allocate_namespace(first.user)
    assert again.pk == first.pk and not created_again
