"""Tests for storage.roster on a real SQLite file, and the readiness API over HTTP."""

from __future__ import annotations

import datetime
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from orchestrator import events as ev
from orchestrator.codec import event_to_json
from orchestrator.documents import DocumentKind
from orchestrator.replay import EVENT_KIND
from server.dayfile import load_day_file
from server.readiness import readiness_report
from storage.days import load_day
from storage.db import Database
from storage.errors import NotFoundError, RosterRefused, StorageError
from storage.invites import InviteStore, IssuedInvite, Role
from storage.journal import Journal
from storage.roster import CreatedDay, RosterStore
from web_ui.app import create_app
from web_ui.keys import DATABASE

from .conftest import make_config

Client = TestClient[web.Request, web.Application]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOW = datetime.datetime(2026, 6, 1, 9, 0, tzinfo=datetime.UTC).timestamp()
EXPIRES = datetime.datetime(2026, 6, 17, tzinfo=datetime.UTC).timestamp()
DAY_NOW = datetime.datetime(2026, 6, 15, 6, 0, tzinfo=datetime.UTC).timestamp()


@pytest.mark.parametrize("example", ["defense-day.yaml", "defense-day-csv.yaml"])
async def test_import_round_trip(db: Database, example: str) -> None:
    spec = load_day_file(EXAMPLES / example)
    store = RosterStore(db)
    created = await store.create_day(spec, expires_at=EXPIRES, now=NOW)
    assert [i.role for i in created.invites] == [
        Role.CHAIR, Role.MEMBER, Role.MEMBER, Role.MEMBER, Role.SECRETARY,
        Role.STUDENT, Role.STUDENT, Role.STUDENT]
    # Rule P1: the two supervisors, the two reviewers and the observer get links too.
    assert [(i.role, i.name) for i in created.guests] == list(spec.guests())
    assert [i.role for i in created.guests] == [
        Role.SUPERVISOR, Role.SUPERVISOR, Role.REVIEWER, Role.REVIEWER, Role.OBSERVER]
    assert created.everyone == created.invites + created.guests
    assert len({i.token for i in created.everyone}) == 13
    invite = await InviteStore(db).verify(created.invites[-1].token, NOW)
    assert invite.name == "Попов Артём Евгеньевич" and invite.day_id == created.day_id
    supervisor = await InviteStore(db).verify(created.guests[0].token, NOW)
    assert (supervisor.role, supervisor.name) == (Role.SUPERVISOR, "Лебедев Павел Игоревич")

    roster = await store.day_roster(created.day_id)
    assert roster.norm_control_required
    assert roster.day.starts_at == spec.starts_at
    students = roster.students
    assert [s.name for s in students] == [s.name for s in spec.students]
    assert [s.queue_position for s in students] == [1, 2, 3]
    for stored, given in zip(students, spec.students):
        assert stored.thesis_title == given.thesis_title
        assert (stored.supervisor, stored.reviewer) == (given.supervisor, given.reviewer)
        assert stored.timezone == given.timezone
        assert stored.extra_time_percent == given.extra_time_percent
        assert stored.consent_at == (given.consent_at.timestamp() if given.consent_at else None)
        assert {(d.kind, d.uploaded_at) for d in stored.documents} == {
            (d.kind, d.uploaded_at.timestamp()) for d in given.documents}

    report = readiness_report(roster, DAY_NOW)
    verdicts = [(s.can_defend, s.late) for s in report.students]
    assert verdicts == [(True, ()), (True, (DocumentKind.REVIEWER_REVIEW,)), (False, ())]

    journal = Journal(db)
    kinds = [e.kind for e in await journal.entries(created.day_id)]
    assert kinds.count("invite_issued") == 13 and kinds.count("student_added") == 3
    assert kinds.count("consent_recorded") == 2 and kinds.count("document_recorded") == 13
    await journal.verify()


