"""Protocols approved and signed from the pages with the browsers' own keys (V6, issue 7).

A small day (the chair, two members, the secretary, one student) runs to its close
through the HTTP API; the chair and the members take part from their pages in one
headless Chromium (three tabs), the secretary and the student as aiortc peers. Then,
with the pages' own buttons, each member approves the day's protocol and the
student's (the page makes an ECDSA P-256 key with WebCrypto, registers it and signs)
and the chair signs both. The journal's approvals and signatures carry the keys the
pages registered, one per person. The secretary hands the day over to the archive;
the real `defense-room verify` passes on the package, and fails naming the file when
one byte of it is changed, and naming the entry when a signature is replaced by one
made with another key. A screenshot of the chair's page after signing is saved.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from protocols.signing import load_jwk, statement, verify
from recordings.plan import day_folder
from storage.journal import Journal
from storage.roster import CommissionSpec, RosterStore
from web_ui.client import RoomClient
from web_ui.keys import CONFIG, DATABASE, HOSTS

from .cdp import DESKTOP, PHONE, Cdp, Tab
from .chromium import chromium, group_alive, require_chromium
from .conftest import RunningServer
from .procedure_helpers import Api, day_spec
from .signing_helpers import one_byte_changed, rezip, signed_with_another_key, unzip
from .test_browser import end_sessions, enter, only_from_server, prejoin_ready
from .timing import wait_until

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[1]
REPO_ARTIFACTS = REPO / "artifacts" / "screenshots"
NAMES = ["chair", "m1", "m2", "sec", "student"]
IN_THE_BROWSER = ("chair", "m1", "m2")
COMMISSION = CommissionSpec(chair="Соколов Андрей", members=("Кузнецова Елена", "Морозов Дмитрий"),
                            secretary="Новикова Мария")


async def test_protocols_signed_in_the_pages_and_the_package_verified(
        server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    started = time.monotonic()
    db = server.app[DATABASE]
    spec = dataclasses.replace(day_spec(time.time() + 60, students=1), commission=COMMISSION)
    created = await RosterStore(db).create_day(spec, expires_at=time.time() + 86400, now=time.time())
    day_id = created.day_id
    tokens = {n: i.token for n, i in zip(NAMES, created.invites, strict=True)}
    ids = {n: str(i.person_id) for n, i in zip(NAMES, created.invites, strict=True)}
    student = ids["student"]
    api = {n: Api(server.base_url, day_id, tokens[n]) for n in NAMES}
    clients: list[RoomClient] = []
    folder = Path(os.environ.get("ARTIFACTS_DIR") or tmp_path) / "screenshots"
    shot = folder / "08-chair-protocols-signed-desktop.png"
    try:
        async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
            assert browser.devtools_url is not None
            cdp = await Cdp.connect(browser.devtools_url)
            tabs: dict[str, Tab] = {}
            try:
                for who in IN_THE_BROWSER:  # one page loading at a time
                    tabs[who] = await cdp.open_tab(f"{server.base_url}/j/{tokens[who]}", DESKTOP)
                    await prejoin_ready(tabs[who])
                for who in IN_THE_BROWSER:
                    await enter(tabs[who])
                for who in ("sec", "student"):
                    client = RoomClient(server.base_url, tokens[who])
                    clients.append(client)
                    await client.connect()
                    await client.start_media()
                await run_the_day(server, api, day_id, student)
                await wait_for_final_recordings(server, day_id)

                # The members approve both protocols from their pages, each approval
                # signed with the key this browser makes for them.
                for who in ("m1", "m2"):
                    await refresh_protocols(tabs[who], ["day", student], "button.primary")
                    for which in ("day", student):
                        await approve_current(tabs[who], which, student)
                listed = await protocols(server.base_url, day_id, tokens["sec"])
                for which in ("day", student):
                    assert listed[which]["status"] == "approved", listed[which]
                    assert {str(a["person_id"]) for a in listed[which]["approved_by"]} == {
                        ids["m1"], ids["m2"]}

                # The chair sees them approved and signs both, last.
                await refresh_protocols(tabs["chair"], ["day", student], "button.primary")
                for which in ("day", student):
                    await press(tabs["chair"], which, "li.dataset.status === 'signed'")
                await tabs["chair"].wait_for(
                    "[...document.querySelectorAll('.protocols li[data-which]')]"
                    ".every(li => li.dataset.status === 'signed')", "both shown signed")
                await tabs["chair"].screenshot(shot, DESKTOP)

                page_keys = {who: await stored_key(tabs[who]) for who in IN_THE_BROWSER}
                only_from_server(server.base_url, tabs.values())
                for who, tab in tabs.items():
                    assert not tab.exceptions, (who, tab.exceptions)
                for client in clients:
                    await client.close()
                await secretary_sees_the_server_key(cdp, server.base_url, day_id, tokens["sec"],
                                                    tabs, folder)
                await end_sessions(server.rooms, str(day_id), [*tabs.values()])
            finally:
                await cdp.close()
        assert not group_alive(browser.process.pid), "a Chromium process outlived the test"

        listed = await protocols(server.base_url, day_id, tokens["sec"])
        server_key = await listed_server_key(server.base_url, day_id, tokens["sec"])
        assert {w: p["status"] for w, p in listed.items()} == {"day": "signed", student: "signed"}
        assert all(str(p["signed"]["person_id"]) == ids["chair"] for p in listed.values())
        await check_journal(server, day_id, ids, listed, page_keys)

        # The hand-over, and the package checked by the real command.
        package = await hand_over(server.base_url, day_id, tokens["sec"], tmp_path)
        code, output = await defense_room_verify(package)
        assert code != 0 and "nothing proves who made this package" in output, output
        code, output = await defense_room_verify(package, server_key)
        assert code == 0 and "OK" in output, output
        await check_tampering(package, student, tmp_path)
    finally:
        for client in clients:
            await client.close()
        for one in api.values():
            await one.close()
    REPO_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy2(shot, REPO_ARTIFACTS / shot.name)
    print(f"\nscreenshot: {shot} (copied to {REPO_ARTIFACTS}); "
          f"the test took {time.monotonic() - started:.0f} s")


async def secretary_sees_the_server_key(cdp: Cdp, base_url: str, day_id: int, token: str,
                                       tabs: dict[str, Tab], folder: Path) -> None:
    """The secretary's protocols panel names the server key (S1), at desktop and phone
    size; the screenshots are saved."""
    fingerprint = await listed_server_key(base_url, day_id, token)
    tab = tabs["sec"] = await cdp.open_tab(f"{base_url}/j/{token}", DESKTOP)
    await prejoin_ready(tab)
    await enter(tab)
    await tab.wait_for(
        "(() => { const e = document.querySelector('.protocols .server-key');"
        f" return !!e && !e.hidden && e.textContent.includes({json.dumps(fingerprint)}); }})()",
        "the server key on the secretary's protocols panel")
    for screen, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        shot = await tab.screenshot(folder / f"09-secretary-server-key-{name}.png", screen)
        REPO_ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, REPO_ARTIFACTS / shot.name)
    assert not tab.exceptions, tab.exceptions


async def run_the_day(server: RunningServer, api: dict[str, Api], day_id: int, student: str) -> None:
    """The whole sitting through the API, up to its close (both protocols final)."""
    sec = api["sec"]
    await wait_until(sec.snapshot, lambda s: len(s["present"]) == 5, "everyone present", 30)
    state = await sec.snapshot()
    assert state["quorum"] == {"present": 3, "total": 3, "required": 2, "reached": True}
    await sec.act("open-sitting")
    await wait_until(sec.snapshot, lambda s: s["recording"], "the recording")
    await sec.act("identity", student=student, accepted=True)
    await api["chair"].act("announce-limits")
    await sec.act("start-defense", student=student)
    for _ in range(6):
        await sec.act("next-phase")
    await sec.act("return-time", return_at=time.time() + 600)
    await sec.act("closed-sitting")
    await wait_until(sec.snapshot, lambda s: not s["recording"], "the closed sitting, not recorded")
    for who, grade in (("chair", "good"), ("m1", "excellent"), ("m2", "excellent")):
        await api[who].act("vote", student=student, grade=grade)
    await sec.act("announce-results")
    await wait_until(sec.snapshot, lambda s: s["results_at"] is not None and s["recording"],
                     "the results")
    await sec.act("close-sitting")
    await wait_until(sec.snapshot, lambda s: s["phase"] == "closed" and not s["recording"],
                     "the close")


async def wait_for_final_recordings(server: RunningServer, day_id: int) -> None:
    """The takes are finished files: the protocols' lists of recordings stop changing."""
    host = server.app[HOSTS].get(day_id)
    folder = day_folder(server.app[CONFIG].recordings_dir, day_id)
    await wait_until(lambda: (host is not None and host.recording is not None,
                              sorted(str(p) for p in folder.glob("take-*/**/*.part"))),
                     lambda left: left == (False, []),
                     "the takes to be finished (recording, unfinished files)", 20)


