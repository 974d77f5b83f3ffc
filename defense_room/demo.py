"""A ready-made defense day for trying the server out.

`defense-room serve --demo` creates one day with a full commission, three
students (each with consent and every document on file, so the whole procedure
can be run), their supervisor and reviewer, and an observer; then it prints one
invite link per person.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Iterable

from orchestrator.documents import ALWAYS_REQUIRED
from storage.db import Database
from storage.invites import InviteStore, IssuedInvite, Role, expires_at_for_day
from storage.roster import (
    CommissionSpec,
    DaySpec,
    DocumentSpec,
    RosterStore,
    StudentSpec,
)

DEMO_TITLE = "Demo defense day — Applied Informatics, group 42"

# Fictional people; the names follow the usual Russian "surname name
# patronymic" order so that the UI is tried on realistic Cyrillic text.
DEMO_PEOPLE: tuple[tuple[Role, str], ...] = (
    (Role.CHAIR, "Соколов Андрей Викторович"),
    (Role.MEMBER, "Кузнецова Елена Сергеевна"),
    (Role.MEMBER, "Морозов Дмитрий Алексеевич"),
    (Role.MEMBER, "Волкова Ольга Николаевна"),
    (Role.MEMBER, "Лебедев Павел Игоревич"),
    (Role.SECRETARY, "Новикова Мария Андреевна"),
    (Role.STUDENT, "Иванов Иван Петрович"),
    (Role.STUDENT, "Смирнова Анна Дмитриевна"),
    (Role.STUDENT, "Попов Артём Евгеньевич"),
    # One supervisor and one reviewer for every student: one link each (rule P1).
    (Role.SUPERVISOR, "Зайцев Игорь Олегович"),
    (Role.REVIEWER, "Орлова Наталья Викторовна"),
    (Role.OBSERVER, "Белова Татьяна Андреевна"),
)

DEMO_THESES = (
    "Распознавание жестов на мобильных устройствах",
    "Планирование расписания экзаменов методом ветвей и границ",
    "Сжатие временных рядов датчиков без потерь",
)


def demo_spec(now: float, tz: str) -> DaySpec:
    moment = datetime.datetime.fromtimestamp(now, tz=zoneinfo.ZoneInfo(tz))
    filed = moment - datetime.timedelta(days=7)
    names = {role: [n for r, n in DEMO_PEOPLE if r is role] for role in Role}
    return DaySpec(
        title=DEMO_TITLE, date=moment.date(),
        start=moment.time().replace(second=0, microsecond=0), timezone=tz,
        norm_control_required=False,
        commission=CommissionSpec(chair=names[Role.CHAIR][0],
                                  members=tuple(names[Role.MEMBER]),
                                  secretary=names[Role.SECRETARY][0]),
        students=tuple(
            StudentSpec(name=name, thesis_title=title, supervisor=names[Role.SUPERVISOR][0],
                        reviewer=names[Role.REVIEWER][0], timezone=tz,
                        consent_at=filed - datetime.timedelta(days=3),
                        documents=tuple(DocumentSpec(kind, filed) for kind in ALWAYS_REQUIRED))
            for name, title in zip(names[Role.STUDENT], DEMO_THESES, strict=True)),
        observers=tuple(names[Role.OBSERVER]),
    )


async def create_demo_day(
    db: Database,
    now: float,
    tz: str = "Europe/Moscow",
    valid_days_after: int = 1,
    office_valid_days_after: int = 40,
) -> list[IssuedInvite]:
    """Create today's demo day (in time zone `tz`) and invite everyone.

    The day starts at `now`; invites expire at the end of today plus
    `valid_days_after` days. Returns the invites in DEMO_PEOPLE order.
    """
    spec = demo_spec(now, tz)
    expires_at = expires_at_for_day(spec.date, tz, valid_days_after)
    created = await RosterStore(db).create_day(spec, expires_at=expires_at, now=now)
    await InviteStore(db).extend(
        created.day_id, (Role.CHAIR, Role.SECRETARY),
        expires_at_for_day(spec.date, tz, office_valid_days_after), now=now)
    return list(created.everyone)


def format_invite_lines(invites: Iterable[IssuedInvite], base_url: str) -> list[str]:
    """One aligned line per person: role, name, personal join link."""
    base_url = base_url.rstrip("/")
    return [
        f"{invite.role:<10} {invite.name:<32} {base_url}/j/{invite.token}" for invite in invites
    ]
