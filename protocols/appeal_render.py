"""The appeal sitting's protocol as a document (clauses 8.7-8.9): HTML and PDF, in
Russian, times in the sitting's time zone.

The blocks, the clock, the PDF writer and the font are those of the defense protocols
(`protocols.render`), so both kinds of protocol look and read alike; only what the
appeal protocol says is here. The `Endorsement` (approvals by the members of the
appeal commission, the appeal chair's signature) is shown under the protocol and is
not part of its content hash.
"""

from __future__ import annotations

import datetime

from orchestrator.appeal_model import AppealPhase
from orchestrator.appeal_protocol import AppealProtocol
from orchestrator.appeals import Decision
from orchestrator.model import Role

from .render import (
    GRADES,
    ROLES,
    Block,
    Endorsement,
    Heading,
    Table,
    Text,
    _Clock,
    _names,
    _recordings,
    blocks_to_html,
    blocks_to_pdf,
    key_blocks,
)

APPEAL_ROLES = {
    **ROLES, Role.APPEAL_CHAIR: "председатель апелляционной комиссии",
    Role.APPEAL_MEMBER: "член апелляционной комиссии",
}
APPEAL_PHASES = {
    AppealPhase.WAITING: "ожидание",
    AppealPhase.NAMING: "открытие заседания: объявление участников (п. 8.7)",
    AppealPhase.HEARING: "рассмотрение апелляции",
    AppealPhase.DECIDED: "решение принято",
    AppealPhase.CLOSED: "заседание закрыто",
}
DECISIONS = {
    Decision.REJECTED: "апелляция отклонена: изложенные в ней сведения о нарушениях "
                       "процедуры не подтвердились и (или) не повлияли на результат "
                       "государственного аттестационного испытания (п. 8.8)",
    Decision.UPHELD: "апелляция удовлетворена: изложенные в ней сведения о допущенных "
                     "нарушениях процедуры подтвердились и повлияли на результат; результат "
                     "защиты ВКР подлежит аннулированию (п. 8.8)",
}
TITLE = "Протокол заседания апелляционной комиссии"


