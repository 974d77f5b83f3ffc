"""The pages' looks live in the style sheets, not in JavaScript.

Every rule a page needs is a named class in ``room.css``, ``panels.css``,
``home.css`` or ``office.css``, so one place says how a page looks and a phone rule
(``@media``) can change it. This test reads every module under
``web_ui/static/js/`` and fails on inline styles: a ``style:`` attribute passed to
``h(...)``, ``element.style = "..."``, ``.style.cssText``, ``.style.setProperty``,
``Object.assign(x.style, ...)`` or ``setAttribute("style", ...)``.

A single property computed at run time is allowed, and only where ``ALLOWED`` names
it: a value no class can hold (a level meter's width, a page's aspect ratio).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "web_ui" / "static" / "js"
STATIC = ROOT / "web_ui" / "static"

#: (module, property) pairs that may set one computed property on ``element.style``.
ALLOWED: frozenset[tuple[str, str]] = frozenset({
    ("prejoin.js", "width"),  # the microphone meter's bar follows the sound level
    ("pdfview.js", "aspectRatio"),  # a PDF page's canvas keeps the page's own shape
    ("panels/protocols.js", "overflowWrap"),  # the server key's fingerprint wraps on a phone
})

# Regular expressions may start after these characters (else "/" divides).
_REGEX_BEFORE = set("(,=:[!&|?{};+-*%<>~^")


def code_only(source: str) -> str:
    """`source` with comments removed and the inside of every string literal blanked.

    Quotes stay, so `"style"` reads `""`; a template literal's `${...}` stays code.
    Newlines are kept, so line numbers still match the file's.
    """
    out: list[str] = []
    i, n = 0, len(source)
    braces: list[int] = []  # for each open `${`, the brace depth it opened at
    depth = 0
    last = ""  # the last significant character written, to tell a regex from "/"

    def skip_string(i: int, quote: str) -> int:
        """Blank a '...' or "..." literal from its opening quote; returns the index after it."""
        out.append(quote)
        i += 1
        while i < n and source[i] != quote and source[i] != "\n":
            i += 2 if source[i] == "\\" else 1
        out.append(quote)
        return i + 1

    def skip_template(i: int) -> int:
        """Blank template text up to the closing backtick or a `${`; returns the index after."""
        while i < n:
            c = source[i]
            if c == "\\":
                i += 2
            elif c == "`":
                out.append("`")
                return i + 1
            elif c == "$" and source[i + 1:i + 2] == "{":
                out.append("${")
                braces.append(depth)
                return i + 2
            else:
                if c == "\n":
                    out.append("\n")
                i += 1
        return i

    while i < n:
        c = source[i]
        pair = source[i:i + 2]
        if pair == "//":
            while i < n and source[i] != "\n":
                i += 1
        elif pair == "/*":
            end = source.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("\n" * source.count("\n", i, end))
            i = end
        elif c in "\"'":
            i = skip_string(i, c)
            last = c
        elif c == "`":
            out.append("`")
            i = skip_template(i + 1)
            last = "`"
        elif c == "/" and (last in _REGEX_BEFORE or last == "" or re.search(r"\breturn\s*$", "".join(out[-3:]))):
            out.append("/")
            i += 1
            in_class = False
            while i < n and source[i] != "\n":
                ch = source[i]
                if ch == "\\":
                    i += 2
                    continue
                if ch == "[":
                    in_class = True
                elif ch == "]":
                    in_class = False
                elif ch == "/" and not in_class:
                    break
                i += 1
            out.append("/")
            i += 1
            last = "/"
        elif c == "}" and braces and braces[-1] == depth:
            braces.pop()
            out.append("}")
            i = skip_template(i + 1)
            last = "`"
        else:
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            out.append(c)
            if not c.isspace():
                last = c
            i += 1
    return "".join(out)


# Each pattern is searched in the code with comments removed and strings blanked,
# except SET_ATTRIBUTE and QUOTED_KEY, which need the string to be seen.
INLINE_KEY = re.compile(r"[{,]\s*style\s*:")  # h("p", { style: "..." })
QUOTED_KEY = re.compile(r"""[{,]\s*(["'])style\1\s*:""")  # h("p", { "style": "..." })
WHOLE = re.compile(r"\.style\s*=(?!=)")  # element.style = "..."
CSS_TEXT = re.compile(r"\.style\s*\.\s*(cssText|setProperty)\b")
ASSIGN = re.compile(r"Object\.assign\(\s*[\w.$\[\]]+\.style\b")
SET_ATTRIBUTE = re.compile(r"""setAttribute(?:NS)?\(\s*(?:[^,()]*,\s*)?(["'`])style\1""")
ONE_PROPERTY = re.compile(r"\.style\s*\.\s*([A-Za-z]+)\s*=(?!=)")  # element.style.width = ...


def strip_comments(source: str) -> str:
    """`source` without comments, strings kept (for the patterns that read a string)."""
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        pair = source[i:i + 2]
        if c in "\"'`":
            j = i + 1
            while j < n and source[j] != c and (c == "`" or source[j] != "\n"):
                j += 2 if source[j] == "\\" else 1
            out.append(source[i:j + 1])
            i = j + 1
        elif pair == "//":
            while i < n and source[i] != "\n":
                i += 1
        elif pair == "/*":
            end = source.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("\n" * source.count("\n", i, end))
            i = end
        else:
            out.append(c)
            i += 1
    return "".join(out)


def inline_styles(name: str, source: str) -> list[str]:
    """Every inline style in one module, as "name:line: what", allowed ones left out."""
    found: list[str] = []
    code = code_only(source)
    plain = strip_comments(source)

    def line(text: str, at: int) -> int:
        return text.count("\n", 0, at) + 1

    for pattern, text, what in ((INLINE_KEY, code, "style: attribute"),
                                (QUOTED_KEY, plain, "\"style\": attribute"),
                                (WHOLE, code, "element.style = ..."),
                                (CSS_TEXT, code, "style.cssText / setProperty"),
                                (ASSIGN, code, "Object.assign(element.style, ...)"),
                                (SET_ATTRIBUTE, plain, "setAttribute(\"style\", ...)")):
        for match in pattern.finditer(text):
            found.append(f"{name}:{line(text, match.start())}: {what}")
    for match in ONE_PROPERTY.finditer(code):
        prop = match.group(1)
        if prop in ("cssText",):
            continue  # reported above
        if (name, prop) not in ALLOWED:
            found.append(f"{name}:{line(code, match.start())}: style.{prop} = ... (not in ALLOWED)")
    return found


def modules() -> list[Path]:
    return sorted(JS.rglob("*.js"))


def test_there_are_modules_to_read() -> None:
    names = {p.relative_to(JS).as_posix() for p in modules()}
    # The pages this rule was written for, and the modules ALLOWED names, are read.
    for name in ("home/student.js", "home/secretary.js", "home/commission.js",
                 "home/appeal_student.js", "home/appeal_secretary.js", "panels/appeal_controls.js",
                 *(module for module, _ in ALLOWED)):
        assert name in names, name


def test_no_inline_styles_in_the_pages() -> None:
    found = [hit for path in modules()
             for hit in inline_styles(path.relative_to(JS).as_posix(), path.read_text(encoding="utf-8"))]
    assert not found, "inline styles; give them a class in the style sheets instead:\n" + "\n".join(found)


def test_the_allowed_properties_are_still_used() -> None:
    """An entry in ALLOWED that no module uses any more is removed, not kept open."""
    used = {(path.relative_to(JS).as_posix(), m.group(1))
            for path in modules() for m in ONE_PROPERTY.finditer(code_only(path.read_text(encoding="utf-8")))}
    assert ALLOWED <= used, sorted(ALLOWED - used)


@pytest.mark.parametrize("snippet", [
    'h("p", { style: "margin:0" }, text)',
    'h("p", {\n  class: "x",\n  style: BOX,\n}, text)',
    "h('p', { 'style': 'margin:0' })",
    'element.style.cssText = "color: red";',
    'element.style.setProperty("color", "red");',
    'element.style = "color: red";',
    'Object.assign(element.style, { color: "red" });',
    'control.setAttribute("style", CONTROL);',
    "control.setAttribute('style', `width: ${w}px`);",
    "row.style.width = `${x}%`;",  # a property not in ALLOWED for this module
    'const s = `a ${h("b", { style: "c" })} d`;',  # inside a template's ${...}
])
def test_the_scanner_finds(snippet: str) -> None:
    assert inline_styles("home/example.js", snippet), snippet


@pytest.mark.parametrize("snippet", [
    '// h("p", { style: "margin:0" })',
    '/* element.style.cssText = "x" */',
    'h("p", {}, t("style: a word in a text"))',
    'const text = "{ style: x }, setAttribute(";',
    "const re = /\\{ style: \"/; h(\"p\", { class: \"muted\" });",
    'if (element.style.width == "") {}',
    'const styles = { styleSheet: 1 };',
])
def test_the_scanner_lets_pass(snippet: str) -> None:
    assert not inline_styles("home/example.js", snippet), snippet


def test_the_allowed_one_property_passes_only_in_its_module() -> None:
    snippet = "meterBar.style.width = `${level}%`;"
    assert not inline_styles("prejoin.js", snippet)
    assert inline_styles("home/student.js", snippet)


#: The classes the personal pages and the appeal panel now take their looks from.
RULES = {
    "home.css": (".student-tick", ".student-tick input", ".student-doc-list", ".student-doc",
                 ".student-file", ".sec-field", ".sec-control", ".appeal-text", ".appeal-wide",
                 ".appeal-link", ".appeal-title", ".appeal-subtitle", ".card.appeal"),
    "panels.css": (".appeal-reasoning", ".appeal-choice", ".appeal-names", ".appeal-names li"),
}


@pytest.mark.parametrize("sheet", sorted(RULES))
def test_the_classes_have_rules(sheet: str) -> None:
    css = re.sub(r"/\*.*?\*/", "", (STATIC / sheet).read_text(encoding="utf-8"), flags=re.S)
    selectors = {s.strip() for block in re.findall(r"([^{}]+)\{[^{}]*\}", css) for s in block.split(",")}
    missing = [rule for rule in RULES[sheet]
               if not any(re.search(rf"(^|\s){re.escape(rule)}($|[\s:.\[])", s) for s in selectors)]
    assert not missing, f"{sheet} lacks rules for {missing}"
