"""The invite sheet: one A4 page per person with their personal link and a QR code.

The department office prints it (``POST /api/days/{d}/invitations/sheet``) and hands
each person their page. A page names the person, their role, the day, the start in
the person's own time zone, the link in full and as a QR code, and a short
instruction in the person's language (Russian or English).

Links are stored only as hashes, so the caller passes fresh links in; nothing here
reads the database or the clock. The QR code is embedded as a PNG (segno), so a
scanner reads it from paper and a test reads it back from the PDF.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Sequence
from dataclasses import dataclass

import segno
from fpdf import FPDF
from fpdf.enums import WrapMode

from orchestrator.model import Role

from .render import find_font

#: The languages a sheet is printed in; anything else prints in Russian.
LANGUAGES = ("ru", "en")

_ROLE_NAMES: dict[str, dict[Role, str]] = {
    "ru": {
        Role.CHAIR: "Председатель ГЭК", Role.MEMBER: "Член ГЭК",
        Role.SECRETARY: "Секретарь ГЭК", Role.STUDENT: "Студент",
        Role.SUPERVISOR: "Руководитель ВКР", Role.REVIEWER: "Рецензент",
        Role.OBSERVER: "Наблюдатель", Role.APPEAL_CHAIR: "Председатель апелляционной комиссии",
        Role.APPEAL_MEMBER: "Член апелляционной комиссии",
    },
    "en": {
        Role.CHAIR: "Chair of the commission", Role.MEMBER: "Commission member",
        Role.SECRETARY: "Secretary of the commission", Role.STUDENT: "Student",
        Role.SUPERVISOR: "Supervisor", Role.REVIEWER: "Reviewer",
        Role.OBSERVER: "Observer", Role.APPEAL_CHAIR: "Chair of the appeal commission",
        Role.APPEAL_MEMBER: "Appeal commission member",
    },
}

_MONTHS_RU = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
              "сентября", "октября", "ноября", "декабря")

_WORDS = {
    "ru": {
        "heading": "Приглашение на защиту ВКР",
        "role": "Роль", "day": "Заседание", "start": "Начало (ваше время)",
        "link": "Ваша личная ссылка",
        "instruction": (
            "Откройте ссылку в браузере (Chrome, Edge, Firefox или Safari) на компьютере "
            "или телефоне с камерой и микрофоном, или наведите камеру телефона на QR-код. "
            "На своей странице вы увидите дату и время, а перед входом проверите камеру, "
            "микрофон и связь. Ссылка личная: не передавайте её никому. Если ссылка не "
            "открывается, обратитесь к секретарю ГЭК: вам выдадут новую."),
    },
    "en": {
        "heading": "Invitation to the thesis defense",
        "role": "Role", "day": "Sitting", "start": "Start (your time)",
        "link": "Your personal link",
        "instruction": (
            "Open the link in a browser (Chrome, Edge, Firefox or Safari) on a computer or "
            "a phone with a camera and a microphone, or point your phone's camera at the QR "
            "code. Your page shows the date and time, and before entering you check your "
            "camera, microphone and connection. The link is personal: do not share it. If "
            "it does not open, ask the commission's secretary for a new one."),
    },
}


@dataclass(frozen=True, slots=True)
class SheetPage:
    """One person's page: `starts_local` is the start in their own time zone."""

    name: str
    role: Role
    day_title: str
    starts_local: datetime.datetime
    timezone: str
    link: str
    language: str = "ru"


def role_name(role: Role, language: str) -> str:
    """The role as the sheet prints it."""
    return _ROLE_NAMES[_language(language)][Role(role)]


def start_text(moment: datetime.datetime, timezone: str, language: str) -> str:
    """"15 июня 2026, 10:00 (Europe/Moscow, UTC+03:00)" or its English form."""
    offset = moment.strftime("%z")
    utc = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    if _language(language) == "ru":
        day = f"{moment.day} {_MONTHS_RU[moment.month - 1]} {moment.year}"
    else:
        day = moment.strftime("%d %B %Y").lstrip("0")
    return f"{day}, {moment.strftime('%H:%M')} ({timezone}, {utc})"


def qr_png(link: str) -> bytes:
    """The link as a QR code PNG (error correction M, a quiet zone of 4 modules)."""
    out = io.BytesIO()
    segno.make(link, error="m", micro=False).save(out, kind="png", scale=10, border=4)
    return out.getvalue()


def render_sheet(pages: Sequence[SheetPage], title: str) -> bytes:
    """The invite sheet as an A4 PDF, one page per entry. CPU-bound: call it in a thread."""
    regular = find_font()
    bold = regular.with_name("DejaVuSans-Bold.ttf")
    mono = regular.with_name("DejaVuSansMono.ttf")
    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(False)
    pdf.add_font("DejaVu", "", regular)
    pdf.add_font("DejaVu", "B", bold if bold.is_file() else regular)
    pdf.add_font("DejaVuMono", "", mono if mono.is_file() else regular)
    pdf.set_title(title)
    for page in pages:
        _page(pdf, page)
    return bytes(pdf.output())


def _page(pdf: FPDF, page: SheetPage) -> None:
    language = _language(page.language)
    words = _WORDS[language]
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    pdf.set_font("DejaVu", "B", 18)
    pdf.multi_cell(width, 9, words["heading"], new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("DejaVu", "B", 22)
    pdf.multi_cell(width, 10, page.name, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for label, value in ((words["role"], role_name(page.role, language)),
                         (words["day"], page.day_title),
                         (words["start"], start_text(page.starts_local, page.timezone,
                                                     language))):
        pdf.set_font("DejaVu", "", 10)
        pdf.set_text_color(90, 90, 90)
        pdf.multi_cell(width, 5, label, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("DejaVu", "B", 13)
        pdf.multi_cell(width, 7, value, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    pdf.ln(2)
    size = 70.0
    pdf.image(io.BytesIO(qr_png(page.link)), x=(pdf.w - size) / 2, y=pdf.get_y(), w=size,
              h=size)
    pdf.set_y(pdf.get_y() + size + 4)
    pdf.set_font("DejaVu", "", 10)
    pdf.set_text_color(90, 90, 90)
    pdf.multi_cell(width, 5, words["link"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("DejaVuMono", "", 10)
    # A link has no spaces: wrap it by characters so it never runs off the page.
    pdf.multi_cell(width, 5.5, page.link, new_x="LMARGIN", new_y="NEXT", wrapmode=WrapMode.CHAR)
    pdf.ln(6)
    pdf.set_font("DejaVu", "", 11)
    pdf.multi_cell(width, 6, words["instruction"], new_x="LMARGIN", new_y="NEXT")


def _language(language: str) -> str:
    return language if language in LANGUAGES else "ru"