async def test_update_consent_documents_and_queue(db: Database) -> None:
    store = RosterStore(db)
    created = await store.create_day(load_day_file(EXAMPLES / "defense-day.yaml"),
                                     expires_at=EXPIRES, now=NOW)
    popov = created.invites[-1].person_id
    await store.update_student(popov, queue_position=0 + 1, thesis_title="Новая тема",
                               timezone="Asia/Tokyo", now=NOW + 1)
    await store.record_consent(popov, NOW + 2, now=NOW + 2)
    await store.record_consent(popov, NOW + 5, now=NOW + 5)  # the first consent stays
    await store.record_document(popov, DocumentKind.PRESENTATION_PDF, NOW + 3, now=NOW + 3)
    students = await store.list_students(created.day_id)
    # Two students share position 1 now; ties keep the order of invitation.
    assert [s.name for s in students][:2] == ["Иванов Иван Петрович", "Попов Артём Евгеньевич"]
    popov_row = students[1]
    assert popov_row.thesis_title == "Новая тема" and popov_row.timezone == "Asia/Tokyo"
    assert popov_row.consent_at == NOW + 2
    assert DocumentKind.PRESENTATION_PDF in {d.kind for d in popov_row.documents}
    events = [e for e in await Journal(db).entries(created.day_id) if e.person_id == popov]
    assert [e.kind for e in events][-3:] == [
        "student_updated", "consent_recorded", "document_recorded"]
    assert events[-3].detail == {"queue_position": 1, "thesis_title": "Новая тема",
                                 "timezone": "Asia/Tokyo"}
    with pytest.raises(NotFoundError):
        await store.record_consent(created.invites[0].person_id, NOW, now=NOW)  # the chair


async def test_existing_data_survives_the_migration(tmp_path: Path) -> None:
    import sqlite_utils

    from storage.migrations import MIGRATIONS

    path = tmp_path / "old.sqlite3"
    async with Database(path) as database:
        day_id = await InviteStore(database).create_day(
            "Старый день", datetime.date(2026, 1, 1), NOW, "Europe/Moscow", now=NOW)
    conn = sqlite_utils.Database(path)
    conn.execute("DROP TABLE documents")
    conn.execute("DROP TABLE students")
    conn.execute("ALTER TABLE defense_days DROP COLUMN norm_control_required")
    conn.execute("DELETE FROM _migrations WHERE name = '0003_roster'")
    conn.conn.commit()
    conn.close()
    async with Database(path) as database:
        roster = await RosterStore(database).day_roster(day_id)
        await Journal(database).verify()
    assert roster.day.title == "Старый день" and not roster.norm_control_required
    assert roster.students == ()
    assert "0003_roster" in [m.name for m in MIGRATIONS._migrations]


async def open_sitting(db: Database, created: CreatedDay, at: float) -> None:
    """The procedure's `OpenSitting` in the journal, as the runner writes it."""
    secretary = next(i for i in created.invites if i.role is Role.SECRETARY)
    event = ev.OpenSitting(now=at, actor=str(secretary.person_id))
    await Journal(db).append(created.day_id, secretary.person_id, EVENT_KIND,
                             event_to_json(event), at)


async def test_4_3_load_day_carries_the_adjusted_time(db: Database) -> None:
    store = RosterStore(db)
    created = await store.create_day(load_day_file(EXAMPLES / "defense-day.yaml"),
                                     expires_at=EXPIRES, now=NOW)
    ivanov, smirnova, popov = (str(i.person_id) for i in created.invites[-3:])
    loaded = await load_day(db, created.day_id)
    # Only students with extra time, keyed by the core's person id.
    assert loaded.day.extra_time_percent == ((popov, 50.0),)
    assert loaded.day.time_factor(popov) == 1.5 and loaded.day.time_factor(ivanov) == 1.0
    await store.update_student(int(smirnova), extra_time_percent=25, now=NOW + 1)
    await store.update_student(int(popov), extra_time_percent=0, now=NOW + 2)
    loaded = await load_day(db, created.day_id)
    assert loaded.day.extra_time_percent == ((smirnova, 25.0),)
    # Everyone invited is one of the core's people, the guests with their roles.
    roles = {p.person_id: p.role for p in loaded.day.people}
    assert all(roles[str(i.person_id)] is i.role for i in created.everyone)


