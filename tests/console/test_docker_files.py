"""docker/: the console image, the compose file and the manifests to run the console inside a cluster.

No Docker engine is needed: `docker compose config` only reads files, the entry point runs here as it
would in the image, and the manifests go through the sandbox's server-side dry run. Kinds the sandbox
does not serve (ClusterRole, ClusterRoleBinding) are checked here by reading them, not by a server.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"
ROLES = {"web", "worker", "beat", "traffic-worker", "migrate"}
CONSOLE_SERVICES = {"migrate", "web", "worker", "beat", "traffic-worker"}
NOT_SERVED_BY_SANDBOX = {"ClusterRole", "ClusterRoleBinding"}  # no RBAC in the sandbox's API


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DOCKER / "k8s").glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in manifests() if doc["kind"] == kind]


def entrypoint_roles() -> set[str]:
    """The roles the entry point's `case` handles (its arms look like `  web)`)."""
    return set(re.findall(r"^  ([a-z-]+)\)$", ENTRYPOINT.read_text(), flags=re.M))


def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


# --- the image


def test_dockerfile_builds_a_non_root_image_with_static_files_and_the_role_entry_point() -> None:
    lines = [line.strip() for line in (DOCKER / "Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    user = next(line.split()[1] for line in instructions if line.startswith("USER "))
    assert user.isdigit() and int(user) != 0
    text = "\n".join(instructions)
    assert "pip install -r requirements.txt" in text
    assert "manage.py collectstatic --noinput" in text
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in text
    for line in instructions:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert source == "." or (REPO / source).exists(), line
    ignored = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", "var", ".git"} <= set(ignored)


def test_entrypoint_offers_every_role_and_passes_other_commands_through() -> None:
    assert entrypoint_roles() == ROLES
    assert os.access(ENTRYPOINT, os.X_OK)
    subprocess.run(["sh", "-n", str(ENTRYPOINT)], check=True)
    result = subprocess.run(
        [str(ENTRYPOINT), "python", "-c", "print('passed through')"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        timeout=30,
    )
    assert (result.returncode, result.stdout) == (0, "passed through\n"), result.stderr


def test_entrypoint_migrate_role_migrates_the_configured_database(tmp_path: Path) -> None:
    database = tmp_path / "console.sqlite3"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": "redis://127.0.0.1:9/0",  # never contacted by migrate; keeps the built-in one unstarted
        "SECRET_KEY": "test-only",
        "MESHCONSOLE_VAR_DIR": str(tmp_path / "var"),
    }
    result = subprocess.run(
        [str(ENTRYPOINT), "migrate"], cwd=REPO, capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(database) as db:
        applied = {app for (app,) in db.execute("SELECT DISTINCT app FROM django_migrations")}
    assert {"auth", "classroom"} <= applied


# --- compose


def test_compose_file_wires_the_services_together() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", *CONSOLE_SERVICES}
    for name in CONSOLE_SERVICES:
        service = services[name]
        assert service["command"][0] in entrypoint_roles(), name
        assert service["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        assert service["environment"]["SECRET_KEY"].startswith("${SECRET_KEY:?"), "no default secret key"
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert service["environment"]["DATABASE_URL"].endswith("@postgres:5432/meshconsole")
        if name != "migrate":
            assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
            (mount,) = service["volumes"]
            assert mount.endswith(":/etc/meshconsole/kubeconfig:ro"), "the kubeconfig is mounted read-only"
            assert service["environment"]["KUBECONFIG"] == "/etc/meshconsole/kubeconfig"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["redis"]


@pytest.fixture(scope="module")
def docker_compose() -> list[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("the docker client is not installed, so `docker compose config` cannot run")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        reason = (probe.stderr or probe.stdout).strip().splitlines()[0]
        pytest.skip(f"the docker client has no compose plugin ({reason!r})")
    return [docker, "compose", "-f", str(DOCKER / "compose.yaml")]


def test_docker_compose_config_accepts_the_file(docker_compose: list[str], tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    env = {**os.environ, "SECRET_KEY": "test-only", "KUBECONFIG_FILE": str(kubeconfig)}
    result = subprocess.run(
        [*docker_compose, "config", "--format", "json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)["services"]
    assert set(resolved) == {"postgres", "redis", *CONSOLE_SERVICES}
    mount = resolved["web"]["volumes"][0]
    assert (mount["source"], mount["target"], mount["read_only"]) == (
        str(kubeconfig),
        "/etc/meshconsole/kubeconfig",
        True,
    )

    without_key = {k: v for k, v in env.items() if k != "SECRET_KEY"}
    refused = subprocess.run(
        [*docker_compose, "config", "--quiet"], capture_output=True, text=True, env=without_key, timeout=60
    )
    assert refused.returncode != 0 and "set SECRET_KEY" in refused.stderr


# --- Kubernetes manifests


def test_k8s_manifests_are_consistent_and_least_privilege() -> None:
    docs = manifests()
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == sorted(
        ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret", "Service"] + ["Deployment"] * 4
    )
    (namespace,) = by_kind("Namespace")
    (account,) = by_kind("ServiceAccount")
    (secret,) = by_kind("Secret")
    for doc in docs:
        if doc["kind"] not in {"Namespace", "ClusterRole", "ClusterRoleBinding"}:
            assert doc["metadata"]["namespace"] == namespace["metadata"]["name"], doc["metadata"]["name"]
    assert "SECRET_KEY" in secret["stringData"]

    roles = {}
    for deployment in by_kind("Deployment"):
        template = deployment["spec"]["template"]
        labels = template["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        pod = template["spec"]
        assert pod["serviceAccountName"] == account["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert container["args"][0] in entrypoint_roles()
            assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            roles[container["args"][0]] = deployment
    assert set(roles) == ROLES
    assert roles["beat"]["spec"]["replicas"] == 1 and roles["beat"]["spec"]["strategy"]["type"] == "Recreate"

    (service,) = by_kind("Service")
    web = roles["web"]["spec"]["template"]
    assert service["spec"]["selector"].items() <= web["metadata"]["labels"].items()
    port_names = {port["name"] for container in web["spec"]["containers"] for port in container.get("ports", [])}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names

    (role,) = by_kind("ClusterRole")
    (binding,) = by_kind("ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": namespace["metadata"]["name"]}
    ]
    granted = {
        (group, resource) for rule in role["rules"] for group in rule["apiGroups"] for resource in rule["resources"]
    }
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert "*" not in verbs and not any("*" in pair for pair in granted)
    assert ("", "secrets") not in granted, "the console never needs Secrets"
    assert not any(group == "rbac.authorization.k8s.io" for group, _ in granted)
    assert {("", "namespaces"), ("apps", "deployments"), ("batch", "jobs"), ("", "pods")} <= granted
    assert {("gateway.networking.k8s.io", "httproutes"), ("security.istio.io", "peerauthentications")} <= granted


def served_kinds(sandbox) -> set[tuple[str, str]]:
    """(apiVersion, kind) pairs from the sandbox's discovery, as kubectl sees them."""
    table = sandbox.kubectl("api-resources", "--no-headers").stdout
    return {(row.split()[-3], row.split()[-1]) for row in table.splitlines() if row.strip()}


def dry_run(sandbox, docs: list[dict[str, Any]]) -> subprocess.CompletedProcess:
    return sandbox.kubectl(
        "apply", "--dry-run=server", "-o", "name", "-f", "-", input=yaml.safe_dump_all(docs), check=False
    )


@pytest.mark.cluster
def test_k8s_manifests_pass_the_sandbox_server_side_dry_run(sandbox, namespace: str) -> None:
    served = served_kinds(sandbox)
    checked, skipped = [], set()
    for doc in manifests():
        if (doc["apiVersion"], doc["kind"]) not in served:
            skipped.add(doc["kind"])
            continue
        doc = copy.deepcopy(doc)
        if "namespace" in doc["metadata"]:  # the test's own namespace stands in for `meshconsole`
            doc["metadata"]["namespace"] = namespace
        checked.append(doc)
    assert skipped <= NOT_SERVED_BY_SANDBOX, f"unexpectedly not served: {skipped - NOT_SERVED_BY_SANDBOX}"

    result = dry_run(sandbox, checked)
    assert result.returncode == 0, result.stderr
    names = set(result.stdout.split())
    assert {"deployment.apps/meshconsole-web", "service/meshconsole-web", "secret/meshconsole"} <= names
    assert len(names) == len(checked)
    assert sandbox.kubectl("get", "deployments,services,secrets", "-n", namespace, "-o", "name").stdout == ""

    # The dry run does validate: the web Deployment with a selector its pods do not match is refused.
    broken = copy.deepcopy(next(doc for doc in checked if doc["metadata"]["name"] == "meshconsole-web"))
    broken["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "something-else"}
    refused = dry_run(sandbox, [broken])
    assert refused.returncode != 0 and "selector" in refused.stderr
