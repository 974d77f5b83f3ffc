"""The documents a student files before the defense (rules B1, B2; clauses 6.6, 7.3)."""

from __future__ import annotations

import datetime
import enum

from .workdays import end_of, start_of


class DocumentKind(enum.StrEnum):
    """A document on file for a student's defense."""

    THESIS = "thesis"
    PLAGIARISM_REPORT = "plagiarism_report"
    SUPERVISOR_REVIEW = "supervisor_review"
    REVIEWER_REVIEW = "reviewer_review"
    PRESENTATION_PDF = "presentation_pdf"
    NORM_CONTROL = "norm_control"
    #: The document that proves a valid reason for absence (clause 7.9).
    ABSENCE_PROOF = "absence_proof"


#: Required of every student (B1, B2). The norm-control sheet is required only
#: where the defense day says so (B1: "if any").
ALWAYS_REQUIRED = (
    DocumentKind.THESIS,
    DocumentKind.PLAGIARISM_REPORT,
    DocumentKind.SUPERVISOR_REVIEW,
    DocumentKind.REVIEWER_REVIEW,
    DocumentKind.PRESENTATION_PDF,
)


#: Without these a defense does not start, unless the chair waives them with a
#: reason (B2: the presentation is mandatory; the members must have the thesis).
NEEDED_TO_DEFEND = (DocumentKind.THESIS, DocumentKind.PRESENTATION_PDF)


def required_documents(norm_control_required: bool) -> tuple[DocumentKind, ...]:
    """The documents a student must file, in the order reports list them."""
    if norm_control_required:
        return (*ALWAYS_REQUIRED, DocumentKind.NORM_CONTROL)
    return ALWAYS_REQUIRED


class StudentUploadsClose(enum.StrEnum):
    """When a student stops replacing their own documents (finding S4): after that
    only the secretary changes them, giving a reason."""

    #: When the student's defense starts (or the defense day ends, if it never does).
    DEFENSE_START = "defense_start"
    #: At the B1 deadline, two calendar days before the defense day.
    B1_DEADLINE = "b1_deadline"


#: B1: calendar days before the defense by which everything must be on file.
B1_DAYS_BEFORE = 2


def b1_deadline(date: datetime.date, timezone: str) -> float:
    """Unix time from which a document counts as late for a defense on `date` (B1):
    the start (local midnight) of the day before it."""
    return start_of(date - datetime.timedelta(days=B1_DAYS_BEFORE - 1), timezone)


def student_uploads_closed(
    *, now: float, date: datetime.date, timezone: str, defense_started: bool,
    close: StudentUploadsClose,
) -> str | None:
    """Why a student's own uploads are closed at `now` (a clause to start a sentence
    with), or None while they are open.

    Whatever `close` says, uploads close once the student's defense has started (what
    they defended must stay what is on file) and once the defense day is over.
    """
    if defense_started:
        return "the student's defense has started"
    if now >= end_of(date, timezone):
        return f"the defense day {date.isoformat()} is over"
    if close is StudentUploadsClose.B1_DEADLINE and now >= b1_deadline(date, timezone):
        return (f"documents for the defense on {date.isoformat()} were due"
                f" {B1_DAYS_BEFORE} calendar days before it (rule B1)")
    return None
