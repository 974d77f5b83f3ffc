"""Defense days, the people invited to them, and the journal of events.

Every person gets a personal invite link carrying a random token. The token is
shown once, when issued; the database keeps only its SHA-256, so a leaked
database file does not let anyone join a defense.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
import time
import zoneinfo
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlite_utils

from orchestrator.model import Role as Role  # re-exported: invites are bound to roles

from .db import Database
from .errors import InviteError, NotFoundError, StorageError
from .journal import Journal, JournalEvent, append_event, encode_detail

logger = logging.getLogger(__name__)

TOKEN_BYTES = 32
"""Random bytes per token: 256 bits, far beyond any guessing attack."""

MAX_TOKEN_CHARS = 200
"""Longer "tokens" are refused without touching the database."""

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class DefenseDay:
    """One day of defenses in one room."""

    day_id: int
    title: str
    date: datetime.date
    starts_at: float
    timezone: str
    created_at: float


@dataclass(frozen=True, slots=True)
class IssuedInvite:
    """A freshly issued invite: the only time the raw token is known."""

    person_id: int
    role: Role
    name: str
    # Kept out of repr so that logging an IssuedInvite cannot leak the token.
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Invite:
    """A verified invite: who is joining, for which day, until when."""

    person_id: int
    day_id: int
    role: Role
    name: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class Person:
    """A person invited to a defense day, as the secretary sees them."""

    person_id: int
    day_id: int
    role: Role
    name: str
    expires_at: float
    revoked_at: float | None
    created_at: float
    #: Where their mail goes (None: nowhere) and its language, "ru" or "en".
    email: str | None = None
    language: str = "ru"

    @property
    def revoked(self) -> bool:
        """True once the secretary revoked this person's invite."""
        return self.revoked_at is not None


#: Who revoked or reissued a link: a person of the day, the organizer, or unsaid (the CLI).
By = int | Literal["organizer"] | None

#: The journal kinds after which a person's joined sockets must close.
LINK_WITHDRAWN = ("invite_revoked", "invite_reissued")


def _by(by: By) -> dict[str, Any]:
    return {} if by is None else {"by": by}


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    # A fast unsalted hash is enough: tokens carry 256 random bits, so there
    # is no dictionary to precompute and brute force is hopeless. Slow
    # password hashes exist for low-entropy secrets, which these are not.
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def expires_at_for_day(day: datetime.date, timezone: str, valid_days_after: int) -> float:
    """Unix time at which invites for `day` expire.

    That is the end of the defense day in its own time zone, plus
    `valid_days_after` whole days (for appeals, protocol signing and so on).
    """
    tz = _zone(timezone)
    end = day + datetime.timedelta(days=1 + valid_days_after)
    return datetime.datetime.combine(end, datetime.time(0), tzinfo=tz).timestamp()


