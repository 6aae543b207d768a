"""Helpers shared by the console tests."""

from __future__ import annotations

from pathlib import Path


def write_kubeconfig(path: Path, server: str) -> Path:
    """A minimal kubeconfig for `server` (plain HTTP on loopback, no credentials)."""
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
        f"clusters:\n- name: test\n  cluster:\n    server: {server}\n"
        "contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n"
        "users:\n- name: test\n  user: {}\n"
    )
    return path
