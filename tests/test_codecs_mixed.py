"""Codecs every participant can use (issue 17, item 4), with real aiortc peers.

What holds: the publisher's codec is read from the payload type of the RTP it sends,
never from its answer's order; each subscriber is offered every codec its publisher
negotiated and gets each packet in its own payload type for the codec really sent,
or nothing (and a ``track_unavailable`` notice) when it has no such codec; a rejected
m-line (port 0, no ICE credentials, as Firefox answers one offered only in H.264) costs
the participant nothing else. Nothing is ever transcoded.

Switching, defined: a track's codec is what its publisher sends and never changes
because someone joins. When an H.264 room gets a VP8-only joiner, the ones already
watching the H.264 camera go on without a pause, the joiner is told that camera
cannot reach it and gets everything else, and its own VP8 camera reaches everyone.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from aiortc import (RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCRtpCodecParameters,
                    RTCSessionDescription)
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from media.answers import normalize_answer
from media.codecs import codec_key, publish_preferences
from media.forwarder import PublishedTrack
from media.metrics import ForwardingMetrics
from media.rtp_in import ReceivedRtp
from media.rtp_out import OutboundFormat
from media.testing import FrameNumberTrack, ToneTrack
from storage.invites import Role
from web_ui.client import ReceivedTrack, RoomClient, _reject_mlines

from .cdp import DESKTOP, PHONE, Cdp
from .chromium import chromium, group_alive, require_chromium
from .conftest import EncoderSpy, RunningServer
from .media_helpers import Collected, assert_sent_without_encoding, collecting, increasing_run
from .test_browser import end_sessions, enter
from .timing import wait_until

SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
# Makes a Chromium page decode no H.264, as Debian's Firefox: its answer then rejects
# an m-line offered only in H.264 (JSEP: no codec in common), port 0.
NO_H264 = """
(() => {
  const apply = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = async function (description) {
    const result = await apply.call(this, description);
    if (description?.type === "offer") {
      const codecs = RTCRtpReceiver.getCapabilities("video").codecs
        .filter((c) => !/h264/i.test(c.mimeType));
      for (const t of this.getTransceivers()) {
        if (t.receiver.track.kind === "video" && !t.stopped) t.setCodecPreferences(codecs);
      }
    }
    return result;
  };
})();
"""

VP8_ONLY = ["video/VP8"]  # Debian's Firefox: no OpenH264 plugin
BOTH = ["video/VP8", "video/H264"]


# -- without a network: the answer, the codec order, the switch -----------------------


async def test_a_rejected_mline_is_filled_in_from_the_bundle() -> None:
    """aiortc refuses a Firefox-style rejected m-line; the normalized answer applies,
    and only that m-line ends up inactive."""
    bundle = RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    server, client = RTCPeerConnection(bundle), RTCPeerConnection(bundle)
    try:
        for kind in ("audio", "video"):
            server.addTransceiver(kind, direction="recvonly")
        forwarded = server.addTransceiver("video", direction="sendonly")
        for track in (ToneTrack(), FrameNumberTrack()):  # the client publishes both
            client.addTransceiver(track, direction="sendonly")
        await server.setLocalDescription(await server.createOffer())
        await client.setRemoteDescription(server.localDescription)
        await client.setLocalDescription(await client.createAnswer())
        assert forwarded.mid is not None
        raw = _reject_mlines(client.localDescription.sdp, {forwarded.mid})
        assert f"m=video 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=inactive\r\na=mid:{forwarded.mid}" in raw
        with pytest.raises(ValueError, match="ICE username fragment or password is missing"):
            await server.setRemoteDescription(RTCSessionDescription(sdp=raw, type="answer"))
        normalized = normalize_answer(raw, server.localDescription.sdp)
        assert normalized.rejected == (forwarded.mid,)
        await server.setRemoteDescription(RTCSessionDescription(sdp=normalized.sdp, type="answer"))
        directions = {t.mid: t.currentDirection for t in server.getTransceivers()}
        assert directions == {"0": "recvonly", "1": "recvonly", forwarded.mid: "inactive"}
        plain = normalize_answer(client.localDescription.sdp, server.localDescription.sdp)
        assert plain.rejected == () and plain.sdp == client.localDescription.sdp
    finally:
        await server.close()
        await client.close()


def test_publishers_are_offered_vp8_first_and_only_what_is_forwarded() -> None:
    video = [c.mimeType for c in publish_preferences("video")]
    assert video[0] == "video/VP8" and set(video[1:-1]) == {"video/H264"} and video[-1] == "video/rtx"
    assert [c.mimeType for c in publish_preferences("audio")] == ["audio/opus"]


VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102, parameters={
    "packetization-mode": "1", "profile-level-id": "42e01f", "level-asymmetry-allowed": "1"})
# The payload descriptor (S bit, partition 0), then the frame (RFC 7741, RFC 6386 9.1).
VP8_KEY = b"\x10" + b"\x10\x02\x00\x9d\x01\x2a" + b"k" * 10
VP8_DELTA = b"\x10" + b"\x11\x02\x00" + b"d" * 10
H264_IDR = b"\x65" + b"i" * 10


class Wire:
    def __init__(self) -> None:
        self.sent: list[RtpPacket] = []

    def __call__(self, data: bytes) -> bool:
        self.sent.append(RtpPacket.parse(data))
        return True


def test_the_publishers_packets_say_its_codec_and_each_subscriber_gets_its_own_type() -> None:
    """The publisher negotiated VP8 and H.264 and switches between them: a subscriber
    with both follows in its own payload types, its sequence numbers continuous; one
    with VP8 only gets nothing of the H.264 and is told once."""
    publication = PublishedTrack(publisher_id="7", kind="video", codec=VP8, codecs=[VP8, H264],
                                 metrics=ForwardingMetrics())
    both, vp8_only = Wire(), Wire()
    told: list[str] = []
    publication.subscribe("8").bind({codec_key(VP8): OutboundFormat(100, 555, 90000),
                                      codec_key(H264): OutboundFormat(101, 555, 90000)}, both)
    publication.subscribe("9").bind({codec_key(VP8): OutboundFormat(110, 556, 90000)}, vp8_only,
                                    on_unreachable=lambda codec: told.append(codec.mimeType))
    seq = 0

    def send(payload_type: int, payload: bytes, timestamp: int) -> None:
        nonlocal seq
        seq += 1
        publication.on_rtp(ReceivedRtp(payload_type, True, seq, timestamp, 1234, payload))

    assert not publication.codec_known
    send(96, VP8_KEY, 3000)
    send(96, VP8_DELTA, 6000)
    assert publication.codec_known and publication.codec is VP8
    send(102, H264_IDR, 9000)  # the switch: an IDR, so both may follow at once
    send(102, b"\x41" + b"p" * 10, 12000)
    assert publication.codec is H264 and told == ["video/H264"]
    send(96, VP8_KEY, 15000)  # and back
    send(102, H264_IDR, 18000)
    assert told == ["video/H264"]  # once per codec
    assert [p.payload_type for p in both.sent] == [100, 100, 101, 101, 100, 101]
    assert [p.sequence_number - both.sent[0].sequence_number for p in both.sent] == [0, 1, 2, 3, 4, 5]
    assert [p.payload_type for p in vp8_only.sent] == [110, 110, 110]
    assert [p.payload[:1] for p in vp8_only.sent] == [b"\x10", b"\x10", b"\x10"]


# -- real peers through the server -----------------------------------------------------


class PayloadTypes:
    """Every RTP payload type a client's receivers get, by mid (``on_receiver``)."""

    def __init__(self) -> None:
        self.seen: dict[str, set[int]] = defaultdict(set)

    def __call__(self, entry: ReceivedTrack) -> None:
        receiver = entry.receiver
        assert receiver is not None
        original = receiver._handle_rtp_packet

        async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
            self.seen[entry.mid].add(packet.payload_type)
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = handle  # type: ignore[method-assign]


