"""Document files (B1, B2) and the presentation's page turns in the timeline."""

from __future__ import annotations

import io
import time

import aiohttp
import pytest

from storage.journal import Journal
from storage.roster import RosterStore
from web_ui.client import RoomClient
from web_ui.keys import DATABASE

from .conftest import RunningServer
from .procedure_helpers import Api, day_spec
from .timing import wait_until

pytestmark = pytest.mark.timeout(120)

PDF = b"%PDF-1.4\n% a tiny test document\n%%EOF\n"


async def request(method: str, url: str, token: str | None, data: bytes | None = None
                  ) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body: bytes | io.BytesIO | None = io.BytesIO(data) if data is not None else None
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, data=body, headers=headers) as r:
            return r.status, await r.read(), dict(r.headers)


async def test_documents_are_uploaded_and_opened_by_those_who_may(server: RunningServer) -> None:
    created = await RosterStore(server.app[DATABASE]).create_day(
        day_spec(time.time() + 3600), expires_at=time.time() + 86400, now=time.time())
    chair, m1, _, _, sec, s1, s2 = (i.token for i in created.invites)
    s1_id = created.invites[5].person_id
    base = f"{server.base_url}/api/days/{created.day_id}/students/{s1_id}/files"

    assert (await request("PUT", f"{base}/thesis", s2, PDF))[0] == 403  # another student
    assert (await request("PUT", f"{base}/thesis", m1, PDF))[0] == 403
    assert (await request("PUT", f"{base}/thesis", None, PDF))[0] == 401
    status, body, _ = await request("PUT", f"{base}/thesis", s1, b"<html>not a pdf</html>")
    assert status == 422 and b"not a PDF" in body
    assert (await request("PUT", f"{base}/diary", s1, PDF))[0] == 404
    status, body, _ = await request("PUT", f"{base}/thesis", s1, PDF + b"x" * (50 << 20))
    assert status == 413 and b"larger than 50 MiB" in body
    assert (await request("PUT", f"{base}/thesis", s1, PDF))[0] == 201
    assert (await request("PUT", f"{base}/presentation_pdf", sec, PDF + b"v2"))[0] == 201

    for token in (chair, m1, sec, s1):
        status, body, headers = await request("GET", f"{base}/thesis", token)
        assert (status, body) == (200, PDF)
        assert headers["Content-Type"] == "application/pdf"
    assert (await request("GET", f"{base}/thesis", s2))[0] == 403  # not the commission
    status, body, _ = await request("GET", f"{base}/presentation_pdf", s2)
    assert (status, body) == (200, PDF + b"v2")  # the presentation is shown to everyone
    assert (await request("GET", f"{base}/reviewer_review", chair))[0] == 404

    roster = await RosterStore(server.app[DATABASE]).list_students(created.day_id)
    kinds = {d.kind.value for d in next(s for s in roster if s.person_id == s1_id).documents}
    assert {"thesis", "presentation_pdf"} <= kinds
    files = [e.detail for e in await Journal(server.app[DATABASE]).entries(created.day_id)
             if e.kind == "document_file"]
    assert [f["kind"] for f in files] == ["thesis", "presentation_pdf"]
    assert all(len(f["sha256"]) == 64 for f in files)


async def test_the_defending_student_turns_pages_for_everyone(server: RunningServer) -> None:
    created = await RosterStore(server.app[DATABASE]).create_day(
        day_spec(time.time() + 60, students=1), expires_at=time.time() + 86400, now=time.time())
    tokens = [i.token for i in created.invites]  # chair, m1, m2, m3, sec, s1
    clients = [RoomClient(server.base_url, t) for t in tokens]
    sec = Api(server.base_url, created.day_id, tokens[4])
    try:
        for client in clients:
            await client.connect()
            await client.start_media()
        student, member = clients[5], clients[1]
        await wait_until(sec.snapshot, lambda s: len(s["present"]) == 6, "everyone present")
        await student.send({"type": "page", "page": 2})
        await student.wait_for(lambda: bool(student.state.errors), 10, "a refusal")
        assert "no defense" in student.state.errors[-1]["message"]
        await sec.act("open-sitting")
        await wait_until(sec.snapshot, lambda s: s["recording"], "recording")
        await sec.act("identity", student=student.participant_id, accepted=True)
        await sec.act("announce-limits")
        await sec.act("start-defense", student=student.participant_id)
        await member.send({"type": "page", "page": 5})
        await member.wait_for(lambda: bool(member.state.errors), 10, "a refusal")
        assert "only the defending student" in member.state.errors[-1]["message"]
        await student.send({"type": "page", "page": 0})
        await student.wait_for(lambda: len(student.state.errors) == 2, 10, "a malformed page")
        await student.send({"type": "page", "page": 3})
        await member.wait_for(
            lambda: any(n.get("page") == 3 for n in member.state.presentations), 10,
            "the member's page to show page 3")
        state = await sec.state()
        assert state["presentation"] == {"student": student.participant_id, "page": 3}
    finally:
        for client in clients:
            await client.close()
        await sec.close()
    turns = [e for e in await Journal(server.app[DATABASE]).entries(created.day_id)
             if e.kind == "presentation_page"]
    assert [t.detail["page"] for t in turns] == [3]
    assert turns[0].person_id == created.invites[5].person_id
