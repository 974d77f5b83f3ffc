"""The defense day file: a YAML description of one sitting and its students.

The secretary writes one file per defense day (see `examples/defense-day.yaml`)
and imports it with ``defense-room day import``. Students are listed in the
YAML itself under ``students``, or in a CSV file named by ``students_csv``
(relative to the YAML file; see `examples/students.csv`), one row per student:

    name,thesis_title,supervisor,reviewer,timezone,consent,consent_date,thesis,...

``name``, ``thesis_title``, ``supervisor`` and ``reviewer`` are required
columns; ``timezone`` (default: the day's), ``consent``, ``consent_date``,
``extra_time_percent`` (empty: none) and one column per document kind (its upload
date; empty means not on file) are optional.

Who gets an invite link (rule P1): the commission, the students, every supervisor
and reviewer named for a student (one link per name, however many students they
have; none for a name already on the commission), and the observers, a list of
names under the day-level key ``observers``. The CSV holds only students, so
observers are listed in the YAML file in both forms.

``extra_time_percent`` (clause 4.3, from 0 to 100, default 0) lengthens a student's
talk, questions and whole defense by that percent.

E-mail (optional, `server.mail`): the day-level key ``contacts`` maps a person's name
(anyone invited with the day) to ``{email: ..., language: ru|en}``; a student's may
also be given with the student, as the keys ``email`` and ``language`` (the CSV's
optional columns of those names). ``language`` defaults to ``ru``; an address must be
a plain one like ``name@university.example``.

Parsing is strict: an unknown key or column, a missing value or a malformed one
raises `DayFileError` naming the file, the key or row, and the value. Names and
titles are one line of at most 200 characters (a thesis title 1000) and hold no
control or invisible characters (`storage.clean_text`: no NUL, no bidirectional
overrides, no zero-width characters). Dates
without a time mean midnight in the day's time zone; times without an offset are
in the day's time zone too. The order of the students is the initial queue.
"""

from __future__ import annotations

import csv
import datetime
import math
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from orchestrator.documents import DocumentKind
from storage.clean_text import NAME_CHARS, TITLE_CHARS, text_problem
from storage.dayspec import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    MAX_EXTRA_TIME_PERCENT,
    CommissionSpec,
    ContactSpec,
    DaySpec,
    DocumentSpec,
    StudentSpec,
    email_problem,
)

from .errors import ServerError

_DAY_KEYS = {
    "title", "date", "start", "timezone", "norm_control_required", "commission", "students",
    "students_csv", "observers", "contacts",
}
_COMMISSION_KEYS = {"chair", "members", "secretary"}
_STUDENT_KEYS = {
    "name", "thesis_title", "supervisor", "reviewer", "timezone", "consent", "consent_date",
    "documents", "extra_time_percent", "email", "language",
}
_DOCUMENT_KEYS = {"kind", "date"}
_CSV_REQUIRED = ("name", "thesis_title", "supervisor", "reviewer")
_CSV_OPTIONAL = ("timezone", "consent", "consent_date", "extra_time_percent", "email",
                 "language")
_CONTACT_KEYS = {"email", "language"}
_TRUE = {"true", "yes", "1", "да"}
_FALSE = {"false", "no", "0", "нет", ""}


class DayFileError(ServerError):
    """The day file (or its students CSV) is unreadable or has an invalid value."""

    code = "invalid_day"
    status_hint = 422


def load_day_file(path: Path) -> DaySpec:
    """Read and validate a defense day YAML file; raises DayFileError."""
    try:
        data = yaml.load(_read(path), Loader=_Loader)
    except yaml.YAMLError as exc:
        raise DayFileError(f"{path}: not valid YAML: {exc}") from exc
    return parse_day(data, path)


