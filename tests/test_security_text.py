"""Issue 14, S7 and S15 (the edge): names and texts refuse lone surrogates, control
characters, bidirectional controls and other invisible characters, and have length
caps, on every path a name or a text comes in by: the JSON field readers (actions,
PATCH student, people, appeals), `POST /api/days`, the day file's YAML and CSV, and,
behind them, the day spec and the roster.

The real app on a real SQLite file; the day file from real files under tmp_path.
"""

from __future__ import annotations

import dataclasses
import time
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.model import Role
from server.config import ApiConfig
from server.dayfile import DayFileError, load_day_file
from server.procedure import Unjournalable
from storage.clean_text import (
    LONG_TEXT_CHARS,
    NAME_CHARS,
    TITLE_CHARS,
    TextRefused,
    check_text,
    text_problem,
)
from storage.db import Database
from storage.invites import hash_token
from storage.roster import CreatedDay, RosterStore, StudentSpec
from web_ui.app import create_app
from web_ui.body import text, texts
from web_ui.errors import refusals
from web_ui.keys import DATABASE

from .conftest import make_config
from .procedure_helpers import TZ, day_spec

NOW = time.time()
ORGANIZER = "organizer-token-for-the-text-tests"

#: One of each kind refused in any text, with what the refusal calls it.
HOSTILE = {
    "\x00": "U+0000",  # NUL: cuts C strings short
    "\x1b": "U+001B",  # ESC: terminal escapes in a log or a CSV viewer
    "\r": "U+000D",
    "\x85": "U+0085",  # NEL, a C1 control
    "\u202e": "U+202E (RIGHT-TO-LEFT OVERRIDE)",
    "\u202a": "U+202A (LEFT-TO-RIGHT EMBEDDING)",
    "\u2066": "U+2066 (LEFT-TO-RIGHT ISOLATE)",
    "\u2069": "U+2069 (POP DIRECTIONAL ISOLATE)",
    "\u200b": "U+200B (ZERO WIDTH SPACE)",
    "\u200d": "U+200D (ZERO WIDTH JOINER)",
    "\u200f": "U+200F (RIGHT-TO-LEFT MARK)",
    "\u061c": "U+061C (ARABIC LETTER MARK)",
    "\ufeff": "U+FEFF (ZERO WIDTH NO-BREAK SPACE)",
    "\u00ad": "U+00AD (SOFT HYPHEN)",
    "\u2028": "U+2028 (LINE SEPARATOR)",
    "\ud800": "U+D800",
}


@pytest.mark.parametrize("char", list(HOSTILE), ids=[f"U+{ord(c):04X}" for c in HOSTILE])
@pytest.mark.parametrize("multiline", [False, True])
def test_s15_every_hostile_character_is_refused_and_named(char: str, multiline: bool) -> None:
    problem = text_problem(f"Иванов{char} Иван", max_chars=NAME_CHARS, multiline=multiline)
    assert problem is not None
    assert HOSTILE[char] in problem and "at character 7" in problem


def test_s15_line_breaks_only_where_a_text_spans_lines() -> None:
    for char in "\n\t":
        assert text_problem(f"a{char}b", max_chars=NAME_CHARS, multiline=True) is None
        assert "one-line text" in (text_problem(f"a{char}b", max_chars=NAME_CHARS) or "")
    # Names of every script stay: letters, combining marks, no-break and thin spaces.
    for name in ("Иванов Иван", "Zoë O\u2019Brien", "José\u0301", "山田 太郎", "محمد علي",
                 "Nguyễn\u00a0Văn", "A\u2009B", "😀 smile"):
        assert text_problem(name, max_chars=NAME_CHARS) is None, name


def test_s15_length_caps() -> None:
    assert text_problem("я" * NAME_CHARS, max_chars=NAME_CHARS) is None
    assert text_problem("я" * (NAME_CHARS + 1), max_chars=NAME_CHARS) == (
        f"has {NAME_CHARS + 1} characters; at most {NAME_CHARS} are accepted")
    with pytest.raises(TextRefused, match="the name has 201 characters"):
        check_text("x" * 201, "the name", max_chars=NAME_CHARS)


