"""A record nobody can forge (issue 14: S1, S2, S14, S15, S17).

The real app on a real SQLite file, the day driven by a `ProcedureRunner` with a fake
clock (the `api` fixture of test_protocol_api); real browser-like keys sign through
the HTTP API; packages are downloaded, forged the ways the review forged them and
checked with `defense-room verify`.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

import pypdf
import pytest

from defense_room.cli import server_keys
from defense_room.verify import NO_ANCHOR, check_package, run
from protocols.evidence import csv_bytes, csv_cell
from protocols.server_key import ServerKey, ServerKeyring, public_pem
from protocols.signing import load_jwk, statement
from recordings.plan import day_folder
from storage.appeals import AppealStore
from storage.journal import Journal
from web_ui.keys import CONFIG, DATABASE

from .signing_helpers import BrowserKey, rezip, unzip
from .test_protocol import close_sitting
from .test_protocol_api import Api, api  # noqa: F401  (the fixture)

pytestmark = pytest.mark.timeout(120)


# -- helpers -------------------------------------------------------------------------


async def sign_v2(api: Api, action: str, which: str, who: str, digest: str
                  ) -> dict[str, Any]:
    """What signing.js sends: the statement the server gives, signed, with its time."""
    key_id = await api.key_id(who)
    code, given = await api.call(
        "GET", api.url(which, "statement") + f"?action={action}&hash={digest}", who)
    assert code == 200, given
    return {"hash": digest, "key_id": key_id, "at": given["at"],
            "signature": api.keys[who].sign(given["statement"].encode())}


async def sign_everything(api: Api) -> None:
    """Close the sitting; every member present approves every protocol, the chair signs."""
    await close_sitting(api.runner, api.clock, api.day)
    code, listing = await api.call("GET", api.url(), "sec")
    assert code == 200, listing
    for entry in listing["protocols"]:
        which = entry["which"]
        for missing in entry["missing_approvals"]:
            who = api.day.key(str(missing["person_id"]))
            body = await sign_v2(api, "approve", which, who, entry["hash"])
            code, answer = await api.call("POST", api.url(which, "approve"), who, body)
            assert code == 200, answer
        body = await sign_v2(api, "sign", which, "chair", entry["hash"])
        code, answer = await api.call("POST", api.url(which, "sign"), "chair", body)
        assert code == 200, answer


def keyring(api: Api) -> ServerKeyring:
    return ServerKeyring(api.app[CONFIG].data_dir)


async def handover(api: Api, tmp_path: Path, name: str = "handover.zip") -> Path:
    code, record = await api.call("POST", f"/api/days/{api.day.day_id}/handover", "sec",
                                  {"to": "registrar"})
    assert code == 201, record
    code, data = await api.call("GET", record["download"], "sec")
    assert code == 200
    target = tmp_path / name
    target.write_bytes(data)
    return target


async def file_appeal(api: Api) -> int:
    appeal = await AppealStore(api.app[DATABASE]).file(
        day_id=api.day.day_id, student_id=int(api.day.ids["s1"]), text="п. 7.6",
        filed_by=int(api.day.ids["sec"]), on_paper=True, deadline=time.time() + 86400,
        now=time.time())
    return appeal.appeal_id


async def evidence(api: Api, tmp_path: Path, appeal_id: int) -> Path:
    code, data = await api.call("GET", f"/api/appeals/{appeal_id}/evidence?format=zip", "sec")
    assert code == 200, data
    target = tmp_path / "evidence.zip"
    target.write_bytes(data)
    return target


def redo_manifest(contents: dict[str, bytes], key: ServerKey | None,
                  change: Any = None) -> dict[str, bytes]:
    """The manifest recomputed for `contents` (then `change(manifest)`), and signed by
    `key`, or the old manifest.sig kept when `key` is None."""
    manifest = json.loads(contents["manifest.json"])
    for entry in manifest["files"]:
        data = contents[entry["path"]]
        entry["sha256"], entry["size"] = hashlib.sha256(data).hexdigest(), len(data)
    if change is not None:
        change(manifest)
    raw = json.dumps(manifest, indent=1).encode()
    out = {**contents, "manifest.json": raw}
    if key is not None:
        out["manifest.sig"] = key.sign_manifest(raw)
    return out


def problems_of(contents: dict[str, bytes], tmp_path: Path, key: str) -> list[str]:
    return check_package(rezip(contents, tmp_path / "forged.zip"), key)


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=1).encode()


# -- S1: the trust anchor ------------------------------------------------------------


async def test_s1_genuine_packages_verify_by_fingerprint_and_by_key_file(
        api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await sign_everything(api)
    package = await handover(api, tmp_path)
    current = keyring(api).current()
    pem = tmp_path / "server-key.pem"
    pem.write_text(public_pem(current.public))
    assert check_package(package, current.fingerprint) == []
    assert check_package(package, str(pem)) == []
    assert run(package, current.fingerprint) == 0
    assert "OK, signed by the server key you gave" in capsys.readouterr().out
    evidence_pack = await evidence(api, tmp_path, await file_appeal(api))
    assert check_package(evidence_pack, current.fingerprint) == []
    assert "manifest.sig" in unzip(evidence_pack)


async def test_s1_without_a_key_verify_cannot_vouch(
        api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await sign_everything(api)
    package = await handover(api, tmp_path)
    assert run(package, None) != 0
    captured = capsys.readouterr()
    assert NO_ANCHOR in captured.err and "OK" not in captured.out


async def test_s1a_evidence_grade_changed_and_resigned_with_fresh_keys_is_refused(
        api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await sign_everything(api)
    pack = unzip(await evidence(api, tmp_path, await file_appeal(api)))
    fingerprint = keyring(api).current().fingerprint
    content = json.loads(pack["protocol/protocol.json"])
    assert content["protocol"]["grade"] != "unsatisfactory"
    content["protocol"]["grade"] = "unsatisfactory"
    forged_protocol = json.dumps(content).encode()
    digest = hashlib.sha256(forged_protocol).hexdigest()
    signatures = json.loads(pack["protocol/signatures.json"])
    for entry in signatures:
        said = json.loads(entry["statement"])
        said["hash"] = digest
        entry["statement"] = json.dumps(said, sort_keys=True, separators=(",", ":"))
        key = BrowserKey()
        entry["jwk"], entry["signature"] = key.jwk, key.sign(entry["statement"].encode())
    forged = {**pack, "protocol/protocol.json": forged_protocol,
              "protocol/signatures.json": json_bytes(signatures)}

    def rewrite(manifest: dict[str, Any]) -> None:
        manifest["signed_protocols"]["protocol"]["hash"] = digest

    # The forger redoes the manifest; its server signature no longer matches.
    problems = problems_of(redo_manifest(forged, None, rewrite), tmp_path, fingerprint)
    assert ("manifest.sig: the manifest signature does not verify: manifest.json was changed "
            "after the server signed it") in problems
    assert any("which is not registered to person" in p for p in problems)
    # Even with the fresh keys listed as the signers' keys, the anchor refuses it ...
    def also_keys(manifest: dict[str, Any]) -> None:
        rewrite(manifest)
        manifest["signer_keys"] = {str(e["person_id"]): [load_jwk(e["jwk"]).fingerprint]
                                   for e in signatures}

    everything = rezip(redo_manifest(forged, None, also_keys), tmp_path / "all.zip")
    assert check_package(everything, fingerprint) == [
        "manifest.sig: the manifest signature does not verify: manifest.json was changed "
        "after the server signed it"]
    # ... and without a key nothing is vouched for.
    assert run(everything, None) != 0
    assert NO_ANCHOR in capsys.readouterr().err


async def test_s1b_evidence_with_no_signatures_is_refused(api: Api, tmp_path: Path) -> None:
    await sign_everything(api)
    pack = unzip(await evidence(api, tmp_path, await file_appeal(api)))
    current = keyring(api).current()
    emptied = {**pack, "protocol/signatures.json": b"[]"}
    problems = problems_of(redo_manifest(emptied, None), tmp_path, current.fingerprint)
    assert problems[0].startswith("manifest.sig: the manifest signature does not verify")
    # Even re-signed by the server key itself (only the signatures are wrong):
    problems = problems_of(redo_manifest(emptied, current), tmp_path, current.fingerprint)
    members = json.loads(pack["manifest.json"])["signed_protocols"]["protocol"]["approvers"]
    assert len(members) >= 3
    assert problems == [
        *(f"protocol: no valid approval by member {m}, who approved it when it was signed"
          for m in members),
        f"protocol: no valid signature by the chair (person {api.day.ids['chair']})"]


async def test_s1c_handover_grade_changed_in_the_statement_is_refused(
        api: Api, tmp_path: Path) -> None:
    await sign_everything(api)
    package = unzip(await handover(api, tmp_path))
    current = keyring(api).current()
    s1 = int(api.day.ids["s1"])
    stated = json.loads(package["statement.json"])
    [row] = [g for g in stated["grades"] if g["student"] == s1]
    genuine = row["grade"]
    row["grade"] = "unsatisfactory"
    text = package["statement.csv"].decode("utf-8-sig").replace(
        f",{genuine},", ",unsatisfactory,")
    forged = {**package, "statement.json": json_bytes(stated),
              "statement.csv": text.encode("utf-8-sig")}
    problems = problems_of(redo_manifest(forged, None), tmp_path, current.fingerprint)
    assert problems[0].startswith("manifest.sig: the manifest signature does not verify")
    # The grades are also checked against the signed protocols, key or not:
    problems = problems_of(redo_manifest(forged, current), tmp_path, current.fingerprint)
    assert problems == [
        f"statement.json: student {s1} has grade 'unsatisfactory', but the signed protocol says "
        f"{genuine!r}",
        f"statement.csv: student {s1} has grade 'unsatisfactory', but the signed protocol says "
        f"{genuine!r}"]


async def test_s1_a_manifest_signed_by_another_server_key_is_refused(
        api: Api, tmp_path: Path) -> None:
    await sign_everything(api)
    package = unzip(await handover(api, tmp_path))
    fingerprint = keyring(api).current().fingerprint
    impostor = ServerKeyring(tmp_path / "impostor").current()
    problems = problems_of(redo_manifest(package, impostor), tmp_path, fingerprint)
    assert problems == [f"the manifest is signed by server key {impostor.fingerprint[:16]}…, "
                        f"not by the key you trust ({fingerprint[:16]}…)"]


async def test_s1_a_signature_by_a_key_not_registered_to_that_person_is_refused(
        api: Api, tmp_path: Path) -> None:
    await sign_everything(api)
    package = unzip(await handover(api, tmp_path))
    current = keyring(api).current()
    name = f"protocols/{api.day.ids['s1']}/signatures.json"
    signatures = json.loads(package[name])
    # m1's approval replaced by one from m2's registered key: valid, but not m1's.
    m1, m2 = int(api.day.ids["m1"]), int(api.day.ids["m2"])
    index = next(i for i, e in enumerate(signatures) if e["person_id"] == m1)
    other = next(e for e in signatures if e["person_id"] == m2)
    signatures[index]["jwk"] = other["jwk"]
    signatures[index]["signature"] = api.keys["m2"].sign(
        signatures[index]["statement"].encode())
    forged = redo_manifest({**package, name: json_bytes(signatures)}, current)
    problems = problems_of(forged, tmp_path, current.fingerprint)
    folder = f"protocols/{api.day.ids['s1']}"
    fingerprint = load_jwk(other["jwk"]).fingerprint
    assert problems == [
        f"{name}[{index}] (approve by person {m1}): signed with key {fingerprint[:16]}…, "
        f"which is not registered to person {m1}",
        f"{folder}: no valid approval by member {m1}, who approved it when it was signed"]


async def test_s1_a_missing_member_approval_or_chair_signature_is_refused(
        api: Api, tmp_path: Path) -> None:
    await sign_everything(api)
    package = unzip(await handover(api, tmp_path))
    current = keyring(api).current()
    name = "protocols/day/signatures.json"
    signatures = json.loads(package[name])
    m2 = int(api.day.ids["m2"])
    without_m2 = [e for e in signatures if e["person_id"] != m2]
    problems = problems_of(redo_manifest({**package, name: json_bytes(without_m2)}, current),
                           tmp_path, current.fingerprint)
    assert problems == [
        f"protocols/day: no valid approval by member {m2}, who approved it when it was signed"]
    unsigned = [e for e in signatures if e["action"] != "sign"]
    problems = problems_of(redo_manifest({**package, name: json_bytes(unsigned)}, current),
                           tmp_path, current.fingerprint)
    assert problems == [
        f"protocols/day: no valid signature by the chair (person {api.day.ids['chair']})"]


async def test_s1_key_rotation_old_packages_verify_with_the_old_key(
        api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await sign_everything(api)
    old_package = await handover(api, tmp_path, "old.zip")
    old = keyring(api).current().fingerprint
    assert server_keys(api.app[CONFIG], "rotate") == 0
    new = keyring(api).current().fingerprint
    assert new != old and f"new: {new}" in capsys.readouterr().out
    new_package = await handover(api, tmp_path, "new.zip")
    assert check_package(old_package, old) == []
    assert check_package(new_package, new) == []
    assert check_package(new_package, old)[0].startswith(
        f"the manifest is signed by server key {new[:16]}")
    assert set(keyring(api).known()) == {old, new}
    rotations = (keyring(api).folder / "rotations.jsonl").read_text().splitlines()
    assert json.loads(rotations[-1])["old"] == old
    assert server_keys(api.app[CONFIG], "show") == 0
    shown = capsys.readouterr().out
    assert new in shown and old in shown


async def test_s1_the_pdf_and_the_listing_carry_the_server_key_and_signer_keys(
        api: Api) -> None:
    await sign_everything(api)
    code, listing = await api.call("GET", api.url(), "sec")
    fingerprint = keyring(api).current().fingerprint
    assert code == 200 and listing["server_key"] == fingerprint
    code, pdf = await api.call("GET", api.url(api.day.ids["s1"]) + "?format=pdf", "sec")
    assert code == 200
    text = "".join("".join(page.extract_text() or "" for page in
                           pypdf.PdfReader(io.BytesIO(pdf)).pages).split())
    assert fingerprint in text
    chair_key = load_jwk(api.keys["chair"].jwk).fingerprint
    assert chair_key in text
    assert load_jwk(api.keys["m1"].jwk).fingerprint in text


# -- S14: keys bound to people ----------------------------------------------------------


async def test_s14_a_second_key_signs_only_once_the_secretary_approves_it(api: Api) -> None:
    await close_sitting(api.runner, api.clock, api.day)
    day = api.day.day_id
    first = await api.key_id("m1")
    second_key = BrowserKey()
    code, second = await api.call("POST", f"/api/days/{day}/keys", "m1",
                                  {"jwk": second_key.jwk})
    assert code == 200 and second["approved"] is False and second["key_id"] != first
    which = "day"
    digest = (await api.status(which))["hash"]
    code, given = await api.call(
        "GET", api.url(which, "statement") + f"?action=approve&hash={digest}", "m1")
    body = {"hash": digest, "key_id": second["key_id"], "at": given["at"],
            "signature": second_key.sign(given["statement"].encode())}
    code, refused = await api.call("POST", api.url(which, "approve"), "m1", body)
    assert code == 403 and refused["error"] == "key_pending", refused
    approve = f"/api/days/{day}/keys/{second['key_id']}/approve"
    assert (await api.call("POST", approve, "m1", {}))[0] == 403
    assert (await api.call("POST", approve, "m2", {}))[0] == 403
    code, listed = await api.call("GET", f"/api/days/{day}/keys", "sec")
    assert code == 200 and {k["key_id"]: k["approved"] for k in listed["keys"]}[
        second["key_id"]] is False
    code, approved = await api.call("POST", approve, "sec", {})
    assert code == 200 and approved["approved"] is True
    entries = [e for e in await Journal(api.app[DATABASE]).entries(day)
               if e.kind == "signing_key_approved"]
    assert [(e.person_id, e.detail["key_id"]) for e in entries] == [
        (int(api.day.ids["sec"]), second["key_id"])]
    code, answer = await api.call("POST", api.url(which, "approve"), "m1", body)
    assert code == 200, answer


async def test_s14_the_signed_statement_names_the_person_and_the_time(
        api: Api, tmp_path: Path) -> None:
    await sign_everything(api)
    package = unzip(await handover(api, tmp_path))
    signatures = json.loads(package["protocols/day/signatures.json"])
    for entry in signatures:
        said = json.loads(entry["statement"])
        assert said["person"] == entry["person_id"]
        assert abs(said["at"] - time.time()) < 600
        assert said["purpose"] == "defense-room/v2"


async def test_s14_a_stale_statement_is_refused(api: Api) -> None:
    await close_sitting(api.runner, api.clock, api.day)
    digest = (await api.status("day"))["hash"]
    body = await sign_v2(api, "approve", "day", "m1", digest)
    body["at"] -= 3600
    body["signature"] = api.keys["m1"].sign(statement(
        "approve", api.day.day_id, "day", digest, int(api.day.ids["m1"]), body["at"]))
    code, refused = await api.call("POST", api.url("day", "approve"), "m1", body)
    assert code == 409 and refused["error"] == "stale_statement", refused


# -- S2: only the appealing student's material ------------------------------------------


async def test_s2_the_evidence_pack_holds_only_the_appealing_students_material(
        api: Api, tmp_path: Path) -> None:
    await sign_everything(api)
    s1, s2 = api.day.ids["s1"], api.day.ids["s2"]
    folder = day_folder(api.app[CONFIG].recordings_dir, api.day.day_id)
    for check, student in (("c1", s1), ("c2", s2)):
        (folder / "identity" / check).mkdir(parents=True)
        (folder / "identity" / check / "check.json").write_text(
            json.dumps({"student": student, "verdict": "match"}))
    for student in (s1, s2):
        (folder / "archive" / f"student-{student}").mkdir(parents=True)
        (folder / "archive" / f"student-{student}" / "timeline.json").write_text("{}")
    names = set(unzip(await evidence(api, tmp_path, await file_appeal(api))))
    assert "recordings/identity/c1/check.json" in names
    assert f"recordings/archive/student-{s1}/timeline.json" in names
    assert "recordings/identity/c2/check.json" not in names
    assert not any(f"student-{s2}" in n for n in names)
    assert not any(n.startswith("recordings/take-") for n in names)  # no sidecars: no times


# -- S17: the evidence endpoint --------------------------------------------------------


async def test_s17_a_bad_format_is_refused_before_anything_is_journaled(api: Api) -> None:
    appeal_id = await file_appeal(api)
    journal = Journal(api.app[DATABASE])

    async def accesses() -> int:
        return len([e for e in await journal.entries(api.day.day_id)
                    if e.kind == "evidence_accessed"])

    for query in ("format=" + "X" * 6000, "format=zip&x=1"):
        code, refused = await api.call("GET", f"/api/appeals/{appeal_id}/evidence?{query}",
                                       "sec")
        assert code == 400, refused
    assert await accesses() == 0
    code, _ = await api.call("GET", f"/api/appeals/{appeal_id}/evidence", "sec")
    assert code == 200 and await accesses() == 1


# -- S15: CSV cells ---------------------------------------------------------------------


def test_s15_csv_cells_are_neutralised_against_formulas() -> None:
    for hostile in ("=HYPERLINK(\"http://x\")", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(hostile) == "'" + hostile
    assert csv_cell("Иванов") == "Иванов" and csv_cell(None) == "" and csv_cell(5) == "5"
    data = csv_bytes([["name"], ["=1+1"]]).decode("utf-8-sig")
    assert data.splitlines() == ["name", "'=1+1"]
