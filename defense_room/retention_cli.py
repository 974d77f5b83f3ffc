"""``defense-room retention [--dry-run]``: the retention sweep (rule R1) by hand.

The server sweeps by itself every hour (`recordings.retention.RetentionSweeper`);
this command does the same once, e.g. from cron on a machine where the server is
not running, or with ``--dry-run`` to see what is due without touching anything.
It uses the same database and journal as the server, so its deletions are
journaled the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from recordings.blobstore import LocalFolderStore
from recordings.retention import Deletion, Retention
from server.config import DEFAULT_CONFIG_PATH, Config
from storage.db import Database


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``retention`` subcommand's arguments."""
    parser = commands.add_parser(
        "retention", help="delete recordings past their retention, unless an appeal holds them")
    parser.add_argument("--dry-run", action="store_true",
                        help="list what is due for deletion and delete nothing")
    parser.add_argument("--config", type=Path, default=None,
                        help=f"configuration file (default: {DEFAULT_CONFIG_PATH} if it exists)")


def run_retention(config: Config, *, dry_run: bool, now: float | None = None) -> int:
    """Sweep once and print one line per deletion; the exit status is 0."""
    deletions = asyncio.run(_sweep(config, dry_run, time.time() if now is None else now))
    verb = "would delete" if dry_run else "deleted"
    for deletion in deletions:
        print(f"{verb} {deletion.describe()}")
    if not deletions:
        print("nothing is due for deletion")
    return 0


async def _sweep(config: Config, dry_run: bool, now: float) -> list[Deletion]:
    async with Database(config.database_path) as db:
        retention = Retention(db, LocalFolderStore(config.recordings_dir), config.retention.days)
        return await retention.sweep(now, dry_run=dry_run)
