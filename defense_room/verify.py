"""`defense-room verify PACKAGE --key FINGERPRINT|FILE`: check an evidence pack or a
hand-over package against the server key that made it.

A package is a ZIP with `manifest.json` (every other file with its size and SHA-256,
each signed protocol's approvers and chair, the signing keys registered to each of
them) and `manifest.sig`, the server key's Ed25519 signature of the manifest
(`protocols.server_key`). The trust anchor is that key, named by the fingerprint
printed on every protocol PDF or given as its public-key PEM file. Checked:

- the manifest signature, by the trusted key;
- every file against the manifest (missing, added, changed);
- each signed protocol: every approver listed approved and the chair signed, each
  signature by a key registered to that person, over a statement naming the right
  action, day, document, content hash and person;
- the grade statement (statement.json and statement.csv) against the signed protocols.

Without `--key` the checks still run, but nothing proves who made the package: it
says so and exits non-zero. Exit status 0 only for a package that verifies against
the key given.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from protocols.server_key import (
    ServerKeyError,
    check_manifest_signature,
    fingerprint,
    load_public_pem,
)
from protocols.signing import SigningError, load_jwk, verify

MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
NO_ANCHOR = ("files are consistent but nothing proves who made this package; give --key "
             "with the server key's fingerprint (printed on every protocol) or its public "
             "key file")


def check_package(path: Path, key: str | None = None) -> list[str]:
    """Problems found in the package at `path`; empty if it verifies. `key` is the
    trusted server key (fingerprint or PEM file); None checks everything else."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"{path}: not a readable ZIP package ({exc})"]
    with archive:
        names = set(archive.namelist())
        if MANIFEST not in names:
            return [f"{path}: no {MANIFEST}"]
        raw = archive.read(MANIFEST)
        try:
            listed: dict[str, Any] = json.loads(raw)
            files = {f["path"]: f for f in listed["files"]}
        except (ValueError, KeyError, TypeError) as exc:
            return [f"{MANIFEST} is unreadable: {exc}"]
        problems = []
        if key is not None:
            problems += _check_anchor(archive, names, raw, key)
        for name in sorted(files):
            if name not in names:
                problems.append(f"{name}: listed in the manifest but missing")
                continue
            data = archive.read(name)
            if hashlib.sha256(data).hexdigest() != files[name]["sha256"]:
                problems.append(f"{name}: altered (its SHA-256 differs from the manifest)")
            elif len(data) != files[name]["size"]:
                problems.append(f"{name}: altered (its size differs from the manifest)")
        for name in sorted(names - set(files) - {MANIFEST, SIGNATURE}):
            problems.append(f"{name}: not listed in the manifest")
        problems += _check_protocols(archive, names, listed)
        if "statement.json" in names or "statement.csv" in names:
            problems += _check_statement(archive, names, listed)
        return problems


