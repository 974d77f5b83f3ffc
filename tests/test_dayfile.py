"""Tests for server.dayfile: the example files and clear errors."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml

from orchestrator.documents import DocumentKind
from orchestrator.model import Role
from server.dayfile import DayFileError, load_day_file, parse_day

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

GOOD = """\
title: Защиты
date: 2026-06-15
start: "10:00"
timezone: Europe/Moscow
commission: {chair: Соколов А. В., members: [Кузнецова Е. С.], secretary: Новикова М. А.}
students:
  - {name: Иванов И. П., thesis_title: Тема, supervisor: Лебедев П. И., reviewer: Орлова Н. В.}
"""


def test_yaml_example_parses() -> None:
    spec = load_day_file(EXAMPLES / "defense-day.yaml")
    assert spec.date == datetime.date(2026, 6, 15)
    assert spec.start == datetime.time(10, 0)
    assert spec.norm_control_required
    assert spec.commission.chair == "Соколов Андрей Викторович"
    assert len(spec.commission.members) == 3
    assert [s.name for s in spec.students][0] == "Иванов Иван Петрович"
    second = spec.students[1]
    assert second.timezone == "Asia/Yekaterinburg"
    review = next(d for d in second.documents if d.kind is DocumentKind.REVIEWER_REVIEW)
    assert review.uploaded_at.isoformat() == "2026-06-14T09:30:00+03:00"
    assert spec.students[2].consent_at is None
    moscow_10 = datetime.datetime(2026, 6, 15, 7, 0, tzinfo=datetime.UTC).timestamp()
    assert spec.starts_at == moscow_10
    assert [s.extra_time_percent for s in spec.students] == [0, 0, 50]
    assert spec.observers == ("Гусева Ирина Львовна",)
    # Two students share a supervisor and a reviewer: one link each (rule P1).
    assert spec.guests() == (
        (Role.SUPERVISOR, "Лебедев Павел Игоревич"), (Role.SUPERVISOR, "Зайцев Игорь Олегович"),
        (Role.REVIEWER, "Орлова Наталья Викторовна"), (Role.REVIEWER, "Белова Татьяна Андреевна"),
        (Role.OBSERVER, "Гусева Ирина Львовна"))


def test_a_day_file_without_the_new_keys_stays_valid() -> None:
    spec = parse_day(yaml.safe_load(GOOD))
    assert spec.observers == () and spec.students[0].extra_time_percent == 0
    assert spec.guests() == ((Role.SUPERVISOR, "Лебедев П. И."), (Role.REVIEWER, "Орлова Н. В."))


def test_one_link_per_person_and_none_for_the_commission() -> None:
    data = yaml.safe_load(GOOD)
    data["students"] = [
        {"name": "А", "thesis_title": "Т", "supervisor": "Кузнецова Е. С.", "reviewer": "Р"},
        {"name": "Б", "thesis_title": "Т", "supervisor": "Р", "reviewer": "С"},
        {"name": "В", "thesis_title": "Т", "supervisor": "С", "reviewer": "Р"},
    ]
    data["observers"] = ["Гость"]
    # A member supervising gets no second link; Р supervises and reviews: one link.
    assert parse_day(data).guests() == (
        (Role.SUPERVISOR, "Р"), (Role.SUPERVISOR, "С"), (Role.OBSERVER, "Гость"))


def test_csv_example_gives_the_same_day() -> None:
    assert load_day_file(EXAMPLES / "defense-day-csv.yaml") == load_day_file(
        EXAMPLES / "defense-day.yaml")


def write(tmp_path: Path, text: str, name: str = "day.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "expected"), [
    (GOOD.replace("Europe/Moscow", "Europe/Mosco"), "'timezone'.*'Europe/Mosco'"),
    (GOOD.replace("2026-06-15", "2026-06-31"), "'date'.*'2026-06-31'"),
    (GOOD.replace('"10:00"', "10:00"), "'start'.*600"),
    (GOOD.replace("thesis_title: Тема", "thesis_tilte: Тема"), r"'students\[0\].thesis_tilte'"),
    (GOOD.replace("thesis_title: Тема, ", ""), r"'students\[0\].thesis_title' is missing"),
    (GOOD.replace("reviewer: Орлова Н. В.}",
                  "reviewer: Орлова Н. В., documents: [{kind: thesis2, date: 2026-06-01}]}"),
     r"'students\[0\].documents\[0\].kind'.*'thesis2'"),
    (GOOD.replace("reviewer: Орлова Н. В.}", "reviewer: Орлова Н. В., consent: true}"),
     r"'students\[0\].consent_date' is required"),
    (GOOD.replace("members: [Кузнецова Е. С.]", "members: []"), "'commission.members'"),
    (GOOD + "observers: Гость\n", "'observers' must be a list of names.*'Гость'"),
    (GOOD + "observers: [Гость, Гость]\n", r"'observers\[1\]'.*already invited.*'Гость'"),
    (GOOD + "observers: [Лебедев П. И.]\n", r"'observers\[0\]'.*already invited"),
    (GOOD.replace("reviewer: Орлова Н. В.}", "reviewer: Орлова Н. В., extra_time_percent: 150}"),
     r"'students\[0\].extra_time_percent' must be a number from 0 to 100.*150"),
    (GOOD.replace("reviewer: Орлова Н. В.}", "reviewer: Орлова Н. В., extra_time_percent: '10'}"),
     r"'students\[0\].extra_time_percent'.*'10'"),
])
def test_bad_yaml_names_file_key_and_value(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DayFileError, match=expected) as info:
        load_day_file(path)
    assert str(path) in str(info.value)


def csv_day(tmp_path: Path, rows: str) -> Path:
    day = GOOD.split("students:")[0] + "students_csv: s.csv\n"
    write(tmp_path, rows, "s.csv")
    return write(tmp_path, day)


HEADER = "name,thesis_title,supervisor,reviewer,consent,consent_date,thesis\n"


@pytest.mark.parametrize(("rows", "expected"), [
    (HEADER + "А,Т,С,Р,yes,2026-06-01,2026-06-02\nБ,Т,С,Р,maybe,,\n",
     "row 3, column 'consent'.*'maybe'"),
    (HEADER + "А,Т,С,Р,no,,2026-06-40\n", "row 2, column 'thesis'.*'2026-06-40'"),
    (HEADER + "А,,С,Р,no,,\n", "row 2, column 'thesis_title' is empty"),
    (HEADER.replace("thesis\n", "thesis,grade\n") + "А,Т,С,Р,no,,,5\n", "unknown column 'grade'"),
    ("name,supervisor,reviewer\nА,С,Р\n", "required column 'thesis_title'"),
    (HEADER.replace("thesis\n", "thesis,extra_time_percent\n") + "А,Т,С,Р,no,,,много\n",
     "row 2, column 'extra_time_percent' must be a number.*'много'"),
])
def test_bad_csv_names_file_row_and_value(tmp_path: Path, rows: str, expected: str) -> None:
    with pytest.raises(DayFileError, match=expected) as info:
        load_day_file(csv_day(tmp_path, rows))
    assert str(tmp_path / "s.csv") in str(info.value)


def test_csv_extra_time_accepts_a_decimal_comma(tmp_path: Path) -> None:
    rows = (HEADER.replace("thesis\n", "thesis,extra_time_percent\n")
            + 'А,Т,С,Р,no,,,"12,5"\nБ,Т,С,Р,no,,,\n')
    spec = load_day_file(csv_day(tmp_path, rows))
    assert [s.extra_time_percent for s in spec.students] == [12.5, 0]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DayFileError, match="does not exist"):
        load_day_file(tmp_path / "nope.yaml")
