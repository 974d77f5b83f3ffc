"""Appeals as stored (section 8): one row per appeal, each step journaled on the day
of the defense appealed, in the same transaction as the row it changes.

The rules (deadlines, who may do what) are in `orchestrator.appeals`; the
service that applies them is `server.appeal_service`. An upheld decision
annuls the student's result: the journal entry "result_annulled" is that fact.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from orchestrator.appeals import Decision

from .db import Database
from .errors import NotFoundError, StorageError
from .journal import append_event, encode_detail

class DayKind(enum.StrEnum):
    """What a defense day is (the ``kind`` column of ``defense_days``)."""

    DEFENSE = "defense"
    #: The appeal commission's sitting on an appeal (clause 8.6).
    APPEAL = "appeal"
    #: A defense repeated after an upheld appeal (clause 8.8).
    REPEAT = "repeat"


@dataclass(frozen=True, slots=True)
class Appeal:
    appeal_id: int
    day_id: int
    student_id: int
    text: str
    filed_by: int
    on_paper: bool
    filed_at: float
    deadline: float
    conclusion: str | None
    conclusion_at: float | None
    sitting_day_id: int | None
    sitting_at: float | None
    decision: Decision | None
    reasoning: str | None
    decided_at: float | None
    delivery_at: float | None
    repeat_day_id: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "appeal_id": self.appeal_id, "day_id": self.day_id, "student": self.student_id,
            "text": self.text, "filed_by": self.filed_by, "on_paper": self.on_paper,
            "filed_at": self.filed_at, "deadline": self.deadline,
            "conclusion": self.conclusion, "conclusion_at": self.conclusion_at,
            "sitting_day_id": self.sitting_day_id, "sitting_at": self.sitting_at,
            "decision": None if self.decision is None else self.decision.value,
            "reasoning": self.reasoning,
            "decided_at": self.decided_at, "delivery_at": self.delivery_at,
            "repeat_day_id": self.repeat_day_id,
        }


class AppealError(StorageError):
    """An appeal step that the stored state refuses (e.g. filed twice)."""

    code = "forbidden"
    status_hint = 409


def _appeal(row: dict[str, Any]) -> Appeal:
    return Appeal(
        appeal_id=row["id"], day_id=row["day_id"], student_id=row["student_id"],
        text=row["text"], filed_by=row["filed_by"], on_paper=bool(row["on_paper"]),
        filed_at=row["filed_at"], deadline=row["deadline"], conclusion=row["conclusion"],
        conclusion_at=row["conclusion_at"], sitting_day_id=row["sitting_day_id"],
        sitting_at=row["sitting_at"],
        decision=None if row["decision"] is None else Decision(row["decision"]), reasoning=row["reasoning"],
        decided_at=row["decided_at"], delivery_at=row["delivery_at"],
        repeat_day_id=row["repeat_day_id"])


def _get(db: sqlite_utils.Database, appeal_id: int) -> Appeal:
    rows = list(db.query("SELECT * FROM appeals WHERE id = ?", [appeal_id]))
    if not rows:
        raise NotFoundError(f"no appeal {appeal_id}")
    return _appeal(rows[0])


def _journal(db: sqlite_utils.Database, day_id: int, person_id: int | None, kind: str,
             detail: dict[str, Any], at: float) -> None:
    append_event(db, at=at, day_id=day_id, person_id=person_id, kind=kind,
                 detail_json=encode_detail(detail))


class AppealStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def day_kind(self, day_id: int) -> tuple[DayKind, int | None]:
        rows = await self._db.query("SELECT kind, appeal_id FROM defense_days WHERE id = ?",
                                    [day_id])
        if not rows:
            raise NotFoundError(f"no defense day {day_id}")
        return DayKind(rows[0]["kind"]), rows[0]["appeal_id"]

    async def mark_day(self, day_id: int, kind: DayKind, appeal_id: int) -> None:
        await self._db.execute_write(lambda db: db.execute(
            "UPDATE defense_days SET kind = ?, appeal_id = ? WHERE id = ?",
            [kind, appeal_id, day_id]))

    async def get(self, appeal_id: int) -> Appeal:
        return await self._db.execute_read(lambda db: _get(db, appeal_id))

    async def for_day(self, day_id: int) -> list[Appeal]:
        rows = await self._db.query("SELECT * FROM appeals WHERE day_id = ? ORDER BY id",
                                    [day_id])
        return [_appeal(r) for r in rows]

    async def file(self, *, day_id: int, student_id: int, text: str, filed_by: int,
                   on_paper: bool, deadline: float, now: float) -> Appeal:
        def write(db: sqlite_utils.Database) -> Appeal:
            if db.execute("SELECT 1 FROM appeals WHERE day_id = ? AND student_id = ?",
                          [day_id, student_id]).fetchone():
                raise AppealError("an appeal against this defense has already been filed")
            cursor = db.execute(
                "INSERT INTO appeals (day_id, student_id, text, filed_by, on_paper, filed_at,"
                " deadline) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [day_id, student_id, text, filed_by, int(on_paper), now, deadline])
            appeal_id = int(cursor.lastrowid or 0)
            _journal(db, day_id, filed_by, "appeal_filed",
                     {"appeal": appeal_id, "student": student_id, "text": text,
                      "on_paper": on_paper, "deadline": deadline}, now)
            return _get(db, appeal_id)

        return await self._db.execute_write(write)

    async def conclude(self, appeal_id: int, text: str, by: int, now: float) -> Appeal:
        def write(db: sqlite_utils.Database) -> Appeal:
            appeal = _get(db, appeal_id)
            if appeal.decision is not None:
                raise AppealError("the appeal has been decided")
            db.execute("UPDATE appeals SET conclusion = ?, conclusion_at = ? WHERE id = ?",
                       [text, now, appeal_id])
            _journal(db, appeal.day_id, by, "appeal_conclusion",
                     {"appeal": appeal_id, "text": text}, now)
            return _get(db, appeal_id)

        return await self._db.execute_write(write)

    async def schedule(self, appeal_id: int, sitting_day_id: int, sitting_at: float,
                       by: int, now: float) -> Appeal:
        def write(db: sqlite_utils.Database) -> Appeal:
            appeal = _get(db, appeal_id)
            if appeal.sitting_day_id is not None:
                raise AppealError(f"the sitting is already scheduled (day {appeal.sitting_day_id})")
            db.execute(
                "UPDATE defense_days SET kind = ?, appeal_id = ? WHERE id = ?",
                [DayKind.APPEAL, appeal_id, sitting_day_id])
            db.execute("UPDATE appeals SET sitting_day_id = ?, sitting_at = ? WHERE id = ?",
                       [sitting_day_id, sitting_at, appeal_id])
            _journal(db, appeal.day_id, by, "appeal_scheduled",
                     {"appeal": appeal_id, "sitting_day": sitting_day_id,
                      "sitting_at": sitting_at}, now)
            return _get(db, appeal_id)

        return await self._db.execute_write(write)

    async def decide(self, appeal_id: int, decision: Decision, reasoning: str, decided_at: float,
                     delivery_at: float) -> Appeal:
        """Record the decision of the appeal sitting; again with the same is a no-op."""

        def write(db: sqlite_utils.Database) -> Appeal:
            appeal = _get(db, appeal_id)
            if appeal.decision is not None:
                return appeal
            db.execute("UPDATE appeals SET decision = ?, reasoning = ?, decided_at = ?,"
                       " delivery_at = ? WHERE id = ?",
                       [decision.value, reasoning, decided_at, delivery_at, appeal_id])
            _journal(db, appeal.day_id, None, "appeal_decided",
                     {"appeal": appeal_id, "decision": decision.value, "reasoning": reasoning,
                      "delivery_at": delivery_at}, decided_at)
            if decision is Decision.UPHELD:
                _journal(db, appeal.day_id, None, "result_annulled",
                         {"appeal": appeal_id, "student": appeal.student_id}, decided_at)
            return _get(db, appeal_id)

        return await self._db.execute_write(write)

    async def set_repeat(self, appeal_id: int, repeat_day_id: int, by: int,
                         now: float) -> Appeal:
        def write(db: sqlite_utils.Database) -> Appeal:
            appeal = _get(db, appeal_id)
            if appeal.decision is not Decision.UPHELD:
                raise AppealError("a defense is repeated only after an upheld appeal")
            if appeal.repeat_day_id is not None:
                raise AppealError(f"the repeat is already scheduled (day {appeal.repeat_day_id})")
            db.execute("UPDATE defense_days SET kind = ?, appeal_id = ? WHERE id = ?",
                       [DayKind.REPEAT, appeal_id, repeat_day_id])
            db.execute("UPDATE appeals SET repeat_day_id = ? WHERE id = ?",
                       [repeat_day_id, appeal_id])
            _journal(db, appeal.day_id, by, "repeat_scheduled",
                     {"appeal": appeal_id, "repeat_day": repeat_day_id}, now)
            return _get(db, appeal_id)

        return await self._db.execute_write(write)

    async def annulled(self, day_id: int) -> set[int]:
        """Students of `day_id` whose result an upheld appeal annulled."""
        rows = await self._db.query(
            "SELECT student_id FROM appeals WHERE day_id = ? AND decision = 'upheld'", [day_id])
        return {int(r["student_id"]) for r in rows}
