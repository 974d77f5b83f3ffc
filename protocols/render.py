"""The protocol as a document: HTML and PDF, in Russian, times in the day's time zone.

Both formats are drawn from one list of blocks (`document`), so the PDF says exactly
what the HTML says. Everything shown comes from the protocol data
(`orchestrator.protocol`) plus an `Endorsement` (approvals and signature), which is
shown under the protocol but is not part of its content hash: approving a draft must
not change what is approved.

The PDF needs a TrueType font with Cyrillic: DejaVu Sans from Debian's
``fonts-dejavu-core`` package, looked up in the usual font folders.
"""

from __future__ import annotations

import datetime
import html
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF

from orchestrator.documents import DocumentKind
from orchestrator.model import Grade, Phase, Role, StudentStatus
from orchestrator.protocol import (
    AbsenceKind,
    AttendanceMode,
    DayProtocol,
    Failure,
    FailureKind,
    PersonEntry,
    Protocol,
    RecordingFile,
    SittingInfo,
    Span,
    StudentProtocol,
    TimeLimits,
    Vote,
)

from .errors import PaperworkError

FONT_PACKAGE = "fonts-dejavu-core"
FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),  # Debian, Ubuntu
    Path("/usr/share/fonts/dejavu-sans-fonts"),  # Fedora
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),  # Arch
    Path("/usr/local/share/fonts"),
)

ROLES = {
    Role.CHAIR: "председатель ГЭК", Role.MEMBER: "член ГЭК", Role.SECRETARY: "секретарь ГЭК",
    Role.STUDENT: "обучающийся", Role.SUPERVISOR: "руководитель ВКР",
    Role.REVIEWER: "рецензент", Role.OBSERVER: "наблюдатель",
}
PHASES = {
    Phase.WAITING: "ожидание", Phase.OPENING: "открытие заседания",
    Phase.IDENTIFICATION: "идентификация личности обучающихся",
    Phase.ANNOUNCEMENT: "объявление регламента", Phase.TALK: "доклад обучающегося",
    Phase.QUESTIONS: "вопросы членов ГЭК", Phase.SUPERVISOR: "выступление руководителя",
    Phase.REVIEW: "оглашение рецензии", Phase.ANSWER: "ответ на замечания рецензента",
    Phase.FINAL_WORD: "заключительное слово", Phase.BETWEEN_DEFENSES: "перерыв между защитами",
    Phase.CLOSED_SITTING: "закрытое заседание (без записи)",
    Phase.RESULTS: "объявление результатов", Phase.CLOSED: "заседание закрыто",
}
GRADES = {
    Grade.EXCELLENT: "отлично", Grade.GOOD: "хорошо",
    Grade.SATISFACTORY: "удовлетворительно", Grade.UNSATISFACTORY: "неудовлетворительно",
}
OUTCOMES = {
    StudentStatus.WAITING: "защита не проводилась", StudentStatus.IDENTIFIED: "защита не начата",
    StudentStatus.DEFENDING: "защита не завершена", StudentStatus.DEFENDED: "защита состоялась",
    StudentStatus.ABSENT: "неявка (п. 7.9)",
    StudentStatus.RESCHEDULED: "защита перенесена на другой день",
}
ABSENCES = {
    AbsenceKind.ABSENT: "не подключился(-ась) к видеоконференции в установленное время; "
                        "признан(а) не явившимся(-ейся) (п. 7.9)",
    AbsenceKind.VALID_REASON: "неявка по уважительной причине (п. 7.9)",
    AbsenceKind.MOVED: "технический сбой, не устранённый в установленный срок; защита "
                       "перенесена председателем на другой день (п. 7.8)",
}

ATTENDANCE_MODES = {
    AttendanceMode.REMOTE: "дистанционно", AttendanceMode.IN_PERSON: "очно, в аудитории",
    AttendanceMode.BOTH: "дистанционно и очно, в аудитории",
    AttendanceMode.ABSENT: "отсутствовал(а)",
}
DOCUMENTS = {
    DocumentKind.THESIS: "ВКР", DocumentKind.PLAGIARISM_REPORT: "справка об антиплагиате",
    DocumentKind.SUPERVISOR_REVIEW: "отзыв руководителя",
    DocumentKind.REVIEWER_REVIEW: "рецензия", DocumentKind.PRESENTATION_PDF: "презентация",
    DocumentKind.NORM_CONTROL: "нормоконтроль",
    DocumentKind.ABSENCE_PROOF: "документ, подтверждающий уважительную причину",
}


