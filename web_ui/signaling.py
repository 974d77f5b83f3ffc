"""Typed signaling messages, parsed and validated at the WebSocket edge.

See docs/signaling.md for the protocol. Every client message becomes one of the
frozen dataclasses below or a ``SignalingError`` whose ``code`` goes back to the client
in an ``error`` message; nothing half-parsed gets further.

What the server sends is written by the layer that knows it (the media layer's
``offer``, ``participants`` and ``bye``, the day host's ``state``, ``notice``,
``lobby`` and ``presentation``, the edge's ``welcome``, ``identity`` and ``error``);
`SERVER_MESSAGES` is their one schema. `tests/test_signaling_docs.py` keeps it, the
code that builds the messages and docs/signaling.md in step, and the headless client
(`web_ui.client`) refuses any message it does not list.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from collections.abc import Callable
from typing import Any

from .body import JsonRefused, loads_object


class ErrorCode(str, Enum):
    MALFORMED = "malformed"
    UNKNOWN_TYPE = "unknown_type"
    TOO_LARGE = "too_large"
    BAD_TOKEN = "bad_token"
    EXPIRED_TOKEN = "expired_token"
    REVOKED_TOKEN = "revoked_token"
    JOIN_TIMEOUT = "join_timeout"
    NO_ANSWER = "no_answer"
    NOT_JOINED = "not_joined"
    ALREADY_JOINED = "already_joined"
    BAD_STATE = "bad_state"
    SDP_REJECTED = "sdp_rejected"
    ROOM_FULL = "room_full"
    INTERNAL = "internal"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_SOCKETS = "too_many_sockets"
    #: Sent by the front of ``serve --workers N`` (server/front.py), not by a worker.
    RESTARTING = "restarting"
    #: A worker reached directly (not through the front) for a day it does not own.
    OTHER_WORKER = "other_worker"


class SignalingError(Exception):
    """The client sent something we cannot accept; ``code`` tells it what."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_json(self) -> dict[str, str]:
        return {"type": "error", "code": self.code.value, "message": self.message}


MAX_SDP_CHARS = 60_000
MAX_CANDIDATE_CHARS = 1_000
MAX_STATS_ENTRIES = 256
#: The largest whole number a field takes (a byte counter of a very long session).
MAX_INT = 2**53


@dataclass(frozen=True, slots=True)
class Join:
    token: str


@dataclass(frozen=True, slots=True)
class Offer:
    sdp: str


@dataclass(frozen=True, slots=True)
class Answer:
    sdp: str


@dataclass(frozen=True, slots=True)
class IceCandidate:
    candidate: str | None
    sdp_mid: str | None
    sdp_mline_index: int | None


@dataclass(frozen=True, slots=True)
class InboundStats:
    mid: str
    kind: str
    frames_decoded: int
    packets_received: int
    bytes_received: int

    def as_json(self) -> dict[str, Any]:
        return {"mid": self.mid, "kind": self.kind, "framesDecoded": self.frames_decoded,
                "packetsReceived": self.packets_received, "bytesReceived": self.bytes_received}


@dataclass(frozen=True, slots=True)
class Stats:
    inbound: tuple[InboundStats, ...]


@dataclass(frozen=True, slots=True)
class Leave:
    pass


@dataclass(frozen=True, slots=True)
class Page:
    """The defending student turns their presentation to page ``page`` (1-based)."""

    page: int


MAX_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class TileView:
    """One video tile the page shows: whose, and its size in device pixels."""

    participant: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class View:
    """The video tiles the page shows now; any other video is not sent to it."""

    tiles: tuple[TileView, ...]

    def widths(self) -> dict[str, int]:
        """Publisher id -> tile width, for the tiles with an area."""
        return {t.participant: t.width for t in self.tiles if t.width > 0 and t.height > 0}


MAX_VIEW_TILES = 64
MAX_TILE_PX = 16_384

ClientMessage = Join | Offer | Answer | IceCandidate | Stats | Leave | Page | View


