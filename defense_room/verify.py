"""`defense-room verify PACKAGE`: check an evidence pack or a hand-over package.

A package is a ZIP with `manifest.json` listing every other file with its size
and SHA-256. Every file is hashed again and compared; a file missing, added or
changed is named. Signatures listed in `protocol/signatures.json` (or in each
`protocols/*/signatures.json`) are verified against their statements and keys,
and each statement must name the hash of the protocol next to it. Prints one line
per problem and a summary; exit status 0 only if nothing is wrong.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from protocols.signing import SigningError, load_jwk, verify


def check_package(path: Path) -> list[str]:
    """Problems found in the package at `path`; empty if it verifies."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"{path}: not a readable ZIP package ({exc})"]
    with archive:
        names = set(archive.namelist())
        if "manifest.json" not in names:
            return [f"{path}: no manifest.json"]
        try:
            listed: dict[str, Any] = json.loads(archive.read("manifest.json"))
            files = {f["path"]: f for f in listed["files"]}
        except (ValueError, KeyError, TypeError) as exc:
            return [f"manifest.json is unreadable: {exc}"]
        problems = []
        for name in sorted(files):
            if name not in names:
                problems.append(f"{name}: listed in the manifest but missing")
                continue
            data = archive.read(name)
            if hashlib.sha256(data).hexdigest() != files[name]["sha256"]:
                problems.append(f"{name}: altered (its SHA-256 differs from the manifest)")
            elif len(data) != files[name]["size"]:
                problems.append(f"{name}: altered (its size differs from the manifest)")
        for name in sorted(names - set(files) - {"manifest.json"}):
            problems.append(f"{name}: not listed in the manifest")
        for name in sorted(n for n in names if PurePosixPath(n).name == "signatures.json"):
            problems += _check_signatures(archive, name)
        return problems


def _check_signatures(archive: zipfile.ZipFile, name: str) -> list[str]:
    folder = PurePosixPath(name).parent
    try:
        entries = json.loads(archive.read(name))
        protocol_hash = hashlib.sha256(archive.read(str(folder / "protocol.json"))).hexdigest()
    except (KeyError, ValueError) as exc:
        return [f"{name}: unreadable ({exc})"]
    problems = []
    for index, entry in enumerate(entries):
        where = f"{name}[{index}] ({entry.get('action')} by person {entry.get('person_id')})"
        try:
            signed = json.loads(entry["statement"])
            if signed.get("hash") != protocol_hash:
                problems.append(f"{where}: signs another version of {folder}/protocol.json")
                continue
            verify(load_jwk(entry["jwk"]), entry["signature"], entry["statement"].encode())
        except (SigningError, KeyError, TypeError, ValueError) as exc:
            problems.append(f"{where}: signature invalid: {exc}")
    return problems


def run(path: Path) -> int:
    problems = check_package(path)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{path}: FAILED, {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{path}: OK, every file and signature verifies")
    return 0
