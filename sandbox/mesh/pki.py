"""The sandbox mesh's certificate authority: SPIFFE workload identities and the mutual-TLS contexts.

Like istiod, one root CA signs a short-lived certificate per (namespace, service account) whose only
name is the URI SAN `spiffe://cluster.local/ns/<ns>/sa/<sa>`. Sidecars authenticate each other by that
SPIFFE ID, not by DNS names, so clients do not check host names.
"""

from __future__ import annotations

import functools
import os
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TRUST_DOMAIN = "cluster.local"
CA_NAME = "sandbox mesh root"
CA_LIFETIME = timedelta(days=3650)
WORKLOAD_LIFETIME = timedelta(hours=24)
REISSUE_BEFORE = timedelta(hours=1)
# What Istio's sidecars offer on mesh connections; plain HTTP/1.1 stays acceptable.
MESH_ALPN = ["istio-peer-exchange", "istio", "http/1.1"]
# Istio's telemetry uses this for the principal of a peer that presented no certificate.
UNKNOWN_PRINCIPAL = "unknown"

Clock = Callable[[], datetime]  # returns the current time, timezone-aware UTC
Root = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def spiffe_id(namespace: str, service_account: str) -> str:
    """The SPIFFE ID Istio gives a workload running as `service_account` in `namespace`."""
    for part in (namespace, service_account):
        if not part or "/" in part:
            raise ValueError(f"invalid namespace or service account name: {part!r}")
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}"


def principal(peer_id: str | None) -> str:
    """The value of Istio's `source_principal`/`destination_principal` metric labels for a peer.

    Istio puts the full SPIFFE URI there (`spiffe://cluster.local/ns/x/sa/y`) and "unknown" when
    the connection was not mutual TLS.
    """
    return peer_id or UNKNOWN_PRINCIPAL


def peer_spiffe_id(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> str | None:
    """The SPIFFE ID in the peer's certificate, or None when it sent none or it has no SPIFFE URI SAN."""
    der = ssl_object.getpeercert(binary_form=True)
    return _spiffe_id_of(der) if der else None


@functools.lru_cache(maxsize=4096)
def _spiffe_id_of(der: bytes) -> str | None:
    # Parsing DER costs far more than hashing it, and a sidecar sees the same few peers again and again.
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return next((uri for uri in uris if uri.startswith("spiffe://")), None)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable by the owner only (it may hold a private key)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates files 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@dataclass(eq=False)
class Identity:
    """One workload's key and certificate, with its TLS contexts built on first use and then reused."""

    spiffe_id: str
    certificate: x509.Certificate
    key_pem: bytes = field(repr=False)
    cert_pem: bytes
    root_pem: bytes
    _contexts: dict[bool, ssl.SSLContext] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    def server_context(self) -> ssl.SSLContext:
        """TLS 1.3 server context that requires a client certificate signed by the mesh CA."""
        return self._context(server=True)

    def client_context(self) -> ssl.SSLContext:
        """TLS 1.3 client context presenting this identity and trusting only the mesh CA."""
        return self._context(server=False)

    def _context(self, server: bool) -> ssl.SSLContext:
        with self._lock:
            ctx = self._contexts.get(server)
            if ctx is None:
                ctx = self._contexts[server] = self._build_context(server)
            return ctx

    def _build_context(self, server: bool) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        # Peers are identified by SPIFFE ID (peer_spiffe_id), never by host name.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        ctx.load_verify_locations(cadata=self.root_pem.decode())
        ctx.set_alpn_protocols(MESH_ALPN)
        self._load_chain(ctx)
        return ctx

    def _load_chain(self, ctx: ssl.SSLContext) -> None:
        # The ssl module only loads certificates and keys from files: hand it a private (0600)
        # temporary file and remove it at once.
        fd, path = tempfile.mkstemp(prefix="mesh-identity-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.cert_pem + self.key_pem)
            ctx.load_cert_chain(path)
        finally:
            os.unlink(path)


class MeshCA:
    """The sandbox mesh's root CA (EC P-256, 10 years) and its cache of workload identities.

    With `state_dir`, the root key and certificate live in `state_dir/ca.key` and `ca.crt` so that a
    restarted sandbox keeps trusting the same root; without it the root lives in memory only.
    `clock` returns the current UTC time; tests inject one to move through certificate lifetimes.
    """

    def __init__(self, state_dir: Path | None = None, *, clock: Clock = _utc_now) -> None:
        self._clock = clock
        self._identities: dict[tuple[str, str], Identity] = {}
        self._lock = threading.Lock()
        root = self._load(state_dir) if state_dir else None
        if root is None:
            root = self._create_root()
            if state_dir:
                self._save(state_dir, *root)
        self.key, self.certificate = root
        self.root_pem = self.certificate.public_bytes(serialization.Encoding.PEM)
        self._root_ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value

    @staticmethod
    def _load(state_dir: Path) -> Root | None:
        key_path, cert_path = state_dir / "ca.key", state_dir / "ca.crt"
        if not (key_path.exists() and cert_path.exists()):
            return None
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
            raise ValueError(f"{key_path} and {cert_path} are not a matching EC key and certificate")
        return key, cert

    @staticmethod
    def _save(state_dir: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        # The certificate first: a crash before the key is written leaves no loadable half-pair.
        _write_private(state_dir / "ca.crt", cert.public_bytes(serialization.Encoding.PEM))
        _write_private(state_dir / "ca.key", _pem_key(key))

    def _create_root(self) -> Root:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRUST_DOMAIN),
                x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
            ]
        )
        now = self._clock()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def identity(self, namespace: str, service_account: str) -> Identity:
        """The workload identity for (namespace, service account), re-issued when under an hour is left."""
        with self._lock:
            current = self._identities.get((namespace, service_account))
            if current is None or current.not_after - self._clock() < REISSUE_BEFORE:
                current = self._identities[(namespace, service_account)] = self._issue(
                    spiffe_id(namespace, service_account)
                )
            return current

    def _issue(self, workload_id: str) -> Identity:
        key = ec.generate_private_key(ec.SECP256R1())
        now = self._clock()
        # Istio's workload certificates have an empty subject, so the SAN is their name and critical.
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(min(now + WORKLOAD_LIFETIME, self.certificate.not_valid_after_utc))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(workload_id)]), critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(self._root_ski), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return Identity(
            spiffe_id=workload_id,
            certificate=cert,
            key_pem=_pem_key(key),
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            root_pem=self.root_pem,
        )