def negotiated(client: RoomClient, mid: str) -> set[int]:
    """The payload types (RTX included) the client answered for ``mid``."""
    transceiver = next(t for t in client.pc.getTransceivers() if t.mid == mid)
    return {c.payloadType for c in getattr(transceiver, "_codecs") if c.payloadType is not None}


def assert_only_negotiated(client: RoomClient, seen: PayloadTypes, rejected: set[str]) -> None:
    for mid, types in seen.seen.items():
        if mid in rejected:
            assert not types, f"rejected m-line {mid} got payload types {types}"
        else:
            assert types <= negotiated(client, mid), (mid, types, negotiated(client, mid))


def h264_listed_first(answer_sdp: str) -> str:
    """The answer with H.264 before VP8 on every video m-line, as some browsers list
    them, while the sender still uses what it chose (the offerer's first: VP8)."""
    description = SessionDescription.parse(answer_sdp)
    for media in description.media:
        if media.kind == "video":
            media.rtp.codecs.sort(key=lambda c: c.mimeType.lower() != "video/h264")
            media.fmt = [c.payloadType for c in media.rtp.codecs]
    return str(description)


def tracks_from(client: RoomClient, publisher_id: str) -> dict[str, ReceivedTrack]:
    return {r.kind: r for r in client.received.values()
            if r.participant == publisher_id and r.track is not None}


