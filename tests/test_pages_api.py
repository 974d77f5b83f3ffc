"""What the room pages read besides the procedure API (web_ui/pages.py): who am I,
and the connection check of rule P5."""

from __future__ import annotations

import io
import time

import aiohttp

from storage.invites import Role
from storage.roster import RosterStore
from web_ui.keys import DATABASE
from web_ui.pages import CHECK_MAX_BYTES, MINIMUM_KBPS

from .conftest import RunningServer
from .procedure_helpers import day_spec


async def test_me_names_the_day_the_person_and_what_they_may_open(server: RunningServer) -> None:
    created = await RosterStore(server.app[DATABASE]).create_day(
        day_spec(time.time() + 3600), expires_at=time.time() + 86400, now=time.time())
    by_role = {i.role.value: i for i in created.invites}
    student = created.invites[-1]
    base = f"{server.base_url}/api"
    pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    async with aiohttp.ClientSession() as session:
        for kind in ("thesis", "presentation_pdf"):
            async with session.put(
                    f"{base}/days/{created.day_id}/students/{student.person_id}/files/{kind}",
                    data=pdf, headers={"Authorization": f"Bearer {by_role['secretary'].token}"}) as r:
                assert r.status == 201, await r.text()

        async def me(token: str) -> dict[str, object]:
            async with session.get(f"{base}/me", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200, await r.text()
                body: dict[str, object] = await r.json()
                return body

        member = await me(by_role["member"].token)
        assert member["me"] == {"id": str(by_role["member"].person_id),
                                "name": by_role["member"].name, "role": "member"}
        assert member["day"]["id"] == created.day_id  # type: ignore[index]
        assert member["connection"] == {"minimum_kbps": MINIMUM_KBPS, "recommended_kbps": 1000}
        files = {s["id"]: s["files"] for s in member["students"]}  # type: ignore[attr-defined]
        assert files[str(student.person_id)] == ["thesis", "presentation_pdf"]
        # Another student sees only the presentation; the student their own files.
        other = created.invites[-2]
        assert {s["id"]: s["files"] for s in (await me(other.token))["students"]  # type: ignore[attr-defined]
                }[str(student.person_id)] == ["presentation_pdf"]
        assert {s["id"]: s["files"] for s in (await me(student.token))["students"]  # type: ignore[attr-defined]
                }[str(student.person_id)] == ["thesis", "presentation_pdf"]
        async with session.get(f"{base}/me") as r:
            assert r.status == 401
        async with session.get(f"{base}/me", headers={"Authorization": "Bearer nope"}) as r:
            assert r.status == 401 and (await r.json())["error"] == "bad_token"


async def test_connection_check_moves_what_is_asked_and_no_more(server: RunningServer) -> None:
    invite = await server.invite(Role.STUDENT, "Студент Проверка")
    auth = {"Authorization": f"Bearer {invite.token}"}
    url = f"{server.base_url}/api/connection-check"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, params={"bytes": "65536"}, headers=auth) as r:
            assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
            assert len(await r.read()) == 65536
        async with session.post(url, data=b"x" * 100_000, headers=auth) as r:
            assert (await r.json())["received"] == 100_000
        async with session.get(url, params={"bytes": str(CHECK_MAX_BYTES + 1)}, headers=auth) as r:
            assert r.status == 400
        async with session.post(url, data=io.BytesIO(b"x" * (CHECK_MAX_BYTES + 1)), headers=auth) as r:
            assert r.status == 413
        async with session.get(url) as r:
            assert r.status == 401
