"""The forwarder with real aiortc peers inside the test network namespace."""

from __future__ import annotations

import functools
import struct
from typing import Any

import pytest
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci

from media import hooks
from media.forwarder import ForwardedTrack, PublishedTrack
from media.testing import FrameNumberTrack, ToneTrack
from storage.invites import Role
from web_ui.client import RoomClient

from .conftest import EncoderSpy, RunningServer
from .media_helpers import assert_sent_without_encoding, collecting, increasing_run
from .timing import wait_until


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
        def has_both(client: RoomClient) -> bool:
            return sum(1 for r in client.received.values()
                       if r.participant == pub_id and r.track) == 2

        for sub in subscribers:
            await sub.wait_for(functools.partial(has_both, sub),
                               timeout=15, what="both of the publisher's tracks")
        async with collecting(subscribers[0], pub_id) as c0, \
                collecting(subscribers[1], pub_id) as c1, \
                collecting(subscribers[2], pub_id) as c2:
            await wait_until(lambda: [(len(c.frame_numbers), c.audio_seconds()) for c in (c0, c1, c2)],
                             lambda got: all(frames >= 45 and audio >= 1.0 for frames, audio in got),
                             "1.5 s of video and 1 s of audio at every subscriber (frames, seconds)",
                             timeout=30)
        for c in (c0, c1, c2):
            assert increasing_run(c.frame_numbers) >= 40, c.frame_numbers
            assert max(c.frame_numbers) < video.frames_sent
            assert abs(c.tone() - 440) < 15, c.tone()

        room = server.rooms.get(str(server.day_id))
        assert room is not None
        senders = [s for peer in room.peers.values() for s in peer.pc.getSenders() if s.track]
        assert len(senders) == 6
        assert await assert_sent_without_encoding(senders, encoder_spy) > 6 * 45
        assert room.metrics.frames_out["video"] >= 3 * 45
        # The student's packets were handled inline (routed by SSRC after the first
        # of each), and still counted by the receivers for their receiver reports.
        student_peer = room.peer(pub_id)
        assert student_peer is not None
        receivers = student_peer.pc.getReceivers()
        routes = getattr(receivers[0].transport, "_defense_room_inline_routes")
        assert len(routes) == 2
        for receiver in receivers:
            streams = getattr(receiver, "_RTCRtpReceiver__remote_streams")
            assert set(streams) <= set(routes)
            assert sum(s.packets_received for s in streams.values()) > 45
    finally:
        for client in [publisher, *subscribers]:
            await client.close()


async def _video_frames_from(client: RoomClient, publisher_id: str, count: int) -> list[int]:
    await client.wait_for(lambda: any(
        r.participant == publisher_id and r.kind == "video" and r.track
        for r in client.received.values()), timeout=15, what=f"a video track from {publisher_id}")
    async with collecting(client, publisher_id) as sink:
        await wait_until(lambda: len(sink.frame_numbers), lambda n: n >= count,
                         f"{count} decoded frames from {publisher_id}", timeout=20)
    return sink.frame_numbers


async def test_subscriber_and_publisher_leave_and_rejoin(server: RunningServer) -> None:
    student = await server.invite(Role.STUDENT, "Студент")
    member = await server.invite(Role.MEMBER, "Член")
    chair = await server.invite(Role.CHAIR, "Председатель")
    video = FrameNumberTrack()
    publisher = RoomClient(server.base_url, student.token, tracks=[video, ToneTrack()])
    staying = RoomClient(server.base_url, chair.token)
    leaving = RoomClient(server.base_url, member.token)
    clients = [publisher, staying, leaving]
    try:
        for client in clients:
            await client.connect()
            await client.start_media()
        pub_id = publisher.participant_id
        await _video_frames_from(leaving, pub_id, 10)

        # A subscriber leaves: the others keep receiving; it rejoins and receives again.
        async with collecting(staying, pub_id) as sink:
            await _video_frames_from(staying, pub_id, 1)
            await leaving.close()
            room = server.rooms.get(str(server.day_id))
            assert room is not None
            await wait_until(lambda: {int(p) for p in room.peers},
                             lambda peers: member.person_id not in peers,
                             "the server to drop the member", timeout=10)
            before = len(sink.frame_numbers)
            await wait_until(lambda: len(sink.frame_numbers), lambda n: n >= before + 20,
                             "frames at the chair after the member left", timeout=10)
        rejoined = RoomClient(server.base_url, member.token)
        clients.append(rejoined)
        await rejoined.connect()
        await rejoined.start_media()
        frames = await _video_frames_from(rejoined, pub_id, 10)
        assert increasing_run(frames) >= 9

        # The publisher leaves: its tracks are retired everywhere; it rejoins with a
        # fresh camera and is received again by everyone.
        await publisher.close()
        await staying.wait_for(lambda: not any(r.participant == pub_id for r in staying.received.values()),
                               timeout=10, what="the publisher's tracks to be retired")
        video2 = FrameNumberTrack()
        publisher2 = RoomClient(server.base_url, student.token, tracks=[video2, ToneTrack()])
        clients.append(publisher2)
        await publisher2.connect()
        await publisher2.start_media()
        for client in (staying, rejoined):
            frames = await _video_frames_from(client, pub_id, 10)
            assert increasing_run(frames) >= 9
            assert max(frames) < video2.frames_sent
        assert room.metrics.keyframe_requests >= 2
    finally:
        for client in clients:
            await client.close()


