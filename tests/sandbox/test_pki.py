"""The mesh CA and its mutual-TLS contexts, exercised with real TLS handshakes over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sandbox.mesh import pki
from sandbox.mesh.pki import MeshCA, peer_spiffe_id, principal

Outcome = str | None | BaseException
REQUEST = b"GET /api/list HTTP/1.1\r\nHost: kvstore\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def ca() -> MeshCA:
    return MeshCA()


@contextlib.asynccontextmanager
async def mtls_server(ctx: ssl.SSLContext) -> AsyncIterator[tuple[int, asyncio.Queue[Outcome]]]:
    """An HTTP server on 127.0.0.1 that upgrades each connection with `ctx`.

    Each connection's outcome goes to the queue: the client's SPIFFE ID after a good handshake, or the
    handshake's exception. The response body is the client's principal, so the client can check what
    the server saw.
    """
    outcomes: asyncio.Queue[Outcome] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await writer.start_tls(ctx)
        except (ssl.SSLError, ConnectionError) as e:
            await outcomes.put(e)
            writer.close()
            return
        peer = peer_spiffe_id(writer.get_extra_info("ssl_object"))
        await outcomes.put(peer)
        await reader.readuntil(b"\r\n\r\n")
        body = principal(peer).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], outcomes


async def exchange(port: int, ctx: ssl.SSLContext | None) -> tuple[str | None, bytes | BaseException]:
    """One request from a client using `ctx` (None: plaintext): the server's SPIFFE ID and the reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    ssl_object = writer.get_extra_info("ssl_object")
    server_id = peer_spiffe_id(ssl_object) if ssl_object else None
    try:
        writer.write(REQUEST)
        await writer.drain()
        reply: bytes | BaseException = await reader.read()
    except (ssl.SSLError, ConnectionError) as e:
        reply = e
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()
    return server_id, reply


async def next_outcome(outcomes: asyncio.Queue[Outcome]) -> Outcome:
    return await asyncio.wait_for(outcomes.get(), timeout=5)