async def joined(client: RoomClient) -> RoomClient:
    await client.connect()
    await client.start_media()
    return client


async def wait_decoding(sinks: dict[str, Collected], frames: int = 20, audio_s: float = 0.5,
                        timeout: float = 30) -> None:
    """Each ``name -> sink`` decodes ``frames`` video frames (names ending in
    ``video``) or ``audio_s`` seconds of audio (``audio``)."""
    def got() -> dict[str, float]:
        return {name: (len(s.frame_numbers) if name.endswith("video") else s.audio_seconds())
                for name, sink in sinks.items() for s in [sink]}

    def enough(values: dict[str, float]) -> bool:
        return all(v >= (frames if n.endswith("video") else audio_s) for n, v in values.items())

    await wait_until(got, enough, "decoded media at every sink (frames or seconds)", timeout)


async def test_publisher_listing_h264_first_but_sending_vp8_is_received(
        server: RunningServer, encoder_spy: EncoderSpy) -> None:
    """Fault (b) of the issue: the answer's order is not what the publisher sends."""
    student = await server.invite(Role.STUDENT, "Студент")
    member = await server.invite(Role.MEMBER, "Член")
    video = FrameNumberTrack()
    publisher = RoomClient(server.base_url, student.token, tracks=[video, ToneTrack()],
                           rewrite_answer=h264_listed_first)
    types = PayloadTypes()
    subscriber = RoomClient(server.base_url, member.token, on_receiver=types)
    try:
        await joined(publisher)
        await joined(subscriber)
        pub_id = publisher.participant_id
        room = server.rooms.get(str(server.day_id))
        assert room is not None
        pub_peer = room.peer(pub_id)
        assert pub_peer is not None
        answered = SessionDescription.parse(pub_peer.pc.remoteDescription.sdp)
        video_mline = next(m for m in answered.media if m.kind == "video")
        assert video_mline.rtp.codecs[0].mimeType == "video/H264"  # the trap is set
        await subscriber.wait_for(lambda: len(tracks_from(subscriber, pub_id)) == 2, 15,
                                  "both of the publisher's tracks")
        async with collecting(subscriber, pub_id) as sink:
            await wait_decoding({"video": sink, "audio": sink}, frames=30)
        assert increasing_run(sink.frame_numbers) >= 25, sink.frame_numbers
        published = {p.kind: p for p in pub_peer.published}
        assert published["video"].codec.mimeType == "video/VP8" and published["video"].codec_known
        assert_only_negotiated(subscriber, types, set())
        sub_peer = room.peer(subscriber.participant_id)
        assert sub_peer is not None
        await assert_sent_without_encoding(
            [s for s in sub_peer.pc.getSenders() if s.track], encoder_spy)
    finally:
        for client in (publisher, subscriber):
            await client.close()


