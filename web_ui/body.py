"""Reading a request's JSON body: one reader of the object, typed readers of its fields
(and `url_id`, the reader of the ids in its URL).

`json_object` answers 400 with a sentence for anything that is not one JSON object
of a sane shape, and 413 for a body over the application's ``client_max_size``.
`loads_object` is its parser, which the signaling socket uses too (`web_ui.signaling`).
Refused with 400: invalid UTF-8; not JSON; not an object; nesting deeper than
`MAX_DEPTH` (Python's parser would otherwise recurse until it fails); a number
literal longer than `MAX_NUMBER_CHARS` (Python refuses to convert an int of over
4300 digits, and no field needs a tenth of that); NaN, Infinity or a float that
overflows to it; a key given twice in one object (a proxy and the server could
read different values); and a string that is not valid Unicode (an escaped lone
surrogate, which no database or reply could encode).

The field readers (`text`, `texts`, `integer`, `identifier`, `number`, `moment`,
`flag`, `mapping`, `only`) check one field's type and range, naming the field when they
refuse, so that handlers never check types by hand and nothing a peer sends
reaches the code below as the wrong type or an impossible value. The text readers
also refuse control, bidirectional and other invisible characters
(`storage.clean_text`): a text may span lines only if it may be as long as a note.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any

from aiohttp import web

from storage.clean_text import LONG_TEXT_CHARS, NAME_CHARS, NOTE_CHARS, TITLE_CHARS, text_problem

from .errors import json_error, too_large

__all__ = ["LONG_TEXT_CHARS", "MAX_DEPTH", "MAX_ID", "MAX_NUMBER_CHARS", "MAX_UNIX_TIME",
           "NAME_CHARS", "NOTE_CHARS", "TITLE_CHARS", "JsonRefused", "flag", "identifier",
           "integer", "json_object", "loads_object", "malformed", "mapping", "moment",
           "nesting", "number", "only", "text", "texts", "url_id"]

#: Deeper than any body we take (an event or a day file nests 3 or 4 levels).
MAX_DEPTH = 32
#: The longest number literal: 19 digits hold any id (SQLite's int64), floats need fewer.
MAX_NUMBER_CHARS = 40
MAX_ID = 2**63 - 1
#: The latest unix time a field may hold: the end of year 9999, the last `datetime` has.
MAX_UNIX_TIME = 253402300799.0

MALFORMED = "malformed"

# A JSON string (or an unterminated one up to the end); possessive, so each quote is
# scanned once and a hostile body costs linear time.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonRefused(ValueError):
    """JSON text that is not one object of a sane shape; the message says why."""


class _Refused(Exception):
    """Raised from inside the JSON parser's hooks; `loads_object` says of what."""


