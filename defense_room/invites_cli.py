"""``defense-room invites revoke DAY PERSON`` and ``defense-room invites reissue DAY PERSON``.

For a link that leaked or a person who must not come (S8). ``revoke`` ends the
link for good; ``reissue`` prints a new link (the only time it is shown) and ends the
old one. Both write the configured SQLite file, journaled like the HTTP API's
``POST /api/days/{day}/people/{person}/revoke`` and ``/reissue``; a running server
refuses the old link's next call at once and closes its joined session within
seconds (`web_ui.invites_api.LinkWatch`). Person ids are those of ``day import``'s
links and of ``GET /api/me``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from server.config import DEFAULT_CONFIG_PATH, Config
from storage.db import Database
from storage.errors import StorageError
from storage.invites import InviteStore

from .daycli import base_url_for


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``invites`` subcommand and its two actions."""
    parser = commands.add_parser("invites", help="revoke or reissue a person's invite link")
    actions = parser.add_subparsers(dest="invites_command", required=True)
    for name, what in (("revoke", "the link stops working, for good"),
                       ("reissue", "print a new link; the old one stops working")):
        sub = actions.add_parser(name, help=what)
        sub.add_argument("day_id", type=int, help="the defense day")
        sub.add_argument("person_id", type=int, help="the person, as in their link's listing")
        sub.add_argument("--config", type=Path, default=None,
                         help=f"configuration file (default: {DEFAULT_CONFIG_PATH} if it exists)")


def run_invites(config: Config, args: argparse.Namespace) -> int:
    """Carry out ``invites revoke`` or ``invites reissue``; 1 if refused."""
    try:
        print(asyncio.run(_run(config, args.invites_command, args.day_id, args.person_id)),
              flush=True)
    except StorageError as exc:
        print(f"defense-room: {exc}", file=sys.stderr)
        return 1
    return 0


async def _run(config: Config, command: str, day_id: int, person_id: int) -> str:
    async with Database(config.database_path) as db:
        invites = InviteStore(db)
        person = await invites.person(person_id)
        if person is None or person.day_id != day_id:
            raise StorageError(f"no person {person_id} is invited to defense day {day_id}")
        if command == "revoke":
            await invites.revoke(person_id, time.time())
            return f"Revoked the link of {person.name} ({person.role.value}), day {day_id}."
        issued = await invites.reissue(person_id, now=time.time())
    return (f"New link for {issued.name} ({issued.role.value}), day {day_id}; the old one no"
            f" longer works:\n  {base_url_for(config)}/j/{issued.token}")