async def test_publisher_sending_h264_while_vp8_was_offered_first(server: RunningServer) -> None:
    """The publisher negotiated VP8 and H.264 and sends H.264 (its own preference):
    the server expects VP8 (its offer's first) until the packets say otherwise, then
    forwards H.264 under each subscriber's own payload type."""
    student = await server.invite(Role.STUDENT, "Студент с телефоном")
    member = await server.invite(Role.MEMBER, "Член")
    publisher = RoomClient(server.base_url, student.token, tracks=[FrameNumberTrack()],
                           video_codec="video/H264", video_codecs=BOTH)
    types = PayloadTypes()
    subscriber = RoomClient(server.base_url, member.token, on_receiver=types)
    try:
        await joined(publisher)
        await joined(subscriber)
        pub_id = publisher.participant_id
        await subscriber.wait_for(lambda: "video" in tracks_from(subscriber, pub_id), 15,
                                  "the publisher's video")
        async with collecting(subscriber, pub_id) as sink:
            await wait_decoding({"video": sink}, frames=30)
        assert increasing_run(sink.frame_numbers) >= 25, sink.frame_numbers
        room = server.rooms.get(str(server.day_id))
        assert room is not None
        pub_peer = room.peer(pub_id)
        assert pub_peer is not None
        publication = pub_peer.published[0]
        assert [c.mimeType for c in publication.codecs][:1] == ["video/H264"]
        assert {c.mimeType for c in publication.codecs} == {"video/VP8", "video/H264"}
        mid = tracks_from(subscriber, pub_id)["video"].mid
        transceiver = next(t for t in subscriber.pc.getTransceivers() if t.mid == mid)
        h264_types = {c.payloadType for c in getattr(transceiver, "_codecs")
                      if c.mimeType == "video/H264"}
        assert types.seen[mid] and types.seen[mid] <= h264_types, (types.seen[mid], h264_types)
        assert subscriber.state.unavailable == []
    finally:
        for client in (publisher, subscriber):
            await client.close()


async def test_rejected_video_mline_keeps_everything_else(server: RunningServer) -> None:
    """Fault (a) of the issue, and the switching case: an H.264-only publisher is
    watched by an H.264-capable member; a VP8-only joiner rejects the H.264 m-line."""
    student = await server.invite(Role.STUDENT, "Студент с iPhone")
    member = await server.invite(Role.MEMBER, "Член с Chromium")
    joiner_invite = await server.invite(Role.MEMBER, "Член с Firefox")
    student_video = FrameNumberTrack()
    publisher = RoomClient(server.base_url, student.token,
                           tracks=[student_video, ToneTrack(frequency=440)],
                           video_codec="video/H264")
    watcher_types, joiner_types = PayloadTypes(), PayloadTypes()
    watcher = RoomClient(server.base_url, member.token, on_receiver=watcher_types)
    joiner = RoomClient(server.base_url, joiner_invite.token,
                        tracks=[FrameNumberTrack(), ToneTrack(frequency=660)],
                        video_codecs=VP8_ONLY, on_receiver=joiner_types)
    clients = [publisher, watcher, joiner]
    try:
        await joined(publisher)
        await joined(watcher)
        pub_id = publisher.participant_id
        await watcher.wait_for(lambda: len(tracks_from(watcher, pub_id)) == 2, 15,
                               "the student's tracks at the member")
        room = server.rooms.get(str(server.day_id))
        assert room is not None
        async with collecting(watcher, pub_id) as before:
            await wait_decoding({"video": before}, frames=20)
            student_peer = room.peer(pub_id)
            assert student_peer is not None
            publication = {p.kind: p for p in student_peer.published}["video"]
            ssrc_before = getattr(publication, "_ssrc")
            frames_at_join = len(before.frame_numbers)
            await joined(joiner)  # answers the H.264 m-line with port 0, no ICE
            joiner_id = joiner.participant_id
            await joiner.wait_for(lambda: bool(joiner.state.unavailable), 10,
                                  "the notice that the student's video cannot reach it")
            await wait_until(lambda: len(before.frame_numbers),
                             lambda n: n >= frames_at_join + 45,
                             "the member's decoding of the student going on", timeout=15)
        # The member never paused: one increasing run across the joiner's arrival.
        assert increasing_run(before.frame_numbers) >= len(before.frame_numbers) - 2, \
            before.frame_numbers
        assert joiner.state.unavailable == [{
            "type": "track_unavailable", "participant": pub_id, "name": "Студент с iPhone",
            "kind": "video", "codec": "H264"}]
        assert joiner.state.errors == [] and joiner.state.bye is None
        joiner_peer = room.peer(joiner_id)
        assert joiner_peer is not None and not joiner_peer.negotiation_failed
        assert joiner_peer.connection_state == "connected"
        # The joiner keeps its microphone and camera, and hears the student.
        await watcher.wait_for(lambda: len(tracks_from(watcher, joiner_id)) == 2, 15,
                               "the joiner's tracks at the member")
        await publisher.wait_for(lambda: len(tracks_from(publisher, joiner_id)) == 2, 15,
                                 "the joiner's tracks at the student")
        async with collecting(joiner, pub_id) as at_joiner, \
                collecting(publisher, joiner_id) as at_student, \
                collecting(watcher, joiner_id) as at_member:
            await wait_decoding({"student audio at joiner": at_joiner,
                                 "joiner audio at student": at_student,
                                 "joiner video at student": at_student,
                                 "joiner video at member": at_member}, frames=20, audio_s=1.0)
        assert abs(at_joiner.tone() - 440) < 15 and abs(at_student.tone() - 660) < 15
        assert at_joiner.frame_numbers == []  # no H.264 reached the VP8-only joiner
        student_video_mid = next(r.mid for r in joiner.received.values()
                                 if r.participant == pub_id and r.kind == "video")
        assert_only_negotiated(joiner, joiner_types, {student_video_mid})
        assert_only_negotiated(watcher, watcher_types, set())
        assert publication.codec.mimeType == "video/H264"
        assert getattr(publication, "_ssrc") == ssrc_before
    finally:
        for client in clients:
            await client.close()