async def test_bad_messages_get_errors_while_the_room_keeps_forwarding(server: RunningServer) -> None:
    student = await server.invite(Role.STUDENT, "Студент")
    members = [await server.invite(Role.MEMBER, f"Член {i}") for i in range(2)]
    publisher = RoomClient(server.base_url, student.token, tracks=[FrameNumberTrack(), ToneTrack()])
    rude, polite = (RoomClient(server.base_url, m.token) for m in members)
    clients = [publisher, rude, polite]
    try:
        for client in clients:
            await client.connect()
            await client.start_media()
        pub_id = publisher.participant_id
        await _video_frames_from(polite, pub_id, 5)
        await _video_frames_from(rude, pub_id, 5)

        bad = [
            ("this is not json", "malformed"),
            ('{"type":"teleport"}', "unknown_type"),
            ('{"type":"answer"}', "malformed"),
            ('{"type":"answer","sdp":"v=0"}', "bad_state"),
            ('{"type":"offer","sdp":"v=0"}', "bad_state"),
            ('{"type":"join","token":"again"}', "already_joined"),
            ('{"type":"ice","candidate":"candidate:garbage","sdpMid":"0","sdpMLineIndex":0}', "sdp_rejected"),
            ('{"type":"stats","inbound":[{"mid":"0"}]}', "malformed"),
            ('{"type":"answer","sdp":"' + "x" * 100_000 + '"}', "too_large"),
        ]
        async with collecting(polite, pub_id) as polite_sink, collecting(rude, pub_id) as rude_sink:
            for text, _ in bad:
                await rude.send_raw(text)
            await rude.send_raw(b"\x00\x01binary")
            await rude.wait_for(lambda: len(rude.state.errors) >= len(bad) + 1, timeout=10,
                                what="an error for every bad message")
            assert [e["code"] for e in rude.state.errors] == [c for _, c in bad] + ["malformed"]
            assert all(e["message"] for e in rude.state.errors)
            await wait_until(lambda: (len(polite_sink.frame_numbers), len(rude_sink.frame_numbers)),
                             lambda frames: min(frames) >= 30,
                             "both subscribers still decoding after the bad messages", timeout=15)
        assert rude.state.bye is None and polite.state.errors == [] and publisher.state.errors == []
        room = server.rooms.get(str(server.day_id))
        assert room is not None and len(room.peers) == 3
    finally:
        for client in clients:
            await client.close()


async def test_h264_publisher_is_forwarded_as_h264(server: RunningServer, encoder_spy: EncoderSpy) -> None:
    student = await server.invite(Role.STUDENT, "Студент с iPhone")
    member = await server.invite(Role.MEMBER, "Член")
    publisher = RoomClient(server.base_url, student.token, tracks=[FrameNumberTrack()],
                           video_codec="video/H264")
    subscriber = RoomClient(server.base_url, member.token)
    try:
        for client in (publisher, subscriber):
            await client.connect()
            await client.start_media()
        frames = await _video_frames_from(subscriber, publisher.participant_id, 20)
        assert increasing_run(frames) >= 19
        room = server.rooms.get(str(server.day_id))
        assert room is not None
        peer = room.peer(subscriber.participant_id)
        assert peer is not None
        publications = list(peer.subscriptions().values())
        assert [p.codec.mimeType for p in publications] == ["video/H264"]
        await assert_sent_without_encoding([s for s in peer.pc.getSenders() if s.track], encoder_spy)
    finally:
        await publisher.close()
        await subscriber.close()


