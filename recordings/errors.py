"""Errors raised by the recordings package; ``RecordingError`` is the root."""

from __future__ import annotations


class RecordingError(Exception):
    """Base class of every error raised by ``recordings``."""


class UnsupportedTrack(RecordingError):
    """A track the recorder cannot capture (unknown codec or kind, unsafe name)."""


class RecorderStateError(RecordingError):
    """The recorder was used outside its lifecycle (e.g. started twice)."""


class RemuxError(RecordingError):
    """A recording could not be remuxed into a finished file."""