def malformed(message: str) -> web.HTTPBadRequest:
    """400 ``malformed``: the body or one of its fields is not what the endpoint takes."""
    return json_error(web.HTTPBadRequest, MALFORMED, message)


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's body as a JSON object; an empty body is the empty object."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.client_max_size
        raise too_large(limit, max(request.content_length or 0, limit + 1)) from None
    if not raw:
        return {}
    try:
        return loads_object(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise malformed(f"the body is not UTF-8 text: byte {exc.start} is invalid") from None
    except JsonRefused as exc:
        raise malformed(str(exc)) from None


def loads_object(text: str, what: str = "the body") -> dict[str, Any]:
    """The JSON object in `text`; `JsonRefused`, with a sentence about `what`, if it is
    not one of a sane shape (see the module doc)."""
    depth = nesting(text)
    if depth > MAX_DEPTH:
        raise JsonRefused(f"{what} nests {depth} levels deep; at most {MAX_DEPTH} are accepted")
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant,
                           object_pairs_hook=_object)
    except _Refused as exc:
        raise JsonRefused(f"{what} holds {exc}") from None
    except json.JSONDecodeError as exc:
        raise JsonRefused(f"{what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise JsonRefused(f"{what} must be a JSON object, not {_kind(value)}")
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise JsonRefused(f"{what} holds a string that is not valid Unicode"
                          " (an escaped lone surrogate)") from None
    return value


def nesting(text: str) -> int:
    """How deep the arrays and objects of JSON `text` nest, without parsing it."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _int(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _Refused(f"a number of {len(literal)} characters ({literal[:12]}…);"
                       f" at most {MAX_NUMBER_CHARS} are accepted")
    return int(literal)


def _float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _Refused(f"a number of {len(literal)} characters ({literal[:12]}…);"
                       f" at most {MAX_NUMBER_CHARS} are accepted")
    value = float(literal)
    if not math.isfinite(value):
        raise _Refused(f"the number {literal[:40]}, too large for a float")
    return value


def _constant(name: str) -> Any:
    raise _Refused(f"{name}, which is not a JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"the key {_short(key)} twice in one object")
            seen.add(key)
    return value


def url_id(request: web.Request, name: str) -> int:
    """The id in the part `name` of the URL (the routes match it as digits); 404 for
    one longer than any id can be."""
    digits = request.match_info[name]
    if len(digits) > 19 or int(digits) > MAX_ID:
        raise json_error(web.HTTPNotFound, "not_found",
                         f"there is no {name.removesuffix('_id')} {_short(digits)}")
    return int(digits)


# -- fields ------------------------------------------------------------------------------


def only(body: dict[str, Any], names: tuple[str, ...] | frozenset[str]) -> None:
    """400 unless every key of `body` is one of `names`."""
    unknown = sorted(set(body) - set(names))
    if unknown:
        raise malformed(f"unknown field {', '.join(_short(k) for k in unknown[:5])}; the fields"
                        f" are {', '.join(sorted(names)) or 'none'}")


def text(body: dict[str, Any], name: str, *, max_chars: int, default: str | None = None,
         nonempty: bool = False, multiline: bool | None = None) -> str:
    """The string field `name` of at most `max_chars` characters (required if no default),
    free of control and invisible characters; line breaks and tabs are accepted if
    `multiline`, by default if `max_chars` is at least `NOTE_CHARS`."""
    value = _field(body, name, default)
    if not isinstance(value, str):
        raise _wrong(name, value, "a string")
    if nonempty and not value.strip():
        raise malformed(f"{name!r} must not be empty")
    problem = text_problem(value, max_chars=max_chars,
                           multiline=max_chars >= NOTE_CHARS if multiline is None else multiline)
    if problem is not None:
        raise malformed(f"{name!r} {problem}")
    return value


def texts(body: dict[str, Any], name: str, *, max_items: int, max_chars: int) -> list[str]:
    """The field `name`: a list of at most `max_items` strings of `max_chars` each."""
    value = _field(body, name, None)
    if not isinstance(value, list):
        raise _wrong(name, value, "a list of strings")
    if len(value) > max_items:
        raise malformed(f"{name!r} lists {len(value)} items; at most {max_items} are accepted")
    for item in value:
        if not isinstance(item, str):
            raise malformed(f"{name!r} must list strings, not {_kind(item)}")
        problem = text_problem(item, max_chars=max_chars)
        if problem is not None:
            raise malformed(f"an item of {name!r} {problem}")
    return value


def integer(body: dict[str, Any], name: str, *, low: int, high: int,
            default: int | None = None) -> int:
    """The whole-number field `name`, from `low` to `high` (required if no default)."""
    value = _field(body, name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _wrong(name, value, "a whole number")
    if not low <= value <= high:
        raise malformed(f"{name!r} must be from {low} to {high}, not {_short(value)}")
    return value


def identifier(body: dict[str, Any], name: str) -> int:
    """The field `name` holding an id (a person's, an appeal's), as a number or digits."""
    value = _field(body, name, None)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_ID:
        raise malformed(f"{name!r} must be an id (a positive whole number), not {_short(value)}")
    return value


def number(body: dict[str, Any], name: str, *, low: float, high: float,
           default: float | None = None, what: str = "a number") -> float:
    """The numeric field `name`, finite, from `low` to `high` (required if no default)."""
    value = _field(body, name, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _wrong(name, value, what)
    if not (math.isfinite(value) and low <= value <= high):
        raise malformed(f"{name!r} must be from {low:g} to {high:g}, not {_short(value)}")
    return float(value)


def moment(body: dict[str, Any], name: str, default: float | None = None) -> float:
    """The field `name` holding a unix time in seconds (required if no default)."""
    return number(body, name, low=0.0, high=MAX_UNIX_TIME, default=default,
                  what="a unix time in seconds")


def flag(body: dict[str, Any], name: str, default: bool | None = None) -> bool:
    """The true/false field `name` (required if no default)."""
    value = _field(body, name, default)
    if not isinstance(value, bool):
        raise _wrong(name, value, "true or false")
    return value


def mapping(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The object field `name` (required); its own fields are the caller's to read."""
    value = _field(body, name, None)
    if not isinstance(value, dict):
        raise _wrong(name, value, "an object")
    return value


def _field(body: dict[str, Any], name: str, default: object) -> object:
    value = body.get(name)
    if value is None:
        if default is None:
            raise malformed(f"{name!r} must not be null" if name in body
                            else f"{name!r} is missing")
        return default
    return value


def _wrong(name: str, value: object, what: str) -> web.HTTPBadRequest:
    return malformed(f"{name!r} must be {what}, not {_kind(value)}")


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"


def _short(value: object, limit: int = 40) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit] + "…"
