"""Keyframe starts read from RTP payloads, checked on what aiortc's encoders send."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest
from aiortc.codecs import depayload, get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media.codecs import is_keyframe, starts_keyframe, vp8_frame_header_offset

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102,
                             parameters={"packetization-mode": "1",
                                         "profile-level-id": "42e01f"})


def frames(count: int) -> list[av.VideoFrame]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(count):
        frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8),
                                           format="rgb24")
        frame.pts = i * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        out.append(frame)
    return out


def packets_per_frame(codec: RTCRtpCodecParameters, forced: set[int]) -> list[list[bytes]]:
    encoder = get_encoder(codec)
    return [encoder.encode(frame, i in forced)[0] for i, frame in enumerate(frames(8))]


@pytest.mark.parametrize("codec", [VP8, H264], ids=["VP8", "H264"])
def test_keyframe_starts_match_the_depayloaded_frames(codec: RTCRtpCodecParameters) -> None:
    name = codec.mimeType.split("/")[1].upper()
    for number, payloads in enumerate(packets_per_frame(codec, forced={0, 5})):
        whole = b"".join(depayload(codec, p) for p in payloads)
        keyframe = is_keyframe(name, whole)
        assert keyframe == (number in {0, 5})
        starts = [starts_keyframe(name, p, new_timestamp=i == 0) for i, p in enumerate(payloads)]
        assert starts == [keyframe] + [False] * (len(payloads) - 1), number
        if name == "VP8":
            assert vp8_frame_header_offset(payloads[0]) is not None
            assert all(vp8_frame_header_offset(p) is None for p in payloads[1:])


def test_truncated_or_foreign_payloads_are_not_keyframe_starts() -> None:
    assert not starts_keyframe("VP8", b"", new_timestamp=True)
    assert not starts_keyframe("VP8", b"\x90", new_timestamp=True)  # X set, nothing after
    assert not starts_keyframe("VP8", b"\x90\x80", new_timestamp=True)  # picture ID missing
    assert not starts_keyframe("H264", b"", new_timestamp=True)
    assert not starts_keyframe("H264", b"\x7c\x05", new_timestamp=True)  # FU-A, not a start
    assert starts_keyframe("H264", b"\x7c\x85", new_timestamp=True)  # FU-A starting an IDR
    assert starts_keyframe("OPUS", b"\x01", new_timestamp=False)
