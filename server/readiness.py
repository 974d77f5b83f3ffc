"""Is each student of a day ready to defend? (rule B1, clause 6.6; rule B2)

Pure: it takes the roster and `now` and reads neither the clock nor the
database. B1 wants consent and documents "at least 2 calendar days before"
the defense. Calendar days are counted in the day's time zone: for a defense on
the 15th, anything on file before midnight starting the 14th (local) is on
time, so the 13th at 23:59 is on time and the 14th at 00:00 is late.

A student with no consent on file, or with a required document missing, cannot
defend (`can_defend` False, with the reasons); late documents and a late consent
are reported but do not on their own stop the defense: that is for the
commission to weigh.
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass
from typing import Any

from orchestrator.documents import B1_DAYS_BEFORE, DocumentKind, b1_deadline, required_documents
from storage.roster import DayRoster, RosterStudent

DAYS_BEFORE = B1_DAYS_BEFORE
"""B1: calendar days before the defense by which everything must be on file."""

_LABELS = {
    DocumentKind.THESIS: "thesis",
    DocumentKind.PLAGIARISM_REPORT: "plagiarism report",
    DocumentKind.SUPERVISOR_REVIEW: "supervisor's review",
    DocumentKind.REVIEWER_REVIEW: "reviewer's review",
    DocumentKind.PRESENTATION_PDF: "presentation (PDF)",
    DocumentKind.NORM_CONTROL: "norm-control sheet",
}


@dataclass(frozen=True, slots=True)
class StudentReadiness:
    """What one student has on file, what is missing or late, and the verdict."""

    person_id: int
    name: str
    queue_position: int
    missing: tuple[DocumentKind, ...]
    late: tuple[DocumentKind, ...]
    consent_on_file: bool
    consent_late: bool
    can_defend: bool
    reasons: tuple[str, ...]  # why not, when can_defend is False
    warnings: tuple[str, ...]  # late items; they do not stop the defense


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    """The readiness of every student of a day, in queue order."""

    day_id: int
    title: str
    date: datetime.date
    timezone: str
    deadline: float  # unix time; on file before it means on time
    required: tuple[DocumentKind, ...]
    students: tuple[StudentReadiness, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (document kinds as their string values)."""
        return {
            "day_id": self.day_id,
            "title": self.title,
            "date": self.date.isoformat(),
            "timezone": self.timezone,
            "deadline": self.deadline,
            "required": [kind.value for kind in self.required],
            "students": [
                {
                    "person_id": s.person_id,
                    "name": s.name,
                    "queue_position": s.queue_position,
                    "missing": [kind.value for kind in s.missing],
                    "late": [kind.value for kind in s.late],
                    "consent_on_file": s.consent_on_file,
                    "consent_late": s.consent_late,
                    "can_defend": s.can_defend,
                    "reasons": list(s.reasons),
                    "warnings": list(s.warnings),
                }
                for s in self.students
            ],
        }


def deadline_for(date: datetime.date, timezone: str) -> float:
    """Unix time from which an upload counts as late for a defense on `date`."""
    return b1_deadline(date, timezone)


def readiness_report(roster: DayRoster, now: float) -> ReadinessReport:
    """The readiness of every student as of `now`; nothing after `now` counts."""
    day = roster.day
    deadline = deadline_for(day.date, day.timezone)
    required = required_documents(roster.norm_control_required)
    return ReadinessReport(
        day_id=day.day_id,
        title=day.title,
        date=day.date,
        timezone=day.timezone,
        deadline=deadline,
        required=required,
        students=tuple(_student(s, required, deadline, now) for s in roster.students),
    )


def _student(
    student: RosterStudent, required: tuple[DocumentKind, ...], deadline: float, now: float
) -> StudentReadiness:
    # The earliest upload of each kind decides: a corrected copy uploaded later
    # does not make a document that was on file in time late.
    first: dict[DocumentKind, float] = {}
    for document in student.documents:
        if document.uploaded_at <= now:
            first[document.kind] = min(first.get(document.kind, document.uploaded_at),
                                       document.uploaded_at)
    missing = tuple(kind for kind in required if kind not in first)
    late = tuple(kind for kind in required if kind in first and first[kind] >= deadline)
    consent_on_file = student.consent_at is not None and student.consent_at <= now
    consent_late = consent_on_file and student.consent_at is not None and (
        student.consent_at >= deadline)
    reasons: list[str] = []
    if not consent_on_file:
        reasons.append("no consent to personal-data processing on file")
    if missing:
        reasons.append("missing: " + ", ".join(_LABELS[kind] for kind in missing))
    warnings: list[str] = []
    if consent_late:
        warnings.append(f"consent given less than {DAYS_BEFORE} calendar days before")
    if late:
        warnings.append(f"uploaded less than {DAYS_BEFORE} calendar days before: "
                        + ", ".join(_LABELS[kind] for kind in late))
    return StudentReadiness(
        person_id=student.person_id,
        name=student.name,
        queue_position=student.queue_position,
        missing=missing,
        late=late,
        consent_on_file=consent_on_file,
        consent_late=consent_late,
        can_defend=not reasons,
        reasons=tuple(reasons),
        warnings=tuple(warnings),
    )


def format_table(report: ReadinessReport) -> str:
    """A plain-text table for the terminal, one line per student."""
    deadline = datetime.datetime.fromtimestamp(
        report.deadline, tz=zoneinfo.ZoneInfo(report.timezone))
    lines = [
        f"Day {report.day_id}: {report.title}, {report.date.isoformat()} ({report.timezone})",
        f"Due before {deadline:%Y-%m-%d %H:%M} local time. Required: "
        + ", ".join(_LABELS[kind] for kind in report.required),
        "",
        f"{'#':>2}  {'student':<32} {'consent':<8} {'missing':<8} {'late':<5} defend",
    ]
    for s in report.students:
        consent = "late" if s.consent_late else ("yes" if s.consent_on_file else "NO")
        lines.append(f"{s.queue_position:>2}  {s.name:<32} {consent:<8} {len(s.missing):<8}"
                     f" {len(s.late):<5} {'yes' if s.can_defend else 'NO'}")
        for note in (*s.reasons, *s.warnings):
            lines.append(f"{'':<4}- {note}")
    ready = sum(s.can_defend for s in report.students)
    lines.append("")
    lines.append(f"{ready} of {len(report.students)} students can defend.")
    return "\n".join(lines)
