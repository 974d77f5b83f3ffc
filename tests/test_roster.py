"""Tests for storage.roster on a real SQLite file, and the readiness API over HTTP."""

from __future__ import annotations

import datetime
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from orchestrator.documents import DocumentKind
from server.dayfile import load_day_file
from server.readiness import readiness_report
from storage.db import Database
from storage.errors import NotFoundError
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
    assert len({i.token for i in created.invites}) == 8
    invite = await InviteStore(db).verify(created.invites[-1].token, NOW)
    assert invite.name == "Попов Артём Евгеньевич" and invite.day_id == created.day_id

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
        assert stored.consent_at == (given.consent_at.timestamp() if given.consent_at else None)
        assert {(d.kind, d.uploaded_at) for d in stored.documents} == {
            (d.kind, d.uploaded_at.timestamp()) for d in given.documents}

    report = readiness_report(roster, DAY_NOW)
    verdicts = [(s.can_defend, s.late) for s in report.students]
    assert verdicts == [(True, ()), (True, (DocumentKind.REVIEWER_REVIEW,)), (False, ())]

    journal = Journal(db)
    kinds = [e.kind for e in await journal.entries(created.day_id)]
    assert kinds.count("invite_issued") == 8 and kinds.count("student_added") == 3
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
    assert body["message"] == "This invite link was revoked by the secretary."
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
