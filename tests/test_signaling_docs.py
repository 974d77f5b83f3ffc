"""docs/signaling.md says what the server really sends and accepts.

Three things are kept in step: the doc's tables, the schemas in `web_ui.signaling`
(`CLIENT_MESSAGES`, the parsers, `SERVER_MESSAGES`, `ErrorCode`) with the day host's
`NoticeKind`, and the code that builds each message: every dict literal with a
``"type"`` in the server's packages must be a listed message with listed fields.
The headless client (`web_ui.client`) refuses undocumented messages at run time, in
every test that uses it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from server.dayhost import NoticeKind
from web_ui import signaling
from web_ui.signaling import CLIENT_MESSAGES, SERVER_MESSAGES, ErrorCode

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "signaling.md"
#: Packages whose code builds messages for the clients (or parses theirs).
SENDERS = ("media", "server", "web_ui", "identity", "recordings", "protocols")
#: "type" values of JSON Schema and OpenAPI objects (web_ui/procedure_api.py), not messages.
SCHEMA_TYPES = {"boolean", "number", "integer", "string", "array", "object", "null", "http"}


def table(heading: str, text: str | None = None) -> dict[str, str]:
    """type -> fields cell of the table under `## heading`."""
    text = DOC.read_text(encoding="utf-8") if text is None else text
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`(\w+)`", cells[0]) if len(cells) >= 3 else None
        if match:
            rows[match.group(1)] = cells[1]
    return rows


def ticked(cell: str) -> set[str]:
    """Every name in backticks in a cell, including those inside `{a, b}`."""
    return {name for chunk in re.findall(r"`([^`]+)`", cell)
            for name in re.findall(r"[A-Za-z_]+", chunk)}


def message_literals(source: str, name: str) -> Iterator[tuple[str, str, set[str]]]:
    """(name:line, type, the other constant keys) of each dict literal with a "type"."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Dict):
            continue
        keys = {k.value: v for k, v in zip(node.keys, node.values)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)}
        kind = keys.get("type")
        if isinstance(kind, ast.Constant) and isinstance(kind.value, str):
            yield f"{name}:{node.lineno}", kind.value, set(keys) - {"type"}


def parser_keys(kind: str) -> set[str]:
    """The JSON keys the parser of a client message reads: the key argument of its
    ``_string(data, key, ...)``, ``_int(data, key)`` and ``x.get(key)`` calls."""
    source = Path(signaling.__file__).read_text(encoding="utf-8")
    function = next(n for n in ast.walk(ast.parse(source))
                    if isinstance(n, ast.FunctionDef) and n.name == f"_{kind}")
    keys = set()
    for call in ast.walk(function):
        if not isinstance(call, ast.Call):
            continue
        if isinstance(call.func, ast.Name) and call.func.id in ("_string", "_int"):
            arg = call.args[1]
        elif isinstance(call.func, ast.Attribute) and call.func.attr == "get" and call.args:
            arg = call.args[0]
        else:
            continue
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            keys.add(arg.value)
    return keys


def undocumented(source: str, name: str) -> list[str]:
    """Each message a source builds that no schema lists, or with a field none lists."""
    problems = []
    for where, kind, keys in message_literals(source, name):
        if kind in SCHEMA_TYPES:
            continue
        if kind in SERVER_MESSAGES:
            extra = keys - SERVER_MESSAGES[kind]
            if extra:
                problems.append(f"{where}: `{kind}` with undocumented {sorted(extra)}")
        elif kind not in CLIENT_MESSAGES:
            problems.append(f"{where}: message type {kind!r} is in no schema")
    return problems


def test_every_client_message_is_documented_with_the_fields_it_is_read_by() -> None:
    rows = table("Client → server")
    assert set(rows) == CLIENT_MESSAGES
    for kind, cell in rows.items():
        missing = parser_keys(kind) - ticked(cell)
        assert not missing, f"docs/signaling.md: `{kind}` lacks {sorted(missing)}"


def test_every_server_message_is_documented_with_its_fields() -> None:
    rows = table("Server → client")
    assert set(rows) == set(SERVER_MESSAGES), (
        f"documented but never sent: {sorted(set(rows) - set(SERVER_MESSAGES))}; "
        f"sent but not documented: {sorted(set(SERVER_MESSAGES) - set(rows))}")
    for kind, fields in SERVER_MESSAGES.items():
        missing = fields - ticked(rows[kind])
        assert not missing, f"docs/signaling.md: `{kind}` lacks {sorted(missing)}"


def test_notice_kinds_and_error_codes_are_the_documented_ones() -> None:
    text = DOC.read_text(encoding="utf-8")
    notice = table("Server → client", text)["notice"]
    kinds = set(re.findall(r"`(\w+)` \(", notice))
    assert kinds == {k.value for k in NoticeKind}
    codes_paragraph = text.split("Error codes:", 1)[1]
    documented = set(re.findall(r"`(\w+)`", codes_paragraph))
    # The paragraph also names the messages that cause some errors.
    assert documented - CLIENT_MESSAGES == {c.value for c in ErrorCode}


def test_the_code_builds_only_documented_messages() -> None:
    problems = []
    for package in SENDERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            problems += undocumented(path.read_text(encoding="utf-8"),
                                     str(path.relative_to(ROOT)))
    assert problems == []


def test_the_checks_can_fail() -> None:
    doc = ("## Server → client\n\n| type | fields | when |\n|---|---|---|\n"
           "| `x` | `a`, `{b, c}` | now |\n")
    assert table("Server → client", doc) == {"x": "`a`, `{b, c}`"}
    assert ticked("`a`, `{b, c}`") == {"a", "b", "c"}
    assert parser_keys("ice") == {"candidate", "sdpMid", "sdpMLineIndex"}
    source = ('send({"type": "gossip", "who": 1})\n'
              'send({"type": "bye", "reason": "left", "mood": "sad"})\n'
              'schema = {"type": "string"}\n')
    assert undocumented(source, "x.py") == [
        "x.py:1: message type 'gossip' is in no schema",
        "x.py:2: `bye` with undocumented ['mood']",
    ]
