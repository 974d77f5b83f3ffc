"""The "look closely" verdict on the secretary's page (issue 16): a Chromium
secretary page asks for the identity check of an aiortc student peer whose camera
shows a built "passport beside the face" frame of one person. The server's band is
set around the distance this same-person pair measures, so the verdict is
**look closely**: the panel shows the live face and the document's face large, side
by side on a desktop (stacked on a phone), with the distance and the band small.
Screenshots at PHONE and DESKTOP are saved (``identity-look-closely-*.png``, copied
to artifacts/screenshots/). The secretary then accepts, with a comment; the
journal keeps the check with its verdict and band (never the distance) and the
decision.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import time
import zoneinfo
from pathlib import Path

import pytest

from identity.analysis import analyze
from identity.compose import passport_frame
from identity.quality import Image
from identity.settings import IdentitySettings
from server.config import Config
from storage.journal import Journal
from storage.roster import CommissionSpec, DaySpec, RosterStore, StudentSpec
from web_ui.keys import CONFIG, DATABASE

from .cdp import DESKTOP, PHONE, Cdp, Tab
from .chromium import chromium, group_alive, require_chromium
from .conftest import RunningServer, make_config
from .identity_helpers import IdentityApi, IdentityClient, StillTrack, portraits
from .procedure_helpers import TZ, Api
from .test_browser import end_sessions, enter
from .timing import wait_until

pytestmark = pytest.mark.timeout(300)

REPO_ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
SIZE = (640, 480)
DOCUMENT_FACE_PX = 64
#: Half the width of the band put around the measured distance: wider than what the
#: video codec changes in the distance (a few hundredths), narrower than the gap
#: to another person's face.
HALF_BAND = 0.1


def student_frame() -> Image:
    """The student's camera: Eileen Collins holding a passport with her own photo."""
    collins, _ = portraits()
    return passport_frame(collins, collins, size=SIZE, document_face_px=DOCUMENT_FACE_PX)


def band_around_same_person() -> tuple[float, float]:
    """A "look closely" band around the distance of the test's same-person pair,
    measured with the server's own analysis on the frame the student's camera shows."""
    analysis = analyze(student_frame(), IdentitySettings())
    assert analysis.distance is not None, analysis.as_json()
    return (round(max(0.05, analysis.distance - HALF_BAND), 2),
            round(analysis.distance + HALF_BAND, 2))


@pytest.fixture
def config(tmp_path: Path) -> Config:
    low, high = band_around_same_person()
    identity = IdentitySettings(match_distance=low, no_match_distance=high,
                                burst_frames=4, burst_timeout_s=3.0)
    return make_config(tmp_path, identity=identity)


def day(starts_at: float) -> DaySpec:
    moment = datetime.datetime.fromtimestamp(starts_at, zoneinfo.ZoneInfo(TZ))
    return DaySpec(
        title="Защиты ВКР, группа ИВТ-41", date=moment.date(),
        start=moment.time().replace(second=0, microsecond=0), timezone=TZ,
        norm_control_required=False,
        commission=CommissionSpec(chair="Соколов Андрей",
                                  members=("Кузнецова Елена", "Морозов Дмитрий"),
                                  secretary="Новикова Мария"),
        students=(StudentSpec(
            name="Петрова Анна", thesis_title="Распознавание речи на мобильных устройствах",
            supervisor="Лебедев Игорь", reviewer="Орлова Светлана", timezone=TZ,
            consent_at=moment - datetime.timedelta(days=10), documents=()),),
    )


async def box(tab: Tab, selector: str) -> dict[str, float]:
    found = await tab.evaluate(
        f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
        " if (!e) return null; const r = e.getBoundingClientRect();"
        " return {left: r.left, top: r.top, width: r.width, height: r.height}; })()")
    assert found is not None, f"nothing at {selector!r}"
    return dict(found)


