"""Tests for defense_room.tls: LAN address, self-signed certificate, context."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import re
import socket
import ssl
import stat
from pathlib import Path
from typing import Any

import ifaddr
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from defense_room.tls import detect_lan_address, ensure_self_signed, self_signed_warning, ssl_context_for
from server.config import Config, ConfigError, TlsConfig, TlsMode


def adapter(name: str, *ips: str | tuple[str, int, int]) -> ifaddr.Adapter:
    return ifaddr.Adapter(name, name, [ifaddr.IP(ip, 24, name) for ip in ips])


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def san_of(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(name.value) for name in san}


def browser_fingerprint(cert: x509.Certificate) -> str:
    """What `openssl x509 -fingerprint -sha256` prints after the '='."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(cert.public_bytes(serialization.Encoding.DER))
    return ":".join(f"{b:02X}" for b in digest.finalize())


def handshake(server_ctx: ssl.SSLContext, cafile: Path, server_hostname: str) -> None:
    """A full TLS handshake over memory buffers: no sockets involved."""
    client_ctx = ssl.create_default_context(cafile=str(cafile))
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    pending = [client, server]
    for _ in range(10):
        for side in list(pending):
            try:
                side.do_handshake()
                pending.remove(side)
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if not pending:
            return
    raise AssertionError("TLS handshake did not finish")


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("detect_lan_address must not open sockets")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "sendto", refuse)


def test_lan_address_skips_loopback_and_link_local() -> None:
    adapters = [
        adapter("lo", "127.0.0.1", ("::1", 0, 0)),
        adapter("wlan0", "169.254.10.2", ("fe80::1", 0, 2)),
        adapter("eth0", "192.168.1.20"),
        adapter("eth1", "10.0.0.5"),
    ]
    assert detect_lan_address(adapters) == "192.168.1.20"


def test_lan_address_falls_back_to_loopback() -> None:
    assert detect_lan_address([adapter("lo", "127.0.0.1", ("::1", 0, 0))]) == "127.0.0.1"
    assert detect_lan_address([]) == "127.0.0.1"


def test_lan_address_of_this_machine(no_sockets: None) -> None:
    address = ipaddress.ip_address(detect_lan_address())
    assert address.version == 4


def test_self_signed_certificate(tmp_path: Path) -> None:
    material = ensure_self_signed(tmp_path / "tls", "192.168.1.20")
    cert = load_cert(material.cert_file)
    assert san_of(cert) == {"192.168.1.20", "127.0.0.1", "::1", "localhost"}
    assert material.fingerprint_sha256 == browser_fingerprint(cert)
    assert len(material.fingerprint_sha256.split(":")) == 32
    assert stat.S_IMODE(material.key_file.stat().st_mode) == 0o600
    validity = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=365) <= validity <= datetime.timedelta(days=366)
    key = serialization.load_pem_private_key(material.key_file.read_bytes(), None)
    assert key.public_key() == cert.public_key()
    assert not list(material.cert_file.parent.glob("*.tmp"))


def test_certificate_is_reused(tmp_path: Path) -> None:
    first = ensure_self_signed(tmp_path, "192.168.1.20")
    cert_bytes = first.cert_file.read_bytes()
    again = ensure_self_signed(tmp_path, "192.168.1.20")
    assert again == first
    assert again.cert_file.read_bytes() == cert_bytes
    # localhost is always covered, so it needs no new certificate either.
    assert ensure_self_signed(tmp_path, "localhost") == first


def test_certificate_is_regenerated_for_a_new_host(tmp_path: Path) -> None:
    first = ensure_self_signed(tmp_path, "192.168.1.20")
    second = ensure_self_signed(tmp_path, "defense.example.edu")
    assert second.fingerprint_sha256 != first.fingerprint_sha256
    assert "defense.example.edu" in san_of(load_cert(second.cert_file))
    assert stat.S_IMODE(second.key_file.stat().st_mode) == 0o600


def test_certificate_is_regenerated_before_expiry(tmp_path: Path) -> None:
    first = ensure_self_signed(tmp_path, "192.168.1.20")
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=360)
    renewed = ensure_self_signed(tmp_path, "192.168.1.20", now=later)
    assert renewed.fingerprint_sha256 != first.fingerprint_sha256