async def refresh_protocols(tab: Tab, which: list[str], button: str) -> None:
    """Press the panel's refresh and wait until each protocol offers `button`."""
    await tab.click("#room .protocols .panel-head button")
    checks = " && ".join(
        f"!!document.querySelector('.protocols li[data-which=\"{w}\"] {button}')" for w in which)
    await tab.wait_for(checks, f"{button} for {which} on the page")


async def press(tab: Tab, which: str, done: str) -> None:
    """Press the protocol's primary button (approve or sign) and wait for its effect,
    (`done`, an expression of the protocol's `li`), failing at once with the page's
    words if the server refused."""
    before = await tab.evaluate("window.roomDebug.state.toast?.at ?? 0")
    await tab.click(f".protocols li[data-which='{which}'] button.primary")
    outcome = await tab.wait_for(
        "(() => { const toast = window.roomDebug.state.toast;"
        f" if (toast && toast.kind === 'error' && toast.at > {before}) return 'refused: ' + toast.text;"
        f" const li = document.querySelector('.protocols li[data-which=\"{which}\"]');"
        f" return li && ({done}) ? 'done' : false; }})()", f"protocol {which} pressed", 30)
    assert outcome == "done", outcome


async def approve_current(tab: Tab, which: str, student: str) -> None:
    """Approve `which` from the page. A draft that changed between the page's read and
    the approval is refused by design ("read it again"); once in CI the day's draft
    changed after the takes were finished, cause not yet known. Then the member does
    what the message says, once: refresh, read, approve; the test says it happened."""
    try:
        await press(tab, which, "!li.querySelector('button.primary')")
    except AssertionError as exc:
        if "has changed since you read it" not in str(exc):
            raise
        print(f"\nthe draft of {which!r} changed between reading and approving; reading it"
              f" again: {str(exc)[:300]}")
        await refresh_protocols(tab, ["day", student], "button.primary")
        await press(tab, which, "!li.querySelector('button.primary')")