_REFUSED = {"Cc", "Cf", "Cs", "Zl", "Zp"}


@given(st.text(max_size=60), st.booleans())
def test_s15_text_reader_refuses_exactly_the_invisible_characters(value: str,
                                                                   multiline: bool) -> None:
    allowed = set("\n\t") if multiline else set()
    clean = all(c in allowed or unicodedata.category(c) not in _REFUSED for c in value)
    problem = text_problem(value, max_chars=50, multiline=multiline)
    assert (problem is None) == (clean and len(value) <= 50), (value, problem)
    body = {"field": value}
    if problem is None:
        assert text(body, "field", max_chars=50, multiline=multiline) == value
    else:
        sentence = refusal(lambda: text(body, "field", max_chars=50, multiline=multiline))
        assert f"'field' {problem}" in sentence


def refusal(read: Any) -> str:
    """The sentence of the 400 that `read()` raises."""
    with pytest.raises(web.HTTPBadRequest) as info:
        read()
    return str(info.value.text)


def test_s15_json_readers_name_the_field() -> None:
    assert "'reasoning' holds U+202E" in refusal(
        lambda: text({"reasoning": "ok\u202e"}, "reasoning", max_chars=LONG_TEXT_CHARS))
    assert text({"reasoning": "line 1\nline 2"}, "reasoning",
                max_chars=LONG_TEXT_CHARS) == "line 1\nline 2"
    assert "'name' holds U+000A" in refusal(
        lambda: text({"name": "a\nb"}, "name", max_chars=NAME_CHARS))
    assert "an item of 'members' holds U+0000" in refusal(
        lambda: texts({"members": ["ok", "M\x00"]}, "members", max_items=5,
                      max_chars=NAME_CHARS))


# -- every path, on the real app --------------------------------------------------------


