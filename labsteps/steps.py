"""The lab's steps as loaded once per process, and what each looks like for one student."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from django.conf import settings

from labsteps.content import Step, load_steps, render, template_context


@cache
def all_steps() -> tuple[Step, ...]:
    """Every step in lab order (content is validated on load, so bad content fails here)."""
    return tuple(load_steps())


def get_step(step_id: str) -> Step | None:
    return next((step for step in all_steps() if step.id == step_id), None)


def images() -> Mapping[str, str] | None:
    """Image references for the templates (settings.LAB_IMAGES overrides the lab's defaults)."""
    return getattr(settings, "LAB_IMAGES", None)


def context(namespace: str) -> dict[str, Any]:
    """What the step templates of one student are rendered with."""
    return template_context(namespace, images())


def manifests_text(step: Step, namespace: str) -> str:
    """The step's manifests as YAML text for the editor, comments and layout kept."""
    return render(step.manifests, context(namespace))


def neighbours(step: Step) -> tuple[Step | None, Step | None]:
    steps = all_steps()
    index = steps.index(step)
    return (steps[index - 1] if index else None, steps[index + 1] if index + 1 < len(steps) else None)
