"""A stand-in for a browser's WebCrypto key (P-256, JWK export, P1363 signatures), and
the ways the tests tamper with a signed package (a hand-over or an evidence pack)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from protocols.signing import statement


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class BrowserKey:
    """What `crypto.subtle.generateKey({name: "ECDSA", namedCurve: "P-256"})` gives."""

    def __init__(self) -> None:
        self._private = ec.generate_private_key(ec.SECP256R1())

    @property
    def jwk(self) -> dict[str, str]:
        numbers = self._private.public_key().public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x.to_bytes(32, "big")),
                "y": b64url(numbers.y.to_bytes(32, "big")), "ext": "true"}

    def sign(self, message: bytes) -> str:
        r, s = decode_dss_signature(self._private.sign(message, ec.ECDSA(hashes.SHA256())))
        return b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def endorse(self, action: str, day_id: int, document: str, content_hash: str, *,
                person_id: int | str, key_id: int) -> dict[str, Any]:
        """The body of an approval or a signing as a page sends it: the statement naming
        the signer and the time (as `.../statement` gives it), signed with this key."""
        at = int(time.time())
        message = statement(action, day_id, document, content_hash, int(person_id), at)
        return {"hash": content_hash, "key_id": key_id, "at": at, "signature": self.sign(message)}


def unzip(package: Path) -> dict[str, bytes]:
    """Every file of a zip package, by its name in the package."""
    with zipfile.ZipFile(package) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rezip(contents: dict[str, bytes], path: Path) -> Path:
    """``contents`` written as a zip package at ``path``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return path


def one_byte_changed(contents: dict[str, bytes], name: str) -> dict[str, bytes]:
    """The package with one bit of the middle byte of ``name`` flipped, the manifest kept."""
    data = bytearray(contents[name])
    data[len(data) // 2] ^= 0x01
    return {**contents, name: bytes(data)}


def signed_with_another_key(contents: dict[str, bytes], name: str,
                            index: int) -> dict[str, bytes]:
    """The package with entry ``index`` of the signatures file ``name`` replaced by a
    signature of the same statement made with another P-256 key, and the manifest
    redone so that only the signature is wrong."""
    signatures = json.loads(contents[name])
    signatures[index]["signature"] = BrowserKey().sign(signatures[index]["statement"].encode())
    forged = json.dumps(signatures, indent=1).encode()
    manifest = json.loads(contents["manifest.json"])
    for entry in manifest["files"]:
        if entry["path"] == name:
            entry["sha256"] = hashlib.sha256(forged).hexdigest()
            entry["size"] = len(forged)
    return {**contents, name: forged, "manifest.json": json.dumps(manifest, indent=1).encode()}
