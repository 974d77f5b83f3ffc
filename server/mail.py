"""E-mail to the people of a day (issue 15): optional, off unless ``mail.enabled``.

Four mails, each in the person's language (``people.language``) with times in their
own zone (a student's on the roster, anyone else's the day's), written by
`server.mail_text`:

- **invites**, sent at once by `Mailer.send_invite` (the office page calls it with a
  link that exists only in memory, so it never waits in a queue);
- **moved dates** (clause 7.8): each student whose defense the chair moved, with the
  new date;
- **appeal sitting invitations** (8.5): everyone invited to the sitting, each with a
  fresh personal link issued when the mail goes (`InviteStore.reissue`, as the
  appeals API's ``my-invite`` does: only hashes are stored, so a link cannot wait);
- **appeal decisions** (8.11): to the student, not before the decision's delivery.

How the three last reach the outbox: the mailer reads the journal after the last
event it took (a cursor in ``mail_cursor``), instead of being called by the
procedure and the appeal service. The journal already records each of these facts
(``procedure_event`` MoveDefense / MoveRestOfDay, ``appeal_scheduled``,
``appeal_decided``), so nothing in the procedure changes, nothing is lost when the
server stops between a fact and its mail, and a fact recorded by another process
(the CLI) is mailed too. Who a MoveRestOfDay moved is what the rules decided then:
the mailer replays the day's journal (`orchestrator.replay`) and takes its
`Reschedule` effects. The rows queued and the cursor move in one transaction, and a
row is unique per (journal event, person, kind), so reading again queues nothing
twice. Sending is at least once: a crash between the SMTP server's "250" and the row
marked sent sends that mail again after the restart.

A failed try is retried after ``retry_s``, doubling up to an hour, at most
``max_attempts`` times. Every try, sent or failed, is journaled on the person's day
(``mail_sent``, ``mail_failed``, ``mail_not_sent`` for a person without an
address), never the link or the address. SMTP runs in a thread (`smtplib`), over
STARTTLS or TLS that verifies the server's certificate (``ca_file`` for the
university's own CA).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

import sqlite_utils

from orchestrator import effects as fx
from orchestrator.replay import EVENT_KIND, day_settings, replay
from orchestrator.session import DefenseSession
from storage.appeals import AppealStore, DayKind
from storage.db import Database
from storage.days import load_day
from storage.errors import StorageError
from storage.invites import InviteStore, Person, Role
from storage.journal import Journal, append_event, encode_detail

from . import mail_text
from .config import Config, MailConfig, MailSecurity
from .errors import ServerError

logger = logging.getLogger(__name__)

#: The longest wait between two tries of one mail.
MAX_BACKOFF_S = 3600.0
#: Queued mails sent per pass.
BATCH = 50

MOVED = "moved"
APPEAL_SITTING = "appeal_sitting"
APPEAL_DECISION = "appeal_decision"
INVITE = "invite"


class MailError(ServerError):
    """A mail that cannot go: mail is off, the person has no address, or the mail
    server refused or could not be reached. The message says which, for the user."""

    code = "mail_failed"
    status_hint = 503

    def __init__(self, message: str, *, code: str = "mail_failed",
                 status_hint: int = 503) -> None:
        super().__init__(message)
        self.code = code
        self.status_hint = status_hint


@dataclass(frozen=True, slots=True)
class _Queued:
    day_id: int
    person_id: int
    kind: str
    detail: dict[str, Any]
    source: int
    due_at: float


class Mailer:
    """Sends the day's mail; owns the task that reads the journal and the outbox."""

    def __init__(self, config: Config, db: Database, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._settings = config.mail
        self._db = db
        self._invites = InviteStore(db)
        self._appeals = AppealStore(db)
        self._clock = clock
        self._password: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        """Whether mail is on (``mail.enabled``)."""
        return self._settings.enabled

    async def start(self, *, outbox: bool = True) -> None:
        """Read the password, place the journal cursor (first start: at the journal's
        end, so no old fact is mailed) and start sending; nothing when mail is off.

        ``outbox=False`` (every worker process but the first, ``serve --workers``):
        only the password, for `send_invite`; one process per machine reads the
        journal and sends the outbox, so no queued mail goes out twice."""
        if not self.enabled or self._task is not None:
            return
        path = self._settings.password_file
        if path is not None:
            try:
                self._password = path.read_text(encoding="utf-8").splitlines()[0]
            except (OSError, UnicodeDecodeError, IndexError) as exc:
                raise MailError(f"mail.password_file {path} cannot be read: {exc}",
                                code="bad_config", status_hint=500) from exc
        if not outbox:
            return
        await self._db.execute_write(_place_cursor)
        self._task = asyncio.create_task(self._loop())
        logger.info("mail on: %s:%s (%s)", self._settings.host, self._settings.port,
                    self._settings.security)

    async def stop(self) -> None:
        """Stop sending; what is queued stays queued for the next start."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def wake(self) -> None:
        """Read the journal and send what is due now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """One pass: queue what the journal asks for, send what is due; how many sent."""
        async with self._lock:
            await self._scan()
            return await self._send_due()

    # -- invites -------------------------------------------------------------------------

    async def send_invite(self, *, day_id: int, person_id: int, link: str, by: str) -> None:
        """Mail `link` to the person in their language; journal it. Raises MailError
        (409 when mail is off or the person has no address, 503 when the SMTP server
        refuses or cannot be reached)."""
        if not self.enabled:
            raise MailError("e-mail is off on this server (mail.enabled in config.yaml)",
                            code="mail_off", status_hint=409)
        person = await self._invites.person(person_id)
        if person is None or person.day_id != day_id:
            raise MailError(f"no person {person_id} is invited to defense day {day_id}",
                            code="no_person", status_hint=404)
        if person.email is None:
            raise MailError(f"{person.name} has no e-mail address on file",
                            code="no_address", status_hint=409)
        day = await self._invites.get_day(day_id)
        subject, body = mail_text.invite(
            name=person.name, role=person.role, day_title=day.title, starts_at=day.starts_at,
            timezone=await self._zone_of(person, day.timezone), link=link,
            language=person.language)
        now = self._clock()
        try:
            await self._deliver(person, subject, body)
        except MailError as exc:
            await self._journal(day_id, person_id, "mail_failed",
                                {"mail": INVITE, "by": by, "error": str(exc)}, now)
            raise
        await self._journal(day_id, person_id, "mail_sent", {"mail": INVITE, "by": by}, now)

    # -- the journal -> the outbox -----------------------------------------------------------

    async def _scan(self) -> None:
        cursor, newest, rows = await self._db.execute_read(_new_facts)
        if newest <= cursor:
            return
        queued: list[_Queued] = []
        now = self._clock()
        moved_days = sorted({int(r["day_id"]) for r in rows if r["kind"] == EVENT_KIND})
        for day_id in moved_days:
            queued.extend(await self._moved(day_id, cursor, newest))
        for row in rows:
            detail = json.loads(row["detail"])
            if row["kind"] == "appeal_scheduled":
                appeal = await self._appeals.get(int(detail["appeal"]))
                assert appeal.sitting_day_id is not None
                for person in await self._invites.list_people(appeal.sitting_day_id):
                    if not person.revoked:
                        queued.append(_Queued(appeal.sitting_day_id, person.person_id,
                                              APPEAL_SITTING, {"appeal": appeal.appeal_id},
                                              int(row["id"]), now))
            elif row["kind"] == "appeal_decided":
                appeal = await self._appeals.get(int(detail["appeal"]))
                queued.append(_Queued(appeal.day_id, appeal.student_id, APPEAL_DECISION,
                                      {"appeal": appeal.appeal_id}, int(row["id"]),
                                      float(detail["delivery_at"])))
        await self._db.execute_write(lambda db: _enqueue(db, queued, newest, now))
        if queued:
            logger.info("mail: %s queued from the journal up to event %s", len(queued), newest)

    async def _moved(self, day_id: int, after: int, upto: int) -> list[_Queued]:
        """The students whose defense a move after journal event `after` (up to `upto`)
        sent to a new date, by replaying the day as the procedure ran it."""
        loaded = await load_day(self._db, day_id)
        if loaded.kind is DayKind.APPEAL:
            return []
        entries = [e for e in await Journal(self._db).entries(day_id) if e.id <= upto]
        settings = day_settings(entries, self._config.procedure_settings(
            loaded.stored.timezone))
        session = DefenseSession(loaded.day, settings)
        found: list[_Queued] = []
        for step in replay(session, entries):
            if step.entry_id is None or step.entry_id <= after:
                continue
            for effect in step.effects:
                if isinstance(effect, fx.Reschedule) and effect.new_date is not None:
                    found.append(_Queued(day_id, int(effect.student), MOVED,
                                         {"new_date": effect.new_date}, step.entry_id,
                                         self._clock()))
        return found

    # -- the outbox -> SMTP -------------------------------------------------------------------

    async def _send_due(self) -> int:
        now = self._clock()
        rows = await self._db.query(
            "SELECT * FROM mail_outbox WHERE sent_at IS NULL AND gave_up_at IS NULL"
            " AND next_try_at <= ? ORDER BY next_try_at, id LIMIT ?", [now, BATCH])
        sent = 0
        for row in rows:
            sent += await self._send_queued(row, now)
        return sent

    async def _send_queued(self, row: dict[str, Any], now: float) -> int:
        outbox_id, kind = int(row["id"]), str(row["kind"])
        person = await self._invites.person(int(row["person_id"]))
        assert person is not None  # a foreign key
        record = {"mail": kind, "outbox": outbox_id}
        if person.email is None:
            await self._db.execute_write(lambda db: _settle(
                db, row, now, "no e-mail address on file", gave_up=True, kind="mail_not_sent",
                detail={**record, "reason": "no e-mail address on file"}))
            return 0
        try:
            subject, body = await self._compose(kind, json.loads(row["detail"]), person)
            await self._deliver(person, subject, body)
        except (MailError, StorageError) as exc:
            attempts = int(row["attempts"]) + 1
            gave_up = attempts >= self._settings.max_attempts or isinstance(exc, StorageError)
            retry_at = now + min(self._settings.retry_s * 2 ** (attempts - 1), MAX_BACKOFF_S)
            logger.warning("mail %s (%s) to person %s failed (try %s): %s", outbox_id, kind,
                           person.person_id, attempts, exc)
            await self._db.execute_write(lambda db: _settle(
                db, row, now, str(exc), gave_up=gave_up, kind="mail_failed",
                detail={**record, "attempt": attempts, "error": str(exc),
                        "gave_up": gave_up}, retry_at=retry_at))
            return 0
        await self._db.execute_write(lambda db: _settle(
            db, row, now, None, gave_up=False, kind="mail_sent", detail=record))
        logger.info("mail %s (%s) sent to person %s", outbox_id, kind, person.person_id)
        return 1

    async def _compose(self, kind: str, detail: dict[str, Any], person: Person
                       ) -> tuple[str, str]:
        day = await self._invites.get_day(person.day_id)
        zone = await self._zone_of(person, day.timezone)
        if kind == MOVED:
            return mail_text.moved(name=person.name, day_title=day.title,
                                   new_date=float(detail["new_date"]), timezone=zone,
                                   language=person.language)
        appeal = await self._appeals.get(int(detail["appeal"]))
        student = await self._invites.person(appeal.student_id)
        assert student is not None
        if person.role is Role.STUDENT:
            zone = await self._zone_of(student, day.timezone)
        if kind == APPEAL_SITTING:
            assert appeal.sitting_at is not None
            # A fresh link, issued as the mail goes: the stored hash is all that remains.
            issued = await self._invites.reissue(person.person_id, now=self._clock())
            return mail_text.appeal_sitting(
                name=person.name, role=person.role, student=student.name,
                sitting_at=appeal.sitting_at, timezone=zone,
                link=f"{self._settings.link_base_url}/j/{issued.token}",
                language=person.language)
        assert appeal.decision is not None and appeal.decided_at is not None
        return mail_text.appeal_decision(
            name=person.name, decision=appeal.decision.value, reasoning=appeal.reasoning or "",
            decided_at=appeal.decided_at, timezone=zone, language=person.language)

    async def _zone_of(self, person: Person, day_zone: str) -> str:
        """A student's own zone (the roster's), anyone else's the day's."""
        rows = await self._db.query("SELECT timezone FROM students WHERE person_id = ?",
                                    [person.person_id])
        return str(rows[0]["timezone"]) if rows else day_zone

    async def _deliver(self, person: Person, subject: str, body: str) -> None:
        assert person.email is not None
        message = EmailMessage()
        message["From"] = self._settings.sender
        # An Address, not a formatted string: a name with "<" or "," stays a name.
        local, _, domain = person.email.partition("@")
        message["To"] = Address(display_name=person.name, username=local, domain=domain)
        message["Subject"] = subject
        message["Date"] = email.utils.formatdate(self._clock(), localtime=False)
        sender = self._settings.sender or "localhost"
        message["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2])
        message["Content-Language"] = person.language
        message.set_content(body)
        await asyncio.to_thread(_smtp_send, self._settings, self._password, message)

    async def _journal(self, day_id: int, person_id: int, kind: str, detail: dict[str, Any],
                       now: float) -> None:
        await self._invites.journal(day_id, person_id, kind, detail, now)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                logger.exception("mail: a pass over the journal and the outbox failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.poll_s)
            self._wake.clear()


def _smtp_send(settings: MailConfig, password: str | None, message: EmailMessage) -> None:
    """One SMTP session in the calling thread; MailError saying what went wrong."""
    where = f"the mail server {settings.host}:{settings.port}"
    assert settings.host is not None
    context = ssl.create_default_context(
        cafile=None if settings.ca_file is None else str(settings.ca_file))
    try:
        smtp: smtplib.SMTP
        if settings.security is MailSecurity.TLS:
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_s,
                                    context=context)
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
        with smtp:
            if settings.security is MailSecurity.STARTTLS:
                smtp.starttls(context=context)
            if settings.username is not None:
                smtp.login(settings.username, password or "")
            smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"{where} refused the login of {settings.username!r}:"
                        f" {_said(exc.smtp_code, exc.smtp_error)}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(f"{where} refused the address {message['To']}") from exc
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"{where} refused the mail: {_said(exc.smtp_code, exc.smtp_error)}"
                        ) from exc
    except ssl.SSLError as exc:
        raise MailError(f"{where} failed the TLS check (certificate or protocol):"
                        f" {exc.reason or exc}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"{where} cannot be reached: {str(exc)[:200] or type(exc).__name__}"
                        ) from exc


def _said(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {words[:200]}"


# -- storage (inside the single writer) --------------------------------------------------------


def _place_cursor(db: sqlite_utils.Database) -> None:
    db.execute("INSERT OR IGNORE INTO mail_cursor (id, journal_id)"
               " SELECT 1, COALESCE(MAX(id), 0) FROM journal")


def _new_facts(db: sqlite_utils.Database) -> tuple[int, int, list[dict[str, Any]]]:
    cursor = int(db.execute("SELECT journal_id FROM mail_cursor WHERE id = 1").fetchone()[0])
    newest = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM journal").fetchone()[0])
    rows = list(db.query(
        "SELECT id, day_id, person_id, kind, detail FROM journal WHERE id > ? AND id <= ?"
        " AND (kind IN ('appeal_scheduled', 'appeal_decided') OR (kind = ?"
        " AND json_extract(detail, '$.type') IN ('MoveDefense', 'MoveRestOfDay')))"
        " ORDER BY id", [cursor, newest, EVENT_KIND]))
    return cursor, newest, rows


def _enqueue(db: sqlite_utils.Database, queued: list[_Queued], newest: int,
             now: float) -> None:
    for item in queued:
        row = db.execute("SELECT name, email, language FROM people WHERE id = ?",
                         [item.person_id]).fetchone()
        if item.kind == APPEAL_SITTING and row[1] is None:
            _copy_contact(db, item, row[0], now)
            row = db.execute("SELECT name, email, language FROM people WHERE id = ?",
                             [item.person_id]).fetchone()
        db.execute(
            "INSERT OR IGNORE INTO mail_outbox (day_id, person_id, kind, language, detail,"
            " source, created_at, due_at, next_try_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [item.day_id, item.person_id, item.kind, row[2], json.dumps(item.detail),
             item.source, now, item.due_at, item.due_at])
    db.execute("UPDATE mail_cursor SET journal_id = ? WHERE id = 1 AND journal_id < ?",
               [newest, newest])


def _copy_contact(db: sqlite_utils.Database, item: _Queued, name: str, now: float) -> None:
    """An appeal sitting's people are invited afresh (`AppealService.schedule`): take the
    address of the same name on the appealed day, else the latest one on file."""
    appeal_day = db.execute("SELECT d.day_id FROM appeals d WHERE d.sitting_day_id = ?",
                            [item.day_id]).fetchone()
    source = None
    if appeal_day is not None:
        source = db.execute("SELECT id, email, language FROM people WHERE day_id = ? AND name"
                            " = ? AND email IS NOT NULL ORDER BY id DESC LIMIT 1",
                            [appeal_day[0], name]).fetchone()
    if source is None:
        source = db.execute("SELECT id, email, language FROM people WHERE name = ? AND email"
                            " IS NOT NULL ORDER BY id DESC LIMIT 1", [name]).fetchone()
    if source is None:
        return
    db.execute("UPDATE people SET email = ?, language = ? WHERE id = ?",
               [source[1], source[2], item.person_id])
    append_event(db, at=now, day_id=item.day_id, person_id=item.person_id, kind="contact_set",
                 detail_json=encode_detail({"has_email": True, "language": source[2],
                                            "from_person": source[0]}))


def _settle(db: sqlite_utils.Database, row: dict[str, Any], now: float, error: str | None, *,
            gave_up: bool, kind: str, detail: dict[str, Any],
            retry_at: float | None = None) -> None:
    """Record one try of a queued mail, and journal it, in one transaction."""
    if kind == "mail_sent":
        db.execute("UPDATE mail_outbox SET sent_at = ?, attempts = attempts + 1,"
                   " last_error = NULL WHERE id = ?", [now, row["id"]])
    else:
        db.execute("UPDATE mail_outbox SET attempts = attempts + ?, last_error = ?,"
                   " next_try_at = ?, gave_up_at = ? WHERE id = ?",
                   [0 if kind == "mail_not_sent" else 1, error,
                    now if retry_at is None else retry_at, now if gave_up else None,
                    row["id"]])
    append_event(db, at=now, day_id=int(row["day_id"]), person_id=int(row["person_id"]),
                 kind=kind, detail_json=encode_detail(detail))


__all__ = ["APPEAL_DECISION", "APPEAL_SITTING", "INVITE", "MOVED", "MailError", "Mailer"]
