"""Members' public signing keys (rule V6), registered from their browsers.

A person may register more than one key (a second browser, cleared storage); a
key registered twice is the same key. Keys are never changed or deleted
(migration 0006), so every signature stays verifiable.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import sqlite_utils

from storage.db import Database
from storage.errors import NotFoundError, StorageError
from storage.journal import append_event, encode_detail

from .errors import PaperworkError
from .signing import PublicKey, SigningError, jwk_from_json, jwk_json, verify

REGISTERED_KIND = "signing_key_registered"


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: int
    person_id: int
    public: PublicKey
    registered_at: float


@dataclass(frozen=True, slots=True)
class SignatureIn:
    """A signature as a browser sends it: which of its keys, and r || s in base64url."""

    key_id: int
    value: str


class SignatureRefused(PaperworkError):
    """The key is not the signer's, or the signature does not verify."""

    code = "bad_signature"
    status_hint = 403


class SigningKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def register(self, day_id: int, person_id: int, public: PublicKey,
                       now: float) -> SigningKey:
        def write(db: sqlite_utils.Database) -> SigningKey:
            row = db.execute("SELECT id, person_id, registered_at FROM signing_keys"
                             " WHERE fingerprint = ?", [public.fingerprint]).fetchone()
            if row is not None:
                if row[1] != person_id:
                    raise SignatureRefused("this key is registered to someone else")
                return SigningKey(row[0], person_id, public, row[2])
            cursor = db.execute(
                "INSERT INTO signing_keys (person_id, jwk, fingerprint, registered_at)"
                " VALUES (?, ?, ?, ?)", [person_id, jwk_json(public), public.fingerprint, now])
            key_id = int(cursor.lastrowid or 0)
            append_event(db, at=now, day_id=day_id, person_id=person_id, kind=REGISTERED_KIND,
                         detail_json=encode_detail({"key_id": key_id, "jwk": public.jwk,
                                                    "fingerprint": public.fingerprint}))
            return SigningKey(key_id, person_id, public, now)

        return await self._db.execute_write(write)

    async def all_keys(self) -> list[SigningKey]:
        rows = await self._db.query(
            "SELECT id, person_id, jwk, registered_at FROM signing_keys ORDER BY id")
        return [_key(r["id"], r["person_id"], r["jwk"], r["registered_at"]) for r in rows]

    async def keys_of(self, person_id: int) -> list[SigningKey]:
        rows = await self._db.query(
            "SELECT id, person_id, jwk, registered_at FROM signing_keys WHERE person_id = ?"
            " ORDER BY id", [person_id])
        return [_key(r["id"], r["person_id"], r["jwk"], r["registered_at"]) for r in rows]


def check_signature(db: sqlite_utils.Database, person_id: int, signature: SignatureIn,
                    message: bytes) -> SigningKey:
    """Inside a write: the signer's key `signature.key_id` must verify `message`."""
    row = db.execute("SELECT id, person_id, jwk, registered_at FROM signing_keys WHERE id = ?",
                     [signature.key_id]).fetchone()
    if row is None:
        raise NotFoundError(f"no signing key {signature.key_id}; register your key first")
    key = _key(*row)
    if key.person_id != person_id:
        raise SignatureRefused(f"key {signature.key_id} is not yours")
    try:
        verify(key.public, signature.value, message)
    except SigningError as exc:
        raise SignatureRefused(str(exc)) from None
    return key


def _key(key_id: int, person_id: int, jwk: str, registered_at: float) -> SigningKey:
    try:
        return SigningKey(key_id, person_id, jwk_from_json(jwk), registered_at)
    except (SigningError, ValueError, sqlite3.Error) as exc:
        raise StorageError(f"signing key {key_id} is unreadable: {exc}") from exc