def _check_anchor(archive: zipfile.ZipFile, names: set[str], manifest: bytes,
                  key: str) -> list[str]:
    if SIGNATURE not in names:
        return [f"no {SIGNATURE}: the server did not sign this package"]
    signature = archive.read(SIGNATURE)
    try:
        given = Path(key)
        if given.is_file():
            public = load_public_pem(given.read_bytes())
            trusted = {fingerprint(public): public}
        else:
            wanted = key.strip().lower().replace(":", "")
            if not _FINGERPRINT.fullmatch(wanted):
                return [f"--key {key[:80]!r} is neither a public key file nor a SHA-256 "
                        "fingerprint (64 hex digits)"]
            carried = load_public_pem(str(json.loads(signature)["public_key"]).encode())
            trusted = {wanted: carried} if fingerprint(carried) == wanted else {}
            if not trusted:
                return [f"the manifest is signed by server key {fingerprint(carried)[:16]}…, "
                        f"not by the key you trust ({wanted[:16]}…)"]
        check_manifest_signature(signature, manifest, trusted)
    except (ServerKeyError, OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{SIGNATURE}: {exc}"]
    return []


def _check_protocols(archive: zipfile.ZipFile, names: set[str],
                     manifest: dict[str, Any]) -> list[str]:
    """Every signed protocol the manifest lists is approved by all its approvers and
    signed by its chair, each with a key registered to them."""
    listed: dict[str, Any] = manifest.get("signed_protocols") or {}
    keys: dict[str, list[str]] = manifest.get("signer_keys") or {}
    problems = []
    state = (manifest.get("protocol") or {}).get("status")
    if state == "signed" and "protocol" not in listed:
        problems.append("the manifest says the protocol is signed but lists no signers")
    folders_with_signatures = {str(PurePosixPath(n).parent) for n in names
                               if PurePosixPath(n).name == "signatures.json"}
    for folder in sorted(folders_with_signatures - set(listed)):
        problems.append(f"{folder}/signatures.json: signatures of a protocol the manifest "
                        "does not list as signed")
    for folder, entry in sorted(listed.items()):
        problems += _check_one(archive, names, folder, entry, keys, manifest.get("day_id"))
    return problems


def _check_one(archive: zipfile.ZipFile, names: set[str], folder: str, entry: dict[str, Any],
               keys: dict[str, list[str]], day_id: object) -> list[str]:
    name = f"{folder}/signatures.json"
    if f"{folder}/protocol.json" not in names or name not in names:
        return [f"{folder}: the signed protocol or its signatures.json is missing"]
    protocol_hash = hashlib.sha256(archive.read(f"{folder}/protocol.json")).hexdigest()
    if protocol_hash != entry.get("hash"):
        return [f"{folder}/protocol.json: not the protocol that was signed (its hash differs "
                "from the one the server recorded)"]
    try:
        entries = json.loads(archive.read(name))
        if not isinstance(entries, list):
            raise ValueError("not a list")
    except ValueError as exc:
        return [f"{name}: unreadable ({exc})"]
    problems = []
    valid: set[tuple[str, int]] = set()
    for index, item in enumerate(entries):
        where = f"{name}[{index}]"
        try:
            action, person = str(item["action"]), int(item["person_id"])
            where = f"{name}[{index}] ({action} by person {person})"
            signed = json.loads(item["statement"])
            expected = {"action": action, "day": day_id, "document": str(entry.get("which")),
                        "hash": protocol_hash}
            wrong = [k for k, v in expected.items() if signed.get(k) != v]
            if "person" in signed and signed["person"] != person:
                wrong.append("person")
            if wrong:
                problems.append(f"{where}: the statement signed names another "
                                f"{' and '.join(wrong)}")
                continue
            public = load_jwk(item["jwk"])
            if public.fingerprint not in keys.get(str(person), []):
                problems.append(f"{where}: signed with key {public.fingerprint[:16]}…, which "
                                f"is not registered to person {person}")
                continue
            verify(public, item["signature"], item["statement"].encode())
            valid.add((action, person))
        except (SigningError, KeyError, TypeError, ValueError) as exc:
            problems.append(f"{where}: signature invalid: {exc}")
    for person in entry.get("approvers") or []:
        if ("approve", int(person)) not in valid:
            problems.append(f"{folder}: no valid approval by member {person}, who approved it "
                            "when it was signed")
    chair = entry.get("chair")
    if chair is None or ("sign", int(chair)) not in valid:
        problems.append(f"{folder}: no valid signature by the chair (person {chair})")
    return problems


def _check_statement(archive: zipfile.ZipFile, names: set[str],
                     manifest: dict[str, Any]) -> list[str]:
    """The grade statement must say what the signed student protocols say."""
    signed: dict[str, Any] = manifest.get("signed_protocols") or {}
    grades: dict[int, object] = {}
    for folder in signed:
        if f"{folder}/protocol.json" not in names:
            continue
        try:
            content = json.loads(archive.read(f"{folder}/protocol.json"))["protocol"]
        except (ValueError, KeyError, TypeError):
            continue
        student = content.get("student") if isinstance(content, dict) else None
        if isinstance(student, dict) and "person_id" in student:
            grades[int(student["person_id"])] = content.get("grade")
    problems = []
    try:
        stated = json.loads(archive.read("statement.json"))
        rows = {int(g["student"]): g.get("grade") for g in stated["grades"]}
        if stated.get("day_id") != manifest.get("day_id"):
            problems.append("statement.json: names another day than the package")
    except (KeyError, ValueError, TypeError) as exc:
        return [f"statement.json: unreadable or missing ({exc})"]
    problems += _compare("statement.json", rows, grades)
    try:
        text = archive.read("statement.csv").decode("utf-8-sig")
        table = list(csv.DictReader(io.StringIO(text)))
        csv_rows = {int(r["student"]): (r["grade"] or None) for r in table}
    except (KeyError, ValueError, TypeError) as exc:
        return problems + [f"statement.csv: unreadable or missing ({exc})"]
    return problems + _compare("statement.csv", csv_rows, grades)


def _compare(name: str, rows: dict[int, object], grades: dict[int, object]) -> list[str]:
    problems = []
    for student in sorted(set(rows) | set(grades)):
        if student not in grades:
            problems.append(f"{name}: student {student} has no signed protocol in the package")
        elif student not in rows:
            problems.append(f"{name}: student {student} is missing")
        elif rows[student] != grades[student]:
            problems.append(f"{name}: student {student} has grade {rows[student]!r}, but the "
                            f"signed protocol says {grades[student]!r}")
    return problems


def run(path: Path, key: str | None = None) -> int:
    """Print each problem and a verdict; 0 only for a package that verifies against `key`."""
    problems = check_package(path, key)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{path}: FAILED, {len(problems)} problem(s)", file=sys.stderr)
        return 1
    if key is None:
        print(f"{path}: NOT VERIFIED: {NO_ANCHOR}", file=sys.stderr)
        return 3
    print(f"{path}: OK, signed by the server key you gave; every file, signature and "
          "grade verifies")
    return 0
