"""App hosts: a real worker process serves the built-in apps on sockets the kubelet bound and passed over."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from sandbox.apphost import AppHost, AppHostError

LOCAL = "127.0.0.1"
DEADLINE = 30.0


def listening() -> socket.socket:
    sock = socket.create_server((LOCAL, 0))
    sock.setblocking(False)
    return sock


async def refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(LOCAL, port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


def test_a_host_serves_an_app_until_told_to_stop() -> None:
    async def scenario() -> None:
        host = AppHost(0)
        host.start_process()
        try:
            sock = listening()
            port = sock.getsockname()[1]
            app_id = host.place()
            await host.start_app(app_id, "kvstore", {}, sock)
            sock.close()  # the host holds its own copy
            assert host.apps == 1
            async with aiohttp.ClientSession() as session:
                async with session.post(f"http://{LOCAL}:{port}/api/put", json={"key": "a", "value": "1"}) as r:
                    assert r.status == 200
                async with session.get(f"http://{LOCAL}:{port}/api/list") as r:
                    assert r.status == 200
                    assert await r.json() == [{"key": "a", "value": "1", "version": 1}]
            await host.stop_app(app_id)
            assert host.apps == 0
            assert await refused(port)  # stop_app returns once the host has closed the socket
        finally:
            host.stop_process()
        assert host.process is not None and host.process.returncode == 0

    asyncio.run(asyncio.wait_for(scenario(), DEADLINE))


@pytest.mark.parametrize(
    ("app", "env", "message"),
    [("redis", {}, "cannot run app 'redis'"), ("splitdim", {"KVSTORE_MODE": "redis"}, "KVSTORE_MODE")],
)
def test_an_app_that_cannot_start_is_an_error_and_the_host_lives_on(app: str, env: dict, message: str) -> None:
    async def scenario() -> None:
        host = AppHost(0)
        host.start_process()
        try:
            sock = listening()
            with pytest.raises(AppHostError, match=message):
                await host.start_app(host.place(), app, env, sock)
            sock.close()
            assert host.apps == 0
            other = listening()
            port = other.getsockname()[1]
            app_id = host.place()
            await host.start_app(app_id, "splitdim", {}, other)
            other.close()
            async with aiohttp.ClientSession() as session, session.get(f"http://{LOCAL}:{port}/api/accounts") as r:
                assert r.status == 200
            await host.stop_app(app_id)
        finally:
            host.stop_process()

    asyncio.run(asyncio.wait_for(scenario(), DEADLINE))


def test_a_dead_host_fails_requests_instead_of_hanging() -> None:
    async def scenario() -> None:
        host = AppHost(0)
        host.start_process()
        assert host.process is not None
        host.process.kill()
        host.process.wait(10)
        sock = listening()
        try:
            with pytest.raises(AppHostError):
                await host.start_app(host.place(), "kvstore", {}, sock)
            assert host.apps == 0
        finally:
            sock.close()
            host.stop_process()

    asyncio.run(asyncio.wait_for(scenario(), DEADLINE))


def test_a_stop_sent_while_the_app_starts_leaves_nothing_serving() -> None:
    async def scenario() -> None:
        host = AppHost(0)
        host.start_process()
        try:
            for _ in range(5):
                sock = listening()
                port = sock.getsockname()[1]
                app_id = host.place()
                starting = asyncio.ensure_future(host.start_app(app_id, "kvstore", {}, sock))
                await asyncio.sleep(0)  # the start is sent; the pod is deleted before the host answers
                await host.stop_app(app_id)
                await starting
                sock.close()
                assert host.apps == 0
                assert await refused(port)
        finally:
            host.stop_process()

    asyncio.run(asyncio.wait_for(scenario(), DEADLINE))
