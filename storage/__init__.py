"""Persistent state: one SQLite file written by one thread.

`Database` owns the connection and the writer thread; `InviteStore` keeps
defense days, invited people and the journal on top of it.
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
    JournalEntry,
    Person,
    Role,
    expires_at_for_day,
)

__all__ = [
    "Database",
    "DatabaseNotRunningError",
    "DefenseDay",
    "Invite",
    "InviteError",
    "InviteRefusal",
    "InviteStore",
    "IssuedInvite",
    "JournalEntry",
    "NotFoundError",
    "Person",
    "Role",
    "StorageError",
    "expires_at_for_day",
]