def appeal_document(p: AppealProtocol, endorsement: Endorsement) -> list[Block]:
    """The appeal protocol as blocks, top to bottom."""
    clock = _Clock(p.sitting)
    defense = p.appeal.defense
    blocks: list[Block] = []
    if endorsement.signed is None:
        blocks.append(Text("ПРОЕКТ: не подписан председателем апелляционной комиссии",
                           alert=True))
    date = datetime.date.fromisoformat(p.sitting.date).strftime("%d.%m.%Y")
    blocks += [
        Heading(TITLE, 1),
        Table(("", ""), (
            ("Заседание", p.sitting.title), ("Дата", date),
            ("Форма проведения", f"заседание проведено {p.form}"),
            ("Время", f"указано по часовому поясу {p.sitting.timezone}"),
            ("Начало по расписанию", clock(p.sitting.scheduled_start)),
            ("Заседание открыто", clock(p.opened_at)),
            ("Решение принято", clock(p.decided_at)),
            ("Заседание закрыто", clock(p.closed_at)),
        ), (1, 3)),
        Heading("Апелляция"),
        Table(("", ""), (
            ("Номер апелляции", str(p.appeal.appeal_id)),
            ("Обучающийся", defense.student),
            ("Подана", f"{clock(p.appeal.filed_at)}, " + (
                "на бумаге, внесена секретарём ГЭК" if p.appeal.on_paper
                else "через личный кабинет")),
            ("Обжалуемая защита", f"{defense.title}, "
             f"{datetime.date.fromisoformat(defense.date).strftime('%d.%m.%Y')}"),
            ("Тема ВКР", defense.thesis_title or "—"),
            ("Оценка на защите", GRADES[defense.grade] if defense.grade else "—"),
            ("Результаты объявлены", clock(defense.results_at)),
        ), (1, 3)),
        Heading("Доводы апелляции о нарушении процедуры (п. 8.1)"),
        Text(p.appeal.grounds),
        Heading("Заключение председателя ГЭК о соблюдении процедуры (п. 8.3)"),
        Text(p.appeal.conclusion or "не представлено"),
        Heading("Состав апелляционной комиссии"),
        Table(("Роль", "Ф. И. О.", "На заседании"), tuple(
            (APPEAL_ROLES[c.role], c.name,
             "присутствовал(а)" if c in p.members_present else "отсутствовал(а)")
            for c in p.commission), (2, 3, 2)),
        Text(f"Присутствовали члены апелляционной комиссии: {_names(p.members_present)}"),
        Text("Обучающийся присутствовал(а) на заседании." if p.student_present else
             "Заседание проведено в отсутствие обучающегося (п. 8.6)."),
        Heading("Участники видеоконференции"),
        Table(("Ф. И. О.", "Роль", "Подключения"), tuple(
            (a.person.name, APPEAL_ROLES[a.person.role], clock.spans(a.spans))
            for a in p.attendance), (3, 2, 4)),
        Heading("Названы вслух председателем апелляционной комиссии (п. 8.7)"),
    ]
    if p.named:
        blocks.append(Table(("№", "Ф. И. О.", "Роль", "Время"), tuple(
            (str(i), n.person.name, APPEAL_ROLES[n.person.role], clock(n.at))
            for i, n in enumerate(p.named, 1)), (1, 4, 3, 2)))
    else:
        blocks.append(Text("никто не назван"))
    blocks += [
        Heading("Ход заседания"),
        Table(("Этап", "Начало", "Окончание"), tuple(
            (APPEAL_PHASES[e.phase], clock(e.start), clock(e.end)) for e in p.phases),
            (3, 1, 1)),
        Heading("Решение апелляционной комиссии (п. 8.8, 8.9)"),
    ]
    if p.decision is not None:
        blocks += [Text(f"Решение: {DECISIONS[p.decision]}."),
                   Text(f"Обоснование: {p.reasoning or '—'}"),
                   Text("Решение окончательно и пересмотру не подлежит (п. 8.9); оно "
                        "доводится до сведения обучающегося на следующий рабочий день "
                        "со дня заседания (п. 8.11).")]
    else:
        blocks.append(Text("решение не принято"))
    blocks += [Heading("Видеозапись заседания (п. 8.7, 8.10)"),
               Text(f"Запись велась: {clock.spans(p.recording)}")]
    blocks += _recordings(p.recordings)
    blocks += _endorsement(endorsement, clock)
    return blocks


def _endorsement(e: Endorsement, clock: _Clock) -> list[Block]:
    blocks: list[Block] = [
        Heading("Ознакомление, согласование и подпись (п. 8.8)"),
        Text("Хэш содержания протокола (SHA-256):"),
        Text(e.content_hash),
    ]
    if e.approvals:
        blocks.append(Table(("Согласовал(а)", "Время"),
                            tuple((name, clock(at)) for name, at in e.approvals), (3, 1)))
    if e.missing:
        blocks.append(Text(f"Ожидается согласование: {', '.join(e.missing)}"))
    if e.signed is not None:
        blocks.append(Text(f"Подписан председателем апелляционной комиссии {e.signed[0]}: "
                           f"{clock(e.signed[1])}"))
    else:
        blocks.append(Text("Не подписан."))
    return blocks + key_blocks(e)


def render_appeal_html(protocol: AppealProtocol, endorsement: Endorsement) -> str:
    """A standalone HTML page; every text from the protocol is escaped."""
    return blocks_to_html(appeal_document(protocol, endorsement),
                          f"{TITLE}: {protocol.appeal.defense.student}")


def render_appeal_pdf(protocol: AppealProtocol, endorsement: Endorsement) -> bytes:
    """The appeal protocol as an A4 PDF. CPU-bound: call it in a thread from async code."""
    return blocks_to_pdf(appeal_document(protocol, endorsement), TITLE)