async def test_h264_publisher_and_vp8_only_subscriber_in_one_room(
        server: RunningServer, encoder_spy: EncoderSpy) -> None:
    """Every subscriber decodes every track it accepted; nobody receives a payload
    type it did not negotiate. The VP8-only member accepted the H.264 publisher's
    m-line (it offered VP8 too) but gets none of its H.264, and is told so."""
    names = {"phone": "Студент с телефоном", "firefox": "Член с Firefox", "chromium": "Председатель"}
    invites = {
        "phone": await server.invite(Role.STUDENT, names["phone"]),
        "firefox": await server.invite(Role.MEMBER, names["firefox"]),
        "chromium": await server.invite(Role.CHAIR, names["chromium"]),
    }
    tones = {"phone": 440, "firefox": 550, "chromium": 660}
    options: dict[str, dict[str, Any]] = {
        "phone": {"video_codec": "video/H264", "video_codecs": BOTH},
        "firefox": {"video_codecs": VP8_ONLY},
        "chromium": {},
    }
    types = {name: PayloadTypes() for name in invites}
    clients = {name: RoomClient(server.base_url, invites[name].token,
                                tracks=[FrameNumberTrack(), ToneTrack(frequency=tones[name])],
                                on_receiver=types[name], **options[name])
               for name in invites}
    try:
        for client in clients.values():
            await joined(client)
        ids = {name: c.participant_id for name, c in clients.items()}
        for name, client in clients.items():
            others = [ids[o] for o in clients if o != name]
            await client.wait_for(functools.partial(
                lambda c, o: all(len(tracks_from(c, p)) == 2 for p in o), client, others),
                15, f"every other participant's tracks at {name}")
        expected: dict[tuple[str, str], set[str]] = {
            (sub, pub): {"audio", "video"} for sub in clients for pub in clients if sub != pub}
        expected[("firefox", "phone")] = {"audio"}
        sinks: dict[str, Collected] = {}
        contexts = []
        for (sub, pub), kinds in expected.items():
            context = collecting(clients[sub], ids[pub])
            contexts.append(context)
            sink = await context.__aenter__()
            for kind in kinds:
                sinks[f"{pub} at {sub} {kind}"] = sink
        try:
            await wait_decoding(sinks, frames=20, audio_s=1.0, timeout=40)
            phone_at_firefox = sinks["phone at firefox audio"]
        finally:
            for context in contexts:
                await context.__aexit__(None, None, None)
        assert phone_at_firefox.frame_numbers == []
        for name, sink in sinks.items():
            if name.endswith("audio"):
                publisher = name.split(" ")[0]
                assert abs(sink.tone() - tones[publisher]) < 15, (name, sink.tone())
        assert clients["firefox"].state.unavailable == [{
            "type": "track_unavailable", "participant": ids["phone"], "name": names["phone"],
            "kind": "video", "codec": "H264"}]
        assert clients["phone"].state.unavailable == clients["chromium"].state.unavailable == []
        for name, client in clients.items():
            assert_only_negotiated(client, types[name], set())
        phone_video_mid = next(r.mid for r in clients["firefox"].received.values()
                               if r.participant == ids["phone"] and r.kind == "video")
        assert not types["firefox"].seen.get(phone_video_mid)
        room = server.rooms.get(str(server.day_id))
        assert room is not None
        senders = [s for peer in room.peers.values() for s in peer.pc.getSenders()
                   if s.track and s.track.readyState == "live"]
        reached = []
        for sender in senders:
            stats = [s for s in (await sender.getStats()).values() if s.type == "outbound-rtp"]
            if stats and stats[0].packetsSent:
                reached.append(sender)
        assert len(reached) == 11  # 12 tracks forwarded, less the phone's video to Firefox
        await assert_sent_without_encoding(reached, encoder_spy)
    finally:
        for client in clients.values():
            await client.close()