async def test_4_3_adjusted_time_is_fixed_once_the_sitting_opens(db: Database) -> None:
    store = RosterStore(db)
    created = await store.create_day(load_day_file(EXAMPLES / "defense-day.yaml"),
                                     expires_at=EXPIRES, now=NOW)
    popov = created.invites[-1].person_id
    with pytest.raises(StorageError, match="from 0 to 100 percent, got 101"):
        await store.update_student(popov, extra_time_percent=101, now=NOW)
    await store.update_student(popov, extra_time_percent=30, now=NOW + 1)
    events = [e for e in await Journal(db).entries(created.day_id) if e.person_id == popov]
    assert events[-1].kind == "student_updated"
    assert events[-1].detail == {"extra_time_percent": 30.0}

    await open_sitting(db, created, NOW + 2)
    with pytest.raises(RosterRefused, match="has opened.*set before the day") as refused:
        await store.update_student(popov, extra_time_percent=40, now=NOW + 3)
    assert refused.value.clause == "4.3" and refused.value.status_hint == 409
    # The rest of the roster stays editable; the time stays as it was.
    await store.update_student(popov, timezone="Asia/Tokyo", now=NOW + 4)
    student = (await store.list_students(created.day_id))[-1]
    assert (student.extra_time_percent, student.timezone) == (30.0, "Asia/Tokyo")


async def test_people_added_later_are_journaled_once_each_until_the_sitting_opens(
        db: Database) -> None:
    store = RosterStore(db)
    created = await store.create_day(load_day_file(EXAMPLES / "defense-day.yaml"),
                                     expires_at=EXPIRES, now=NOW)
    day_id = created.day_id
    secretary = created.invites[4].person_id
    added = await store.add_person(day_id, Role.OBSERVER, " Гость Кафедры ", expires_at=EXPIRES,
                                   by=secretary, now=NOW + 1)
    invite = await InviteStore(db).verify(added.token, NOW + 2)
    assert (invite.role, invite.name, invite.day_id) == (Role.OBSERVER, "Гость Кафедры", day_id)
    assert invite.expires_at == EXPIRES
    events = [e for e in await Journal(db).entries(day_id) if e.person_id == added.person_id]
    assert [(e.kind, e.detail) for e in events] == [
        ("invite_issued", {"role": "observer", "name": "Гость Кафедры", "expires_at": EXPIRES}),
        ("person_added", {"role": "observer", "name": "Гость Кафедры", "added_by": secretary}),
    ]
    with pytest.raises(RosterRefused, match="Лебедев Павел Игоревич is already invited"):
        await store.add_person(day_id, Role.SUPERVISOR, "Лебедев Павел Игоревич",
                               expires_at=EXPIRES, by=secretary, now=NOW)
    with pytest.raises(StorageError, match="only supervisor, reviewer, observer"):
        await store.add_person(day_id, Role.MEMBER, "Новый член", expires_at=EXPIRES,
                               by=secretary, now=NOW)
    with pytest.raises(NotFoundError):
        await store.add_person(day_id + 1, Role.OBSERVER, "Гость", expires_at=EXPIRES,
                               by=secretary, now=NOW)

    await open_sitting(db, created, NOW + 3)
    with pytest.raises(RosterRefused, match="has opened: people are added"):
        await store.add_person(day_id, Role.REVIEWER, "Поздний Рецензент", expires_at=EXPIRES,
                               by=secretary, now=NOW + 4)
    assert len(await InviteStore(db).list_people(day_id)) == 14
    await Journal(db).verify()