def parse_day(data: object, source: Path | str = "request body", *,
              students: tuple[StudentSpec, ...] | None = None) -> DaySpec:
    """Validate a day given as a mapping (a parsed YAML file or a JSON body).

    `source` names it in error messages; a relative `students_csv` is read from
    its folder, so a body (a str source) must list its students inline. `students`,
    when given, are the day's students already parsed (an uploaded CSV), and the
    mapping's own ``students`` list is ignored.
    """
    path = Path(source) if isinstance(source, str) else source
    if not isinstance(data, Mapping):
        raise DayFileError(f"{path}: the day must be a mapping of keys, got {data!r}")
    where = _Where(path)
    where.check_keys(data, _DAY_KEYS, "")
    timezone = where.zone(where.require(data, "timezone", ""), "timezone")
    tz = zoneinfo.ZoneInfo(timezone)
    norm = data.get("norm_control_required", False)
    if not isinstance(norm, bool):
        raise where.error("norm_control_required", norm, "must be true or false")
    commission = _commission(where, data.get("commission"))
    if ("students" in data) == ("students_csv" in data):
        raise DayFileError(f"{path}: give the students either under 'students' or as a"
                           " CSV file under 'students_csv', exactly one of the two")
    if students is not None:
        pass
    elif "students" in data:
        raw = data["students"]
        if not isinstance(raw, list) or not raw:
            raise where.error("students", raw, "must be a non-empty list")
        students = tuple(
            _yaml_student(where, item, f"students[{index}]", timezone, tz)
            for index, item in enumerate(raw)
        )
    else:
        csv_name = where.text(data, "students_csv", "")
        if isinstance(source, str):
            raise where.error("students_csv", csv_name, "is only for day files; list the"
                              " students under 'students'")
        students = load_students_csv(path.parent / csv_name, timezone)
    names = [s.name for s in students]
    for name in names:
        if names.count(name) > 1:
            raise DayFileError(f"{path}: student {name!r} is listed more than once")
    observers = _observers(where, data.get("observers", []), commission, students)
    contacts = _contacts(where, data.get("contacts", {}), commission, students, observers)
    return DaySpec(
        title=where.text(data, "title", ""),
        date=where.date(where.require(data, "date", ""), "date"),
        start=_start(where, where.require(data, "start", "")),
        timezone=timezone,
        norm_control_required=norm,
        commission=commission,
        students=students,
        observers=observers,
        contacts=contacts,
    )


def load_students_csv(path: Path, day_timezone: str) -> tuple[StudentSpec, ...]:
    """Read the students of a day from a CSV file with a header row."""
    return parse_students_csv(_read(path), path, day_timezone)


