"""Tests for storage.invites and defense_room.demo on a real SQLite file."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import re
import secrets
from collections import Counter
from pathlib import Path

import pytest

from defense_room.demo import (
    DEMO_PEOPLE,
    DEMO_TITLE,
    create_demo_day,
    format_invite_lines,
)
from server.readiness import readiness_report
from storage.db import Database
from storage.errors import InviteError, InviteRefusal, NotFoundError, StorageError
from storage.invites import (
    MAX_TOKEN_CHARS,
    InviteStore,
    Person,
    Role,
    expires_at_for_day,
    hash_token,
)
from storage.roster import RosterStore

NOW = datetime.datetime(2026, 11, 23, 9, 0, tzinfo=datetime.UTC).timestamp()
DAY = datetime.date(2026, 11, 23)
EXPIRES = datetime.datetime(2026, 11, 24, 23, 59, tzinfo=datetime.UTC).timestamp()


@pytest.fixture
def store(db: Database) -> InviteStore:
    return InviteStore(db)


async def new_day(store: InviteStore) -> int:
    return await store.create_day("Защиты ВКР, группа 42", DAY, NOW, "Europe/Moscow", now=NOW)


async def refusal(store: InviteStore, token: str, now: float = NOW) -> InviteError:
    with pytest.raises(InviteError) as info:
        await store.verify(token, now)
    return info.value


async def test_token_is_urlsafe_and_long(store: InviteStore) -> None:
    day_id = await new_day(store)
    invite = await store.issue(day_id, Role.STUDENT, "Иванов Иван Петрович", EXPIRES)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", invite.token)
    raw = base64.urlsafe_b64decode(invite.token + "=" * (-len(invite.token) % 4))
    assert len(raw) * 8 >= 128
    assert len(raw) == 32
    assert invite.token not in repr(invite)


async def test_issue_then_verify(store: InviteStore) -> None:
    day_id = await new_day(store)
    issued = await store.issue(day_id, Role.CHAIR, "Соколов Андрей Викторович", EXPIRES)
    invite = await store.verify(issued.token, NOW)
    assert invite.person_id == issued.person_id
    assert invite.day_id == day_id
    assert invite.role is Role.CHAIR
    assert invite.name == "Соколов Андрей Викторович"
    assert invite.expires_at == EXPIRES


async def test_raw_token_never_reaches_the_disk(db: Database, db_path: Path) -> None:
    store = InviteStore(db)
    day_id = await new_day(store)
    tokens = [
        (await store.issue(day_id, Role.MEMBER, f"Член комиссии {i}", EXPIRES)).token
        for i in range(5)
    ]
    wal = db_path.with_name(db_path.name + "-wal")

    def disk_bytes() -> bytes:
        return b"".join(p.read_bytes() for p in (db_path, wal) if p.exists())

    while_running = disk_bytes()
    await db.stop()
    after_stop = disk_bytes()
    for token in tokens:
        for blob in (while_running, after_stop):
            assert token.encode() not in blob
        assert hash_token(token).encode() in while_running + after_stop


async def test_unknown_token_is_refused(store: InviteStore) -> None:
    day_id = await new_day(store)
    await store.issue(day_id, Role.MEMBER, "Морозов Дмитрий Алексеевич", EXPIRES)
    error = await refusal(store, secrets.token_urlsafe(32))
    assert error.reason is InviteRefusal.BAD_TOKEN
    assert str(error) == "This invite link is not valid. Ask the secretary for a new one."


@pytest.mark.parametrize(
    "token",
    ["", "a" * (MAX_TOKEN_CHARS + 1), "abc$def", "токен", "abc def", "a/b", "a=="],
)
async def test_malformed_token_never_touches_the_database(tmp_path: Path, token: str) -> None:
    # Never started: any database access would raise DatabaseNotRunningError.
    store = InviteStore(Database(tmp_path / "never-started.sqlite3"))
    error = await refusal(store, token)
    assert error.reason is InviteRefusal.BAD_TOKEN


async def test_expired_token_is_refused(store: InviteStore) -> None:
    day_id = await new_day(store)
    issued = await store.issue(day_id, Role.MEMBER, "Волкова Ольга Николаевна", EXPIRES)
    await store.verify(issued.token, EXPIRES - 0.001)
    error = await refusal(store, issued.token, now=EXPIRES)
    assert error.reason is InviteRefusal.EXPIRED_TOKEN
    assert str(error) == "This invite link expired on 2026-11-24 23:59 UTC."


async def test_revoked_token_is_refused(store: InviteStore) -> None:
    day_id = await new_day(store)
    issued = await store.issue(day_id, Role.OBSERVER, "Гость", EXPIRES)
    await store.revoke(issued.person_id, NOW + 10)
    await store.revoke(issued.person_id, NOW + 20)  # keeps the first time
    error = await refusal(store, issued.token)
    assert error.reason is InviteRefusal.REVOKED_TOKEN
    assert str(error) == "This invite link was revoked: ask the secretary or the department office for a new one."
    # Revocation wins over expiry: it tells the person more.
    error = await refusal(store, issued.token, now=EXPIRES + 1)
    assert error.reason is InviteRefusal.REVOKED_TOKEN
    (person,) = await store.list_people(day_id)
    assert person.revoked and person.revoked_at == NOW + 10


async def test_revoke_unknown_person(store: InviteStore) -> None:
    with pytest.raises(NotFoundError, match="no invited person with id 404"):
        await store.revoke(404, NOW)


async def test_issue_for_unknown_day(store: InviteStore) -> None:
    with pytest.raises(NotFoundError, match="no defense day with id 7"):
        await store.issue(7, Role.STUDENT, "Кто-то", EXPIRES)


async def test_bad_day_values(store: InviteStore) -> None:
    with pytest.raises(StorageError, match="unknown time zone 'Mars/Olympus'"):
        await store.create_day("t", DAY, NOW, "Mars/Olympus")
    with pytest.raises(StorageError, match="non-empty title"):
        await store.create_day("  ", DAY, NOW, "UTC")


async def test_invites_survive_a_restart(db_path: Path) -> None:
    async with Database(db_path) as first:
        store = InviteStore(first)
        day_id = await new_day(store)
        issued = await store.issue(day_id, Role.SECRETARY, "Новикова Мария Андреевна", EXPIRES)
    async with Database(db_path) as second:
        invite = await InviteStore(second).verify(issued.token, NOW)
        assert invite.person_id == issued.person_id
        day = await InviteStore(second).get_day(day_id)
        assert day.title == "Защиты ВКР, группа 42"
        assert day.date == DAY
        assert day.timezone == "Europe/Moscow"


async def test_list_people_hides_secrets(store: InviteStore) -> None:
    day_id = await new_day(store)
    other_day = await new_day(store)
    first = await store.issue(day_id, Role.CHAIR, "А", EXPIRES, now=NOW)
    second = await store.issue(day_id, Role.STUDENT, "Б", EXPIRES, now=NOW)
    await store.issue(other_day, Role.STUDENT, "В", EXPIRES, now=NOW)
    people = await store.list_people(day_id)
    assert [(p.person_id, p.role, p.name) for p in people] == [
        (first.person_id, Role.CHAIR, "А"),
        (second.person_id, Role.STUDENT, "Б"),
    ]
    field_names = {f.name for f in dataclasses.fields(Person)}
    assert not any("token" in name or "hash" in name for name in field_names)


async def test_journal_records_events(store: InviteStore) -> None:
    day_id = await new_day(store)
    issued = await store.issue(day_id, Role.STUDENT, "Иванов Иван Петрович", EXPIRES, now=NOW + 1)
    await store.journal(day_id, issued.person_id, "joined", {"comment": "с камерой"}, NOW + 2)
    await store.revoke(issued.person_id, NOW + 3)
    entries = await store.list_journal(day_id)
    assert [(e.kind, e.person_id, e.at) for e in entries] == [
        ("day_created", None, NOW),
        ("invite_issued", issued.person_id, NOW + 1),
        ("joined", issued.person_id, NOW + 2),
        ("invite_revoked", issued.person_id, NOW + 3),
    ]
    assert entries[2].detail == {"comment": "с камерой"}
    assert issued.token not in repr(entries)


async def test_journal_rejects_non_json_detail(store: InviteStore) -> None:
    day_id = await new_day(store)
    with pytest.raises(TypeError):
        await store.journal(day_id, None, "bad", {"when": object()}, NOW)


def test_expiry_is_end_of_day_in_its_zone_plus_days() -> None:
    moscow_midnight = datetime.datetime(2026, 11, 24, 21, 0, tzinfo=datetime.UTC)
    assert expires_at_for_day(DAY, "Europe/Moscow", 1) == moscow_midnight.timestamp()
    utc_midnight = datetime.datetime(2026, 11, 24, 0, 0, tzinfo=datetime.UTC)
    assert expires_at_for_day(DAY, "UTC", 0) == utc_midnight.timestamp()


async def test_demo_day(db: Database, store: InviteStore) -> None:
    invites = await create_demo_day(db, NOW, valid_days_after=1)
    assert [(i.role, i.name) for i in invites] == list(DEMO_PEOPLE)
    assert Counter(invite.role for invite in invites) == {
        Role.CHAIR: 1,
        Role.MEMBER: 4,
        Role.SECRETARY: 1,
        Role.STUDENT: 3,
        Role.SUPERVISOR: 1,
        Role.REVIEWER: 1,
        Role.OBSERVER: 1,
    }
    assert all(re.search("[А-Яа-яЁё]", invite.name) for invite in invites)
    lines = format_invite_lines(invites, "https://192.168.1.20:8443/")
    assert len(lines) == len(invites)
    for line, issued in zip(lines, invites, strict=True):
        assert line.startswith(f"{issued.role.value:<10} {issued.name:<32} ")
        url = line.split()[-1]
        assert url.startswith("https://192.168.1.20:8443/j/")
        invite = await store.verify(url.rsplit("/j/", 1)[1], NOW)
        assert (invite.role, invite.name) == (issued.role, issued.name)
        # Valid through the next day (Moscow time), refused after it; the chair's and
        # the secretary's through the retention month (R1, R3).
        office = issued.role in (Role.CHAIR, Role.SECRETARY)
        assert invite.expires_at == expires_at_for_day(DAY, "Europe/Moscow", 40 if office else 1)
    first = await store.verify(invites[0].token, NOW)
    day = await store.get_day(first.day_id)
    assert day.title == DEMO_TITLE
    assert day.date == DAY
    # Ready to defend: consent and every document on file (B1).
    report = readiness_report(await RosterStore(db).day_roster(first.day_id), now=NOW)
    assert [s.can_defend for s in report.students] == [True, True, True]


async def test_extend_only_lengthens_the_links_of_the_roles_named(store: InviteStore) -> None:
    day_id = await new_day(store)
    chair = await store.issue(day_id, Role.CHAIR, "Председатель", NOW + 100, now=NOW)
    student = await store.issue(day_id, Role.STUDENT, "Студент", NOW + 100, now=NOW)
    assert await store.extend(day_id, (Role.CHAIR,), NOW + 1000, now=NOW) == 1
    assert await store.extend(day_id, (Role.CHAIR,), NOW + 500, now=NOW) == 0  # never shorter
    assert (await store.verify(chair.token, NOW)).expires_at == NOW + 1000
    assert (await store.verify(student.token, NOW)).expires_at == NOW + 100
