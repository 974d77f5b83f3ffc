"""Which characters a name or a free text may hold, and how long it may be.

Names and texts end up in signed protocols, PDFs, CSV statements and everyone's
screens. An invisible character there can make one text look like another: a
bidirectional override (U+202E) shows "ecnellecxe" as "excellent", a zero-width
space makes two equal-looking names differ, NUL cuts a text short in C code. So
every input path (the JSON edge, the day file and its CSV, the roster) refuses:

- control characters (Unicode category Cc), except newline and tab in a text that
  may span lines (an appeal, a comment);
- every format character (Cf): bidirectional embeddings, overrides and isolates
  (U+202A..U+202E, U+2066..U+2069), marks (U+200E, U+200F, U+061C), zero-width
  characters (U+200B..U+200D, U+2060, U+FEFF), the soft hyphen and the rest. Zero-width
  joiners are refused too: they matter for emoji and some scripts, but a name
  on a protocol needs neither, and they are the other way to make two names look
  alike;
- lone surrogates (Cs), which no database or file can encode;
- the line and paragraph separators U+2028, U+2029 (Zl, Zp), a newline in disguise.

Refusing, rather than stripping, keeps what is stored equal to what was sent.
"""

from __future__ import annotations

import unicodedata

from .errors import StorageError

#: Length caps: a person's name (and a day's title), a thesis title, a note, a long
#: text (an appeal, a conclusion, a decision's reasoning).
NAME_CHARS = 200
TITLE_CHARS = 1000
NOTE_CHARS = 2000
LONG_TEXT_CHARS = 20000

#: What the refused categories are called in a refusal.
_REFUSED = {
    "Cc": "a control character",
    "Cf": "an invisible format character (bidirectional control, zero-width"
          " character or the like)",
    "Cs": "a lone surrogate, which is not valid Unicode",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
_MULTILINE_ALLOWED = frozenset("\n\t")


class TextRefused(StorageError):
    """A name or text holds a character it may not, or is too long."""

    code = "malformed"
    status_hint = 400


def text_problem(value: str, *, max_chars: int, multiline: bool = False) -> str | None:
    """Why `value` cannot be a name or text, as the end of a sentence ("has 300
    characters; ...", "holds U+202E ..."), or None if it can."""
    if len(value) > max_chars:
        return f"has {len(value)} characters; at most {max_chars} are accepted"
    if value.isprintable():  # the common case, at C speed: nothing refused in it
        return None
    for index, char in enumerate(value):
        if multiline and char in _MULTILINE_ALLOWED:
            continue
        what = _REFUSED.get(unicodedata.category(char))
        if what is not None:
            name = unicodedata.name(char, "")
            shown = f"U+{ord(char):04X}" + (f" ({name})" if name else "")
            where = "a line break or tab" if char in _MULTILINE_ALLOWED else what
            return f"holds {shown}, {where}, at character {index + 1}; it is not accepted" + (
                " in a one-line text" if char in _MULTILINE_ALLOWED else "")
    return None


def check_text(value: str, what: str, *, max_chars: int, multiline: bool = False) -> str:
    """`value` if it may be a name or text; `TextRefused` naming `what` otherwise."""
    problem = text_problem(value, max_chars=max_chars, multiline=multiline)
    if problem is not None:
        raise TextRefused(f"{what} {problem}")
    return value
