"""A ready-made defense day for trying the server out.

`defense-room demo` (or a developer) creates one day with a full committee
and three students, and prints one invite link per person.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Iterable

from storage.invites import InviteStore, IssuedInvite, Role, expires_at_for_day

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
)


async def create_demo_day(
    store: InviteStore,
    now: float,
    tz: str = "Europe/Moscow",
    valid_days_after: int = 1,
) -> list[IssuedInvite]:
    """Create today's demo day (in time zone `tz`) and invite everyone.

    The day starts at `now`; invites expire at the end of today plus
    `valid_days_after` days. Returns the invites in DEMO_PEOPLE order.
    """
    today = datetime.datetime.fromtimestamp(now, tz=zoneinfo.ZoneInfo(tz)).date()
    day_id = await store.create_day(DEMO_TITLE, today, now, tz, now=now)
    expires_at = expires_at_for_day(today, tz, valid_days_after)
    return [
        await store.issue(day_id, role, name, expires_at, now=now) for role, name in DEMO_PEOPLE
    ]


def format_invite_lines(invites: Iterable[IssuedInvite], base_url: str) -> list[str]:
    """One aligned line per person: role, name, personal join link."""
    base_url = base_url.rstrip("/")
    return [
        f"{invite.role:<10} {invite.name:<32} {base_url}/j/{invite.token}" for invite in invites
    ]