def parse_day_upload(day_text: str, csv_text: str | None) -> DaySpec:
    """A day file uploaded as text, with its students CSV as text beside it or not.

    An upload may not name a file on the server (``students_csv``); errors name the
    "day file" and "students.csv", never a server path.
    """
    try:
        data = yaml.load(day_text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise DayFileError(f"day file: not valid YAML: {exc}") from None
    except RecursionError:
        raise DayFileError("day file: nested too deeply") from None
    if isinstance(data, Mapping) and "students_csv" in data:
        raise DayFileError(
            "day file: 'students_csv' names a file on the server, which an uploaded day"
            " file may not do; remove the line and upload the students CSV beside the day"
            " file, or list the students under 'students'")
    if csv_text is None or not isinstance(data, Mapping):
        return parse_day(data, "day file")
    if "students" in data:
        raise DayFileError("day file: it lists 'students' and a students CSV came with it;"
                           " give the students in one of the two")
    timezone = data.get("timezone")
    if not isinstance(timezone, str):
        return parse_day(data, "day file")  # says what is wrong with the zone
    where = _Where(Path("day file"))
    students = parse_students_csv(csv_text, Path("students.csv"), where.zone(timezone, "timezone"))
    return parse_day({**data, "students": []}, "day file", students=students)


def parse_students_csv(text: str, path: Path, day_timezone: str) -> tuple[StudentSpec, ...]:
    """The students of a day from CSV text with a header row; `path` names it in errors."""
    tz = zoneinfo.ZoneInfo(day_timezone)
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    known = {*_CSV_REQUIRED, *_CSV_OPTIONAL, *(kind.value for kind in DocumentKind)}
    for column in header:
        if column not in known:
            raise DayFileError(f"{path}: unknown column {column!r} in the header")
    for column in _CSV_REQUIRED:
        if column not in header:
            raise DayFileError(f"{path}: the header lacks the required column {column!r}")
    students: list[StudentSpec] = []
    for row in reader:
        # Row numbers as a spreadsheet shows them: the header is row 1.
        where = _Where(path, row=reader.line_num)
        if None in row:
            raise DayFileError(f"{path}: row {reader.line_num} has more cells than the header")
        cells = {key: (value or "").strip() for key, value in row.items()}
        consent_cell = cells.get("consent", "").lower()
        if consent_cell not in _TRUE | _FALSE:
            raise where.error("consent", cells["consent"], "must be yes or no")
        fields: dict[str, Any] = {k: v for k, v in cells.items() if v}
        fields["consent"] = consent_cell in _TRUE
        documents = [
            {"kind": kind.value, "date": cells[kind.value]}
            for kind in DocumentKind if cells.get(kind.value)
        ]
        for kind in DocumentKind:
            fields.pop(kind.value, None)
        fields["documents"] = documents
        students.append(_yaml_student(where, fields, "", day_timezone, tz))
    if not students:
        raise DayFileError(f"{path}: no students below the header")
    return tuple(students)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DayFileError(f"{path}: the file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DayFileError(f"{path}: cannot read the file: {exc}") from exc


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text, so a bad one is reported by key."""


_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda loader, node: loader.construct_scalar(node),  # type: ignore[arg-type]
)


class _Where:
    """Builds error messages that name the file and the key (or CSV row)."""

    def __init__(self, path: Path, row: int | None = None) -> None:
        self.path = path
        self.row = row

    def error(self, key: str, value: object, problem: str) -> DayFileError:
        if self.row is None:
            return DayFileError(f"{self.path}: '{key}' {problem}, got {value!r}")
        column = key.rsplit(".", 1)[-1].split("[")[0]
        return DayFileError(f"{self.path}: row {self.row}, column '{column}' {problem},"
                            f" got {value!r}")

    def check_keys(self, data: Mapping[Any, Any], known: set[str], prefix: str) -> None:
        for key in data:
            if key not in known:
                raise self.error(prefix + str(key), data[key],
                                 f"is not a known key (known: {', '.join(sorted(known))})")

    def require(self, data: Mapping[Any, Any], key: str, prefix: str) -> object:
        if key not in data or data[key] is None:
            if self.row is None:
                raise DayFileError(f"{self.path}: the key '{prefix}{key}' is missing")
            raise DayFileError(f"{self.path}: row {self.row}, column '{key}' is empty")
        return data[key]

    def text(self, data: Mapping[Any, Any], key: str, prefix: str,
             max_chars: int = NAME_CHARS) -> str:
        value = self.require(data, key, prefix)
        if not isinstance(value, str) or not value.strip():
            raise self.error(prefix + key, value, "must be a non-empty text")
        return self.clean(value.strip(), prefix + key, max_chars)

    def clean(self, value: str, key: str, max_chars: int = NAME_CHARS) -> str:
        """`value` unless it is too long or holds a character no name or title may."""
        problem = text_problem(value, max_chars=max_chars)
        if problem is None:
            return value
        shown = value if len(value) <= 60 else value[:60] + "…"
        if self.row is None:
            raise DayFileError(f"{self.path}: '{key}' {problem}, got {shown!r}")
        column = key.rsplit(".", 1)[-1].split("[")[0]
        raise DayFileError(f"{self.path}: row {self.row}, column '{column}' {problem},"
                           f" got {shown!r}")

    def zone(self, value: object, key: str) -> str:
        if isinstance(value, str) and value.strip():
            try:
                zoneinfo.ZoneInfo(value.strip())
                return value.strip()
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                pass
        raise self.error(key, value, "must be an IANA time zone such as 'Europe/Moscow'")

    def date(self, value: object, key: str) -> datetime.date:
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            return value
        if isinstance(value, str):
            try:
                return datetime.date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise self.error(key, value, "must be a date like 2026-06-15")

    def moment(self, value: object, key: str, tz: zoneinfo.ZoneInfo) -> datetime.datetime:
        """A date (midnight) or a date and time; naive ones are in the day's zone."""
        if isinstance(value, str):
            try:
                value = datetime.datetime.fromisoformat(value.strip())
            except ValueError:
                raise self.error(key, value, "must be a date like 2026-06-10 or a date"
                                 " and time like 2026-06-10 14:30") from None
        if isinstance(value, datetime.datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=tz)
        if isinstance(value, datetime.date):
            return datetime.datetime.combine(value, datetime.time(0), tzinfo=tz)
        raise self.error(key, value, "must be a date like 2026-06-10 or a date and time"
                         " like 2026-06-10 14:30")


def _start(where: _Where, value: object) -> datetime.time:
    if isinstance(value, str):
        try:
            return datetime.time.fromisoformat(value.strip())
        except ValueError:
            pass
    # YAML 1.1 reads an unquoted 10:00 as the number 600, hence the hint.
    raise where.error("start", value, 'must be a time in quotes, like "10:00"')


def _commission(where: _Where, data: object) -> CommissionSpec:
    if not isinstance(data, Mapping):
        raise where.error("commission", data, "must be a mapping with chair, members, secretary")
    where.check_keys(data, _COMMISSION_KEYS, "commission.")
    members = data.get("members")
    if not isinstance(members, list) or not members:
        raise where.error("commission.members", members, "must be a non-empty list of names")
    for index, member in enumerate(members):
        if not isinstance(member, str) or not member.strip():
            raise where.error(f"commission.members[{index}]", member, "must be a non-empty name")
    return CommissionSpec(
        chair=where.text(data, "chair", "commission."),
        members=tuple(where.clean(m.strip(), f"commission.members[{index}]")
                      for index, m in enumerate(members)),
        secretary=where.text(data, "secretary", "commission."),
    )


def _observers(where: _Where, data: object, commission: CommissionSpec,
               students: tuple[StudentSpec, ...]) -> tuple[str, ...]:
    if not isinstance(data, list):
        raise where.error("observers", data, "must be a list of names")
    # An observer who already has a link (or is listed twice) is most likely a slip.
    others = {commission.chair, commission.secretary, *commission.members,
              *(s.name for s in students), *(s.supervisor for s in students),
              *(s.reviewer for s in students)}
    observers: list[str] = []
    for index, name in enumerate(data):
        key = f"observers[{index}]"
        if not isinstance(name, str) or not name.strip():
            raise where.error(key, name, "must be a non-empty name")
        where.clean(name.strip(), key)
        if name.strip() in others or name.strip() in observers:
            raise where.error(key, name, "names someone already invited to the day; one"
                              " person gets one link")
        observers.append(name.strip())
    return tuple(observers)


def _contact(where: _Where, data: Mapping[Any, Any], prefix: str, whose: str
             ) -> ContactSpec:
    """The ``email`` and ``language`` keys of `data` (a contact, or a student)."""
    email = data.get("email")
    if email is not None:
        problem = (email_problem(email.strip()) if isinstance(email, str)
                   else "is not an e-mail address like name@university.example")
        if problem is not None:
            raise where.error(f"{prefix}email", email, f"(of {whose}) {problem}")
        email = email.strip()
    language = data.get("language", DEFAULT_LANGUAGE)
    if isinstance(language, str):
        language = language.strip().lower() or DEFAULT_LANGUAGE
    if language not in LANGUAGES:
        raise where.error(f"{prefix}language", language,
                          f"(of {whose}) must be one of {', '.join(LANGUAGES)}")
    return ContactSpec(email, str(language))


def _contacts(where: _Where, data: object, commission: CommissionSpec,
              students: tuple[StudentSpec, ...], observers: tuple[str, ...]
              ) -> tuple[tuple[str, ContactSpec], ...]:
    if not isinstance(data, Mapping):
        raise where.error("contacts", data, "must be a mapping of names to"
                          " {email: ..., language: ru|en}")
    invited = {commission.chair, commission.secretary, *commission.members,
               *(s.name for s in students), *(s.supervisor for s in students),
               *(s.reviewer for s in students), *observers}
    own = {s.name for s in students if s.contact is not None}
    contacts: list[tuple[str, ContactSpec]] = []
    for name, item in data.items():
        key = f"contacts.{name}"
        if not isinstance(name, str) or name.strip() not in invited:
            raise where.error("contacts", name, "names someone not invited to the day (use"
                              " the name exactly as the commission, students, supervisors,"
                              " reviewers or observers list it)")
        if name.strip() in own:
            raise where.error(key, item, "repeats the e-mail given with the student")
        if not isinstance(item, Mapping):
            raise where.error(key, item, "must be a mapping with email and language")
        where.check_keys(item, _CONTACT_KEYS, key + ".")
        contacts.append((name.strip(), _contact(where, item, key + ".", repr(name.strip()))))
    return tuple(contacts)


def _percent(where: _Where, value: object, key: str) -> float:
    if where.row is not None and isinstance(value, str):  # a CSV cell is text
        try:
            value = float(value.replace(",", "."))
        except ValueError:
            pass
    if (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0 <= value <= MAX_EXTRA_TIME_PERCENT):
        return float(value)
    raise where.error(key, value, f"must be a number from 0 to {MAX_EXTRA_TIME_PERCENT:g}"
                      " (percent of extra time, clause 4.3)")


def _yaml_student(
    where: _Where, data: object, prefix: str, day_timezone: str, tz: zoneinfo.ZoneInfo
) -> StudentSpec:
    if not isinstance(data, Mapping):
        raise where.error(prefix, data, "must be a mapping of keys")
    dot = f"{prefix}." if prefix else ""
    where.check_keys(data, _STUDENT_KEYS, dot)
    consent = data.get("consent", False)
    if not isinstance(consent, bool):
        raise where.error(f"{dot}consent", consent, "must be true or false")
    consent_at: datetime.datetime | None = None
    if consent:
        if data.get("consent_date") is None:
            raise where.error(f"{dot}consent_date", None,
                              "is required when consent is true (when it was given)")
        consent_at = where.moment(data["consent_date"], f"{dot}consent_date", tz)
    elif data.get("consent_date") is not None:
        raise where.error(f"{dot}consent_date", data["consent_date"],
                          "is given but consent is false; set consent to true")
    raw_documents = data.get("documents", [])
    if not isinstance(raw_documents, list):
        raise where.error(f"{dot}documents", raw_documents, "must be a list")
    documents: list[DocumentSpec] = []
    allowed = ", ".join(kind.value for kind in DocumentKind)
    for index, item in enumerate(raw_documents):
        key = f"{dot}documents[{index}]"
        if not isinstance(item, Mapping):
            raise where.error(key, item, "must be a mapping with kind and date")
        where.check_keys(item, _DOCUMENT_KEYS, key + ".")
        kind_value = where.require(item, "kind", key + ".")
        if kind_value not in {kind.value for kind in DocumentKind}:
            # Named by the kind's column in a CSV, by its key in YAML.
            raise where.error(f"{key}.kind", kind_value, f"must be one of {allowed}")
        kind = DocumentKind(str(kind_value))
        if any(doc.kind is kind for doc in documents):
            raise where.error(f"{key}.kind", kind_value, "is listed twice for this student")
        date_key = kind.value if where.row is not None else f"{key}.date"
        documents.append(DocumentSpec(
            kind, where.moment(where.require(item, "date", key + "."), date_key, tz)))
    timezone = data.get("timezone", day_timezone)
    name = where.text(data, "name", dot)
    contact = (_contact(where, data, dot, repr(name))
               if "email" in data or "language" in data else None)
    return StudentSpec(
        name=name,
        thesis_title=where.text(data, "thesis_title", dot, TITLE_CHARS),
        supervisor=where.text(data, "supervisor", dot),
        reviewer=where.text(data, "reviewer", dot),
        timezone=where.zone(timezone, f"{dot}timezone"),
        consent_at=consent_at,
        documents=tuple(documents),
        extra_time_percent=_percent(where, data.get("extra_time_percent", 0),
                                    f"{dot}extra_time_percent"),
        contact=contact,
    )
