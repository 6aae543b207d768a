"""What a student changed: their applied manifests against the lab's manifests for the same step.

A unified diff (difflib) split into typed lines, so the template renders each line escaped with a
class for its kind and never as markup.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from labsteps.steps import get_step, manifests_text

MAX_LINES = 2000


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "del", "hunk", "head" or "same"
    text: str


def manifest_diff(step_id: str, namespace: str, applied: str) -> list[DiffLine] | None:
    """Lines of the diff lab -> student (None for an unknown step); [] when they applied the lab's text."""
    step = get_step(step_id)
    if step is None:
        return None
    lab = manifests_text(step, namespace)
    lines = difflib.unified_diff(
        lab.splitlines(), applied.splitlines(), fromfile="lab", tofile="student", lineterm="", n=3
    )
    out = []
    for index, line in enumerate(lines):
        if index >= MAX_LINES:
            out.append(DiffLine("hunk", f"… diff cut at {MAX_LINES} lines"))
            break
        out.append(DiffLine(_kind(line), line))
    return out


def _kind(line: str) -> str:
    if line.startswith(("---", "+++")):
        return "head"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return "same"