class InviteStore:
    """Issues, verifies and revokes invites; appends to the journal."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_day(
        self,
        title: str,
        date: datetime.date,
        starts_at: float,
        timezone: str,
        *,
        now: float | None = None,
    ) -> int:
        """Create a defense day and return its id."""
        if not title.strip():
            raise StorageError("a defense day needs a non-empty title")
        _zone(timezone)
        created_at = time.time() if now is None else now

        def write(db: sqlite_utils.Database) -> int:
            cursor = db.execute(
                "INSERT INTO defense_days (title, date, starts_at, timezone,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                [title, date.isoformat(), starts_at, timezone, created_at],
            )
            day_id = _row_id(cursor)
            _append_journal(db, created_at, day_id, None, "day_created", {"title": title})
            return day_id

        day_id = await self._db.execute_write(write)
        logger.info("defense day %s created for %s", day_id, date.isoformat())
        return day_id

    async def get_day(self, day_id: int) -> DefenseDay:
        """The defense day with this id; NotFoundError if there is none."""

        rows = await self._db.query("SELECT * FROM defense_days WHERE id = ?", [day_id])
        if not rows:
            raise NotFoundError(f"no defense day with id {day_id}")
        row = rows[0]
        return DefenseDay(
            day_id=row["id"],
            title=row["title"],
            date=datetime.date.fromisoformat(row["date"]),
            starts_at=row["starts_at"],
            timezone=row["timezone"],
            created_at=row["created_at"],
        )

    async def issue(
        self,
        day_id: int,
        role: Role,
        name: str,
        expires_at: float,
        *,
        now: float | None = None,
    ) -> IssuedInvite:
        """Invite a person to a day; the returned token is never stored."""
        created_at = time.time() if now is None else now
        issued = await self._db.execute_write(
            lambda db: issue_invite(db, day_id, role, name, expires_at, created_at))
        logger.info("invite issued: day %s person %s role %s", day_id, issued.person_id,
                    issued.role)
        return issued

    async def extend(self, day_id: int, roles: Collection[Role], until: float, *,
                     now: float) -> int:
        """Let the links of `roles` on `day_id` work until `until`; never shortens one.
        Returns how many were extended."""
        values = [Role(r).value for r in roles]
        marks = ", ".join("?" for _ in values)

        def write(db: sqlite_utils.Database) -> int:
            cursor = db.execute(
                f"UPDATE people SET expires_at = ? WHERE day_id = ? AND role IN ({marks})"
                " AND expires_at < ? AND revoked_at IS NULL", [until, day_id, *values, until])
            if cursor.rowcount:
                _append_journal(db, now, day_id, None, "invites_extended",
                                {"roles": sorted(values), "until": until})
            return cursor.rowcount

        return await self._db.execute_write(write)

    async def extend_person(self, person_id: int, until: float, *, now: float) -> bool:
        """Let one person's link work until `until`; never shortens it, and a revoked
        link stays revoked. Returns whether it was extended."""

        def write(db: sqlite_utils.Database) -> bool:
            row = db.execute("SELECT day_id FROM people WHERE id = ?", [person_id]).fetchone()
            if row is None:
                raise NotFoundError(f"no invited person {person_id}")
            cursor = db.execute(
                "UPDATE people SET expires_at = ? WHERE id = ? AND expires_at < ?"
                " AND revoked_at IS NULL", [until, person_id, until])
            if cursor.rowcount:
                _append_journal(db, now, row[0], person_id, "invites_extended",
                                {"person": person_id, "until": until})
            return bool(cursor.rowcount)

        return await self._db.execute_write(write)

    async def reissue(self, person_id: int, *, now: float, by: By = None) -> IssuedInvite:
        """A new token for an invited person; their old link stops working. `by` (a
        person id, or "organizer") is journaled with it."""
        token = secrets.token_urlsafe(TOKEN_BYTES)

        def write(db: sqlite_utils.Database) -> tuple[int, str, str]:
            row = db.execute("SELECT day_id, role, name, revoked_at FROM people WHERE id = ?",
                             [person_id]).fetchone()
            if row is None:
                raise NotFoundError(f"no invited person {person_id}")
            if row[3] is not None:
                raise StorageError(f"the invite of person {person_id} is revoked")
            db.execute("UPDATE people SET token_hash = ? WHERE id = ?",
                       [hash_token(token), person_id])
            _append_journal(db, now, row[0], person_id, "invite_reissued", _by(by))
            return row[0], row[1], row[2]

        _, role, name = await self._db.execute_write(write)
        return IssuedInvite(person_id=person_id, role=Role(role), name=name, token=token)

    async def verify(self, token: str, now: float) -> Invite:
        """The invite this token belongs to, or InviteError saying why not.

        A revoked invite reports "revoked" even when it has also expired: it
        is the more useful thing to tell the person.
        """
        if not 0 < len(token) <= MAX_TOKEN_CHARS or not _TOKEN_RE.fullmatch(token):
            raise InviteError.bad_token()
        token_hash = hash_token(token)

        rows = await self._db.query(
            "SELECT id, day_id, role, name, token_hash, expires_at, revoked_at"
            " FROM people WHERE token_hash = ?",
            [token_hash],
        )
        # The index lookup above is not constant-time, but it only reveals
        # facts about hashes of random tokens; compare_digest guards the
        # final decision anyway.
        if not rows or not hmac.compare_digest(rows[0]["token_hash"], token_hash):
            raise InviteError.bad_token()
        row = rows[0]
        if row["revoked_at"] is not None:
            raise InviteError.revoked()
        if now >= row["expires_at"]:
            raise InviteError.expired(row["expires_at"])
        return Invite(
            person_id=row["id"],
            day_id=row["day_id"],
            role=Role(row["role"]),
            name=row["name"],
            expires_at=row["expires_at"],
        )

    async def revoke(self, person_id: int, now: float, *, by: By = None) -> None:
        """Revoke a person's invite; revoking twice keeps the first time. `by` (a person
        id, or "organizer") is journaled with it."""

        def write(db: sqlite_utils.Database) -> None:
            rows = db.execute(
                "SELECT day_id, revoked_at FROM people WHERE id = ?", [person_id]
            ).fetchall()
            if not rows:
                raise NotFoundError(f"no invited person with id {person_id}")
            day_id, revoked_at = rows[0]
            if revoked_at is not None:
                return
            db.execute("UPDATE people SET revoked_at = ? WHERE id = ?", [now, person_id])
            _append_journal(db, now, day_id, person_id, "invite_revoked", _by(by))

        await self._db.execute_write(write)
        logger.info("invite revoked: person %s", person_id)

    async def links_withdrawn(self, after: int | None) -> tuple[int, list[tuple[int, int]]]:
        """The (day, person) pairs whose link was revoked or reissued after journal entry
        `after`, by whatever process, and the newest entry read; with None, only the
        newest entry (where a watcher starts)."""
        if after is None:
            rows = await self._db.query("SELECT COALESCE(MAX(id), 0) AS id FROM journal")
            return int(rows[0]["id"]), []
        marks = ", ".join("?" for _ in LINK_WITHDRAWN)
        rows = await self._db.query(
            f"SELECT id, day_id, person_id FROM journal WHERE id > ? AND kind IN ({marks})"
            " ORDER BY id", [after, *LINK_WITHDRAWN])
        newest = max((int(r["id"]) for r in rows), default=after)
        return newest, [(int(r["day_id"]), int(r["person_id"])) for r in rows]

    async def list_days(self) -> list[dict[str, Any]]:
        """Every day, newest date first, with how many people and students it has (the
        office's list)."""
        rows = await self._db.query(
            "SELECT d.id, d.title, d.date, d.starts_at, d.timezone, d.created_at,"
            " (SELECT COUNT(*) FROM people p WHERE p.day_id = d.id) AS people,"
            " (SELECT COUNT(*) FROM people p WHERE p.day_id = d.id AND p.role = ?) AS students"
            " FROM defense_days d ORDER BY d.date DESC, d.id DESC", [Role.STUDENT.value])
        return [dict(row) for row in rows]

    async def list_people(self, day_id: int) -> list[Person]:
        """Everyone invited to a day, in the order they were invited."""
        rows = await self._db.query(
            f"SELECT {_PERSON_COLUMNS} FROM people WHERE day_id = ? ORDER BY id", [day_id])
        return [_person(row) for row in rows]

    async def person(self, person_id: int) -> Person | None:
        """One invited person (revoked ones too), or None."""
        rows = await self._db.query(
            f"SELECT {_PERSON_COLUMNS} FROM people WHERE id = ?", [person_id])
        return _person(rows[0]) if rows else None

    async def journal(
        self,
        day_id: int,
        person_id: int | None,
        kind: str,
        detail: dict[str, Any],
        now: float,
    ) -> int:
        """Append an event to the (hash-chained) journal and return its id."""
        event = await Journal(self._db).append(day_id, person_id, kind, detail, now)
        return event.id

    async def list_journal(self, day_id: int) -> list[JournalEvent]:
        """The journal of a day, oldest first."""
        return await Journal(self._db).entries(day_id)


def issue_invite(db: sqlite_utils.Database, day_id: int, role: Role, name: str,
                 expires_at: float, now: float) -> IssuedInvite:
    """`InviteStore.issue` inside the caller's `Database.execute_write`, so the invite
    commits together with what the caller writes beside it (e.g. a roster entry)."""
    role = Role(role)
    if not name.strip():
        raise StorageError("an invited person needs a non-empty name")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    _require_day(db, day_id)
    cursor = db.execute(
        "INSERT INTO people (day_id, role, name, token_hash, expires_at,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [day_id, role.value, name, hash_token(token), expires_at, now],
    )
    person_id = _row_id(cursor)
    _append_journal(db, now, day_id, person_id, "invite_issued",
                    {"role": role.value, "name": name, "expires_at": expires_at})
    return IssuedInvite(person_id=person_id, role=role, name=name, token=token)


def _zone(timezone: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise StorageError(f"unknown time zone {timezone!r}") from exc


def _row_id(cursor: sqlite3.Cursor) -> int:
    row_id = cursor.lastrowid
    if row_id is None:  # cannot happen after a successful INSERT
        raise StorageError("INSERT returned no row id")
    return row_id


def _require_day(db: sqlite_utils.Database, day_id: int) -> None:
    if not db.execute("SELECT 1 FROM defense_days WHERE id = ?", [day_id]).fetchall():
        raise NotFoundError(f"no defense day with id {day_id}")


def _append_journal(
    db: sqlite_utils.Database,
    at: float,
    day_id: int,
    person_id: int | None,
    kind: str,
    detail: dict[str, Any],
) -> int:
    # Inside the caller's write, so the event commits with what it records.
    event = append_event(
        db,
        at=at,
        day_id=day_id,
        person_id=person_id,
        kind=kind,
        detail_json=encode_detail(detail),
    )
    return event.id


_PERSON_COLUMNS = ("id, day_id, role, name, expires_at, revoked_at, created_at, email,"
                   " language")


def _person(row: dict[str, Any]) -> Person:
    return Person(person_id=row["id"], day_id=row["day_id"], role=Role(row["role"]),
                  name=row["name"], expires_at=row["expires_at"],
                  revoked_at=row["revoked_at"], created_at=row["created_at"],
                  email=row["email"], language=row["language"])
