"""Errors of the defense procedure core.

`OrchestratorError` is the root. Every error is raised before the session changes
anything, so a caller may report it and carry on with the same session.
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Root of the errors raised by the defense procedure core."""


class ForbiddenAction(OrchestratorError):
    """A rule of the regulation forbids this action now; the message cites the clause."""

    def __init__(self, message: str, clause: str) -> None:
        super().__init__(f"{message} (clause {clause})")
        self.clause = clause


class NotAllowedForRole(OrchestratorError):
    """The actor's role does not carry the right to this action."""


class UnknownPerson(OrchestratorError):
    """An event names a person who is not on the list of this defense day."""
