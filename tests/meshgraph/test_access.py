"""Who may watch or export a namespace's graph: its student and the instructors of the student's class."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from meshgraph.live import redis_client
from meshgraph.poller import Latest, Watchers
from tests.meshgraph.lab import connect, disconnect


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_websocket_admits_the_student_and_their_instructors_only(people):
    for user in (people.other_student, people.other_instructor, AnonymousUser()):
        socket, answer = await connect(user, people.namespace)
        assert answer == "websocket.close"
        await disconnect(socket)
    assert people.namespace not in await Watchers(redis_client()).namespaces()
    for user in (people.student, people.instructor):
        socket, answer = await connect(user, people.namespace)
        assert answer == "websocket.accept"
        assert people.namespace in await Watchers(redis_client()).namespaces()  # the worker will poll it
        await disconnect(socket)
        assert people.namespace not in await Watchers(redis_client()).namespaces()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_new_subscriber_gets_the_latest_graph_at_once(people):
    await Latest(redis_client()).put(people.namespace, json.dumps({"namespace": people.namespace}))
    socket, answer = await connect(people.student, people.namespace)
    assert answer == "websocket.accept"
    message = await socket.receive_output(5)
    assert json.loads(message["text"]) == {"type": "graph", "graph": {"namespace": people.namespace}}
    await disconnect(socket)


def test_json_export_has_the_same_rules(people):
    client = Client()
    url = f"/graph/{people.namespace}.json"
    assert client.get(url).status_code == 302  # to the login page
    for user in (people.other_student, people.other_instructor):
        client.force_login(user)
        refused = client.get(url)
        assert refused.status_code == 403 and people.namespace in refused.json()["error"]
    for user in (people.student, people.instructor):
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
        graph = response.json()
        # Nobody watches, so the graph is built now: no Prometheus configured, and the cluster is down.
        assert graph["namespace"] == people.namespace and graph["source"] == "embedded"
        assert (
            graph["status"]["ok"] is False
            and "is unreachable ([Errno 111] Connection refused)" in graph["status"]["message"]
        )
    assert "attachment" in client.get(url + "?download")["Content-Disposition"]
