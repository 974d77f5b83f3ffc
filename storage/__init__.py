"""Persistent state: one SQLite file written by one thread.

`Database` owns the connection and the writer thread; `InviteStore` keeps
defense days and invited people on top of it; `Journal` the hash-chained
event log.
"""

from .db import Database
from .errors import (
    DatabaseNotRunningError,
    InviteError,
    InviteRefusal,
    NotFoundError,
    StorageError,
)
from .invites import (
    DefenseDay,
    Invite,
    InviteStore,
    IssuedInvite,
    Person,
    Role,
    expires_at_for_day,
)
from .journal import Journal, JournalEvent

__all__ = [
    "Database",
    "DatabaseNotRunningError",
    "DefenseDay",
    "Invite",
    "InviteError",
    "InviteRefusal",
    "InviteStore",
    "IssuedInvite",
    "Journal",
    "JournalEvent",
    "NotFoundError",
    "Person",
    "Role",
    "StorageError",
    "expires_at_for_day",
]
