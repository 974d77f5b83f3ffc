"""Errors raised by the recordings package; ``RecordingError`` is the root.

Each class names its refusal for the web edge: `code` (machine-readable) and
`status_hint` (the HTTP status that fits), like h11's ``error_status_hint``.
"""

from __future__ import annotations


class RecordingError(Exception):
    """Base class of every error raised by ``recordings``."""

    #: Recording, remuxing or building broke: ours, not the caller's.
    code = "recording_failed"
    status_hint = 500


class UnsupportedTrack(RecordingError):
    """A track the recorder cannot capture (unknown codec or kind, unsafe name)."""


class RecorderStateError(RecordingError):
    """The recorder was used outside its lifecycle (e.g. started twice)."""


class NotEnoughSpace(RecordingError):
    """The recordings disk has less free space than `recordings.min_free_mb`: the
    recording is refused (or stopped) until someone frees some (clause 7.11)."""

    code = "not_enough_space"
    status_hint = 409


class RemuxError(RecordingError):
    """A recording could not be remuxed into a finished file."""


class BuildRefused(RecordingError):
    """A defense's archive cannot be built now (recording on, no finished defense,
    deleted under retention); the message says which."""

    code = "refused"
    status_hint = 409


class HoldError(RecordingError):
    """An appeal hold cannot be placed or released (already held, none to release,
    not a student of the day)."""

    code = "hold_refused"
    status_hint = 409


class LinkRefused(RecordingError):
    """A recording link is forged, guessed, expired or points at nothing any more.

    ``reason`` is "bad_link" or "expired_link"; for a genuine but expired link
    ``file_id`` and ``person_id`` say whose it was, so the refusal can be journaled.
    ``code`` is the reason too."""

    code = "bad_link"
    status_hint = 403

    def __init__(self, reason: str, message: str, file_id: int | None = None,
                 person_id: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.code = reason
        self.file_id = file_id
        self.person_id = person_id
