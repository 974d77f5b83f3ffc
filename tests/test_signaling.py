"""Parsing client messages at the edge."""

from __future__ import annotations

import json

import pytest

from web_ui.signaling import (
    Answer,
    ErrorCode,
    IceCandidate,
    Join,
    Leave,
    SignalingError,
    Stats,
    parse_message,
)

LIMIT = 65536


def code_of(text: str, limit: int = LIMIT) -> ErrorCode:
    with pytest.raises(SignalingError) as info:
        parse_message(text, limit)
    return info.value.code


def test_valid_messages_become_typed_events() -> None:
    assert parse_message('{"type":"join","token":"abc"}', LIMIT) == Join("abc")
    assert parse_message('{"type":"answer","sdp":"v=0"}', LIMIT) == Answer("v=0")
    assert parse_message('{"type":"leave"}', LIMIT) == Leave()
    assert parse_message(
        '{"type":"ice","candidate":"candidate:1 1 udp 1 10.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}',
        LIMIT) == IceCandidate("candidate:1 1 udp 1 10.0.0.1 9 typ host", "0", 0)
    assert parse_message('{"type":"ice","candidate":null}', LIMIT) == IceCandidate(None, None, None)
    stats = parse_message(json.dumps({"type": "stats", "inbound": [
        {"mid": "2", "kind": "video", "framesDecoded": 5}]}), LIMIT)
    assert isinstance(stats, Stats) and stats.inbound[0].frames_decoded == 5


@pytest.mark.parametrize("text", [
    "not json", "[1,2]", '"join"', "{}", '{"type": 5}', '{"type":"join"}',
    '{"type":"join","token":7}', '{"type":"answer","sdp":null}',
    '{"type":"ice","candidate":"x","sdpMLineIndex":-1}',
    '{"type":"ice","candidate":"x","sdpMLineIndex":true}',
    '{"type":"stats","inbound":"many"}', '{"type":"stats","inbound":[3]}',
])
def test_malformed_messages(text: str) -> None:
    assert code_of(text) is ErrorCode.MALFORMED


def test_unknown_type() -> None:
    assert code_of('{"type":"launch_missiles"}') is ErrorCode.UNKNOWN_TYPE


def test_oversized_message_and_field() -> None:
    assert code_of(json.dumps({"type": "answer", "sdp": "x" * 70_000})) is ErrorCode.TOO_LARGE
    assert code_of(json.dumps({"type": "join", "token": "t" * 500})) is ErrorCode.TOO_LARGE
    error = SignalingError(ErrorCode.TOO_LARGE, "m")
    assert error.as_json() == {"type": "error", "code": "too_large", "message": "m"}
