"""Guards the private aiortc names media/hooks.py relies on (aiortc is pinned to 1.16)."""

from __future__ import annotations


import aiortc
import pytest
from aiortc import RTCPeerConnection
from aiortc.rtp import RtpPacket

from media import hooks
from media.errors import InternalsChangedError
from media.rtp_in import ReceivedRtp


def test_pinned_aiortc_version() -> None:
    assert aiortc.__version__.startswith("1.16."), aiortc.__version__


def test_check_internals_passes_on_the_installed_aiortc() -> None:
    hooks.check_internals()


async def test_tap_replaces_the_receivers_jitter_buffer() -> None:
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("video", direction="recvonly")
        seen: list[ReceivedRtp] = []

        def sink(packet: ReceivedRtp) -> bool:
            seen.append(packet)
            return True

        hooks.tap_receiver(transceiver.receiver, sink)
        tap = getattr(transceiver.receiver, "_RTCRtpReceiver__jitter_buffer")
        packet = RtpPacket(payload_type=96, sequence_number=7, timestamp=90, ssrc=5, payload=b"x")
        packet._data = b"x"  # type: ignore[attr-defined]  # what aiortc's depayloader sets
        assert tap.add(packet) == (True, None)
        assert [(p.sequence_number, p.timestamp, p.ssrc, p.data) for p in seen] == [(7, 90, 5, b"x")]
    finally:
        await pc.close()


def test_missing_attribute_is_reported_clearly() -> None:
    class NotAReceiver:
        pass

    with pytest.raises(InternalsChangedError, match="_RTCRtpReceiver__jitter_buffer"):
        hooks.tap_receiver(NotAReceiver(), lambda packet: False)  # type: ignore[arg-type]
