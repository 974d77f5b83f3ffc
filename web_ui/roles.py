"""Who may call the HTTP API: each set of roles once, named for who is in it.

The core's sets stay in `orchestrator.model` and are used as they are:
`COMMISSION_ROLES` (chair, members, secretary: read the protocols, the queue and
the students' documents, register signing keys), `APPEAL_ROLES` (the appeal
commission: see the appeal it hears, its evidence and the held recordings) and
`OFFICE_ROLES` (below as `OFFICE`). The
procedure's commands are checked against `orchestrator.phases.RIGHTS`. The sets
below are the web edge's own; each line says who and why.
"""

from __future__ import annotations

from orchestrator.model import OFFICE_ROLES, Role

#: Anyone invited to the day: their own state, pages and the documents shown to all.
EVERYONE = frozenset(Role)
#: The secretary and the chair keep the day's records: readiness (B1), identity checks,
#: recordings and their appeal holds (issue 4), appeals and hand-over packages.
OFFICE = OFFICE_ROLES
#: The secretary alone does the paperwork: the roster, admission, recording builds (P3),
#: identity checks, scheduling appeal sittings and repeats, the hand-over (R3).
SECRETARY = frozenset({Role.SECRETARY})
#: The chair alone signs protocols, last (V5), and concludes on an appeal (8.3).
CHAIR = frozenset({Role.CHAIR})
#: The members approve a protocol before the chair signs it (V5).
MEMBERS = frozenset({Role.MEMBER})
#: The student: what the identity check tells them to do next.
STUDENT = frozenset({Role.STUDENT})
#: An appeal is filed by the student, or by the secretary when it came on paper (8.1, 8.2).
APPELLANTS = frozenset({Role.STUDENT, Role.SECRETARY})
#: The day's appeals are listed for the office, and for a student (their own).
APPEAL_READERS = OFFICE | STUDENT
#: The student and the commission chair of the defense are invited to its appeal
#: sitting (8.5) and fetch their own link to it.
SITTING_GUESTS = frozenset({Role.STUDENT, Role.CHAIR})
#: The appeal chair gives the appeal sitting's commands (AppealSession checks them).
APPEAL_CHAIR = frozenset({Role.APPEAL_CHAIR})
