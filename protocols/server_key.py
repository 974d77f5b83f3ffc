"""The server's own signing key: the trust anchor of every package it hands out.

Each evidence pack and hand-over package carries `manifest.json` (every file's
SHA-256, the protocols and their approvers, the signing keys registered to each
person) and `manifest.sig`, an Ed25519 signature of those exact bytes by this key.
Whoever knows the key's fingerprint (printed on every protocol PDF, shown to the
secretary) can check with `defense-room verify --key` that nobody changed the
package after the server made it.

The key is made once under ``<data>/server-key/`` (folder 0700, private key 0600)
and replaced only by `defense-room keys rotate`. Retired public keys stay in
``public/`` so older packages still verify; every rotation is appended to
``rotations.jsonl`` and logged.

`ServerKeyring` does the file I/O (call it in a thread from async code); the
signature functions below it are pure and shared with `defense-room verify`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import PaperworkError

logger = logging.getLogger(__name__)

FOLDER = "server-key"
SIGNATURE_FORMAT = "defense-room-manifest-signature/1"
_PRIVATE = "current.pem"
_PUBLIC = "public"
_ROTATIONS = "rotations.jsonl"


class ServerKeyError(PaperworkError):
    """The server key is unreadable, or a manifest signature does not verify."""

    code = "server_key"
    status_hint = 500


def fingerprint(public: Ed25519PublicKey) -> str:
    """SHA-256 hex of the key's SubjectPublicKeyInfo DER."""
    der = public.public_bytes(serialization.Encoding.DER,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_public_pem(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; `ServerKeyError` for anything else."""
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ServerKeyError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ServerKeyError(f"the server key must be Ed25519, not {type(key).__name__}")
    return key


@dataclass(frozen=True, slots=True)
class ServerKey:
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)

    def sign_manifest(self, manifest_bytes: bytes) -> bytes:
        """The content of `manifest.sig` for the exact bytes of `manifest.json`."""
        signature = self.private.sign(manifest_bytes)
        return json.dumps({
            "format": SIGNATURE_FORMAT, "key": self.fingerprint,
            "public_key": public_pem(self.public),
            "signature": base64.b64encode(signature).decode("ascii")}, indent=1).encode()


def check_manifest_signature(signature_file: bytes, manifest_bytes: bytes,
                             trusted: dict[str, Ed25519PublicKey]) -> str:
    """The fingerprint of the key in `trusted` (by fingerprint) that signed the manifest;
    `ServerKeyError` naming what is wrong otherwise."""
    try:
        record: Any = json.loads(signature_file)
        claimed, pem, value = record["key"], record["public_key"], record["signature"]
        raw = base64.b64decode(str(value), validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ServerKeyError(f"manifest.sig is unreadable: {exc}") from None
    carried = load_public_pem(str(pem).encode())
    if fingerprint(carried) != claimed:
        raise ServerKeyError("manifest.sig names a key fingerprint that is not its key's")
    key = trusted.get(str(claimed))
    if key is None:
        known = ", ".join(f[:16] for f in sorted(trusted)) or "none"
        raise ServerKeyError(f"the manifest is signed by server key {str(claimed)[:16]}…, "
                             f"not by the key you trust ({known})")
    try:
        key.verify(raw, manifest_bytes)
    except InvalidSignature:
        raise ServerKeyError("the manifest signature does not verify: manifest.json was "
                             "changed after the server signed it") from None
    return str(claimed)


class ServerKeyring:
    """The key files under ``<data>/server-key/``; blocking file I/O."""

    def __init__(self, data_dir: Path) -> None:
        self._folder = data_dir / FOLDER
        self._lock = threading.Lock()
        self._current: ServerKey | None = None
        self._stamp: int | None = None  # mtime of the file `_current` was read from

    @property
    def folder(self) -> Path:
        return self._folder

    def current(self) -> ServerKey:
        """The signing key, made on first use; read again after `keys rotate` (run by
        another process) replaced the file."""
        path = self._folder / _PRIVATE
        with self._lock:
            try:
                stamp: int | None = path.stat().st_mtime_ns
            except FileNotFoundError:
                stamp = None
            if self._current is None or stamp != self._stamp:
                self._current = self._read(path) if stamp is not None else self._make(None)
                self._stamp = path.stat().st_mtime_ns
            return self._current

    def rotate(self, now: float) -> tuple[str | None, str]:
        """Replace the signing key: (old fingerprint or None, new fingerprint). The old
        public key stays known, so packages it signed still verify."""
        with self._lock:
            path = self._folder / _PRIVATE
            old = self._read(path).fingerprint if path.exists() else None
            self._current = self._make(old, now)
            self._stamp = path.stat().st_mtime_ns
            new = self._current.fingerprint
        logger.info("server key rotated: %s -> %s", old, new)
        return old, new

    def known(self) -> dict[str, Ed25519PublicKey]:
        """Every public key this server has signed with, current and retired."""
        self.current()
        found = {}
        for path in sorted((self._folder / _PUBLIC).glob("*.pem")):
            key = load_public_pem(path.read_bytes())
            found[fingerprint(key)] = key
        return found

    def _read(self, path: Path) -> ServerKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ServerKeyError(f"the server key {path} is unreadable: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ServerKeyError(f"the server key {path} is not an Ed25519 key")
        return ServerKey(key)

    def _make(self, old: str | None, now: float | None = None) -> ServerKey:
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self._folder / _PUBLIC).mkdir(mode=0o700, exist_ok=True)
        key = ServerKey(Ed25519PrivateKey.generate())
        (self._folder / _PUBLIC / f"{key.fingerprint}.pem").write_text(public_pem(key.public))
        pem = key.private.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        tmp = self._folder / f"{_PRIVATE}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self._folder / _PRIVATE)
        with (self._folder / _ROTATIONS).open("a") as journal:
            journal.write(json.dumps({"at": now, "old": old, "new": key.fingerprint}) + "\n")
        if old is None:
            logger.info("server key made: %s", key.fingerprint)
        return key
