"""Errors of what a running server owns: one root, `ServerError`.

The subclasses live beside the code that raises them (`server.config.ConfigError`,
`server.dayfile.DayFileError`, `server.dayhost.NotAllowedHere`,
`server.procedure.ProcedureError`); they share this root so that callers, and the
web edge's error middleware, can tell the server's errors from everyone else's.

Each class names its refusal for the web edge: `code` (machine-readable) and
`status_hint` (the HTTP status that fits), like h11's ``error_status_hint``.
"""

from __future__ import annotations


class ServerError(Exception):
    """Root of every error the server package raises on purpose."""

    #: A server error no subclass describes is ours, not the caller's.
    code = "server_failed"
    status_hint = 500
