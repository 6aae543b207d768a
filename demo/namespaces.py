"""The demo namespace: its name, its database row and the namespace object in the cluster.

Names start with `mcd-`, so they can never equal a student's (`mc-...`), and end with a hash of the
instructor and class, so each instructor has one stable namespace per class. Labels are those of a
student namespace (the class label) plus `meshconsole.io/demo` naming the instructor.
"""

from __future__ import annotations

import hashlib
from typing import Any

from classroom.cluster import ensure_namespace
from classroom.models import Classroom
from classroom.namespaces import CLASS_LABEL
from classroom.naming import label_value, sanitise_dns
from demo.models import DemoNamespace

PREFIX = "mcd-"
DEMO_LABEL = "meshconsole.io/demo"
_READABLE = 40


def demo_namespace_name(username: str, class_slug: str) -> str:
    digest = hashlib.sha256(f"{username}\0{class_slug}".encode()).hexdigest()[:8]
    readable = sanitise_dns(f"{username}-{class_slug}")[:_READABLE].strip("-")
    return f"{PREFIX}{readable}-{digest}" if readable else PREFIX + digest


def demo_for(instructor: Any, classroom: Classroom) -> DemoNamespace:
    """The instructor's demo row for the class, created (database only) on first use."""
    demo, _ = DemoNamespace.objects.get_or_create(
        classroom=classroom,
        instructor=instructor,
        defaults={"name": demo_namespace_name(instructor.get_username(), classroom.slug)},
    )
    return demo


def labels(demo: DemoNamespace) -> dict[str, str]:
    return {CLASS_LABEL: label_value(demo.classroom.slug), DEMO_LABEL: label_value(demo.instructor.get_username())}


def ensure(demo: DemoNamespace) -> None:
    """Create or relabel the namespace in the cluster (ClusterError when that fails)."""
    ensure_namespace(demo.name, labels(demo))