def parse_message(text: str, max_bytes: int) -> ClientMessage:
    """Parse one client text frame; raise SignalingError for anything invalid."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise SignalingError(ErrorCode.TOO_LARGE,
                             f"message of {size} bytes exceeds the limit of {max_bytes} bytes")
    try:
        data = loads_object(text, "the message")
    except JsonRefused as exc:
        raise SignalingError(ErrorCode.MALFORMED, str(exc)) from None
    kind = data.get("type")
    if not isinstance(kind, str):
        raise SignalingError(ErrorCode.MALFORMED, "message has no string field 'type'")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise SignalingError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}")
    return parser(data)


def _string(data: dict[str, Any], key: str, limit: int, *, optional: bool = False) -> str | None:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise SignalingError(ErrorCode.MALFORMED,
                             f"{data['type']!r} needs a string field {key!r}")
    if len(value) > limit:
        raise SignalingError(ErrorCode.TOO_LARGE,
                             f"field {key!r} of {len(value)} characters exceeds {limit}")
    return value


def _int(data: dict[str, Any], key: str, *, optional: bool = False) -> int | None:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT:
        raise SignalingError(ErrorCode.MALFORMED, f"{data['type']!r} needs a whole number"
                             f" from 0 to {MAX_INT} in field {key!r}")
    return value


def _join(data: dict[str, Any]) -> Join:
    return Join(_string(data, "token", 200) or "")


def _offer(data: dict[str, Any]) -> Offer:
    return Offer(_string(data, "sdp", MAX_SDP_CHARS) or "")


def _answer(data: dict[str, Any]) -> Answer:
    return Answer(_string(data, "sdp", MAX_SDP_CHARS) or "")


def _ice(data: dict[str, Any]) -> IceCandidate:
    return IceCandidate(
        _string(data, "candidate", MAX_CANDIDATE_CHARS, optional=True),
        _string(data, "sdpMid", 32, optional=True),
        _int(data, "sdpMLineIndex", optional=True),
    )


def _stats(data: dict[str, Any]) -> Stats:
    entries = data.get("inbound")
    if not isinstance(entries, list) or len(entries) > MAX_STATS_ENTRIES:
        raise SignalingError(ErrorCode.MALFORMED,
                             f"'stats' needs a list 'inbound' of at most {MAX_STATS_ENTRIES} entries")
    parsed = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise SignalingError(ErrorCode.MALFORMED, "'stats' entries must be objects")
        entry = {"type": "stats", **entry}
        parsed.append(InboundStats(
            _string(entry, "mid", 32) or "",
            _string(entry, "kind", 8) or "",
            _int(entry, "framesDecoded", optional=True) or 0,
            _int(entry, "packetsReceived", optional=True) or 0,
            _int(entry, "bytesReceived", optional=True) or 0,
        ))
    return Stats(tuple(parsed))


def _leave(data: dict[str, Any]) -> Leave:
    return Leave()


def _page(data: dict[str, Any]) -> Page:
    page = _int(data, "page") or 0
    if not 1 <= page <= MAX_PAGE:
        raise SignalingError(ErrorCode.MALFORMED, f"'page' must be from 1 to {MAX_PAGE}")
    return Page(page)


def _view(data: dict[str, Any]) -> View:
    tiles = data.get("tiles")
    if not isinstance(tiles, dict) or len(tiles) > MAX_VIEW_TILES:
        raise SignalingError(ErrorCode.MALFORMED, "'view' needs an object 'tiles' of at most "
                             f"{MAX_VIEW_TILES} participant ids, each {{w, h}}")
    parsed = []
    for participant, size in tiles.items():
        if not participant or len(participant) > 64:
            raise SignalingError(ErrorCode.MALFORMED,
                                 f"'view' names a participant id of {len(participant)} characters")
        if not isinstance(size, dict) or set(size) != {"w", "h"}:
            raise SignalingError(ErrorCode.MALFORMED, f"'view' tile {participant[:64]!r} must be"
                                 " an object with exactly the fields 'w' and 'h'")
        dims = []
        for key in ("w", "h"):
            value = size[key]
            if (not isinstance(value, int) or isinstance(value, bool)
                    or not 0 <= value <= MAX_TILE_PX):
                raise SignalingError(ErrorCode.MALFORMED, f"'view' tile {participant[:64]!r}: "
                                     f"{key!r} must be a whole number of pixels from 0 to "
                                     f"{MAX_TILE_PX}, not {str(value)[:20]!r}")
            dims.append(value)
        parsed.append(TileView(participant, dims[0], dims[1]))
    return View(tuple(parsed))


_PARSERS: dict[str, Callable[[dict[str, Any]], ClientMessage]] = {
    "view": _view,
    "page": _page,
    "join": _join,
    "offer": _offer,
    "answer": _answer,
    "ice": _ice,
    "stats": _stats,
    "leave": _leave,
}

#: The messages a client may send, by type.
CLIENT_MESSAGES: frozenset[str] = frozenset(_PARSERS)

#: The messages the server sends, by type, with the fields each may carry.
SERVER_MESSAGES: dict[str, frozenset[str]] = {
    "welcome": frozenset({"participant", "iceServers", "participants", "state", "lobby"}),
    "offer": frozenset({"sdp", "publish", "tracks"}),
    "participants": frozenset({"participants"}),
    "state": frozenset({"state", "presentation", "server_time"}),
    # One per `server.dayhost.NoticeKind`; the fields depend on the kind.
    "notice": frozenset({"kind", "text", "clause", "phase", "seconds_left", "student",
                         "reason", "grades", "new_date",
                         # media.bitrate's link_low / link_restored (rule P5)
                         "kbps", "minimum_kbps"}),
    "presentation": frozenset({"student", "page"}),
    "lobby": frozenset({"waiting", "reason"}),
    "identity": frozenset({"instruction", "instruction_ru", "retake", "at"}),
    # A forwarded track this client cannot decode (codec): it is not sent to it.
    "track_unavailable": frozenset({"participant", "name", "kind", "codec"}),
    "error": frozenset({"code", "message"}),
    "bye": frozenset({"reason"}),
}