def test_damaged_or_mismatched_files_are_replaced(tmp_path: Path) -> None:
    first = ensure_self_signed(tmp_path / "a", "192.168.1.20")
    other = ensure_self_signed(tmp_path / "b", "192.168.1.20")
    other.key_file.replace(first.key_file)  # key of another certificate
    fixed = ensure_self_signed(tmp_path / "a", "192.168.1.20")
    assert fixed.fingerprint_sha256 != first.fingerprint_sha256
    key = serialization.load_pem_private_key(fixed.key_file.read_bytes(), None)
    assert key.public_key() == load_cert(fixed.cert_file).public_key()
    fixed.cert_file.write_text("garbage")
    assert ensure_self_signed(tmp_path / "a", "192.168.1.20").fingerprint_sha256


def test_ssl_context_off() -> None:
    cfg = Config(tls=TlsConfig(mode=TlsMode.OFF))
    assert ssl_context_for(cfg, "192.168.1.20") == (None, None)


def test_ssl_context_auto_serves_the_self_signed_certificate(tmp_path: Path) -> None:
    cfg = Config(data_dir=tmp_path)
    context, fingerprint = ssl_context_for(cfg, "127.0.0.1")
    assert context is not None
    cert_file = tmp_path / "tls" / "cert.pem"
    assert fingerprint == browser_fingerprint(load_cert(cert_file))
    handshake(context, cert_file, "127.0.0.1")
    handshake(context, cert_file, "localhost")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(context, cert_file, "wrong.example.edu")


def test_ssl_context_files_mode(tmp_path: Path) -> None:
    material = ensure_self_signed(tmp_path / "elsewhere", "192.168.1.20")
    cfg = Config(
        data_dir=tmp_path / "data",
        tls=TlsConfig(TlsMode.FILES, material.cert_file, material.key_file),
    )
    context, fingerprint = ssl_context_for(cfg, "10.0.0.1")
    assert context is not None
    assert fingerprint == material.fingerprint_sha256
    assert not (tmp_path / "data").exists()  # no self-signed certificate made
    handshake(context, material.cert_file, "192.168.1.20")


def test_ssl_context_missing_files(tmp_path: Path) -> None:
    tls = TlsConfig(TlsMode.FILES, tmp_path / "cert.pem", tmp_path / "key.pem")
    with pytest.raises(ConfigError, match=re.escape("tls.cert_file")):
        ssl_context_for(Config(tls=tls), "127.0.0.1")
    material = ensure_self_signed(tmp_path, "127.0.0.1")
    (tmp_path / "key.pem").unlink()
    cfg = Config(tls=dataclasses.replace(tls, cert_file=material.cert_file))
    with pytest.raises(ConfigError, match="cannot load TLS certificate"):
        ssl_context_for(cfg, "127.0.0.1")


def _ca_signed(folder: Path, host: str) -> tuple[Path, Path]:
    """A certificate for ``host`` issued by a (throwaway) CA, as a university's is."""
    from cryptography.hazmat.primitives.asymmetric import ec

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "University CA")])
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_self_signed_certificate_on_the_network_is_warned_about(tmp_path: Path) -> None:
    cfg = Config(data_dir=tmp_path)
    ssl_context_for(cfg, "192.168.1.20")
    warning = self_signed_warning(cfg, "192.168.1.20", "0.0.0.0")
    assert warning is not None
    assert "self-signed" in warning and "iPhone" in warning and "tls.cert_file" in warning
    # Only this machine can reach it: nothing to warn about.
    assert self_signed_warning(cfg, "127.0.0.1", "127.0.0.1") is None
    assert self_signed_warning(cfg, "localhost", "::1") is None
    # A self-signed file configured in files mode is warned about as well.
    material = ensure_self_signed(tmp_path / "own", "192.168.1.20")
    files = Config(data_dir=tmp_path / "data",
                   tls=TlsConfig(TlsMode.FILES, material.cert_file, material.key_file))
    assert self_signed_warning(files, "192.168.1.20", "0.0.0.0") is not None
    # A certificate a CA issued is not; nor is a server without TLS.
    cert_file, key_file = _ca_signed(tmp_path / "ca", "192.168.1.20")
    trusted = Config(data_dir=tmp_path / "data", tls=TlsConfig(TlsMode.FILES, cert_file, key_file))
    ssl_context_for(trusted, "192.168.1.20")
    assert self_signed_warning(trusted, "192.168.1.20", "0.0.0.0") is None
    assert self_signed_warning(Config(tls=TlsConfig(mode=TlsMode.OFF)), "192.168.1.20", "0.0.0.0") is None
