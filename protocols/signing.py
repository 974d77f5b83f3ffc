"""Electronic signatures of protocols and statements (rule V6; clause 7.17, K).

Each commission member's browser makes an ECDSA P-256 key pair with WebCrypto,
keeps the private key (non-extractable) and registers the public key as a JWK. To
approve or sign a document the browser signs a short statement that names the
document and its content hash (`statement`), so a signature cannot be moved to
another document, day or role. WebCrypto gives the signature as r || s (IEEE
P1363, 64 bytes); `cryptography` verifies DER, so it is converted here.

Pure functions, no I/O: the server, the hand-over package and `defense-room
verify` all check signatures with the same code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .errors import PaperworkError

_P256_BYTES = 32
PURPOSE_V1 = "defense-room/v1"
PURPOSE_V2 = "defense-room/v2"
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class SigningError(PaperworkError, ValueError):
    """A key or a signature is malformed, or a signature does not verify."""

    code = "bad_key"
    status_hint = 400


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A registered P-256 public key; `fingerprint` is the SHA-256 of its SPKI DER."""

    jwk: dict[str, str]
    fingerprint: str
    key: ec.EllipticCurvePublicKey


def _b64url(text: object, what: str) -> bytes:
    if not isinstance(text, str) or not text or len(text) > 200:
        raise SigningError(f"{what} must be base64url text")
    if not _B64URL.fullmatch(text):
        raise SigningError(f"{what} is not valid base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SigningError(f"{what} is not valid base64url") from None


def load_jwk(jwk: object) -> PublicKey:
    """The public key in a WebCrypto-exported JWK (kty EC, crv P-256, x, y)."""
    if not isinstance(jwk, dict):
        raise SigningError("the key must be a JWK object")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise SigningError("the key must be an ECDSA P-256 key (kty EC, crv P-256)")
    if "d" in jwk:
        raise SigningError("that is a private key: send only the public part")
    x, y = _b64url(jwk.get("x"), "x"), _b64url(jwk.get("y"), "y")
    if len(x) != _P256_BYTES or len(y) != _P256_BYTES:
        raise SigningError("x and y must be 32 bytes each")
    try:
        key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()).public_key()
    except ValueError:
        raise SigningError("the point is not on the P-256 curve") from None
    clean = {"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"]}
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(clean, hashlib.sha256(der).hexdigest(), key)


def statement(action: str, day_id: int, document: str, content_hash: str,
              person_id: int | None = None, at: int | None = None) -> bytes:
    """The exact bytes a browser signs to `action` ("approve" or "sign") a document.

    With `person_id` and `at` (whole seconds, issued by the server) it is the v2
    statement, which names the signer and the time (what browsers sign now);
    without them the v1 statement of approvals made before."""
    fields: dict[str, object] = {"action": action, "day": day_id, "document": document,
                                 "hash": content_hash, "purpose": PURPOSE_V1}
    if person_id is not None and at is not None:
        fields.update(person=person_id, at=at, purpose=PURPOSE_V2)
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")


def verify(key: PublicKey, signature_b64: str, message: bytes) -> None:
    """Raise `SigningError` unless `signature_b64` (P1363 r||s, base64url) signs `message`."""
    raw = _b64url(signature_b64, "the signature")
    if len(raw) != 2 * _P256_BYTES:
        raise SigningError("the signature must be 64 bytes (r || s, as WebCrypto gives it)")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        key.key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SigningError("the signature does not match the document and the key") from None


def jwk_json(key: PublicKey) -> str:
    return json.dumps(key.jwk, sort_keys=True, separators=(",", ":"))


def jwk_from_json(text: str) -> PublicKey:
    data: Any = json.loads(text)
    return load_jwk(data)
