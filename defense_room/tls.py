"""TLS for the web server: a reusable self-signed certificate, or the
configured one, and the LAN address to put into invite links.

Browsers only grant camera access on HTTPS pages, so even a defense on one
LAN needs a certificate. Without one configured we make a self-signed one
(EC P-256) once and keep it under <data_dir>/tls/, so participants accept the
browser warning once and the fingerprint we print stays the same.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import ifaddr
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from server.config import Config, ConfigError, TlsMode

logger = logging.getLogger(__name__)

CERT_VALIDITY = datetime.timedelta(days=365)
# Regenerate a little before expiry rather than serve a certificate that
# runs out in the middle of a defense day.
_RENEW_BEFORE = datetime.timedelta(days=7)
# Tolerate participants' clocks running a bit behind ours.
_BACKDATE = datetime.timedelta(hours=1)

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """A certificate and key on disk, with the fingerprint people compare."""

    cert_file: Path
    key_file: Path
    # Colon-separated uppercase hex SHA-256 of the DER certificate, the way
    # browsers display it.
    fingerprint_sha256: str


def detect_lan_address(adapters: Iterable[ifaddr.Adapter] | None = None) -> str:
    """The first non-loopback IPv4 address of a local interface.

    Reads the interface list only: it never opens a socket, so nothing
    outside this computer learns that it asked. Link-local (169.254.x.x)
    addresses are skipped. Falls back to "127.0.0.1".
    """
    if adapters is None:
        adapters = ifaddr.get_adapters()
    for adapter in adapters:
        for ip in adapter.ips:
            if not ip.is_IPv4 or not isinstance(ip.ip, str):
                continue
            address = ipaddress.IPv4Address(ip.ip)
            if not address.is_loopback and not address.is_link_local:
                return str(address)
    return "127.0.0.1"


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate as "AB:CD:...", like browsers show it."""
    return ":".join(f"{byte:02X}" for byte in cert.fingerprint(hashes.SHA256()))


def ensure_self_signed(
    tls_dir: Path, host: str, *, now: datetime.datetime | None = None
) -> TlsMaterial:
    """Reuse tls_dir/cert.pem and key.pem if they suit `host`, else make them.

    The certificate names `host` (an IP address or a host name), 127.0.0.1,
    ::1 and localhost. It is regenerated when it does not cover `host`, is
    about to expire, or does not match the key.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    cert_file, key_file = tls_dir / "cert.pem", tls_dir / "key.pem"
    cert = _reusable_cert(cert_file, key_file, host, now)
    if cert is None:
        tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        cert = _write_self_signed(cert_file, key_file, host, now)
        logger.info("created self-signed certificate %s for %s", cert_file, host)
    return TlsMaterial(cert_file, key_file, fingerprint_sha256(cert))


def ssl_context_for(cfg: Config, host: str) -> tuple[ssl.SSLContext | None, str | None]:
    """The server SSL context and certificate fingerprint for `cfg.tls`.

    Returns (None, None) when TLS is off. `host` is the name or address in
    invite links; only a self-signed certificate is made to match it.
    Raises ConfigError when configured files are missing or unusable.
    """
    tls = cfg.tls
    if tls.mode is TlsMode.OFF:
        return None, None
    if tls.cert_file is not None and tls.key_file is not None:
        cert_file, key_file = tls.cert_file, tls.key_file
        fingerprint = _fingerprint_of_file(cert_file)
    elif tls.mode is TlsMode.FILES:  # load_config rejects this; Config() may not
        raise ConfigError("config key 'tls.cert_file' is required when tls.mode is 'files'")
    else:
        material = ensure_self_signed(cfg.data_dir / "tls", host)
        cert_file, key_file = material.cert_file, material.key_file
        fingerprint = material.fingerprint_sha256
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load TLS certificate {cert_file} with key {key_file}: {exc}"
        ) from exc
    return context, fingerprint


def self_signed_warning(cfg: Config, public_host: str, listen_host: str) -> str | None:
    """A start-up warning when the server offers a self-signed certificate beyond this
    machine (None otherwise; call after ``ssl_context_for``, which makes it).

    A desktop browser lets a person accept such a certificate for the page, but
    iPhones (Safari, and every iOS browser, which all use its engine) then still
    refuse the page's wss:// socket, so a student on a phone sees the pre-join page
    and never gets into the room."""
    if cfg.tls.mode is TlsMode.OFF:
        return None
    if _is_loopback(listen_host) and _is_loopback(public_host):
        return None
    cert_file = cfg.tls.cert_file or cfg.data_dir / "tls" / "cert.pem"
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return None
    if cert.issuer != cert.subject:
        return None
    return (f"WARNING: the TLS certificate ({cert_file}) is self-signed, and the server is "
            f"reachable beyond this machine (as {public_host}). Phones, iPhones above all, "
            "refuse the room's wss:// connection to a self-signed certificate even after the "
            "warning is accepted. Use a trusted certificate (the university's, or a public one "
            "such as Let's Encrypt's): tls.mode: files, tls.cert_file (the full chain) and "
            "tls.key_file in config.yaml.")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _fingerprint_of_file(cert_file: Path) -> str:
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"config key 'tls.cert_file' names an unreadable certificate {cert_file}: {exc}"
        ) from exc
    return fingerprint_sha256(cert)


def _san_entry(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _reusable_cert(
    cert_file: Path, key_file: Path, host: str, now: datetime.datetime
) -> x509.Certificate | None:
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None  # missing or damaged: make a new pair
    if key.public_key() != cert.public_key():
        logger.warning("certificate %s does not match its key; regenerating", cert_file)
        return None
    if now + _RENEW_BEFORE >= cert.not_valid_after_utc:
        logger.info("certificate %s expires soon; regenerating", cert_file)
        return None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    if _san_entry(host) not in san.value:
        logger.info("certificate %s does not cover %s; regenerating", cert_file, host)
        return None
    return cert


def _write_self_signed(
    cert_file: Path, key_file: Path, host: str, now: datetime.datetime
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [_san_entry(host)]
    for extra in (
        x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
        x509.IPAddress(ipaddress.IPv6Address("::1")),
        x509.DNSName("localhost"),
    ):
        if extra not in names:
            names.append(extra)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, host),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Defense room (self-signed)"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Key first, so a crash in between leaves a mismatch that the next start
    # detects and repairs, never a certificate whose key is lost.
    _write_atomically(key_file, key_pem, mode=0o600)
    _write_atomically(cert_file, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return cert


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    # Created with its final mode: the private key is never readable by
    # others, not even for a moment.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.chmod(tmp, mode)  # os.open's mode is reduced by the umask
    os.replace(tmp, path)
