"""``defense-room day import`` and ``defense-room day readiness``.

Both run against the configured SQLite file; the server may be running at the
same time (SQLite's WAL mode and busy timeout let the two processes share it).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from server.config import Config, TlsMode
from server.dayfile import DayFileError, load_day_file
from server.invite_policy import extend_office
from server.readiness import format_table, readiness_report
from storage.db import Database
from storage.errors import NotFoundError
from storage.invites import InviteStore, expires_at_for_day
from storage.roster import RosterStore

from .demo import format_invite_lines
from .tls import detect_lan_address


def base_url_for(config: Config) -> str:
    """The address invite links point at, as `serve` would print it."""
    host = config.server.host
    public_host = config.server.public_host or (
        detect_lan_address() if host in ("0.0.0.0", "::") else host)
    scheme = "http" if config.tls.mode is TlsMode.OFF else "https"
    return f"{scheme}://{public_host}:{config.server.port}"


def import_day(config: Config, path: Path) -> int:
    """Create the day described in `path`; print its id and one link per person."""
    try:
        spec = load_day_file(path)
    except DayFileError as exc:
        print(f"defense-room: day file error: {exc}", file=sys.stderr)
        return 2

    async def run() -> list[str]:
        expires_at = expires_at_for_day(spec.date, spec.timezone, config.invites.valid_days_after)
        async with Database(config.database_path) as db:
            created = await RosterStore(db).create_day(spec, expires_at=expires_at,
                                                       now=time.time())
            await extend_office(InviteStore(db), config, created.day_id, spec.date,
                                spec.timezone, time.time())
        return [
            f"Defense day {created.day_id} created: {spec.title}, {spec.date.isoformat()}",
            "Personal invite links:",
            *format_invite_lines(created.everyone, base_url_for(config)),
        ]

    print("\n".join(asyncio.run(run())), flush=True)
    return 0


def print_readiness(config: Config, day_id: int) -> int:
    """Print the readiness table of a day; 1 if there is no such day."""

    async def run() -> str:
        async with Database(config.database_path) as db:
            roster = await RosterStore(db).day_roster(day_id)
        return format_table(readiness_report(roster, now=time.time()))

    try:
        print(asyncio.run(run()), flush=True)
    except NotFoundError as exc:
        print(f"defense-room: {exc}", file=sys.stderr)
        return 1
    return 0
