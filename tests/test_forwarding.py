"""The forwarder with real aiortc peers inside the test network namespace."""

from __future__ import annotations

import asyncio

from media.testing import FrameNumberTrack, ToneTrack
from storage.invites import Role
from web_ui.client import RoomClient

from .conftest import EncoderSpy, RunningServer
from .media_helpers import collecting, increasing_run, wait_until


async def test_one_publisher_three_subscribers(server: RunningServer, encoder_spy: EncoderSpy) -> None:
    student = await server.invite(Role.STUDENT, "Студент Публикующий")
    members = [await server.invite(Role.MEMBER, f"Член комиссии {i}") for i in range(3)]
    video, audio = FrameNumberTrack(), ToneTrack(frequency=440)
    publisher = RoomClient(server.base_url, student.token, tracks=[video, audio])
    subscribers = [RoomClient(server.base_url, m.token) for m in members]
    try:
        for client in [publisher, *subscribers]:
            await client.connect()
            await client.start_media()
        pub_id = publisher.participant_id
        for sub in subscribers:
            await sub.wait_for(lambda s=sub: sum(
                1 for r in s.received.values() if r.participant == pub_id and r.track) == 2,
                timeout=15, what="both of the publisher's tracks")
        async with collecting(subscribers[0], pub_id) as c0, \
                collecting(subscribers[1], pub_id) as c1, \
                collecting(subscribers[2], pub_id) as c2:
            await wait_until(lambda: all(len(c.frame_numbers) >= 45 and c.audio_seconds() >= 1.0
                                         for c in (c0, c1, c2)),
                             timeout=30, what="1.5 s of video and 1 s of audio at every subscriber")
        for c in (c0, c1, c2):
            assert increasing_run(c.frame_numbers) >= 40, c.frame_numbers
            assert max(c.frame_numbers) < video.frames_sent
            assert abs(c.tone() - 440) < 15, c.tone()

        room = server.rooms.get(str(server.day_id))
        assert room is not None
        server_encoders = [
            getattr(s, "_RTCRtpSender__encoder")
            for peer in room.peers.values() for s in peer.pc.getSenders()
        ]
        assert len([e for e in server_encoders if e is not None]) == 6
        assert encoder_spy.calls_for(server_encoders) == 0
        assert room.metrics.frames_out["video"] >= 3 * 45
    finally:
        for client in [publisher, *subscribers]:
            await client.close()