async def test_look_closely_on_the_secretarys_panel(server: RunningServer,
                                                    tmp_path: Path) -> None:
    require_chromium()
    settings = server.app[CONFIG].identity  # the fixture's band
    band = [settings.match_distance, settings.no_match_distance]
    created = await RosterStore(server.app[DATABASE]).create_day(
        day(time.time() + 60), expires_at=time.time() + 86400, now=time.time())
    day_id = created.day_id
    names = ["chair", "m1", "m2", "sec", "student"]
    tokens = {n: i.token for n, i in zip(names, created.invites, strict=True)}
    ids = {n: str(i.person_id) for n, i in zip(names, created.invites, strict=True)}
    student = ids["student"]
    folder = Path(os.environ.get("ARTIFACTS_DIR") or tmp_path) / "screenshots"
    print(f"\nscreenshots: {folder} (copied to {REPO_ARTIFACTS}); band {band}")
    taken: list[Path] = []
    peer = IdentityClient(server.base_url, tokens["student"], tracks=[StillTrack(student_frame())])
    procedure = Api(server.base_url, day_id, tokens["sec"])
    identity_api = IdentityApi(server.base_url, day_id, tokens["sec"])
    async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
        assert browser.devtools_url is not None
        cdp = await Cdp.connect(browser.devtools_url)
        try:
            await peer.connect()
            await peer.start_media()
            sec = await cdp.open_tab(f"{server.base_url}/j/{tokens['sec']}", DESKTOP)
            await enter(sec)
            room = server.rooms.get(str(day_id))
            assert room is not None
            await wait_until(lambda: [p for i, p in room.publications()
                                      if i.id == student and p.kind == "video"],
                             bool, "the student's camera published", 20)

            await sec.click("[data-action='open-sitting']")
            await wait_until(procedure.snapshot, lambda s: s["recording"], "recording on")
            await sec.wait_for("!document.querySelector('.identity').hidden", "the identity panel")
            assert await sec.evaluate("document.querySelector('.identity-student').value") == student
            await sec.click("[data-action='identity-check']")
            await sec.wait_for(
                "document.querySelector('.identity-result')?.dataset.verdict === 'look_closely'"
                " && [...document.querySelectorAll('.identity-compare:not(.identity-compare-large) img')]"
                ".filter(i => i.complete && i.naturalWidth > 0).length === 2",
                "the look-closely verdict with both faces", 60)
            text = await sec.evaluate("document.querySelector('.identity-result').innerText")
            assert "Посмотрите внимательно" in text and "решение принимаете вы" in text, text
            assert "в полосе" in text, text

            # Desktop: the two faces side by side, each about half the panel wide.
            panel = await box(sec, ".identity")
            live, document = (await box(sec, ".identity-face.live img"),
                              await box(sec, ".identity-face.document img"))
            assert abs(live["top"] - document["top"]) < 2 and document["left"] > live["left"]
            for face in (live, document):
                assert face["width"] >= 0.4 * panel["width"], (face, panel)
            for label, screen in (("desktop", DESKTOP), ("phone", PHONE)):
                taken.append(await sec.screenshot(
                    folder / f"identity-look-closely-{label}.png", screen))
                if label == "phone":
                    # Phone: stacked, each as wide as the panel allows.
                    panel = await box(sec, ".identity")
                    live = await box(sec, ".identity-face.live img")
                    document = await box(sec, ".identity-face.document img")
                    assert document["top"] >= live["top"] + live["height"], (live, document)
                    assert live["width"] >= 0.8 * panel["width"], (live, panel)
            await sec.emulate(DESKTOP)
            # "Compare large" opens both faces at a size the narrow column cannot give.
            await sec.click("[data-action='identity-enlarge']")
            await sec.wait_for("document.querySelector('.identity-dialog')?.open === true",
                               "the large comparison")
            large = await box(sec, ".identity-dialog .identity-face.live img")
            assert large["width"] >= 400, large
            taken.append(await sec.screenshot(
                folder / "identity-look-closely-large-desktop.png", DESKTOP))
            await sec.click("[data-action='identity-enlarge-close']")
            await sec.wait_for("document.querySelector('.identity-dialog')?.open === false",
                               "the large comparison closed")

            # The answer and the stored record carry the band the verdict was made with.
            status, _, raw = await identity_api.get(f"identity/{student}/checks")
            assert status == 200
            record = json.loads(raw)["checks"][-1]
            assert record["verdict"] == "look_closely" and record["band"] == band, record
            assert band[0] < record["distance"] <= band[1]
            assert record["thresholds"]["no_match_distance"] == band[1]

            # The secretary decides, by looking: accepted, with a comment.
            await sec.evaluate(
                "document.querySelector('.identity-comment').value = 'сверено по фото вручную'")
            await sec.click("[data-action='identity-accept']")
            await wait_until(procedure.snapshot,
                             lambda s: s["statuses"][student] == "identified", "identified")
            await peer.close()
            await end_sessions(server.rooms, str(day_id), [sec])
        finally:
            await peer.close()
            await procedure.close()
            await identity_api.close()
            await cdp.close()
    assert not group_alive(browser.process.pid), "a Chromium process outlived the test"

    REPO_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for shot in taken:
        shutil.copy2(shot, REPO_ARTIFACTS / shot.name)

    entries = await Journal(server.app[DATABASE]).entries(day_id)
    snapshots = [e.detail for e in entries if e.kind == "identity_snapshot"]
    assert snapshots == [{"student": student, "check": record["id"], "verdict": "look_closely",
                          "reason": None, "band": band}], snapshots
    decided = [e.detail for e in entries if e.detail.get("type") == "IdentityDecided"]
    assert [(d["student"], d["accepted"], d["comment"]) for d in decided] == [
        (student, True, "сверено по фото вручную")]
    journal = json.dumps([e.detail for e in entries])
    assert "distance" not in journal and "encoding" not in journal
    await Journal(server.app[DATABASE]).verify()