def client_context_trusting(ca: MeshCA, identity: pki.Identity | None, tmp_path: Path) -> ssl.SSLContext:
    """A client that trusts `ca` and presents `identity` (from any CA), or no certificate at all."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=ca.root_pem.decode())
    if identity is not None:
        pem = tmp_path / "foreign.pem"
        pem.write_bytes(identity.cert_pem + identity.key_pem)
        ctx.load_cert_chain(pem)
    return ctx


@pytest.mark.asyncio
async def test_mutual_tls_exchange_each_side_sees_the_others_spiffe_id(ca: MeshCA) -> None:
    server_id = ca.identity("lab-1", "kvstore")
    client_id = ca.identity("lab-1", "splitdim")
    async with mtls_server(server_id.server_context()) as (port, outcomes):
        seen_server, reply = await exchange(port, client_id.client_context())
        seen_client = await next_outcome(outcomes)
    assert seen_server == "spiffe://cluster.local/ns/lab-1/sa/kvstore"
    assert seen_client == "spiffe://cluster.local/ns/lab-1/sa/splitdim"
    assert isinstance(reply, bytes) and reply.startswith(b"HTTP/1.1 200 OK")
    assert reply.endswith(b"\r\n\r\nspiffe://cluster.local/ns/lab-1/sa/splitdim")


@pytest.mark.asyncio
async def test_mesh_alpn_is_negotiated(ca: MeshCA) -> None:
    async with mtls_server(ca.identity("lab-1", "kvstore").server_context()) as (port, outcomes):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ca.identity("lab-1", "splitdim").client_context()
        )
        ssl_object = writer.get_extra_info("ssl_object")
        writer.write(REQUEST)
        assert (await reader.read()).startswith(b"HTTP/1.1 200 OK")
        writer.close()
        await writer.wait_closed()
        assert isinstance(await next_outcome(outcomes), str)
    assert ssl_object.selected_alpn_protocol() == "istio-peer-exchange"
    assert ssl_object.version() == "TLSv1.3"


@pytest.mark.asyncio
async def test_client_without_certificate_is_refused(ca: MeshCA, tmp_path: Path) -> None:
    async with mtls_server(ca.identity("lab-1", "kvstore").server_context()) as (port, outcomes):
        _, reply = await exchange(port, client_context_trusting(ca, None, tmp_path))
        refusal = await next_outcome(outcomes)
    assert isinstance(refusal, ssl.SSLError)
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in str(refusal)
    # TLS 1.3 clients finish their side of the handshake first; the refusal arrives on the first read.
    assert not (isinstance(reply, bytes) and reply.startswith(b"HTTP/"))


@pytest.mark.asyncio
async def test_client_with_certificate_from_another_ca_is_refused(ca: MeshCA, tmp_path: Path) -> None:
    foreign = MeshCA().identity("lab-1", "splitdim")
    async with mtls_server(ca.identity("lab-1", "kvstore").server_context()) as (port, outcomes):
        _, reply = await exchange(port, client_context_trusting(ca, foreign, tmp_path))
        refusal = await next_outcome(outcomes)
    assert isinstance(refusal, ssl.SSLCertVerificationError)
    assert not (isinstance(reply, bytes) and reply.startswith(b"HTTP/"))


@pytest.mark.asyncio
async def test_client_refuses_server_from_another_ca(ca: MeshCA) -> None:
    foreign_server = MeshCA().identity("lab-1", "kvstore")
    async with mtls_server(foreign_server.server_context()) as (port, outcomes):
        with pytest.raises(ssl.SSLCertVerificationError):
            await exchange(port, ca.identity("lab-1", "splitdim").client_context())
        # The server's handshake fails too: the client's alert, or a reset if the client hung up first.
        assert isinstance(await next_outcome(outcomes), ssl.SSLError | ConnectionError)


@pytest.mark.asyncio
async def test_plaintext_client_is_refused(ca: MeshCA) -> None:
    async with mtls_server(ca.identity("lab-1", "kvstore").server_context()) as (port, outcomes):
        _, reply = await exchange(port, None)
        refusal = await next_outcome(outcomes)
    assert isinstance(refusal, ssl.SSLError)
    assert not (isinstance(reply, bytes) and reply.startswith(b"HTTP/"))


def test_workload_certificate_carries_the_spiffe_identity(ca: MeshCA) -> None:
    identity = ca.identity("lab-2", "default")
    cert = identity.certificate
    assert identity.spiffe_id == "spiffe://cluster.local/ns/lab-2/sa/default"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [identity.spiffe_id]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(hours=24)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"
    cert.verify_directly_issued_by(ca.certificate)


def test_root_is_a_ten_year_p256_ca(ca: MeshCA) -> None:
    root = ca.certificate
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "sandbox mesh root"
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert root.not_valid_after_utc - root.not_valid_before_utc == timedelta(days=3650)
    assert root.public_key().curve.name == "secp256r1"


def test_identities_and_contexts_are_cached(ca: MeshCA) -> None:
    first = ca.identity("lab-3", "splitdim")
    assert ca.identity("lab-3", "splitdim") is first
    assert ca.identity("lab-3", "kvstore") is not first
    assert ca.identity("lab-4", "splitdim") is not first
    assert first.server_context() is first.server_context()
    assert first.client_context() is first.client_context()
    assert first.server_context() is not first.client_context()


def test_identity_is_reissued_when_less_than_an_hour_is_left() -> None:
    now = [datetime.now(UTC)]
    ca = MeshCA(clock=lambda: now[0])
    first = ca.identity("lab-5", "splitdim")
    now[0] += timedelta(hours=22, minutes=59)
    assert ca.identity("lab-5", "splitdim") is first
    now[0] += timedelta(minutes=2)
    renewed = ca.identity("lab-5", "splitdim")
    assert renewed is not first
    assert renewed.spiffe_id == first.spiffe_id
    assert renewed.certificate.serial_number != first.certificate.serial_number
    assert renewed.not_after == (now[0] + timedelta(hours=24)).replace(microsecond=0)
    assert renewed.key_pem != first.key_pem


@pytest.mark.asyncio
async def test_state_dir_keeps_the_same_root(tmp_path: Path) -> None:
    state = tmp_path / "state" / "mesh"
    before = MeshCA(state)
    assert stat.S_IMODE((state / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "ca.crt").stat().st_mode) == 0o600
    after = MeshCA(state)
    assert after.certificate == before.certificate
    # Identities from the reloaded CA and the original one trust each other.
    async with mtls_server(before.identity("lab-6", "kvstore").server_context()) as (port, outcomes):
        seen_server, _ = await exchange(port, after.identity("lab-6", "splitdim").client_context())
        assert await next_outcome(outcomes) == "spiffe://cluster.local/ns/lab-6/sa/splitdim"
    assert seen_server == "spiffe://cluster.local/ns/lab-6/sa/kvstore"


def test_state_dir_with_mismatched_key_is_rejected(tmp_path: Path) -> None:
    MeshCA(tmp_path / "a")
    MeshCA(tmp_path / "b")
    (tmp_path / "a" / "ca.key").write_bytes((tmp_path / "b" / "ca.key").read_bytes())
    with pytest.raises(ValueError, match="not a matching"):
        MeshCA(tmp_path / "a")


@pytest.mark.asyncio
async def test_peer_spiffe_id_parses_each_certificate_once(ca: MeshCA) -> None:
    async with mtls_server(ca.identity("lab-7", "kvstore").server_context()) as (port, outcomes):
        client = ca.identity("lab-7", "splitdim").client_context()
        await exchange(port, client)
        await next_outcome(outcomes)
        hits = pki._spiffe_id_of.cache_info().hits
        await exchange(port, client)
        assert await next_outcome(outcomes) == "spiffe://cluster.local/ns/lab-7/sa/splitdim"
    assert pki._spiffe_id_of.cache_info().hits >= hits + 2  # both sides' certificates came from the cache


def test_principal_is_istios_label_value() -> None:
    assert principal("spiffe://cluster.local/ns/x/sa/y") == "spiffe://cluster.local/ns/x/sa/y"
    assert principal(None) == "unknown"


@pytest.mark.parametrize(("namespace", "service_account"), [("", "sa"), ("ns", ""), ("a/b", "sa")])
def test_invalid_names_are_rejected(ca: MeshCA, namespace: str, service_account: str) -> None:
    with pytest.raises(ValueError):
        ca.identity(namespace, service_account)
