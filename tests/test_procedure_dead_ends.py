"""The ways out of a stranded day, through the HTTP API with real WebRTC peers:
members attending in the university room (4.8), the commission losing quorum and
the chair moving the rest of the day to a new date (7.8), and a vote without a
majority voted again (7.12)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from server.config import AbsenceConfig, Config
from storage.invites import InviteStore
from web_ui.client import RoomClient
from web_ui.keys import DATABASE

from .conftest import RunningServer, make_config
from .procedure_helpers import Api
from .test_procedure_day import connect, people
from .timing import wait_until

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # No grace: a failure lets the chair move at once (the clock is real here; the
    # 15 minutes are the core's tests' business, with a fake one).
    return make_config(tmp_path, absence=dataclasses.replace(AbsenceConfig(), grace_minutes=0))


async def test_4_8_7_8_7_12_in_person_members_a_moved_rest_of_day_and_a_new_round(
        server: RunningServer) -> None:
    async with people(server) as (day_id, tokens):
        apis = {n: Api(server.base_url, day_id, t) for n, t in tokens.items()}
        clients: dict[str, RoomClient] = {}
        try:
            for name in ("chair", "m1", "m2", "m3", "sec", "s1", "s2"):
                clients[name] = await connect(server, tokens[name], media=name in ("chair", "s1"))
            ids = {n: c.participant_id for n, c in clients.items()}
            sec, chair = apis["sec"], apis["chair"]
            await wait_until(sec.snapshot, lambda s: len(s["present"]) == 7, "all present")
            await sec.act("open-sitting")
            await wait_until(sec.snapshot, lambda s: s["phase"] == "identification",
                             "recording confirmed")
            for student in ("s1", "s2"):
                await sec.act("identity", student=ids[student], accepted=True)
            await chair.act("announce-limits")
            await sec.act("start-defense", student=ids["s1"])

            # 4.8: m3 moves to the university room; the secretary marks them there and
            # their own link may go without costing the quorum.
            assert (await apis["m1"].refused("in-person", person=ids["m3"],
                                             in_person=True)).status == 403
            state = await sec.act("in-person", person=ids["m3"], in_person=True)
            assert state["in_person"] == [ids["m3"]]
            await clients.pop("m3").close()
            state = await wait_until(sec.snapshot, lambda s: ids["m3"] not in s["present"],
                                     "m3's own link gone")
            assert state["quorum"]["present"] == 4 and not state["paused"]
            for _ in range(6):
                await chair.act("next-phase")
            await sec.act("start-defense", student=ids["s2"])

            # 7.8: two members' links fail; the sitting pauses and the chair moves the
            # rest of the day to a new date, which reaches the student.
            await clients.pop("m1").close()
            await clients.pop("m2").close()
            state = await wait_until(sec.snapshot, lambda s: s["paused"], "paused, no quorum")
            assert state["failure"].startswith("quorum lost (2 of 4 members, 3 needed)")
            assert state["failure_since"] is not None
            new_date = time.time() + 7 * 86_400
            assert (await sec.refused("move-rest-of-day", failure_description="x",
                                      new_date=new_date)).status == 403
            refused = await chair.refused("move-rest-of-day", failure_description="links",
                                          new_date=time.time() - 60)
            assert refused.status == 409 and "has passed" in refused.body["message"]
            state = await chair.act("move-rest-of-day",
                                    failure_description="связь с членами ГЭК прервалась",
                                    new_date=new_date)
            assert state["statuses"][ids["s2"]] == "rescheduled"
            assert state["moved"] == {ids["s2"]: new_date}
            assert state["phase"] == "between_defenses"
            s2_page = clients["s2"]
            await s2_page.wait_for(
                lambda: any(n.get("kind") == "rescheduled" and n.get("new_date") == new_date
                            for n in s2_page.state.notices)
                and (s2_page.state.procedure or {}).get("moved") == {ids["s2"]: new_date},
                10, "the new date on s2's page")
            # The student's link works until the day after the new date.
            invites = InviteStore(server.app[DATABASE])

            async def s2_expires() -> float:
                person = await invites.person(int(ids["s2"]))
                assert person is not None
                return person.expires_at

            await wait_until(s2_expires, lambda at: at > new_date, "s2's link extended")

            # The members come back; s1 is voted on in the closed sitting.
            for name in ("m1", "m2"):
                clients[name] = await connect(server, tokens[name])
            await wait_until(sec.snapshot, lambda s: s["quorum"]["present"] == 4, "quorum back")
            await sec.act("return-time", return_at=time.time() + 600)
            await sec.act("closed-sitting")
            await wait_until(sec.snapshot, lambda s: not s["recording"], "recording stopped")

            # 7.12: 2 of 4 for "good" without the chair: no majority, a new round.
            await chair.act("vote", student=ids["s1"], grade="satisfactory")
            await apis["m1"].act("vote", student=ids["s1"], grade="good")
            await apis["m2"].act("vote", student=ids["s1"], grade="good")
            # Members online vote from their own page; the secretary records the open
            # vote of one in the room.
            refused = await sec.refused("record-vote", voter=ids["m1"], student=ids["s1"],
                                        grade="excellent")
            assert refused.status == 409 and "in person" in refused.body["message"]
            await sec.act("record-vote", voter=ids["m3"], student=ids["s1"], grade="excellent")
            refused = await sec.refused("announce-results")
            assert refused.status == 409 and "new round" in refused.body["message"]
            state = await chair.act("new-round", student=ids["s1"])
            assert state["vote_rounds"] == {ids["s1"]: 2}
            # In round 2 m3 votes from the room's device, signed in with their link.
            for name in ("chair", "m1", "m2", "m3"):
                await apis[name].act("vote", student=ids["s1"], grade="good")
            await sec.act("announce-results")
            state = await wait_until(sec.snapshot, lambda s: s["results_at"] is not None,
                                     "results on the recording")
            secretary = clients["sec"]
            await secretary.wait_for(
                lambda: any(n.get("kind") == "results" and n.get("grades") == {ids["s1"]: "good"}
                            for n in secretary.state.notices), 10, "s1's grade announced")
            await chair.act("close-sitting")
        finally:
            for client in clients.values():
                await client.close()
            for api in apis.values():
                await api.close()
