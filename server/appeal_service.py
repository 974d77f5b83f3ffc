"""Appeals on the server (section 8): the rules of `orchestrator.appeals` applied to
the stored days, invites, holds and hosted procedures.

- filing (the student, or the secretary for one received on paper) checks the
  deadline in working days and places the hold on the recordings (R1);
- the commission chair writes the conclusion on the procedure (8.3);
- scheduling (the secretary) creates the appeal sitting as a day of its own,
  with invites for the appeal commission, the student and the commission chair,
  at least a day ahead and within two working days of filing (8.4, 8.5);
- the decision is taken at that sitting (`AppealSession`); its host calls
  `record_decision`, which stores it, annuls an upheld result and ends the hold;
- the student's links outlive the decision's delivery on the next working day
  (8.11): filing extends their defense-day link to the latest delivery the hearing
  deadline allows, recording the decision extends it, and their link to the
  sitting, to the actual delivery (`invite_policy.extend_appellant`);
- an upheld appeal's repeat is a new day, flagged so that it starts only with a
  member of the appeal commission present (8.8), and not appealable (8.12).
"""

from __future__ import annotations

import datetime
import logging
import time
import zoneinfo
from collections.abc import Awaitable, Callable
import dataclasses
from dataclasses import dataclass
from typing import Any

from orchestrator.appeal_session import AppealSnapshot
from orchestrator.appeals import (
    AppealRefused,
    Decision,
    Defense,
    check_filing,
    check_repeat_date,
    check_schedule,
    decision_delivery,
    filing_deadline,
    latest_delivery,
)
from orchestrator.model import Role, Snapshot, StudentStatus
from orchestrator.workdays import WorkCalendar, local_date
from recordings.archive_store import ArchiveStore
from recordings.errors import HoldError
from storage.appeals import Appeal, AppealStore
from storage.db import Database
from storage.dayspec import ContactSpec
from storage.invites import InviteStore, IssuedInvite, expires_at_for_day
from storage.roster import (
    CommissionSpec,
    DaySpec,
    DocumentSpec,
    RosterStore,
    StudentSpec,
)