class ProtocolRenderError(PaperworkError):
    """The protocol cannot be rendered, e.g. the PDF font is not installed."""


@dataclass(frozen=True, slots=True)
class Endorsement:
    """Approvals and signature shown under a protocol (rule V6); not hashed with it."""

    content_hash: str
    approvals: tuple[tuple[str, float], ...]  # (member's name, when), for this hash
    missing: tuple[str, ...]  # members whose approval of this hash is still missing
    signed: tuple[str, float] | None  # (chair's name, when), or None for a draft
    #: Key fingerprints (SHA-256 of the SPKI) of each approval, in `approvals` order,
    #: and of the chair's signature, so a reader can match them to the people (S14).
    approval_keys: tuple[str, ...] = ()
    signed_key: str | None = None
    #: The server key that signs every package (`protocols.server_key`).
    server_key: str | None = None


@dataclass(frozen=True, slots=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    alert: bool = False  # shown in red in HTML, e.g. that this is an unsigned draft


@dataclass(frozen=True, slots=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[int, ...]  # relative, for the PDF


Block = Heading | Text | Table


class _Clock:
    """Formats unix times in the sitting's time zone; the date only when it differs."""

    def __init__(self, sitting: SittingInfo) -> None:
        self.zone = zoneinfo.ZoneInfo(sitting.timezone)
        self.date = datetime.date.fromisoformat(sitting.date)

    def __call__(self, t: float | None) -> str:
        if t is None:
            return "—"
        moment = datetime.datetime.fromtimestamp(t, self.zone)
        return moment.strftime("%H:%M:%S" if moment.date() == self.date else "%d.%m.%Y %H:%M:%S")

    def moment(self, t: float) -> str:
        """Date and time, always with the date (a new date of a moved defense)."""
        return datetime.datetime.fromtimestamp(t, self.zone).strftime("%d.%m.%Y %H:%M")

    def span(self, span: Span) -> str:
        return f"{self(span.start)} – {self(span.end) if span.end is not None else '…'}"

    def spans(self, spans: Iterable[Span]) -> str:
        return "; ".join(self.span(s) for s in spans) or "—"


def _names(people: Iterable[PersonEntry]) -> str:
    return ", ".join(p.name for p in people) or "—"


def _minutes(minutes: float) -> str:
    """A limit in minutes as "12 мин 30 с" (to the second)."""
    whole, seconds = divmod(round(minutes * 60), 60)
    return f"{whole} мин {seconds} с" if seconds else f"{whole} мин"


def _limits(limits: TimeLimits) -> str:
    return (f"доклад — до {_minutes(limits.talk_minutes)}, ответы на вопросы — до "
            f"{_minutes(limits.questions_minutes)}, вся защита — до "
            f"{_minutes(limits.defense_minutes)}")


def _failure(f: Failure) -> str:
    """What failed, in words (clause 7.8)."""
    parts = []
    for kind in f.what:
        if kind is FailureKind.QUORUM and f.quorum is not None:
            parts.append(f"нет кворума: присутствовали {f.quorum.present} из {f.quorum.total} "
                         f"членов комиссии, нужно не менее {f.quorum.required} (п. 7.2)")
        elif kind is FailureKind.CHAIR:
            parts.append("нет связи с председателем ГЭК")
        elif kind is FailureKind.SECRETARY:
            parts.append("нет связи с секретарём ГЭК")
        elif kind is FailureKind.STUDENT and f.student is not None:
            parts.append(f"потеряна связь с обучающимся: {f.student.name}")
    return "; ".join(parts) or f.description


def _outcome(p: StudentProtocol, clock: _Clock) -> str:
    """The outcome, with the new date of a moved defense (clause 7.8)."""
    if p.absence is not None and p.absence.new_date is not None:
        return f"защита перенесена на {clock.moment(p.absence.new_date)} (п. 7.8)"
    return OUTCOMES[p.status]


def document(protocol: Protocol, endorsement: Endorsement) -> list[Block]:
    """The protocol as blocks, top to bottom."""
    clock = _Clock(protocol.sitting)
    sitting = protocol.sitting
    blocks: list[Block] = []
    if endorsement.signed is None:
        blocks.append(Text("ПРОЕКТ: не подписан председателем ГЭК", alert=True))
    if isinstance(protocol, DayProtocol):
        blocks.append(Heading("Протокол заседания государственной экзаменационной комиссии", 1))
    else:
        blocks.append(Heading("Протокол заседания государственной экзаменационной комиссии "
                              "по защите выпускной квалификационной работы", 1))
    date = datetime.date.fromisoformat(sitting.date).strftime("%d.%m.%Y")
    fields = [("Заседание", sitting.title), ("Дата", date),
              ("Форма проведения", f"заседание проведено {protocol.form}"),
              ("Время", f"указано по часовому поясу {sitting.timezone}")]
    if isinstance(protocol, DayProtocol):
        fields += [("Начало по расписанию", clock(sitting.scheduled_start)),
                   ("Заседание открыто", clock(protocol.opened_at)),
                   ("Время объявления результатов, названное обучающимся",
                    clock(protocol.return_at)),
                   ("Результаты объявлены", clock(protocol.results_at)),
                   ("Заседание закрыто", clock(protocol.closed_at))]
    blocks.append(Table(("", ""), tuple(fields), (1, 3)))
    if isinstance(protocol, DayProtocol):
        blocks += _day(protocol, clock)
    else:
        blocks += _student(protocol, clock)
    blocks += _recordings(protocol.recordings)
    blocks += _endorsement(endorsement, clock)
    return blocks


def _day(p: DayProtocol, clock: _Clock) -> list[Block]:
    names = {s.student.person_id: s.student.name for s in p.students}
    blocks: list[Block] = [
        Heading("Состав комиссии"),
        Table(("Роль", "Ф. И. О.", "На заседании (п. 4.8)", "Очно, в аудитории"),
              tuple((ROLES[c.person.role], c.person.name, ATTENDANCE_MODES[c.mode],
                     clock.spans(c.in_person)) for c in p.commission_attendance),
              (2, 3, 2, 3)),
        Text(f"Присутствовали члены комиссии: {_names(p.members_present)}"),
        Heading("Участники видеоконференции"),
        Table(("Ф. И. О.", "Роль", "Подключения"),
              tuple((a.person.name, ROLES[a.person.role], clock.spans(a.spans))
                    for a in p.attendance), (3, 2, 4)),
        Heading("Ход заседания"),
        Table(("Этап", "Обучающийся", "Начало", "Окончание"),
              tuple((PHASES[e.phase], names.get(e.student or "", ""), clock(e.start),
                     clock(e.end)) for e in p.phases), (3, 3, 2, 2)),
        Heading("Обучающиеся"),
        Table(("№", "Ф. И. О.", "Тема ВКР", "Итог", "Оценка"),
              tuple((str(i), s.student.name, s.info.thesis_title if s.info else "—",
                     _outcome(s, clock), GRADES[s.grade] if s.grade else "—")
                    for i, s in enumerate(p.students, 1)), (1, 4, 5, 3, 2)),
    ]
    if p.failures:
        blocks += [Heading("Технические сбои (п. 7.8)"),
                   Table(("Что не работало", "Начало", "Окончание"),
                         tuple((_failure(f), clock(f.start), clock(f.end))
                               for f in p.failures), (5, 2, 2))]
    pauses = [(s.student.name, clock.span(x)) for s in p.students for x in s.pauses]
    if pauses:
        blocks += [Heading("Приостановки из-за отсутствия кворума (п. 7.2)"),
                   Table(("Обучающийся", "Время"), tuple(pauses), (1, 1))]
    return blocks


def _student(p: StudentProtocol, clock: _Clock) -> list[Block]:
    info = p.info
    blocks: list[Block] = [
        Table(("", ""), (
            ("Обучающийся", p.student.name),
            ("Тема ВКР", info.thesis_title if info else "—"),
            ("Руководитель", info.supervisor if info else "—"),
            ("Рецензент", info.reviewer if info else "—"),
            ("Итог", _outcome(p, clock)),
            ("Время на защиту", _limits(p.limits)),
            *((("Увеличенное время (п. 4.3)", f"на {p.extra_time_percent:g} %"),)
              if p.extra_time_percent else ()),
        ), (1, 3)),
        Heading("Присутствовали"),
        Text(f"Члены комиссии: {_names(p.members_present)}"),
        Text(f"Другие участники: {_names(p.others_present)}"),
        Heading("Идентификация личности (п. 7.5)"),
    ]
    if p.identity:
        blocks.append(Table(("Время", "Решение", "Установил(а)", "Комментарий"), tuple(
            (clock(e.at), "личность установлена" if e.accepted else "личность не установлена",
             _name_of(p, e.by), e.comment or "—") for e in p.identity), (1, 2, 2, 3)))
    else:
        blocks.append(Text("не проводилась"))
    if p.documents_waived is not None:
        w = p.documents_waived
        missing = ", ".join(DOCUMENTS[k] for k in w.missing)
        blocks += [Heading("Документы (п. 7.3)"), Text(
            f"{clock(w.at)}: председатель ГЭК {_name_of(p, w.by)} разрешил(а) начать защиту "
            f"без необходимых документов. Причина: {w.reason}."
            + (f" Не были загружены: {missing}." if missing else ""))]
    if p.phases:
        blocks += [Heading("Ход защиты"), Table(
            ("Этап", "Начало", "Окончание"),
            tuple((PHASES[e.phase], clock(e.start), clock(e.end)) for e in p.phases), (3, 1, 1))]
    blocks.append(Heading("Вопросы, заданные обучающемуся"))
    if p.questions:
        blocks.append(Table(("№", "Время", "Вопрос"), tuple(
            (str(i), clock(q.at), q.text) for i, q in enumerate(p.questions, 1)), (1, 2, 9)))
    else:
        blocks.append(Text("вопросов не задано"))
    if p.absence is not None:
        line = f"{clock(p.absence.at)}: {ABSENCES[p.absence.kind]}"
        if p.absence.description:
            line += f". {p.absence.description}"
        blocks += [Heading("Неявка, сбои и перенос"), Text(line)]
        if p.absence.new_date is not None:
            blocks.append(Text(f"Новая дата защиты: {clock.moment(p.absence.new_date)} "
                               f"({p.sitting.timezone})."))
        if p.absence.proof_on_file:
            blocks.append(Text("Документ, подтверждающий уважительную причину, загружен."))
    notes = [("Потеря связи с обучающимся", clock.span(s)) for s in p.connection_losses]
    notes += [("Приостановка: нет кворума (п. 7.2)", clock.span(s)) for s in p.pauses]
    notes += [(f"Превышено время: {PHASES[o.phase] if o.phase else 'защита в целом'}",
               clock(o.at)) for o in p.overtime]
    if notes:
        blocks += [Heading("Отклонения от регламента"),
                   Table(("Событие", "Время"), tuple(notes), (3, 2))]
    blocks.append(Heading("Решение комиссии (закрытое заседание, п. 7.12)"))
    for r in p.earlier_rounds:
        blocks += [Text(f"Голосование, тур {r.number}: решение не принято (нет простого "
                        f"большинства голосов); повторное голосование объявлено "
                        f"{clock(r.ended_at)}."), _votes(p, r.votes, clock)]
    if p.votes:
        if p.earlier_rounds:
            blocks.append(Text(f"Голосование, тур {len(p.earlier_rounds) + 1}:"))
        blocks.append(_votes(p, p.votes, clock))
    if p.grade is not None:
        decided = (" Голоса разделились поровну; решающий голос председателя (п. 7.12)."
                   if p.decided_by_chair else "")
        blocks.append(Text(f"Оценка: «{GRADES[p.grade]}».{decided} "
                           f"Результаты объявлены: {clock(p.results_at)}."))
    else:
        blocks.append(Text("оценка не выставлялась"))
    return blocks


def _votes(p: StudentProtocol, votes: tuple[Vote, ...], clock: _Clock) -> Table:
    """One round of the open vote; a vote the secretary recorded says so (4.8)."""
    return Table(("Член комиссии", "Оценка", "Время"), tuple(
        (f"{v.member.name} ({ROLES[v.member.role]})" + (
            "" if v.recorded_by is None
            else f"; очно, голос внесён секретарём {_name_of(p, v.recorded_by)}"),
         GRADES[v.grade], clock(v.at)) for v in votes), (3, 2, 1))


def _name_of(p: StudentProtocol, person_id: str) -> str:
    for person in (*p.commission, *p.others_present, *p.members_present):
        if person.person_id == person_id:
            return person.name
    return person_id


def _recordings(files: tuple[RecordingFile, ...]) -> list[Block]:
    blocks: list[Block] = [Heading("Файлы видеозаписи (SHA-256)")]
    if not files:
        return [*blocks, Text("нет завершённых файлов")]
    for f in files:
        blocks += [Text(f"{f.path}, {f.size} байт"), Text(f.sha256)]
    return blocks


def _endorsement(e: Endorsement, clock: _Clock) -> list[Block]:
    blocks: list[Block] = [
        Heading("Согласование и подпись (п. 7.17)"),
        Text("Хэш содержания протокола (SHA-256):"),
        Text(e.content_hash),
    ]
    if e.approvals:
        blocks.append(Table(("Согласовал(а)", "Время"),
                            tuple((name, clock(at)) for name, at in e.approvals), (3, 1)))
    if e.missing:
        blocks.append(Text(f"Ожидается согласование: {', '.join(e.missing)}"))
    if e.signed is not None:
        blocks.append(Text(f"Подписан председателем ГЭК {e.signed[0]}: {clock(e.signed[1])}"))
    else:
        blocks.append(Text("Не подписан."))
    return blocks + key_blocks(e)


def key_blocks(e: Endorsement) -> list[Block]:
    """The fingerprints of the signers' keys and of the server key, for the record."""
    blocks: list[Block] = []
    for (name, _), key in zip(e.approvals, e.approval_keys):
        blocks.append(Text(f"Ключ {name} (SHA-256): {key}"))
    if e.signed is not None and e.signed_key is not None:
        blocks.append(Text(f"Ключ {e.signed[0]} (SHA-256): {e.signed_key}"))
    if e.server_key is not None:
        blocks.append(Text(f"Ключ сервера, подписывающий пакеты документов (SHA-256): "
                           f"{e.server_key}"))
    return blocks


# -- HTML ---------------------------------------------------------------------------

_CSS = (
    "body{font-family:'DejaVu Sans',sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;width:100%;margin:.5em 0}"
    "th,td{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top}"
    ".alert{color:#a00;font-weight:bold}"
)


def render_html(protocol: Protocol, endorsement: Endorsement) -> str:
    """A standalone HTML page; every text from the protocol is escaped."""
    title = "Протокол" if isinstance(protocol, DayProtocol) else (
        f"Протокол: {protocol.student.name}")
    return blocks_to_html(document(protocol, endorsement), title)


def blocks_to_html(blocks: Iterable[Block], title: str) -> str:
    """`blocks` as a standalone HTML page titled `title`; every text is escaped."""
    esc = html.escape
    out = ["<!doctype html><html lang='ru'><head><meta charset='utf-8'>",
           f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            css = " class='alert'" if block.alert else ""
            out.append(f"<p{css}>{esc(block.text)}</p>")
        else:
            out.append("<table>")
            if any(block.header):
                out.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in block.header) + "</tr>")
            for row in block.rows:
                out.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


# -- PDF ----------------------------------------------------------------------------


def find_font(name: str = "DejaVuSans.ttf") -> Path:
    """The path of a DejaVu font file; `ProtocolRenderError` naming the package if none."""
    for folder in FONT_DIRS:
        if (folder / name).is_file():
            return folder / name
    looked = ", ".join(str(d) for d in FONT_DIRS)
    raise ProtocolRenderError(
        f"cannot render the PDF: font {name} not found in {looked}; install the "
        f"{FONT_PACKAGE} package (apt-get install {FONT_PACKAGE})"
    )


def render_pdf(protocol: Protocol, endorsement: Endorsement) -> bytes:
    """The protocol as an A4 PDF. CPU-bound: call it in a thread from async code."""
    return blocks_to_pdf(document(protocol, endorsement), "Протокол заседания ГЭК")


def blocks_to_pdf(blocks: list[Block], title: str) -> bytes:
    """Headings, texts and tables as an A4 PDF (also the hand-over statement)."""
    regular = find_font()
    bold = regular.with_name("DejaVuSans-Bold.ttf")
    pdf = FPDF(format="A4")
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_font("DejaVu", "", regular)
    pdf.add_font("DejaVu", "B", bold if bold.is_file() else regular)
    pdf.set_title(title)
    pdf.add_page()
    for block in blocks:
        if isinstance(block, Heading):
            pdf.set_font("DejaVu", "B", 13 if block.level == 1 else 11)
            pdf.ln(2)
            pdf.multi_cell(0, 6, block.text, align="L", new_x="LMARGIN", new_y="NEXT")
        elif isinstance(block, Text):
            pdf.set_font("DejaVu", "", 9)
            pdf.multi_cell(0, 5, block.text, align="L", new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.set_font("DejaVu", "", 9)
            header = any(block.header)
            with pdf.table(col_widths=block.widths, text_align="LEFT", line_height=5,
                           first_row_as_headings=header) as table:
                for row in ((block.header,) if header else ()) + block.rows:
                    cells = table.row()
                    for cell in row:
                        cells.cell(cell)
            pdf.ln(1)
    return bytes(pdf.output())
