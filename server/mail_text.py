"""The words of every mail the server sends (`server.mail`), in Russian and English.

Each function returns (subject, plain-text body) for one person in their language,
with times in their own time zone. Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime
import zoneinfo

from orchestrator.model import Role

Text = tuple[str, str]

_ROLES = {
    "ru": {Role.CHAIR: "председатель ГЭК", Role.MEMBER: "член ГЭК",
           Role.SECRETARY: "секретарь ГЭК", Role.STUDENT: "обучающийся",
           Role.SUPERVISOR: "руководитель ВКР", Role.REVIEWER: "рецензент",
           Role.OBSERVER: "наблюдатель", Role.APPEAL_CHAIR: "председатель апелляционной комиссии",
           Role.APPEAL_MEMBER: "член апелляционной комиссии"},
    "en": {Role.CHAIR: "chair of the examination commission",
           Role.MEMBER: "member of the examination commission",
           Role.SECRETARY: "secretary of the examination commission", Role.STUDENT: "student",
           Role.SUPERVISOR: "thesis supervisor", Role.REVIEWER: "reviewer",
           Role.OBSERVER: "observer", Role.APPEAL_CHAIR: "chair of the appeal commission",
           Role.APPEAL_MEMBER: "member of the appeal commission"},
}
_MONTHS = {
    "ru": ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
           "сентября", "октября", "ноября", "декабря"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}


def _lang(language: str) -> str:
    return "en" if language == "en" else "ru"


def when(moment: float, timezone: str, language: str) -> str:
    """`moment` as a person reads it: "15 июня 2026, 10:00 (Europe/Moscow, UTC+03:00)"."""
    local = datetime.datetime.fromtimestamp(moment, zoneinfo.ZoneInfo(timezone))
    offset = local.strftime("%z")
    utc = f"UTC{offset[:3]}:{offset[3:]}"
    lang = _lang(language)
    month = _MONTHS[lang][local.month - 1]
    date = (f"{local.day} {month} {local.year}" if lang == "ru"
            else f"{month} {local.day}, {local.year}")
    return f"{date}, {local:%H:%M} ({timezone}, {utc})"


def role_name(role: Role, language: str) -> str:
    return _ROLES[_lang(language)][Role(role)]


def invite(*, name: str, role: Role, day_title: str, starts_at: float, timezone: str,
           link: str, language: str) -> Text:
    """The personal invitation to a defense day."""
    at = when(starts_at, timezone, language)
    if _lang(language) == "en":
        return (f"Invitation to the thesis defense: {day_title}",
                f"Dear {name},\n\n"
                f"You are invited to \"{day_title}\" as {role_name(role, 'en')}.\n"
                f"It starts on {at}.\n\n"
                f"Your personal link:\n{link}\n\n"
                "The link is yours alone: do not forward it. Open it in a browser on the"
                " day to check your camera and microphone and to join; nothing needs"
                " installing.\n")
    return (f"Приглашение на защиту ВКР: {day_title}",
            f"Здравствуйте, {name}!\n\n"
            f"Вы приглашены на «{day_title}» как {role_name(role, 'ru')}.\n"
            f"Начало: {at}.\n\n"
            f"Ваша персональная ссылка:\n{link}\n\n"
            "Ссылка только ваша: не пересылайте её. Откройте её в браузере в день защиты,"
            " чтобы проверить камеру и микрофон и подключиться; ничего устанавливать"
            " не нужно.\n")


def moved(*, name: str, day_title: str, new_date: float, timezone: str,
          language: str) -> Text:
    """A defense moved after a technical failure (clause 7.8): the new date."""
    at = when(new_date, timezone, language)
    if _lang(language) == "en":
        return (f"Your thesis defense has been moved: {day_title}",
                f"Dear {name},\n\n"
                f"Because of a technical failure your defense at \"{day_title}\" was moved"
                f" by the chair of the commission (clause 7.8).\n"
                f"New date: {at}.\n\n"
                "Your personal link shows the new date; the secretary will tell you how to"
                " join that day.\n")
    return (f"Ваша защита ВКР перенесена: {day_title}",
            f"Здравствуйте, {name}!\n\n"
            f"Из-за технического сбоя председатель ГЭК перенёс вашу защиту"
            f" («{day_title}», п. 7.8).\n"
            f"Новая дата: {at}.\n\n"
            "Новая дата видна и по вашей персональной ссылке; как подключиться в этот день,"
            " сообщит секретарь.\n")


def appeal_sitting(*, name: str, role: Role, student: str, sitting_at: float, timezone: str,
                   link: str, language: str) -> Text:
    """The invitation to an appeal sitting (clause 8.5), with a fresh personal link."""
    at = when(sitting_at, timezone, language)
    if _lang(language) == "en":
        return (f"Appeal sitting: {student}",
                f"Dear {name},\n\n"
                f"You are invited to the appeal commission's sitting on the appeal of"
                f" {student}, as {role_name(role, 'en')} (clause 8.5).\n"
                f"It starts on {at}, by videoconference.\n\n"
                f"Your personal link:\n{link}\n\n"
                "The link is yours alone: do not forward it. Any link to this sitting you"
                " were given before no longer works.\n")
    return (f"Заседание апелляционной комиссии: {student}",
            f"Здравствуйте, {name}!\n\n"
            f"Вы приглашены на заседание апелляционной комиссии по апелляции"
            f" ({student}) как {role_name(role, 'ru')} (п. 8.5).\n"
            f"Начало: {at}, в режиме видеоконференции.\n\n"
            f"Ваша персональная ссылка:\n{link}\n\n"
            "Ссылка только ваша: не пересылайте её. Ссылки на это заседание, полученные"
            " раньше, больше не действуют.\n")


def appeal_decision(*, name: str, decision: str, reasoning: str, decided_at: float,
                    timezone: str, language: str) -> Text:
    """The appeal commission's decision, on the day it reaches the student (8.11)."""
    at = when(decided_at, timezone, language)
    upheld = decision == "upheld"
    if _lang(language) == "en":
        outcome = ("The appeal is upheld: the result of your defense is annulled and you"
                   " will defend again, with a member of the appeal commission present"
                   " (clause 8.8)." if upheld else "The appeal is rejected: the result of"
                   " your defense stands.")
        return ("Decision on your appeal",
                f"Dear {name},\n\n"
                f"The appeal commission decided on your appeal on {at}.\n"
                f"{outcome}\n\nReasons: {reasoning or '—'}\n\n"
                "The decision is final (clause 8.11).\n")
    outcome = ("Апелляция удовлетворена: результат вашей защиты аннулирован, вы пройдёте"
               " защиту повторно в присутствии члена апелляционной комиссии (п. 8.8)."
               if upheld else "Апелляция отклонена: результат вашей защиты остаётся в силе.")
    return ("Решение по вашей апелляции",
            f"Здравствуйте, {name}!\n\n"
            f"Апелляционная комиссия приняла решение по вашей апелляции {at}.\n"
            f"{outcome}\n\nОбоснование: {reasoning or '—'}\n\n"
            "Решение окончательное (п. 8.11).\n")