from .config import Config
from .dayhost import DayHost
from .invite_policy import (
    extend_appellant,
    extend_office,
    extend_students_to_appeal_deadline,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Created:
    appeal: Appeal
    day_id: int
    invites: tuple[IssuedInvite, ...]


class AppealService:
    def __init__(self, config: Config, db: Database,
                 host: Callable[[int], Awaitable[DayHost]],
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._db = db
        self._store = AppealStore(db)
        self._invites = InviteStore(db)
        self._host = host  # DayHosts.host
        self._clock = clock

    @property
    def store(self) -> AppealStore:
        return self._store

    @property
    def clock(self) -> Callable[[], float]:
        """The wall clock the appeal rules are applied with; the appeals API reads
        links and the delivery of decisions (8.11) by the same one."""
        return self._clock

    @property
    def calendar(self) -> WorkCalendar:
        c = self._config.calendar
        return WorkCalendar(weekend=frozenset(c.weekend), holidays=frozenset(c.holidays))

    def state_for(self, role: Role, state: dict[str, Any], timezone: str) -> dict[str, Any]:
        """The procedure's state (`snapshot_to_json`) as `role` may see it: at an appeal
        sitting the student learns the decision, its reasoning and when it was taken
        only from its delivery on the next working day (8.11), by this service's clock,
        as the appeals API tells it. Everyone else sees the state as it is (S3)."""
        decided_at = state.get("decided_at")
        if role is not Role.STUDENT or state.get("kind") != "appeal" or decided_at is None:
            return state
        if self._clock() >= decision_delivery(decided_at, timezone, self.calendar):
            return state
        return {**state, "decision": None, "reasoning": None, "decided_at": None}

    def message_for(self, role: Role, message: dict[str, Any], timezone: str
                    ) -> dict[str, Any]:
        """A ``state`` or ``welcome`` message as `role` may see it (`state_for`)."""
        state = message.get("state")
        if message.get("type") not in ("state", "welcome") or not isinstance(state, dict):
            return message
        shown = self.state_for(role, state, timezone)
        return message if shown is state else {**message, "state": shown}

    async def _defense_host(self, day_id: int) -> tuple[DayHost, Snapshot]:
        host = await self._host(day_id)
        snapshot = host.snapshot
        if not isinstance(snapshot, Snapshot):
            raise AppealRefused("an appeal sitting is not itself appealed", "8.9")
        return host, snapshot

    # -- filing ----------------------------------------------------------------------

    async def deadline_for(self, day_id: int) -> float | None:
        """Until when an appeal against `day_id` may be filed (8.2), for the student's
        page; None where none may be: no results yet, a repeated defense (8.12), or the
        day is itself an appeal sitting."""
        try:
            host, snapshot = await self._defense_host(day_id)
        except AppealRefused:
            return None
        if snapshot.results_at is None or host.loaded.kind == "repeat":
            return None
        return filing_deadline(snapshot.results_at, host.loaded.stored.timezone, self.calendar)

    async def file(self, day_id: int, student_id: int, text: str, *, filed_by: int,
                   on_paper: bool) -> Appeal:
        if not text.strip():
            raise AppealRefused("the appeal needs its text: what was violated", "8.1")
        host, snapshot = await self._defense_host(day_id)
        statuses = dict(snapshot.statuses)
        if statuses.get(str(student_id)) is not StudentStatus.DEFENDED:
            raise AppealRefused(f"person {student_id} has no defense result on this day", "8.1")
        existing = [a for a in await self._store.for_day(day_id) if a.student_id == student_id]
        defense = Defense(results_at=snapshot.results_at,
                          timezone=host.loaded.stored.timezone,
                          repeat=host.loaded.kind == "repeat")
        now = self._clock()
        deadline = check_filing(defense, now, self.calendar, already_filed=bool(existing))
        appeal = await self._store.file(day_id=day_id, student_id=student_id, text=text.strip(),
                                        filed_by=filed_by, on_paper=on_paper,
                                        deadline=deadline, now=now)
        try:
            await ArchiveStore(self._db).place_hold(day_id, student_id, filed_by,
                                                    f"appeal {appeal.appeal_id}", now)
        except HoldError:
            logger.info("recordings of %s already held", student_id)
        tz = host.loaded.stored.timezone
        await extend_appellant(self._invites, self._config, (student_id,),
                               latest_delivery(appeal.filed_at, tz, self.calendar), tz, now)
        return appeal

    async def conclude(self, appeal_id: int, text: str, by: int) -> Appeal:
        if not text.strip():
            raise AppealRefused("the conclusion needs its text", "8.3")
        return await self._store.conclude(appeal_id, text.strip(), by, self._clock())

    # -- the sitting ----------------------------------------------------------------------

    async def schedule(self, appeal_id: int, sitting_at: float, appeal_chair: str,
                       appeal_members: list[str], by: int) -> Created:
        appeal = await self._store.get(appeal_id)
        host, _ = await self._defense_host(appeal.day_id)
        tz = host.loaded.stored.timezone
        now = self._clock()
        check_schedule(appeal.filed_at, sitting_at, now, tz, self.calendar,
                       decided=appeal.decision is not None)
        if appeal.sitting_day_id is not None:
            raise AppealRefused(f"the sitting is already scheduled (day {appeal.sitting_day_id})",
                                "8.4")
        names = [n.strip() for n in (appeal_chair, *appeal_members)]
        if not all(names) or not appeal_members:
            raise AppealRefused("name the appeal chair and at least one member", "8.4")
        date = local_date(sitting_at, tz)
        day_id = await self._invites.create_day(
            f"Апелляция: {host.loaded.name(str(appeal.student_id))}", date, sitting_at, tz,
            now=now)
        expires = expires_at_for_day(date, tz, self._config.invites.valid_days_after)
        people = [(Role.APPEAL_CHAIR, names[0]), *((Role.APPEAL_MEMBER, n) for n in names[1:]),
                  (Role.STUDENT, host.loaded.name(str(appeal.student_id))),
                  (Role.CHAIR, host.loaded.day.chair.name)]
        invites = tuple([await self._invites.issue(day_id, role, name, expires, now=now)
                         for role, name in people])
        appeal = await self._store.schedule(appeal_id, day_id, sitting_at, by, now)
        return Created(appeal, day_id, invites)

    async def record_decision(self, host: DayHost) -> Appeal | None:
        """The appeal sitting `host` decided: store it (once), annul, end the hold, and
        keep the student's links working past the decision's delivery (8.11)."""
        snapshot = host.snapshot
        appeal_id = host.loaded.appeal_id
        if not isinstance(snapshot, AppealSnapshot) or snapshot.decision is None or appeal_id is None:
            return None
        assert snapshot.decided_at is not None
        appeal = await self._store.get(appeal_id)
        tz = host.loaded.stored.timezone
        if appeal.decision is not None:
            await self._extend_appellant(host, appeal, tz)  # again after a crash: harmless
            return appeal
        delivery = decision_delivery(snapshot.decided_at, tz, self.calendar)
        appeal = await self._store.decide(appeal_id, snapshot.decision,
                                          snapshot.reasoning or "", snapshot.decided_at, delivery)
        await self._extend_appellant(host, appeal, tz)
        chair = next(p for p in host.loaded.day.people if p.role is Role.APPEAL_CHAIR)
        try:
            await ArchiveStore(self._db).release_hold(
                appeal.day_id, appeal.student_id, int(chair.person_id),
                snapshot.decision, f"appeal {appeal_id} decided", snapshot.decided_at)
        except HoldError:
            logger.warning("appeal %s decided but no hold was active", appeal_id)
        return appeal

    async def _extend_appellant(self, host: DayHost, appeal: Appeal, timezone: str) -> None:
        """The student's links (defense day and sitting) outlive the delivery (8.11)."""
        if appeal.delivery_at is None:
            return
        at_sitting = [int(p.person_id) for p in host.loaded.day.people
                      if p.role is Role.STUDENT]
        await extend_appellant(self._invites, self._config, (appeal.student_id, *at_sitting),
                               appeal.delivery_at, timezone, self._clock())

    async def results_announced(self, host: DayHost) -> None:
        """Students' links now last until their appeal deadline (clause 8.2)."""
        snapshot = host.snapshot
        if isinstance(snapshot, Snapshot) and snapshot.results_at is not None:
            await extend_students_to_appeal_deadline(
                self._invites, host.day_id, snapshot.results_at, host.loaded.stored.timezone,
                self.calendar, self._clock())

    # -- the repeat ------------------------------------------------------------------------

    async def schedule_repeat(self, appeal_id: int, starts_at: float, by: int) -> Created:
        appeal = await self._store.get(appeal_id)
        if appeal.decision is not Decision.UPHELD:
            raise AppealRefused("a defense is repeated only after an upheld appeal", "8.8")
        host, _ = await self._defense_host(appeal.day_id)
        loaded = host.loaded
        tz = loaded.stored.timezone
        now = self._clock()
        end = self._config.calendar.end_of_studies
        if end is not None:
            check_repeat_date(starts_at, now, end, tz)
        elif starts_at <= now:
            raise AppealRefused("the repeated defense must be in the future", "8.8")
        student = loaded.students.get(str(appeal.student_id))
        if student is None:
            raise AppealRefused("the student is not on the day's roster", "8.8")
        people = loaded.day.people
        spec_date = local_date(starts_at, tz)
        start = datetime.datetime.fromtimestamp(starts_at, zoneinfo.ZoneInfo(tz))
        spec = DaySpec(
            title=f"Повторная защита: {student.name}", date=spec_date,
            start=start.time().replace(second=0, microsecond=0), timezone=tz,
            norm_control_required=False,
            commission=CommissionSpec(
                chair=loaded.day.chair.name,
                members=tuple(p.name for p in people if p.role is Role.MEMBER),
                secretary=next(p.name for p in people if p.role is Role.SECRETARY)),
            students=(StudentSpec(
                name=student.name, thesis_title=student.thesis_title,
                supervisor=student.supervisor, reviewer=student.reviewer,
                timezone=student.timezone,
                consent_at=None if student.consent_at is None else
                datetime.datetime.fromtimestamp(student.consent_at, zoneinfo.ZoneInfo(tz)),
                documents=tuple(DocumentSpec(d.kind, datetime.datetime.fromtimestamp(
                    d.uploaded_at, zoneinfo.ZoneInfo(tz))) for d in student.documents),
                extra_time_percent=student.extra_time_percent),),
        )
        # The repeated defense's people keep their e-mail and language (the office
        # mails their invites like any day's).
        named = {spec.commission.chair, *spec.commission.members, spec.commission.secretary,
                 student.name, student.supervisor, student.reviewer}
        spec = dataclasses.replace(spec, contacts=tuple(
            (p.name, ContactSpec(p.email, p.language))
            for p in await self._invites.list_people(appeal.day_id)
            if p.name in named and p.email is not None and p.role is not Role.APPEAL_CHAIR
            and p.role is not Role.APPEAL_MEMBER))
        expires = expires_at_for_day(spec_date, tz, self._config.invites.valid_days_after)
        created = await RosterStore(self._db).create_day(spec, expires_at=expires, now=now)
        await extend_office(self._invites, self._config, created.day_id, spec_date, tz, now)
        witnesses: list[IssuedInvite] = []
        if appeal.sitting_day_id is not None:
            for person in await self._invites.list_people(appeal.sitting_day_id):
                if person.role in (Role.APPEAL_CHAIR, Role.APPEAL_MEMBER):
                    witness = await self._invites.issue(
                        created.day_id, person.role, person.name, expires, now=now)
                    witnesses.append(witness)
                    if person.email is not None:
                        await RosterStore(self._db).set_contact(
                            witness.person_id, now=now, by=by, email=person.email,
                            language=person.language)
        appeal = await self._store.set_repeat(appeal_id, created.day_id, by, now)
        return Created(appeal, created.day_id, (*created.everyone, *witnesses))