@dataclasses.dataclass
class Edge:
    client: TestClient[Any, Any]
    day: CreatedDay

    def token(self, index: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.day.invites[index].token}"}

    @property
    def sec(self) -> dict[str, str]:
        return self.token(4)

    @property
    def student(self) -> int:
        return self.day.invites[5].person_id

    async def call(self, method: str, path: str, body: Any,
                   headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        async with self.client.request(method, path, json=body, headers=headers) as r:
            return r.status, await r.json()


@pytest.fixture
async def edge(tmp_path: Path, isolated_network: None) -> AsyncIterator[Edge]:
    config = dataclasses.replace(make_config(tmp_path),
                                 api=ApiConfig(organizer_token_sha256=hash_token(ORGANIZER)))
    async with TestClient(TestServer(create_app(config), host="127.0.0.1", port=0)) as client:
        day = await RosterStore(client.app[DATABASE]).create_day(
            day_spec(NOW + 3600), expires_at=NOW + 86400, now=NOW)
        yield Edge(client, day)


def day_body(**students: Any) -> dict[str, Any]:
    """A day as `POST /api/days` takes it, with one student's fields replaced."""
    return {
        "title": "Защиты", "date": "2026-06-15", "start": "10:00", "timezone": TZ,
        "commission": {"chair": "Соколов", "members": ["Кузнецова", "Морозов"],
                       "secretary": "Новикова"},
        "students": [{"name": "Иванов", "thesis_title": "Тема", "supervisor": "Лебедев",
                      "reviewer": "Орлова", **students}],
    }


async def test_s15_control_and_bidi_characters_refused(edge: Edge) -> None:
    day = edge.day.day_id
    student = edge.student
    refused: list[tuple[str, str, Any, dict[str, str], str]] = [
        ("POST", f"/api/days/{day}/actions/identity",
         {"student": str(student), "accepted": False, "comment": "ok\u202eko"}, edge.sec,
         "'comment' holds U+202E"),
        ("POST", f"/api/days/{day}/actions/queue",
         {"order": [str(student), "2\x00"]}, edge.sec, "an item of 'order' holds U+0000"),
        ("PATCH", f"/api/days/{day}/students/{student}", {"thesis_title": "Тема\x00"}, edge.sec,
         "'thesis_title' holds U+0000"),
        ("PATCH", f"/api/days/{day}/students/{student}", {"supervisor": "Лебедев\u2066"},
         edge.sec, "'supervisor' holds U+2066"),
        ("PATCH", f"/api/days/{day}/students/{student}", {"reviewer": "Орлова\nОрлова"},
         edge.sec, "'reviewer' holds U+000A"),
        ("POST", f"/api/days/{day}/people", {"name": "Гость\u200b", "role": "observer"},
         edge.sec, "'name' holds U+200B"),
        ("POST", f"/api/days/{day}/appeals", {"text": "Не согласен \u202e"},
         edge.token(5), "'text' holds U+202E"),
    ]
    for method, path, body, headers, words in refused:
        status, answer = await edge.call(method, path, body, headers)
        assert status == 400, (path, body, answer)
        assert answer["error"] == "malformed" and words in answer["message"], answer

    organizer = {"Authorization": f"Bearer {ORGANIZER}"}
    for fields, words in (({"name": "Иванов\u202eвонавИ"}, "'students[0].name' holds U+202E"),
                          ({"supervisor": "Лебедев\x00"}, "'students[0].supervisor' holds U+0000"),
                          ({"thesis_title": "Тема\ufeff"},
                           "'students[0].thesis_title' holds U+FEFF")):
        status, answer = await edge.call("POST", "/api/days", day_body(**fields), organizer)
        assert status == 422, answer
        assert words in answer["message"], answer
    body = day_body()
    body["commission"]["members"][1] = "M1 \u202eRTL\u202c"
    status, answer = await edge.call("POST", "/api/days", body, organizer)
    assert status == 422 and "'commission.members[1]' holds U+202E" in answer["message"]

    # Nothing refused reached the roster, and clean values still go through.
    students = await RosterStore(edge.client.app[DATABASE]).list_students(day)
    assert all("\x00" not in s.thesis_title and "\u2066" not in s.supervisor for s in students)
    status, answer = await edge.call("PATCH", f"/api/days/{day}/students/{student}",
                                     {"thesis_title": "Тема: «кавычки» — и тире"}, edge.sec)
    assert status == 200, answer
    status, answer = await edge.call("POST", "/api/days", day_body(), organizer)
    assert status == 201, answer


async def test_s15_length_caps_at_the_edge(edge: Edge) -> None:
    day, student = edge.day.day_id, edge.student
    for body, words in (({"supervisor": "я" * (NAME_CHARS + 1)}, "'supervisor' has 201"),
                        ({"thesis_title": "я" * (TITLE_CHARS + 1)}, "'thesis_title' has 1001")):
        status, answer = await edge.call("PATCH", f"/api/days/{day}/students/{student}", body,
                                         edge.sec)
        assert status == 400 and words in answer["message"], answer
    status, answer = await edge.call("POST", f"/api/days/{day}/appeals",
                                     {"text": "я" * (LONG_TEXT_CHARS + 1)}, edge.token(5))
    assert status == 400 and "'text' has 20001 characters" in answer["message"], answer
    status, answer = await edge.call(
        "POST", "/api/days", day_body(name="я" * (NAME_CHARS + 1)),
        {"Authorization": f"Bearer {ORGANIZER}"})
    assert status == 422 and "'students[0].name' has 201 characters" in answer["message"]


def write_day(folder: Path, students_yaml: str, csv_text: str | None = None) -> Path:
    folder.mkdir(exist_ok=True)
    day = folder / "day.yaml"
    students = ("students_csv: students.csv" if csv_text is not None
                else f"students:\n{students_yaml}")
    day.write_text(
        'title: Защиты\ndate: 2026-06-15\nstart: "10:00"\ntimezone: Europe/Moscow\n'
        "commission:\n  chair: Соколов\n  members: [Кузнецова]\n  secretary: Новикова\n"
        f"{students}\n", encoding="utf-8")
    if csv_text is not None:
        (folder / "students.csv").write_text(csv_text, encoding="utf-8")
    return day


def test_s15_day_file_yaml_and_csv_refuse_hostile_names(tmp_path: Path) -> None:
    student = ("  - name: {name}\n    thesis_title: {title}\n    supervisor: Лебедев\n"
               "    reviewer: Орлова\n")
    ok = write_day(tmp_path / "ok", student.format(name="Иванов", title="Тема"))
    assert load_day_file(ok).students[0].name == "Иванов"
    for name, title, words in (('"Иванов\\0"', "Тема", "'students[0].name' holds U+0000"),
                               ("Иванов\u202eвонавИ", "Тема", "'students[0].name' holds U+202E"),
                               ("Иванов", '"Тема\\u200b"', "'students[0].thesis_title' holds"
                                " U+200B"),
                               ("Иванов", '"Тема\\nещё"', "'students[0].thesis_title' holds"
                                " U+000A"),
                               ("я" * 201, "Тема", "'students[0].name' has 201 characters")):
        path = write_day(tmp_path / f"y{len(words)}{ord(name[-1])}",
                         student.format(name=name, title=title))
        with pytest.raises(DayFileError, match=words.replace("+", r"\+").replace("[", r"\[")
                           .replace("]", r"\]")):
            load_day_file(path)

    header = "name,thesis_title,supervisor,reviewer\n"
    for row, words in (("Иванов\u2067,Тема,Лебедев,Орлова", "row 2, column 'name' holds U+2067"),
                       ("Иванов,Тема,Лебедев\x07,Орлова",
                        "row 2, column 'supervisor' holds U+0007"),
                       ("Иванов,Тема,Лебедев,Орлова\u00ad",
                        "row 2, column 'reviewer' holds U+00AD")):
        path = write_day(tmp_path / f"c{ord(row[6])}{len(row)}", "", header + row + "\n")
        with pytest.raises(DayFileError, match=words.replace("+", r"\+")):
            load_day_file(path)


async def test_s15_the_spec_and_the_roster_refuse_what_slips_past_the_edge(
        db: Database) -> None:
    spec = day_spec(NOW + 3600, students=1)
    with pytest.raises(TextRefused, match="the student's name 'Иванов\\\\u202e' holds U\\+202E"):
        dataclasses.replace(spec.students[0], name="Иванов\u202e")
    with pytest.raises(TextRefused, match="the thesis title .* has 1001 characters"):
        StudentSpec(name="Иванов", thesis_title="я" * 1001, supervisor="Л", reviewer="О",
                    timezone=TZ, consent_at=None, documents=())
    with pytest.raises(TextRefused, match="the commission's name .* holds U\\+0000"):
        dataclasses.replace(spec.commission, members=("Кузнецова\x00",))
    with pytest.raises(TextRefused, match="the observer's name .* holds U\\+200E"):
        dataclasses.replace(spec, observers=("Гость\u200e",))

    roster = RosterStore(db)
    created = await roster.create_day(spec, expires_at=NOW + 86400, now=NOW)
    with pytest.raises(TextRefused, match="a person's name holds U\\+202D"):
        await roster.add_person(created.day_id, Role.OBSERVER, "Гость\u202d",
                                expires_at=NOW + 86400, by=None, now=NOW)
    student = created.invites[-1].person_id
    with pytest.raises(TextRefused, match="a student's supervisor holds U\\+001B"):
        await roster.update_student(student, now=NOW, supervisor="Лебедев\x1b[31m")
    assert [s.supervisor for s in await roster.list_students(created.day_id)] == ["Лебедев"]


@pytest.mark.parametrize("error", [
    TextRefused("a person's name holds U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    Unjournalable("IdentityDecided cannot be journaled: a lone surrogate"),
], ids=lambda e: type(e).__name__)
async def test_s7_s15_backstop_refusals_are_400_with_their_sentence(error: Exception) -> None:
    app = web.Application(middlewares=[refusals])

    async def handler(request: web.Request) -> web.Response:
        raise error

    app.router.add_get("/", handler)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        async with client.get("/") as r:
            assert (r.status, await r.json()) == (400, {"error": "malformed",
                                                        "message": str(error)})