async def test_students_keep_their_limits_through_the_extra_time_migration(
        tmp_path: Path) -> None:
    import sqlite3

    import sqlite_utils

    path = tmp_path / "old.sqlite3"
    async with Database(path) as database:
        created = await RosterStore(database).create_day(
            load_day_file(EXAMPLES / "defense-day.yaml"), expires_at=EXPIRES, now=NOW)
    conn = sqlite_utils.Database(path)
    conn.execute("ALTER TABLE students DROP COLUMN extra_time_percent")
    conn.execute("DELETE FROM _migrations WHERE name = '0008_extra_time'")
    conn.conn.commit()
    conn.close()
    async with Database(path) as database:
        students = await RosterStore(database).list_students(created.day_id)
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):  # within 0..100
            await database.execute_write(lambda db: db.execute(
                "UPDATE students SET extra_time_percent = 150"))
    assert [s.extra_time_percent for s in students] == [0, 0, 0]


# --- HTTP: GET /api/days/{day_id}/readiness ---------------------------------------


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    app = create_app(make_config(tmp_path))
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as test_client:
        yield test_client


async def import_day(client: Client) -> CreatedDay:
    app = client.app
    spec = load_day_file(EXAMPLES / "defense-day.yaml")
    return await RosterStore(app[DATABASE]).create_day(
        spec, expires_at=time.time() + 3600, now=time.time())


def by_role(created: CreatedDay, role: Role) -> IssuedInvite:
    return next(i for i in created.invites if i.role is role)


async def get_readiness(client: Client, day_id: int,
                        token: str | None) -> tuple[int, dict[str, object]]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with client.get(f"/api/days/{day_id}/readiness", headers=headers) as response:
        return response.status, await response.json()


async def test_secretary_and_chair_get_the_report(client: Client) -> None:
    created = await import_day(client)
    for role in (Role.SECRETARY, Role.CHAIR):
        status, body = await get_readiness(client, created.day_id, by_role(created, role).token)
        assert status == 200, body
        assert body["day_id"] == created.day_id
        students = body["students"]
        assert isinstance(students, list) and len(students) == 3
        assert students[2]["can_defend"] is False
        assert "no consent to personal-data processing on file" in students[2]["reasons"]


async def test_member_and_student_are_forbidden(client: Client) -> None:
    created = await import_day(client)
    for role in (Role.MEMBER, Role.STUDENT):
        status, body = await get_readiness(client, created.day_id, by_role(created, role).token)
        assert status == 403
        assert body["error"] == "role" and role.value in str(body["message"])


async def test_bad_or_missing_token_is_unauthorized(client: Client) -> None:
    created = await import_day(client)
    for token in ("not-a-token", None):
        status, body = await get_readiness(client, created.day_id, token)
        assert status == 401
        assert body["error"] == "bad_token" and body["message"]
    app = client.app
    await InviteStore(app[DATABASE]).revoke(by_role(created, Role.SECRETARY).person_id,
                                            time.time())
    status, body = await get_readiness(client, created.day_id,
                                       by_role(created, Role.SECRETARY).token)
    assert status == 401
    assert body["message"] == "This invite link was revoked: ask the secretary or the department office for a new one."
    expired = await InviteStore(app[DATABASE]).issue(
        created.day_id, Role.SECRETARY, "Новикова М. А.", time.time() - 1)
    status, body = await get_readiness(client, created.day_id, expired.token)
    assert status == 401
    assert body["error"] == "expired_token"


async def test_secretary_of_another_day_is_forbidden(client: Client) -> None:
    first = await import_day(client)
    second = await import_day(client)
    status, body = await get_readiness(client, first.day_id,
                                       by_role(second, Role.SECRETARY).token)
    assert status == 403
    assert body["error"] == "other_day"
    assert f"day {second.day_id}, not {first.day_id}" in str(body["message"])