async def test_page_without_h264_keeps_its_media_and_shows_the_notice(
        server: RunningServer, tmp_path: Path) -> None:
    """A Chromium page that decodes no H.264 rejects an H.264-only camera's m-line: it
    keeps its own camera and microphone, hears the student, and says in a sentence
    whose camera it cannot show and what to do."""
    require_chromium()
    student = await server.invite(Role.STUDENT, "Студент с iPhone")
    member = await server.invite(Role.MEMBER, "Член комиссии Иванов")
    publisher = RoomClient(server.base_url, student.token,
                           tracks=[FrameNumberTrack(), ToneTrack(frequency=440)],
                           video_codec="video/H264")
    try:
        await joined(publisher)
        pub_id = publisher.participant_id
        async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
            assert browser.devtools_url is not None
            cdp = await Cdp.connect(browser.devtools_url)
            try:
                tab = await cdp.open_tab("about:blank")
                await tab.send("Page.addScriptToEvaluateOnNewDocument", {"source": NO_H264})
                await tab.send("Page.navigate", {"url": f"{server.base_url}/j/{member.token}"})
                await enter(tab)
                text = await tab.wait_for(
                    "document.querySelector('.notice-log')?.textContent.includes('H.264')"
                    " && document.querySelector('.notice-log').textContent",
                    "the notice that the student's camera cannot be shown")
                assert "Камеру участника Студент с iPhone этот браузер не покажет" in text, text
                assert "Chromium" in text, text
                room = server.rooms.get(str(server.day_id))
                assert room is not None
                member_id = str(member.person_id)
                member_peer = room.peer(member_id)
                assert member_peer is not None and not member_peer.negotiation_failed
                student_audio = {mid for mid, p in member_peer.subscriptions().items()
                                 if p.publisher_id == pub_id}
                assert len(student_audio) == 1  # the video m-line was rejected
                await wait_until(lambda: [e["packetsReceived"] for e in member_peer.last_stats
                                          if e["mid"] in student_audio],
                                 lambda got: bool(got) and got[0] > 50,
                                 "the page receiving the student's audio (packets)", 30)
                roster = {e["id"]: e for e in room.roster()}
                assert roster[member_id]["publishing"] == ["audio", "video"]
                await publisher.wait_for(lambda: len(tracks_from(publisher, member_id)) == 2, 15,
                                         "the member's tracks at the student")
                async with collecting(publisher, member_id) as sink:
                    await wait_decoding({"video": sink, "audio": sink}, frames=10, audio_s=0.5)
                await tab.screenshot(SCREENSHOTS / "codecs-notice-desktop.png", DESKTOP)
                await tab.screenshot(SCREENSHOTS / "codecs-notice-phone.png", PHONE)
                await publisher.close()
                await end_sessions(server.rooms, str(server.day_id), [tab])
            finally:
                await cdp.close()
        assert not group_alive(browser.process.pid), "a Chromium process outlived the test"
    finally:
        await publisher.close()
