"""The `view` message with real aiortc peers: a subscriber that stops showing a
publisher's tile stops receiving its video (its audio goes on), and gets decodable
video again as soon as it shows it; a malformed view is refused with a clear error and
changes nothing."""

from __future__ import annotations

from media.testing import FrameNumberTrack, ToneTrack
from storage.invites import Role
from web_ui.client import RoomClient

from .conftest import RunningServer
from .media_helpers import collecting, increasing_run
from .timing import wait_until


async def test_hidden_tile_gets_no_video_and_shown_again_decodes_at_once(server: RunningServer) -> None:
    student = await server.invite(Role.STUDENT, "Студент Видимый")
    member = await server.invite(Role.MEMBER, "Член комиссии Смотрящий")
    video = FrameNumberTrack()
    publisher = RoomClient(server.base_url, student.token, tracks=[video, ToneTrack()])
    viewer = RoomClient(server.base_url, member.token)
    try:
        for client in (publisher, viewer):
            await client.connect()
            await client.start_media()
        pub_id = publisher.participant_id
        await viewer.wait_for(lambda: sum(1 for r in viewer.received.values()
                                          if r.participant == pub_id and r.track) == 2,
                              15, "the publisher's audio and video")
        room = server.rooms.get(str(server.day_id))
        assert room is not None
        viewer_peer, publisher_peer = room.peer(viewer.participant_id), room.peer(pub_id)
        assert viewer_peer is not None and publisher_peer is not None
        publication = next(p for p in publisher_peer.published if p.kind == "video")
        forwarded = viewer_peer.forwarded(publication)
        assert forwarded is not None
        async with collecting(viewer, pub_id) as sink:
            await wait_until(lambda: len(sink.frame_numbers), lambda n: n >= 15,
                             "frames while the tile is shown", 15)

            await viewer.send({"type": "view", "tiles": {}})
            await wait_until(lambda: forwarded.shown, lambda shown: not shown, "the hidden tile", 5)
            hidden_at = len(sink.frame_numbers)
            audio_at = sink.audio_seconds()
            sent_at = video.frames_sent
            await wait_until(lambda: video.frames_sent - sent_at, lambda n: n >= 45,
                             "1.5 s of the publisher's camera", 10)
            # At most what was already on its way when the view arrived.
            assert len(sink.frame_numbers) - hidden_at <= 3, sink.frame_numbers[hidden_at:]
            assert sink.audio_seconds() - audio_at >= 1.0, "audio must go on for a hidden tile"

            shown_at = len(sink.frame_numbers)
            await viewer.send({"type": "view", "tiles": {pub_id: {"w": 640, "h": 360}}})
            await wait_until(lambda: len(sink.frame_numbers) - shown_at, lambda n: n >= 30,
                             "frames again once the tile shows", 10)
            resumed = sink.frame_numbers[shown_at:]
            # Decodable from the first frame (a keyframe was asked for) and in order.
            assert increasing_run(resumed) >= 28, resumed
            # The frames of the hidden time were never sent (a frame or two already in
            # the decoder may come first).
            around = sink.frame_numbers[max(0, shown_at - 1):shown_at + 4]
            assert max(b - a for a, b in zip(around, around[1:])) >= 40, around

            # A small tile beside a larger one gets the base layer (of a publisher
            # sending layers); the page's widest tile gets everything, however small.
            await viewer.send({"type": "view", "tiles": {pub_id: {"w": 200, "h": 150},
                                                         "someone": {"w": 900, "h": 500}}})
            await wait_until(lambda: forwarded.target_layer, lambda layer: layer == 0,
                             "the base layer for a small tile", 5)
            await viewer.send({"type": "view", "tiles": {pub_id: {"w": 200, "h": 150}}})
            await wait_until(lambda: forwarded.target_layer, lambda layer: layer == 2,
                             "every layer for the page's widest tile", 5)

            errors = len(viewer.state.errors)
            await viewer.send({"type": "view", "tiles": {pub_id: {"w": "wide", "h": 1}}})
            await viewer.wait_for(lambda: len(viewer.state.errors) > errors, 5, "an error for a bad view")
            error = viewer.state.errors[-1]
            assert error["code"] == "malformed" and "'w' must be a whole number" in error["message"], error
            assert forwarded.shown
            frames_at = len(sink.frame_numbers)
            await wait_until(lambda: len(sink.frame_numbers) - frames_at, lambda n: n >= 15,
                             "frames after the refused view", 10)
    finally:
        await publisher.close()
        await viewer.close()
