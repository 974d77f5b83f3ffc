"""The hand-over package of a defense day (rule R3; K, clause 7.17).

At the end of the day the statement (the grades of the group) and every signed
protocol go to the registrar and to the archive: as PDF and as machine-readable
JSON (and CSV for the statement), each protocol with the signatures of the members
who approved it and of the chair, in one ZIP with a manifest of SHA-256 hashes
signed by the server key (`defense-room verify --key` checks it). The statement's
grades are read from the signed student protocols, so their signatures cover them,
and the server's manifest signature covers the statement itself (`verify` also
cross-checks its grades against the protocols); a result annulled on appeal is
marked so. CSV cells are neutralised against spreadsheet formulas.

A day is handed over only when every protocol is signed. Building blocks (PDF,
hashing, zipping): call `build_package` in a thread-friendly way (it offloads).
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass
from typing import Any

from storage.appeals import AppealStore
from storage.db import Database

from .approvals import ProtocolStore, SignedProtocol
from .drafts import DAY
from .errors import PaperworkError
from .evidence import EvidencePack, PackFile, csv_bytes, signatures, signed_summary, write_zip
from .render import Heading, Table, Text, blocks_to_pdf
from .server_key import ServerKey

FORMAT = "defense-room-handover/1"
GRADES_RU = {"excellent": "отлично", "good": "хорошо", "satisfactory": "удовлетворительно",
             "unsatisfactory": "неудовлетворительно"}


class NotReady(PaperworkError):
    """Something is not signed yet; the message says what."""

    code = "not_signed"
    status_hint = 409


@dataclass(frozen=True, slots=True)
class StatementRow:
    student_id: int
    name: str
    thesis: str
    grade: str | None
    annulled: bool


async def not_ready(db: Database, day_id: int) -> str | None:
    """Why the day cannot be handed over yet (a protocol not signed), or None: cheap,
    for a page that asks before building anything."""
    signed = await ProtocolStore(db).signed(day_id)
    return _unsigned(signed)


def _unsigned(signed: dict[str, SignedProtocol]) -> str | None:
    if DAY not in signed:
        return "the day's protocol is not signed yet"
    day = json.loads(signed[DAY].content_json)["protocol"]
    unsigned = [str(s["student"]["person_id"]) for s in day["students"]
                if str(s["student"]["person_id"]) not in signed]
    if unsigned:
        return f"the protocols of students {', '.join(unsigned)} are not signed yet"
    return None


async def build_package(db: Database, day_id: int) -> EvidencePack:
    store = ProtocolStore(db)
    signed = await store.signed(day_id)
    reason = _unsigned(signed)
    if reason is not None:
        raise NotReady(reason)
    day = json.loads(signed[DAY].content_json)["protocol"]
    annulled = await AppealStore(db).annulled(day_id)
    rows = []
    files: list[PackFile] = []
    for which, protocol in sorted(signed.items()):
        folder = f"protocols/{which}"
        files += [PackFile(f"{folder}/protocol.json", protocol.content_json.encode()),
                  PackFile(f"{folder}/protocol.pdf", protocol.pdf),
                  PackFile(f"{folder}/signatures.json", json.dumps(
                      await signatures(db, day_id, which, protocol), indent=1).encode())]
        if which == DAY:
            continue
        content = json.loads(protocol.content_json)["protocol"]
        info = content.get("info") or {}
        rows.append(StatementRow(int(which), content["student"]["name"],
                                 info.get("thesis_title", ""), content.get("grade"),
                                 int(which) in annulled))
    sitting = day["sitting"]
    statement = {"format": FORMAT, "day_id": day_id, "title": sitting["title"],
                 "date": sitting["date"],
                 "grades": [{"student": r.student_id, "name": r.name, "thesis": r.thesis,
                             "grade": r.grade, "annulled": r.annulled} for r in rows]}
    table: list[list[object]] = [["student", "name", "thesis", "grade", "annulled"]]
    table += [[r.student_id, r.name, r.thesis, r.grade or "", "yes" if r.annulled else ""]
              for r in rows]
    pdf = await asyncio.to_thread(_statement_pdf, sitting, rows)
    files += [PackFile("statement.json", json.dumps(statement, ensure_ascii=False,
                                                     indent=1).encode()),
              PackFile("statement.csv", csv_bytes(table)),
              PackFile("statement.pdf", pdf)]
    summary = {"format": FORMAT, "day_id": day_id, "title": sitting["title"],
               "date": sitting["date"],
               **await signed_summary(db, {f"protocols/{w}": p for w, p in signed.items()})}
    return EvidencePack(tuple(files), summary)


def _statement_pdf(sitting: dict[str, Any], rows: list[StatementRow]) -> bytes:
    return blocks_to_pdf([
        Heading("Ведомость результатов защиты ВКР", 1),
        Text(f"{sitting['title']}, {sitting['date']}"),
        Table(("Обучающийся", "Тема ВКР", "Оценка"),
              tuple((r.name, r.thesis, "аннулирована (апелляция)" if r.annulled
                     else GRADES_RU.get(r.grade or "", "—")) for r in rows), (3, 5, 2)),
        Text("Оценки взяты из протоколов, подписанных электронными подписями членов ГЭК "
             "и председателя (см. protocols/*/signatures.json)."),
    ], "Ведомость")


def zip_bytes(pack: EvidencePack, key: ServerKey) -> tuple[bytes, dict[str, Any]]:
    """The package as ZIP bytes and its manifest, signed by `key` (blocking)."""
    buffer = io.BytesIO()
    listed = write_zip(pack, buffer, key)
    return buffer.getvalue(), listed
