"""E-mail (issue 15, item 2) against a real SMTP server (aiosmtpd) started here, with
STARTTLS, implicit TLS and AUTH LOGIN over a throwaway self-signed certificate that
the mailer verifies through ``mail.ca_file``. Real app, real SQLite, real journal;
only the mailer's clock is fake (a decision waits for its delivery date, 8.11)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import email
import email.policy
import re
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session, SMTP

from defense_room.tls import ensure_self_signed
from orchestrator import events as ev
from orchestrator.appeals import Decision
from orchestrator.model import Role
from server.config import Config, MailConfig, MailSecurity
from server.mail import MailError, Mailer
from storage.appeals import AppealStore
from storage.dayspec import ContactSpec
from storage.invites import InviteStore
from storage.roster import CommissionSpec, DaySpec, RosterStore, StudentSpec
from web_ui.app import create_app
from web_ui.contacts_api import MAIL_CLOCK
from web_ui.keys import DATABASE, INVITES, MAILER

from .conftest import free_port, make_config
from .orchestrator_helpers import on_file
from .test_protocol import START, start_runner
from .test_protocol import Day as ProtocolDay
from .test_protocol import create_day as protocol_day
from .timing import FakeClock

pytestmark = pytest.mark.timeout(60)

MIN = 60.0
USER, PASSWORD = "defense-room", "correct horse battery staple"
LINK_RE = re.compile(r"https?://\S+/j/([A-Za-z0-9_-]+)")


@dataclass
class Mailbox:
    """What the SMTP server accepted, decoded."""

    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                     mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append(auth_data.login.decode())
        ok = (auth_data.login.decode(), auth_data.password.decode()) == (USER, PASSWORD)
        # handled=False: aiosmtpd then answers the refusal itself (535).
        return AuthResult(success=ok, handled=False)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


@dataclass
class Smtp:
    box: Mailbox
    port: int
    ca_file: Path


@contextlib.contextmanager
def smtp_server(tmp_path: Path, *, implicit_tls: bool = False) -> Iterator[Smtp]:
    material = ensure_self_signed(tmp_path / "smtp-tls", "127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(material.cert_file, material.key_file)
    box, port = Mailbox(), free_port()
    # aiosmtpd does not count implicit TLS as TLS for auth_require_tls; it is TLS anyway.
    tls: dict[str, Any] = ({"ssl_context": context, "auth_require_tls": False} if implicit_tls
                           else {"tls_context": context, "require_starttls": True,
                                 "auth_require_tls": True})
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=box.authenticate,
                            auth_required=True, **tls)
    controller.start()
    try:
        yield Smtp(box, port, material.cert_file)
    finally:
        controller.stop()


def mail_config(tmp_path: Path, smtp_port: int, ca_file: Path | None, app_port: int,
                **changes: Any) -> Config:
    (tmp_path / "smtp-password").write_text(PASSWORD + "\n", encoding="utf-8")
    mail = MailConfig(enabled=True, host="127.0.0.1", port=smtp_port, username=USER,
                      password_file=tmp_path / "smtp-password", ca_file=ca_file,
                      sender="defense@univ.example", timeout_s=5, retry_s=60, poll_s=3600,
                      link_base_url=f"http://127.0.0.1:{app_port}")
    return make_config(tmp_path, mail=dataclasses.replace(mail, **changes))


@contextlib.asynccontextmanager
async def running(config: Config, port: int, clock: FakeClock) -> AsyncIterator[web.Application]:
    app = create_app(config)
    app[MAIL_CLOCK] = lambda: clock.now
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield app
    finally:
        await server.close()


async def me(port: int, token: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/api/me",
                               headers={"Authorization": f"Bearer {token}"}) as r:
            return r.status, await r.json(content_type=None)


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def spec(when: datetime.date) -> DaySpec:
    return DaySpec(
        title="Защиты ВКР, ПИ-42", date=when, start=datetime.time(10, 0),
        timezone="Europe/Moscow", norm_control_required=False,
        commission=CommissionSpec("Соколов Андрей", ("Кузнецова Елена", "Морозов Дмитрий"),
                                  "Новикова Мария"),
        students=(StudentSpec("Смирнова Анна", "Тема", "Лебедев Павел", "Орлова Наталья",
                              "Asia/Yekaterinburg", None, (),
                              contact=ContactSpec("anna@student.example", "ru")),
                  StudentSpec("Попов Артём", "Тема 2", "Лебедев Павел", "Орлова Наталья",
                              "Europe/Moscow", None, ())),
        contacts=(("Соколов Андрей", ContactSpec("sokolov@univ.example", "en")),),
    )


async def test_invites_in_russian_and_english_with_working_links(tmp_path: Path) -> None:
    app_port, clock = free_port(), FakeClock(time.time())
    with smtp_server(tmp_path) as smtp:
        config = mail_config(tmp_path, smtp.port, smtp.ca_file, app_port)
        async with running(config, app_port, clock) as app:
            mailer = app[MAILER]
            when = datetime.date.today() + datetime.timedelta(days=5)
            created = await RosterStore(app[DATABASE]).create_day(
                spec(when), expires_at=time.time() + 30 * 86400, now=time.time())
            invites = {i.name: i for i in created.everyone}
            base = f"http://127.0.0.1:{app_port}/j/"
            for name in ("Смирнова Анна", "Соколов Андрей"):
                await mailer.send_invite(day_id=created.day_id,
                                         person_id=invites[name].person_id,
                                         link=base + invites[name].token, by="organizer")
            (ru,) = smtp.box.to("anna@student.example")
            (en,) = smtp.box.to("sokolov@univ.example")
            assert smtp.box.logins == [USER, USER]
            assert ru["Subject"] == "Приглашение на защиту ВКР: Защиты ВКР, ПИ-42"
            assert ru["From"] == "defense@univ.example" and "Смирнова Анна" in ru["To"]
            body = text_of(ru)
            # 10:00 in Moscow is 12:00 in Yekaterinburg, the student's zone.
            assert "как обучающийся" in body
            assert "12:00 (Asia/Yekaterinburg, UTC+05:00)" in body
            assert "Ссылка только ваша" in body
            assert en["Subject"] == "Invitation to the thesis defense: Защиты ВКР, ПИ-42"
            assert "chair of the examination commission" in text_of(en)
            assert "10:00 (Europe/Moscow, UTC+03:00)" in text_of(en)
            for message, role in ((ru, "student"), (en, "chair")):
                match = LINK_RE.search(text_of(message))
                assert match is not None
                status, answer = await me(app_port, match.group(1))
                assert status == 200 and answer["me"]["role"] == role, answer

            # No address, or a person of another day: a clear error, nothing sent.
            with pytest.raises(MailError, match="Попов Артём has no e-mail address") as caught:
                await mailer.send_invite(day_id=created.day_id,
                                         person_id=invites["Попов Артём"].person_id,
                                         link=base + "x", by="organizer")
            assert (caught.value.code, caught.value.status_hint) == ("no_address", 409)
            with pytest.raises(MailError) as caught:
                await mailer.send_invite(day_id=created.day_id + 1,
                                         person_id=invites["Попов Артём"].person_id,
                                         link=base + "x", by="organizer")
            assert caught.value.status_hint == 404
            assert len(smtp.box.messages) == 2

            journal = await app[INVITES].list_journal(created.day_id)
            sent = [(e.person_id, e.detail) for e in journal if e.kind == "mail_sent"]
            assert sent == [(invites["Смирнова Анна"].person_id,
                             {"mail": "invite", "by": "organizer"}),
                            (invites["Соколов Андрей"].person_id,
                             {"mail": "invite", "by": "organizer"})]
            assert not any(i.token in str(e.detail) for e in journal for i in created.everyone)


async def test_mail_off_refuses_clearly(tmp_path: Path) -> None:
    async with running(make_config(tmp_path), free_port(), FakeClock(time.time())) as app:
        assert not app[MAILER].enabled
        with pytest.raises(MailError, match="e-mail is off") as caught:
            await app[MAILER].send_invite(day_id=1, person_id=1, link="http://x/j/y", by="o")
        assert (caught.value.code, caught.value.status_hint) == ("mail_off", 409)


# aiosmtpd warns that its implicit-TLS server takes AUTH without "requiring TLS".
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_implicit_tls_and_a_refused_login(tmp_path: Path) -> None:
    app_port, clock = free_port(), FakeClock(time.time())
    with smtp_server(tmp_path, implicit_tls=True) as smtp:
        config = mail_config(tmp_path, smtp.port, smtp.ca_file, app_port,
                             security=MailSecurity.TLS, port=smtp.port)
        async with running(config, app_port, clock) as app:
            created = await RosterStore(app[DATABASE]).create_day(
                spec(datetime.date.today() + datetime.timedelta(days=5)),
                expires_at=time.time() + 86400, now=time.time())
            student = created.invites[4]  # after the chair, two members, the secretary
            await app[MAILER].send_invite(day_id=created.day_id, person_id=student.person_id,
                                          link="http://127.0.0.1/j/t", by="organizer")
            assert len(smtp.box.messages) == 1
    with smtp_server(tmp_path) as smtp:
        # A wrong password: the server's refusal, named, journaled; nothing delivered.
        (tmp_path / "wrong").write_text("guess\n", encoding="utf-8")
        wrong = mail_config(tmp_path, smtp.port, smtp.ca_file, app_port)
        wrong = dataclasses.replace(wrong, mail=dataclasses.replace(
            wrong.mail, password_file=tmp_path / "wrong"))
        async with running(wrong, app_port, clock) as app:
            with pytest.raises(MailError, match=r"refused the login of 'defense-room': 535"
                               ) as caught:
                await app[MAILER].send_invite(day_id=created.day_id,
                                              person_id=student.person_id,
                                              link="http://127.0.0.1/j/t", by="organizer")
            assert caught.value.status_hint == 503
            journal = await app[INVITES].list_journal(created.day_id)
            failed = [e.detail for e in journal if e.kind == "mail_failed"]
            assert len(failed) == 1 and "refused the login" in failed[0]["error"]
        # Without the CA file the self-signed certificate is not trusted: refused.
        untrusted = mail_config(tmp_path, smtp.port, None, app_port)
        async with running(untrusted, app_port, clock) as app:
            with pytest.raises(MailError, match="failed the TLS check"):
                await app[MAILER].send_invite(day_id=created.day_id,
                                              person_id=student.person_id,
                                              link="http://127.0.0.1/j/t", by="organizer")
        assert smtp.box.messages == [] and set(smtp.box.logins) == {USER}


async def test_a_moved_defense_mails_the_new_date_in_the_students_zone_after_a_restart(
        tmp_path: Path) -> None:
    """7.8 through the real procedure runner. The mail server is down at first: the
    try fails and is journaled, the mail stays queued; after a restart of the app with
    the server up, it goes."""
    app_port, clock = free_port(), FakeClock(START - 120 * MIN)
    with smtp_server(tmp_path) as smtp:
        down = mail_config(tmp_path, free_port(), smtp.ca_file, app_port)  # nobody listens
        async with running(down, app_port, clock) as app:
            db = app[DATABASE]
            day: ProtocolDay = await protocol_day(db, START + 30 * 86400)
            i = day.ids
            await RosterStore(db).update_student(int(i["s1"]), now=clock.now,
                                                 timezone="Asia/Vladivostok")
            await RosterStore(db).set_contact(int(i["s1"]), now=clock.now, by=None,
                                              email="s1@student.example", language="ru")
            runner = await start_runner(db, day, clock)
            try:
                steps: list[tuple[float, list[ev.Event]]] = [
                    (-60 * MIN, [*on_file(i["s1"]), *on_file(i["s2"])]),
                    (-5 * MIN, [ev.ParticipantJoined(now=0, actor=i[p])
                                for p in ("chair", "m1", "m2", "m3", "sec", "s1")]),
                    (0, [ev.OpenSitting(now=0, actor=i["sec"])]),
                    (1, [ev.RecordingStarted(now=0)]),
                    (MIN, [ev.IdentityDecided(now=0, actor=i["sec"], student=i["s1"],
                                              accepted=True)]),
                    (2 * MIN, [ev.AnnounceLimits(now=0, actor=i["chair"])]),
                    (3 * MIN, [ev.StartDefense(now=0, actor=i["sec"], student=i["s1"])]),
                    (4 * MIN, [ev.ParticipantLeft(now=0, actor=i["s1"])]),
                ]
                for when, events in steps:
                    clock.now = START + when
                    for event in events:
                        await runner.submit(event)
                clock.now = START + 20 * MIN
                await runner.run_due()
                new_date = START + 7 * 86400  # 10:00 in Moscow, 17:00 in Vladivostok
                await runner.submit(ev.MoveDefense(
                    now=0, actor=i["chair"], student=i["s1"],
                    failure_description="связь не восстановилась", new_date=new_date))
            finally:
                await runner.stop()
            assert await app[MAILER].run_once() == 0
            journal = await app[INVITES].list_journal(day.day_id)
            (failed,) = [e for e in journal if e.kind == "mail_failed"]
            assert failed.person_id == int(i["s1"]) and failed.detail["mail"] == "moved"
            assert "cannot be reached" in failed.detail["error"]
            assert failed.detail["attempt"] == 1 and not failed.detail["gave_up"]
            assert await app[MAILER].run_once() == 0  # not again before the retry is due
        assert smtp.box.messages == []

        up = mail_config(tmp_path, smtp.port, smtp.ca_file, app_port)
        clock.now += 61  # past retry_s
        async with running(up, app_port, clock) as app:
            await wait_for_mail(smtp.box, 1)
            journal = await app[INVITES].list_journal(day.day_id)
            assert [e.detail["mail"] for e in journal if e.kind == "mail_sent"] == ["moved"]
            assert await app[MAILER].run_once() == 0  # queued once, sent once
    (moved,) = smtp.box.to("s1@student.example")
    (to,) = moved["To"].addresses  # a name with "<" stays a name, one recipient
    assert to.addr_spec == "s1@student.example" and to.display_name.startswith("Иванов Иван <")
    assert moved["Subject"].startswith("Ваша защита ВКР перенесена")
    assert "27 июня 2026, 17:00 (Asia/Vladivostok, UTC+10:00)" in text_of(moved)


async def wait_for_mail(box: Mailbox, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(box.messages) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(box.messages)} of {count} mails arrived")
        await asyncio.sleep(0.05)


async def test_appeal_sitting_invitations_and_the_decision_on_its_delivery_date(
        tmp_path: Path) -> None:
    app_port = free_port()
    now = time.time()
    clock = FakeClock(now)
    with smtp_server(tmp_path) as smtp:
        config = mail_config(tmp_path, smtp.port, smtp.ca_file, app_port)
        async with running(config, app_port, clock) as app:
            db, invites = app[DATABASE], app[INVITES]
            created = await RosterStore(db).create_day(
                spec(datetime.date.today()), expires_at=now + 86400, now=now)
            people = {i.name: i for i in created.everyone}
            student = people["Смирнова Анна"].person_id
            appeals = AppealStore(db)
            appeal = await appeals.file(day_id=created.day_id, student_id=student,
                                        text="Нарушена процедура", filed_by=student,
                                        on_paper=False, deadline=now + 86400, now=now)
            # As AppealService.schedule does it: a day of its own, everyone invited afresh.
            sitting_at = now + 2 * 86400
            sitting = await invites.create_day("Апелляция: Смирнова Анна",
                                               datetime.date.today(), sitting_at,
                                               "Europe/Moscow", now=now)
            for role, name in ((Role.APPEAL_CHAIR, "Белов Олег"),
                               (Role.APPEAL_MEMBER, "Орлова Мария"),
                               (Role.STUDENT, "Смирнова Анна"), (Role.CHAIR, "Соколов Андрей")):
                await invites.issue(sitting, role, name, now + 9 * 86400, now=now)
            await appeals.schedule(appeal.appeal_id, sitting, sitting_at, student, now)
            await app[MAILER].run_once()
            assert len(smtp.box.messages) == 2
            (to_student,) = smtp.box.to("anna@student.example")
            (to_chair,) = smtp.box.to("sokolov@univ.example")
            assert to_student["Subject"] == "Заседание апелляционной комиссии: Смирнова Анна"
            assert to_chair["Subject"] == "Appeal sitting: Смирнова Анна"
            for message, expected in ((to_student, "student"), (to_chair, "chair")):
                match = LINK_RE.search(text_of(message))
                assert match is not None
                status, answer = await me(app_port, match.group(1))
                assert status == 200 and answer["me"]["role"] == expected, answer
                assert answer["day"]["id"] == sitting
            journal = await invites.list_journal(sitting)
            assert sorted(e.detail["mail"] for e in journal if e.kind == "mail_sent") == [
                "appeal_sitting", "appeal_sitting"]
            # The appeal commission has no address on file: journaled as not sent.
            not_sent = [e.detail["reason"] for e in journal if e.kind == "mail_not_sent"]
            assert not_sent == ["no e-mail address on file"] * 2

            # The decision: queued at once, sent on its delivery date and not before.
            delivery = now + 3 * 86400
            await appeals.decide(appeal.appeal_id, Decision.REJECTED, "нарушений нет",
                                 now + 2 * 86400, delivery)
            clock.now = delivery - 1
            await app[MAILER].run_once()
            assert smtp.box.to("anna@student.example") == [to_student]
            clock.now = delivery
            assert await app[MAILER].run_once() == 1
            decision = smtp.box.to("anna@student.example")[-1]
            assert decision["Subject"] == "Решение по вашей апелляции"
            assert "Апелляция отклонена" in text_of(decision)
            assert "нарушений нет" in text_of(decision)
            everything = [e for d in (created.day_id, sitting)
                          for e in await invites.list_journal(d)]
            on_defense_day = await invites.list_journal(created.day_id)
            assert [(e.person_id, e.detail["mail"]) for e in on_defense_day
                    if e.kind == "mail_sent"] == [(student, "appeal_decision")]
            assert not LINK_RE.search(str([e.detail for e in everything]))