async def stored_key(tab: Tab) -> dict[str, Any]:
    """What the page keeps of its key in IndexedDB (signing.js)."""
    result: dict[str, Any] = await tab.evaluate("""new Promise((resolve, reject) => {
      const me = window.roomDebug.state.me;
      const open = indexedDB.open('defense-room', 1);
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const get = open.result.transaction('signing-keys').objectStore('signing-keys')
          .get(`${me.day.id}:${me.me.id}`);
        get.onerror = () => reject(get.error);
        get.onsuccess = () => resolve({
          fingerprint: get.result?.fingerprint, key_id: get.result?.keyId,
          extractable: get.result?.privateKey?.extractable,
          algorithm: get.result?.privateKey?.algorithm});
      };
    })""")
    return result


async def listed_server_key(base_url: str, day_id: int, token: str) -> str:
    """The server key's fingerprint as the secretary's protocol listing names it."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/api/days/{day_id}/protocols",
                               headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200, await r.text()
            fingerprint: str = (await r.json())["server_key"]
    return fingerprint


async def protocols(base_url: str, day_id: int, token: str) -> dict[str, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/api/days/{day_id}/protocols",
                               headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
    return {p["which"]: p for p in body["protocols"]}


async def check_journal(server: RunningServer, day_id: int, ids: dict[str, str],
                        listed: dict[str, dict[str, Any]], page_keys: dict[str, dict[str, Any]]
                        ) -> None:
    """Every approval and signature is journaled with the key its page registered."""
    entries = await Journal(server.app[DATABASE]).entries(day_id)
    registered = [e for e in entries if e.kind == "signing_key_registered"]
    keys = {str(e.person_id): e.detail for e in registered}
    # One key per person, made by their page and kept there (private half not extractable).
    assert len(registered) == 3 and set(keys) == {ids[w] for w in IN_THE_BROWSER}
    assert len({k["fingerprint"] for k in keys.values()}) == 3
    for who, kept in page_keys.items():
        mine = keys[ids[who]]
        assert kept["fingerprint"] == mine["fingerprint"] and kept["key_id"] == mine["key_id"], who
        assert kept["extractable"] is False, kept
        assert kept["algorithm"] == {"name": "ECDSA", "namedCurve": "P-256"}, kept
    seen: set[tuple[str, str, str]] = set()
    for entry in entries:
        action = {"protocol_approved": "approve", "protocol_signed": "sign"}.get(entry.kind)
        if action is None:
            continue
        person, which = str(entry.person_id), entry.detail["protocol"]
        assert entry.detail["hash"] == listed[which]["hash"]
        key = keys[person]
        assert entry.detail["key"] == key["fingerprint"], (entry.kind, person)
        # The statement the page signed names the person and the server's time (S14).
        said = json.loads(entry.detail["statement"])
        assert (said["action"], said["day"], said["document"], said["hash"], said["person"]) == (
            action, day_id, which, entry.detail["hash"], entry.person_id), said
        verify(load_jwk(key["jwk"]), entry.detail["signature"],
               statement(action, day_id, which, entry.detail["hash"], entry.person_id,
                         said["at"]))
        seen.add((action, person, which))
    assert seen == {(action, ids[who], which) for which in listed
                    for action, who in (("approve", "m1"), ("approve", "m2"), ("sign", "chair"))}


async def hand_over(base_url: str, day_id: int, token: str, tmp_path: Path) -> Path:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base_url}/api/days/{day_id}/handover", json={"to": "archive"},
                                headers=headers) as r:
            record = await r.json()
            assert r.status == 201, record
        async with session.get(base_url + record["download"], headers=headers) as r:
            assert r.status == 200
            data = await r.read()
    assert hashlib.sha256(data).hexdigest() == record["sha256"]
    package = tmp_path / "handover.zip"
    package.write_bytes(data)
    return package


async def defense_room_verify(package: Path, key: str | None = None) -> tuple[int, str]:
    """`defense-room verify PACKAGE [--key FINGERPRINT]` as a person runs it: exit status
    and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "defense_room.cli", "verify", str(package),
        *(("--key", key) if key else ()), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def check_tampering(package: Path, student: str, tmp_path: Path) -> None:
    contents = unzip(package)
    signatures_name = f"protocols/{student}/signatures.json"
    assert {"manifest.json", "statement.pdf", "protocols/day/signatures.json",
            "protocols/day/protocol.pdf", signatures_name} <= set(contents)

    # One byte of one file changed, the manifest kept: that file is named.
    changed = one_byte_changed(contents, "protocols/day/protocol.pdf")
    code, output = await defense_room_verify(rezip(changed, tmp_path / "one-byte.zip"))
    assert code == 1, output
    assert problems(output) == [
        "protocols/day/protocol.pdf: altered (its SHA-256 differs from the manifest)"], output

    # The chair's signature replaced by one of the same statement made with another
    # P-256 key, and the manifest redone so that only the signature is wrong.
    index = next(i for i, s in enumerate(json.loads(contents[signatures_name]))
                 if s["action"] == "sign")
    forged = signed_with_another_key(contents, signatures_name, index)
    code, output = await defense_room_verify(rezip(forged, tmp_path / "other-key.zip"))
    assert code == 1, output
    [problem, unsigned] = problems(output)
    assert problem.startswith(f"{signatures_name}[{index}] (sign by person "), output
    assert "signature invalid" in problem and "does not match" in problem, output
    assert unsigned.startswith(f"protocols/{student}: no valid signature by the chair"), output


def problems(output: str) -> list[str]:
    """The problem lines of the command's output, without its summary."""
    return [line for line in output.splitlines() if line and "FAILED" not in line]