async def test_subscriber_bandwidth_estimates_reach_the_publisher(
        server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The publisher hears the lowest of its subscribers' estimates, nothing else: the
    server does not estimate the uplink itself; the publisher's abs-send-time reaches
    the subscribers unchanged, so theirs cover it."""
    reported: list[int] = []
    real_report = PublishedTrack.report_remb

    async def recording(self: PublishedTrack, track: ForwardedTrack, bitrate: int) -> None:
        reported.append(bitrate)
        await real_report(self, track, bitrate)

    monkeypatch.setattr(PublishedTrack, "report_remb", recording)
    student = await server.invite(Role.STUDENT, "Студент")
    members = [await server.invite(Role.MEMBER, f"Член {i}") for i in range(2)]
    publisher = RoomClient(server.base_url, student.token, tracks=[FrameNumberTrack()])
    subscribers = [RoomClient(server.base_url, m.token) for m in members]
    heard: list[int] = []
    try:
        for client in (publisher, *subscribers):
            await client.connect()
            await client.start_media()
        sender = next(s for s in publisher.pc.getSenders() if s.kind == "video")
        real_handle = sender._handle_rtcp_packet

        async def handle(packet: Any) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                heard.append(unpack_remb_fci(packet.fci)[0])
            await real_handle(packet)

        sender._handle_rtcp_packet = handle  # type: ignore[method-assign]
        await wait_until(lambda: heard, lambda remb: len(remb) >= 3, "REMBs at the publisher", 15)
        assert reported and set(heard) <= set(reported), (heard, reported)
        room = server.rooms.get(str(server.day_id))
        assert room is not None
        student_peer = room.peer(publisher.participant_id)
        assert student_peer is not None
        for receiver in student_peer.pc.getReceivers():
            assert getattr(receiver, "_RTCRtpReceiver__remote_bitrate_estimator") is None
    finally:
        for client in (publisher, *subscribers):
            await client.close()


async def test_packets_lost_towards_a_subscriber_are_resent_from_the_servers_history(
        server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The link to the subscriber loses every 10th video packet; its NACKs are answered
    with RTX from the server's own history and it decodes every frame in order."""
    lost: list[int] = []
    resent: list[int] = []
    real_writer = hooks.rtp_writer

    def lossy_writer(sender: Any) -> hooks.RtpWriter:
        write = real_writer(sender)
        if sender.kind != "video":
            return write

        def maybe_lose(packet: bytes) -> bool:
            seq, = struct.unpack_from("!H", packet, 2)
            ssrc, = struct.unpack_from("!I", packet, 8)
            if ssrc == sender._ssrc and seq % 10 == 0 and seq not in lost:
                lost.append(seq)
                return True  # "sent", and lost on the way
            return write(packet)

        return maybe_lose

    real_retransmission = ForwardedTrack.retransmission

    def counting(self: ForwardedTrack, seq: int) -> bytes | None:
        packet = real_retransmission(self, seq)
        if packet is not None:
            resent.append(seq)
        return packet

    monkeypatch.setattr(hooks, "rtp_writer", lossy_writer)
    monkeypatch.setattr(ForwardedTrack, "retransmission", counting)
    student = await server.invite(Role.STUDENT, "Студент")
    member = await server.invite(Role.MEMBER, "Член")
    video = FrameNumberTrack()
    publisher = RoomClient(server.base_url, student.token, tracks=[video])
    subscriber = RoomClient(server.base_url, member.token)
    try:
        for client in (publisher, subscriber):
            await client.connect()
            await client.start_media()
        frames = await _video_frames_from(subscriber, publisher.participant_id, 60)
        assert len(lost) >= 3, lost
        assert set(lost) & set(resent), (lost, resent)
        assert increasing_run(frames) >= 59, frames
    finally:
        await publisher.close()
        await subscriber.close()
