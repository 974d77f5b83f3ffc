"""Errors raised by the storage package.

`StorageError` is the root. `InviteError` means "the person holding the link
sent something we refuse" (a remote error, shown to them); the others mean the
server itself misused the database (a local error, logged).

Each class names its refusal for the web edge: `code` (machine-readable) and
`status_hint` (the HTTP status that fits), like h11's ``error_status_hint``.
"""

from __future__ import annotations

import datetime
import enum


class StorageError(Exception):
    """Root of every error the storage package raises on purpose."""

    #: The database misused or unusable: ours, not the caller's.
    code = "storage_failed"
    status_hint = 500


class DatabaseNotRunningError(StorageError):
    """A read or write was requested while the database was not started."""


class NotFoundError(StorageError):
    """A row addressed by id does not exist."""

    code = "not_found"
    status_hint = 404


class RosterRefused(StorageError):
    """A roster change refused now, e.g. one the procedure has already taken in since
    the sitting opened; the message says why, `clause` names a rule where one decides."""

    code = "roster_refused"
    status_hint = 409

    def __init__(self, message: str, clause: str | None = None) -> None:
        super().__init__(message)
        self.clause = clause


class InviteRefusal(enum.StrEnum):
    """Why an invite token was refused; sent to the browser as a machine code."""

    BAD_TOKEN = "bad_token"
    EXPIRED_TOKEN = "expired_token"
    REVOKED_TOKEN = "revoked_token"


class InviteError(StorageError):
    """An invite token was refused.

    `reason` is the machine-readable code; `str(error)` is a sentence meant
    for the person who clicked the link (`code` is the reason too).
    """

    code: str = InviteRefusal.BAD_TOKEN
    status_hint = 401

    def __init__(self, reason: InviteRefusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.code = reason
        self.message = message

    @classmethod
    def bad_token(cls) -> InviteError:
        """The token is malformed or unknown."""
        # Deliberately vague: telling "malformed" from "unknown" would help
        # nobody but someone guessing tokens.
        return cls(
            InviteRefusal.BAD_TOKEN,
            "This invite link is not valid. Ask the secretary for a new one.",
        )

    @classmethod
    def expired(cls, expires_at: float) -> InviteError:
        """The token was valid until `expires_at` (unix time)."""
        moment = datetime.datetime.fromtimestamp(expires_at, tz=datetime.UTC)
        return cls(
            InviteRefusal.EXPIRED_TOKEN,
            f"This invite link expired on {moment:%Y-%m-%d %H:%M} UTC.",
        )

    @classmethod
    def revoked(cls) -> InviteError:
        """The secretary revoked the token."""
        return cls(
            InviteRefusal.REVOKED_TOKEN,
            "This invite link was revoked: ask the secretary or the department office for a new one.",
        )


class JournalTampered(StorageError):
    """The journal's hash chain is broken: a row was changed or deleted.

    `event_id` is the first event whose row fails the check; the message says
    what is wrong with it.
    """

    code = "journal_tampered"

    def __init__(self, event_id: int, message: str) -> None:
        super().__init__(message)
        self.event_id = event_id
