"""Signed, expiring links to archived recording files.

A browser's ``<video>`` element cannot send an ``Authorization`` header, so the
player and downloads use links that carry their own proof: the file's index id,
the person it was issued to, the expiry and the purpose, signed with HMAC-SHA-256
under a 256-bit server secret. Without the secret a link cannot be made or altered
(unguessable); after its expiry it is refused even though the signature holds.

The secret lives in ``<data_dir>/recording-links.key`` (created on first use,
readable by the server's user only); deleting it invalidates every link issued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .errors import LinkRefused

KEY_FILE = "recording-links.key"
PURPOSES = {"p": "play", "d": "download"}


@dataclass(frozen=True, slots=True)
class LinkClaim:
    file_id: int
    person_id: int
    expires_at: int
    download: bool


def load_secret(data_dir: Path) -> bytes:
    """The server's link secret, created (mode 0600) if there is none."""
    path = data_dir / KEY_FILE
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        try:
            os.link(tmp, path)  # fails if another process made one meanwhile
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        secret = path.read_bytes()
    if len(secret) < 32:
        raise ValueError(f"the link secret {path} is shorter than 32 bytes")
    return secret


class LinkSigner:
    """Makes and checks recording links (see the module doc)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: str) -> str:
        mac = hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def sign(self, file_id: int, person_id: int, expires_at: float, *, download: bool) -> str:
        payload = f"{file_id}.{person_id}.{int(expires_at)}.{'d' if download else 'p'}"
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str, now: float) -> LinkClaim:
        """The claim of a genuine, unexpired link; `LinkRefused` otherwise."""
        payload, _, mac = token.rpartition(".")
        parts = payload.split(".")
        if (len(parts) != 4 or not all(p.isascii() and p.isdigit() for p in parts[:3])
                or parts[3] not in PURPOSES
                or not hmac.compare_digest(mac.encode("ascii", "replace"),
                                           self._mac(payload).encode("ascii"))):
            raise LinkRefused("bad_link", "This recording link is not valid.")
        claim = LinkClaim(int(parts[0]), int(parts[1]), int(parts[2]), parts[3] == "d")
        if now >= claim.expires_at:
            raise LinkRefused("expired_link", "This recording link has expired; open the "
                              "recordings page again for a new one.", claim.file_id, claim.person_id)
        return claim
