"""Members' public signing keys (rule V6), registered from their browsers.

The first key a person registers is theirs. A further key (a second browser,
cleared storage) is pending until the day's secretary approves it (migration
0010, journaled): otherwise anyone holding a member's invite link could add a key
and sign as them. A key registered twice is the same key. Keys are never changed
or deleted (migration 0006), so every signature stays verifiable.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

import sqlite_utils

from storage.db import Database
from storage.errors import NotFoundError, StorageError
from storage.journal import append_event, encode_detail

from .errors import PaperworkError
from .signing import PublicKey, SigningError, jwk_from_json, jwk_json, verify

logger = logging.getLogger(__name__)

REGISTERED_KIND = "signing_key_registered"
KEY_APPROVED_KIND = "signing_key_approved"

# A key is usable if it is its person's first, or the secretary approved it.
_APPROVED_SQL = ("(k.id = (SELECT MIN(f.id) FROM signing_keys f WHERE f.person_id = k.person_id)"
                 " OR EXISTS (SELECT 1 FROM signing_key_approvals a WHERE a.key_id = k.id))")
_COLUMNS = f"k.id, k.person_id, k.jwk, k.registered_at, {_APPROVED_SQL}"


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: int
    person_id: int
    public: PublicKey
    registered_at: float
    #: The person's first key, or approved by the secretary: it may sign.
    approved: bool = True


@dataclass(frozen=True, slots=True)
class SignatureIn:
    """A signature as a browser sends it: which of its keys, and r || s in base64url."""

    key_id: int
    value: str


class SignatureRefused(PaperworkError):
    """The key is not the signer's, or the signature does not verify."""

    code = "bad_signature"
    status_hint = 403


class KeyPending(SignatureRefused):
    """A further key of a person that the secretary has not approved yet."""

    code = "key_pending"


class SigningKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def register(self, day_id: int, person_id: int, public: PublicKey,
                       now: float) -> SigningKey:
        """Register `public` for `person_id`; a further key of theirs is pending."""
        def write(db: sqlite_utils.Database) -> SigningKey:
            row = db.execute(f"SELECT {_COLUMNS} FROM signing_keys k WHERE k.fingerprint = ?",
                             [public.fingerprint]).fetchone()
            if row is not None:
                if row[1] != person_id:
                    raise SignatureRefused("this key is registered to someone else")
                return _key(*row)
            first = db.execute("SELECT 1 FROM signing_keys WHERE person_id = ?",
                               [person_id]).fetchone() is None
            cursor = db.execute(
                "INSERT INTO signing_keys (person_id, jwk, fingerprint, registered_at)"
                " VALUES (?, ?, ?, ?)", [person_id, jwk_json(public), public.fingerprint, now])
            key_id = int(cursor.lastrowid or 0)
            append_event(db, at=now, day_id=day_id, person_id=person_id, kind=REGISTERED_KIND,
                         detail_json=encode_detail({"key_id": key_id, "jwk": public.jwk,
                                                    "fingerprint": public.fingerprint,
                                                    "pending": not first}))
            return SigningKey(key_id, person_id, public, now, first)

        key = await self._db.execute_write(write)
        if not key.approved:
            logger.info("signing key %s of person %s awaits the secretary's approval",
                        key.key_id, person_id)
        return key

    async def approve(self, day_id: int, key_id: int, secretary_id: int,
                      now: float) -> SigningKey:
        """The secretary of `day_id` approves a further key of a person of that day."""
        def write(db: sqlite_utils.Database) -> SigningKey:
            row = db.execute(
                f"SELECT {_COLUMNS}, p.day_id FROM signing_keys k JOIN people p"
                " ON p.id = k.person_id WHERE k.id = ?", [key_id]).fetchone()
            if row is None or row[5] != day_id:
                raise NotFoundError(f"no signing key {key_id} of a person of day {day_id}")
            key = _key(*row[:5])
            if key.approved:
                return key
            db.execute("INSERT INTO signing_key_approvals (key_id, approved_by, approved_at)"
                       " VALUES (?, ?, ?)", [key_id, secretary_id, now])
            append_event(db, at=now, day_id=day_id, person_id=secretary_id,
                         kind=KEY_APPROVED_KIND,
                         detail_json=encode_detail({"key_id": key_id, "person_id": key.person_id,
                                                    "fingerprint": key.public.fingerprint}))
            return SigningKey(key.key_id, key.person_id, key.public, key.registered_at, True)

        key = await self._db.execute_write(write)
        logger.info("signing key %s of person %s approved by person %s", key_id,
                    key.person_id, secretary_id)
        return key

    async def all_keys(self) -> list[SigningKey]:
        rows = await self._db.query(f"SELECT {_COLUMNS} AS approved FROM signing_keys k"
                                    " ORDER BY k.id")
        return [_key(*r.values()) for r in rows]

    async def keys_of(self, person_id: int) -> list[SigningKey]:
        rows = await self._db.query(
            f"SELECT {_COLUMNS} AS approved FROM signing_keys k WHERE k.person_id = ?"
            " ORDER BY k.id", [person_id])
        return [_key(*r.values()) for r in rows]

    async def of_day(self, day_id: int) -> list[SigningKey]:
        """Every key of the people of `day_id`, pending ones included."""
        rows = await self._db.query(
            f"SELECT {_COLUMNS} AS approved FROM signing_keys k JOIN people p"
            " ON p.id = k.person_id WHERE p.day_id = ? ORDER BY k.id", [day_id])
        return [_key(*r.values()) for r in rows]


def check_signature(db: sqlite_utils.Database, person_id: int, signature: SignatureIn,
                    message: bytes) -> SigningKey:
    """Inside a write: the signer's approved key `signature.key_id` must verify `message`."""
    row = db.execute(f"SELECT {_COLUMNS} FROM signing_keys k WHERE k.id = ?",
                     [signature.key_id]).fetchone()
    if row is None:
        raise NotFoundError(f"no signing key {signature.key_id}; register your key first")
    key = _key(*row)
    if key.person_id != person_id:
        raise SignatureRefused(f"key {signature.key_id} is not yours")
    if not key.approved:
        raise KeyPending(f"key {signature.key_id} is a further key of yours and signs only "
                         "once the secretary approves it; ask the secretary, or sign from "
                         "the browser with your first key")
    try:
        verify(key.public, signature.value, message)
    except SigningError as exc:
        raise SignatureRefused(str(exc)) from None
    return key


def _key(key_id: int, person_id: int, jwk: str, registered_at: float,
         approved: object = True) -> SigningKey:
    try:
        return SigningKey(key_id, person_id, jwk_from_json(jwk), registered_at, bool(approved))
    except (SigningError, ValueError, sqlite3.Error) as exc:
        raise StorageError(f"signing key {key_id} is unreadable: {exc}") from exc
