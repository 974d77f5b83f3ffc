"""Errors of the media layer: one root, a few kinds.

Each class names its refusal for the edge: `code` (machine-readable) and
`status_hint` (the HTTP status that fits), like h11's ``error_status_hint``.
"""


class MediaError(Exception):
    """Root of every error raised by ``media``."""

    code = "media_failed"
    status_hint = 500


class NegotiationError(MediaError):
    """An SDP offer or answer could not be applied (the peer sent something invalid)."""

    code = "sdp_rejected"
    status_hint = 400


class UnsupportedCodecError(MediaError):
    """A publisher's codec cannot be forwarded (we forward VP8, H.264 and Opus)."""

    code = "unsupported_codec"
    status_hint = 422


class InternalsChangedError(MediaError):
    """aiortc no longer has the private attribute the forwarder hooks (our bug:
    the aiortc pin in pyproject.toml was widened without updating media/hooks.py)."""

    code = "internals_changed"
    status_hint = 500


class OutOfTurnError(NegotiationError):
    """A negotiation message arrived when none was expected (e.g. an answer with no
    offer pending, or any offer from a client: only the server offers)."""

    code = "bad_state"
    status_hint = 409
