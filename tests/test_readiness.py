"""Tests for server.readiness: rule B1 on a roster built in memory."""

from __future__ import annotations

import dataclasses
import datetime
import zoneinfo

from orchestrator.documents import ALWAYS_REQUIRED, DocumentKind
from server.readiness import format_table, readiness_report
from storage.invites import DefenseDay
from storage.roster import DayRoster, Document, RosterStudent

DAY = datetime.date(2026, 6, 15)


def at(day: int, hour: int = 12, minute: int = 0, tz: str = "Europe/Moscow") -> float:
    return datetime.datetime(2026, 6, day, hour, minute,
                             tzinfo=zoneinfo.ZoneInfo(tz)).timestamp()


NOW = at(15, 9)


def student(documents: dict[DocumentKind, float], consent_at: float | None = at(1),
            person_id: int = 7) -> RosterStudent:
    return RosterStudent(
        person_id=person_id, day_id=1, name="Иванов Иван Петрович", thesis_title="Тема",
        supervisor="Лебедев", reviewer="Орлова", timezone="Asia/Vladivostok",
        consent_at=consent_at, queue_position=1,
        documents=tuple(Document(kind, t) for kind, t in documents.items()))


def roster(*students: RosterStudent, tz: str = "Europe/Moscow",
           norm: bool = False) -> DayRoster:
    day = DefenseDay(1, "Защиты", DAY, at(15, 10), tz, at(1))
    return DayRoster(day, norm, students)


def all_docs(when: float) -> dict[DocumentKind, float]:
    return {kind: when for kind in ALWAYS_REQUIRED}


def test_everything_on_time_can_defend() -> None:
    (s,) = readiness_report(roster(student(all_docs(at(10)))), NOW).students
    assert s.can_defend and s.missing == () and s.late == () and s.reasons == ()


def test_missing_document_blocks_and_is_named() -> None:
    docs = all_docs(at(10))
    del docs[DocumentKind.PLAGIARISM_REPORT]
    (s,) = readiness_report(roster(student(docs)), NOW).students
    assert s.missing == (DocumentKind.PLAGIARISM_REPORT,)
    assert not s.can_defend
    assert s.reasons == ("missing: plagiarism report",)


def test_norm_control_required_only_when_flagged() -> None:
    docs = all_docs(at(10))
    assert readiness_report(roster(student(docs)), NOW).students[0].can_defend
    s = readiness_report(roster(student(docs), norm=True), NOW).students[0]
    assert s.missing == (DocumentKind.NORM_CONTROL,)


def test_one_day_before_is_late_two_calendar_days_before_is_on_time() -> None:
    docs = all_docs(at(10))
    docs[DocumentKind.REVIEWER_REVIEW] = at(14, 0, 0)  # 1 day before, first minute
    docs[DocumentKind.THESIS] = at(13, 23, 59)  # 2 calendar days before, last minute
    (s,) = readiness_report(roster(student(docs)), NOW).students
    assert s.late == (DocumentKind.REVIEWER_REVIEW,)
    assert s.can_defend  # late is reported, not a refusal
    assert s.warnings == ("uploaded less than 2 calendar days before: reviewer's review",)


def test_calendar_days_are_counted_in_the_days_time_zone() -> None:
    # 13 June 22:30 in Moscow is already 14 June in Vladivostok (UTC+10).
    upload = at(13, 22, 30)
    docs = all_docs(at(10)) | {DocumentKind.THESIS: upload}
    moscow = readiness_report(roster(student(docs)), NOW).students[0]
    vladivostok = readiness_report(roster(student(docs), tz="Asia/Vladivostok"), NOW).students[0]
    assert moscow.late == ()
    assert vladivostok.late == (DocumentKind.THESIS,)


def test_no_consent_cannot_defend() -> None:
    (s,) = readiness_report(roster(student(all_docs(at(10)), consent_at=None)), NOW).students
    assert not s.consent_on_file and not s.can_defend
    assert s.reasons == ("no consent to personal-data processing on file",)


def test_late_consent_is_a_warning() -> None:
    (s,) = readiness_report(roster(student(all_docs(at(10)), consent_at=at(14))), NOW).students
    assert s.consent_on_file and s.consent_late and s.can_defend


def test_nothing_after_now_counts() -> None:
    early_now = at(9)
    (s,) = readiness_report(roster(student(all_docs(at(10)))), early_now).students
    assert set(s.missing) == set(ALWAYS_REQUIRED)


def test_earliest_upload_decides() -> None:
    s = student(all_docs(at(10)))
    s = dataclasses.replace(s, documents=(*s.documents, Document(DocumentKind.THESIS, at(14))))
    assert readiness_report(roster(s), NOW).students[0].late == ()


def test_table_and_json() -> None:
    report = readiness_report(roster(student(all_docs(at(10)), consent_at=None)), NOW)
    table = format_table(report)
    assert "Иванов Иван Петрович" in table and "0 of 1 students can defend." in table
    data = report.to_json()
    assert data["students"][0]["can_defend"] is False
    assert data["required"][0] == "thesis"
