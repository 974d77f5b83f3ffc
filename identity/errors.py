"""Errors of the identity check: one root, a few kinds.

`CheckRefused` and its subclasses mean "not now, and here is why" (a remote
condition the secretary can act on: no consent, no video, a check already
running); `WorkerFailed` means the analysis itself broke (our side, logged).

Each class names its refusal for the web edge: `code` (machine-readable) and
`status_hint` (the HTTP status that fits), like h11's ``error_status_hint``.
"""

from __future__ import annotations


class IdentityError(Exception):
    """Root of every error raised by ``identity``."""

    #: The identity check broke in a way no subclass describes: ours.
    code = "identity_failed"
    status_hint = 500


class CheckRefused(IdentityError):
    """A check cannot run now; the message says why, naming the student."""

    code = "refused"
    status_hint = 409


class NoConsent(CheckRefused):
    """The student's consent to personal-data processing is not on file (B1, 6.6)."""

    code = "no_consent"
    clause = "6.6"


class CheckRunning(CheckRefused):
    """A check of the same day is still running; one at a time per day."""

    code = "check_running"


class NoVideo(CheckRefused):
    """The student is not connected or sends no video."""

    code = "no_video"


class NoFrames(CheckRefused):
    """The student's video brought no decodable picture within the burst time."""

    code = "no_frames"


class WorkerFailed(IdentityError):
    """The analysis worker crashed or raised (our bug or a broken install)."""

    code = "worker_failed"
    status_hint = 503


class CheckNotFound(IdentityError):
    """No stored check has this id on this day."""

    code = "no_check"
    status_hint = 404
