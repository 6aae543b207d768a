"""The console's one way to reach a cluster: the official `kubernetes` client.

Configuration comes from `settings.KUBECONFIG` (the sandbox writes one), else in-cluster credentials
when running in a pod, else `~/.kube/config`. Every failure to reach or use the cluster surfaces as
`ClusterError` with a message fit to show a person.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import urllib3
from django.conf import settings
from kubernetes import client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

FIELD_MANAGER = "meshconsole"


class ClusterError(Exception):
    """The cluster is not configured, not reachable, or refused the request."""


def api_client() -> client.ApiClient:
    """A configured API client; use it as a context manager so its connection pool is closed."""
    configuration = client.Configuration()
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    source = settings.KUBECONFIG or ("in-cluster credentials" if in_cluster else "~/.kube/config")
    try:
        if settings.KUBECONFIG:
            k8s_config.load_kube_config(config_file=settings.KUBECONFIG, client_configuration=configuration)
        elif in_cluster:
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            k8s_config.load_kube_config(client_configuration=configuration)
    except (ConfigException, OSError) as exc:
        raise ClusterError(f"no usable cluster configuration ({source}): {exc}") from exc
    # urllib3 retries three times by default; a user is waiting, so fail after one retry.
    configuration.retries = 1
    return client.ApiClient(configuration)


def ensure_namespace(name: str, labels: Mapping[str, str]) -> bool:
    """Server-side apply a Namespace with `labels` as field manager `meshconsole`.

    Idempotent: applying the same labels again changes nothing. Labels set by other managers (e.g. the
    sidecar-injection label of lab step 1) are left alone. Returns True when this call created the
    namespace (the API answers 201), False when it already existed.
    """
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels)}}
    with api_client() as api:
        try:
            _, status, _ = client.CoreV1Api(api).patch_namespace_with_http_info(
                name,
                body,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
                _request_timeout=settings.KUBERNETES_TIMEOUT,
            )
        except ApiException as exc:
            raise ClusterError(f"the cluster refused namespace {name}: {exc.status} {exc.reason}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise ClusterError(f"cannot reach the cluster at {api.configuration.host}: {exc}") from exc
    return status == 201


def delete_namespace(name: str) -> bool:
    """Ask the cluster to delete namespace `name` (and so everything in it); False when it did not exist."""
    with api_client() as api:
        try:
            client.CoreV1Api(api).delete_namespace(name, _request_timeout=settings.KUBERNETES_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise ClusterError(f"the cluster refused to delete namespace {name}: {exc.status} {exc.reason}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise ClusterError(f"cannot reach the cluster at {api.configuration.host}: {exc}") from exc
    return True


def namespace_exists(name: str) -> bool:
    with api_client() as api:
        try:
            client.CoreV1Api(api).read_namespace(name, _request_timeout=settings.KUBERNETES_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise ClusterError(f"the cluster refused to read namespace {name}: {exc.status} {exc.reason}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise ClusterError(f"cannot reach the cluster at {api.configuration.host}: {exc}") from exc
    return True
