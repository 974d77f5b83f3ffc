"""Errors of the media layer: one root, a few kinds."""


class MediaError(Exception):
    """Root of every error raised by ``media``."""


class NegotiationError(MediaError):
    """An SDP offer or answer could not be applied (the peer sent something invalid)."""


class UnsupportedCodecError(MediaError):
    """A publisher's codec cannot be forwarded (we forward VP8, H.264 and Opus)."""


class InternalsChangedError(MediaError):
    """aiortc no longer has the private attribute the forwarder hooks (our bug:
    the aiortc pin in pyproject.toml was widened without updating media/hooks.py)."""


class OutOfTurnError(NegotiationError):
    """A negotiation message arrived when none was expected (e.g. an answer with no
    offer pending, or any offer from a client: only the server offers)."""
