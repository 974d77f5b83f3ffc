"""Errors of the defense procedure core.

`OrchestratorError` is the root. Every error is raised before the session changes
anything, so a caller may report it and carry on with the same session.

Each class names its refusal for the web edge: `code` (machine-readable) and
`status_hint` (the HTTP status that fits), like h11's ``error_status_hint``.
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Root of the errors raised by the defense procedure core."""

    #: A core error no subclass describes is ours (e.g. a journal replay refused).
    code = "procedure_failed"
    status_hint = 500


class ForbiddenAction(OrchestratorError):
    """A rule of the regulation forbids this action now; the message cites the clause."""

    code = "forbidden"
    status_hint = 409

    def __init__(self, message: str, clause: str) -> None:
        super().__init__(f"{message} (clause {clause})")
        self.clause = clause


class NotAllowedForRole(OrchestratorError):
    """The actor's role does not carry the right to this action."""

    code = "role"
    status_hint = 403


class UnknownPerson(OrchestratorError):
    """An event names a person who is not on the list of this defense day."""

    code = "unknown_person"
    status_hint = 422
