"""Layer selection with real peers: a Chromium page publishes its camera with VP8
temporal layers (L1T3, set by the page itself); another Chromium page and an aiortc
client watch it, and the frame consumer the recorder uses counts what the recording
gets. The watching page's tile shrinks, grows, hides and shows again, and the aiortc
client's bandwidth estimate drops: each time the decoded frame rates follow, decoding
goes on across every switch, and the others and the recording keep the full rate."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from media import hooks
from media.assembler import EncodedFrame
from media.forwarder import ForwardedTrack, PublishedTrack
from media.room import Room
from storage.invites import Role
from web_ui.client import RoomClient

from .cdp import Cdp, Tab
from .chromium import chromium, require_chromium
from .conftest import RunningServer
from .test_browser import end_sessions, enter, wait_for_video
from .timing import wait_until

# The page's numbers, from its own getStats(): decoded video frames of everything it
# receives (here only the publisher's camera), and audio packets.
PAGE_STATS = """(async () => {
  const report = await window.roomDebug.link.pc.getStats();
  const out = {frames: 0, keyframes: 0, audio: 0};
  report.forEach((e) => {
    if (e.type !== "inbound-rtp") return;
    if (e.kind === "video") { out.frames += e.framesDecoded || 0; out.keyframes += e.keyFramesDecoded || 0; }
    if (e.kind === "audio") out.audio += e.packetsReceived || 0;
  });
  return out;
})()"""


@dataclass
class Counts:
    recorded: int = 0  # frames the recorder's consumer got
    aiortc: int = 0  # frames the aiortc client decoded
    frames_at: list[float] = field(default_factory=list)


async def _count_frames(track: MediaStreamTrack, counts: Counts) -> None:
    loop = asyncio.get_running_loop()
    try:
        while True:
            frame = await track.recv()
            if isinstance(frame, av.VideoFrame):
                counts.aiortc += 1
                counts.frames_at.append(loop.time())
    except MediaStreamError:
        pass


@contextlib.asynccontextmanager
async def counting(client: RoomClient, publication: PublishedTrack) -> AsyncIterator[Counts]:
    counts = Counts()

    def sink(_: PublishedTrack, frame: EncodedFrame) -> None:
        counts.recorded += 1

    received = next(r for r in client.received.values()
                    if r.participant == publication.publisher_id and r.kind == "video")
    assert received.track is not None
    task = asyncio.create_task(_count_frames(received.track, counts))
    publication.add_sink(sink)
    try:
        yield counts
    finally:
        publication.remove_sink(sink)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@dataclass(frozen=True)
class Rates:
    """Frames in one window, as fractions of what the recording got in it."""

    recorded: int
    page: float
    aiortc: float
    page_audio_packets: int


async def window(counts: Counts, tab: Tab, recorded_frames: int) -> Rates:
    """Count while the recording gets ``recorded_frames`` more frames."""
    page0, recorded0, aiortc0 = await tab.evaluate(PAGE_STATS), counts.recorded, counts.aiortc
    await wait_until(lambda: counts.recorded - recorded0, lambda n: n >= recorded_frames,
                     f"{recorded_frames} frames at the recorder's consumer", 30)
    page1, recorded1, aiortc1 = await tab.evaluate(PAGE_STATS), counts.recorded, counts.aiortc
    recorded = recorded1 - recorded0
    rates = Rates(recorded, (page1["frames"] - page0["frames"]) / recorded,
                  (aiortc1 - aiortc0) / recorded, page1["audio"] - page0["audio"])
    print(f"\n{rates}")
    return rates


async def show(tab: Tab, publisher_id: str, width: int | None, beside: str | None = None) -> None:
    """Make the watching page report its publisher tile ``width`` px wide (None: not shown),
    as its layout would; with ``beside``, that participant's tile large next to it."""
    tiles = {} if width is None else {publisher_id: {"w": width, "h": width * 9 // 16}}
    if beside is not None:
        tiles[beside] = {"w": 960, "h": 540}
    await tab.evaluate(f"window.roomDebug.grid.visibleTiles = () => ({json.dumps(tiles)});"
                       " window.roomDebug.grid.resendView(); true")


def forwarded_to(room: Room, viewer_id: str, publication: PublishedTrack) -> ForwardedTrack:
    peer = room.peer(viewer_id)
    track = peer.forwarded(publication) if peer is not None else None
    assert track is not None, f"{viewer_id} gets no forwarded track of the publisher's video"
    return track


async def test_each_viewer_gets_the_layers_its_tile_and_link_take(
        server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    # The publisher is a member: a student's camera, everyone's large tile and the
    # recording's subject, goes without layers (web_ui/static/js/connection.js).
    publisher = await server.invite(Role.MEMBER, "Член комиссии Слоёва")
    viewer = await server.invite(Role.MEMBER, "Член комиссии Хромов")
    watcher_invite = await server.invite(Role.MEMBER, "Член комиссии Айортисов")
    publisher_id, viewer_id = str(publisher.person_id), str(viewer.person_id)
    room_id = str(server.day_id)
    async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
        assert browser.devtools_url is not None
        cdp = await Cdp.connect(browser.devtools_url)
        watcher = RoomClient(server.base_url, watcher_invite.token)
        remb_task: asyncio.Task[None] | None = None
        try:
            publisher_tab = await cdp.open_tab(f"{server.base_url}/j/{publisher.token}")
            viewer_tab = await cdp.open_tab(f"{server.base_url}/j/{viewer.token}")
            await enter(publisher_tab)
            await enter(viewer_tab)
            await watcher.connect()
            await watcher.start_media()
            await wait_for_video(server.rooms, room_id, browser, {viewer_id: [publisher_id]})
            room = server.rooms.get(room_id)
            assert room is not None
            publisher_peer = room.peer(publisher_id)
            assert publisher_peer is not None
            publication = next(p for p in publisher_peer.published if p.kind == "video")
            try:
                await wait_until(lambda: publication.layered, bool,
                                 "temporal layers (a TID) in the publisher's VP8 packets", 20)
            except AssertionError as exc:
                said = [line for line in browser.console() if "temporal layers" in line]
                raise AssertionError(f"{exc}; the page said: {said}") from None
            await watcher.wait_for(lambda: any(
                r.participant == publisher_id and r.kind == "video" and r.track
                for r in watcher.received.values()), 15, "the publisher's video at the aiortc client")
            page_track = forwarded_to(room, viewer_id, publication)
            watcher_track = forwarded_to(room, watcher.participant_id, publication)
            # The aiortc client's own estimator (not what pages run) follows its
            # incoming rate closely and would move its layers on its own: it is
            # switched off, and its estimate is what the test sends below.
            received = next(r for r in watcher.received.values()
                            if r.participant == publisher_id and r.kind == "video")
            assert received.receiver is not None
            setattr(received.receiver, "_RTCRtpReceiver__remote_bitrate_estimator", None)
            await wait_until(lambda: publication.fresh_estimate(watcher_track), lambda e: e is None,
                             "the aiortc client's last estimate to go stale", 10)

            # The page's own layout reported its tile (small in this window, but the
            # largest on the page: every layer); from here on the test sets the sizes.
            own = await viewer_tab.evaluate("window.roomDebug.grid.visibleTiles()")
            print(f"\nthe page's own view: {own}")
            assert set(own) == {publisher_id}, own
            await wait_until(lambda: page_track.target_layer,
                             lambda layer: layer == 2,
                             "the layer for the page's own tile", 10)
            await show(viewer_tab, publisher_id, 960)
            await wait_until(lambda: page_track.layer, lambda layer: layer == 2,
                             "the large tile's layer", 10)
            async with counting(watcher, publication) as counts:
                await wait_until(lambda: counts.aiortc, lambda n: n >= 5,
                                 "the aiortc client's first decoded frames", 15)
                print(f"\nlayers: page {page_track.layer}, aiortc {watcher_track.layer}"
                      f" (target {watcher_track.target_layer}), rates {publication.layer_rates}"
                      f" estimates {publication.fresh_estimate(watcher_track)}")
                full = await window(counts, viewer_tab, 25)
                assert full.page >= 0.7 and full.aiortc >= 0.7, full

                # A small tile beside a large one: the base layer, a quarter of the frames.
                await show(viewer_tab, publisher_id, 160, beside=watcher.participant_id)
                await wait_until(lambda: page_track.layer, lambda layer: layer == 0,
                                 "the small tile's layer", 10)
                small = await window(counts, viewer_tab, 40)
                assert 0.1 <= small.page <= 0.45, small
                assert small.aiortc >= 0.7, small

                # Large again: up at the next sync points, decoding never stops.
                await show(viewer_tab, publisher_id, 960)
                await wait_until(lambda: page_track.layer, lambda layer: layer == 2,
                                 "the large tile's layer", 10)
                large = await window(counts, viewer_tab, 25)
                assert large.page >= 0.7, large

                # Hidden: no video at all, audio goes on; shown again, a keyframe at once.
                await show(viewer_tab, publisher_id, None)
                await wait_until(lambda: page_track.shown, lambda shown: not shown,
                                 "the hidden tile", 10)
                hidden = await window(counts, viewer_tab, 25)
                # At most a frame or two already on its way when the view arrived.
                assert hidden.page * hidden.recorded <= 3, hidden
                # Audio goes on (the fake microphone beeps; DTX sends ~5/s between beeps).
                assert hidden.page_audio_packets >= 8, hidden
                before = await viewer_tab.evaluate(PAGE_STATS)
                await show(viewer_tab, publisher_id, 960)
                await wait_until(lambda: viewer_tab.evaluate(PAGE_STATS),
                                 lambda now: now["frames"] >= before["frames"] + 10
                                 and now["keyframes"] > before["keyframes"],
                                 "decoded frames (from a keyframe) after showing the tile again", 10)

                # The aiortc client's estimate drops below the upper layers: it gets
                # the base layer; the page and the recording keep everything.
                low = 30_000  # under even the base layer: the least there is

                watcher_peer = room.peer(watcher.participant_id)
                assert watcher_peer is not None
                ssrc = next(s._ssrc for s in watcher_peer.pc.getSenders() if s.track is watcher_track)

                async def weak_link() -> None:
                    while True:
                        assert received.receiver is not None
                        hooks.send_remb(received.receiver, low, ssrc)
                        await asyncio.sleep(0.5)

                remb_task = asyncio.create_task(weak_link())
                await wait_until(lambda: watcher_track.layer, lambda layer: layer == 0,
                                 "the weak link's layer", 10)
                weak = await window(counts, viewer_tab, 40)
                assert 0.1 <= weak.aiortc <= 0.45, weak
                assert weak.page >= 0.7, weak
                assert page_track.layer == 2
                limit = publication.bitrate_limit()
                assert limit is not None and limit > low, (limit, low)
                # Decoding went on at the aiortc client through every switch.
                gaps = [b - a for a, b in zip(counts.frames_at, counts.frames_at[1:])]
                assert max(gaps) < 1.5, max(gaps)
            remb_task.cancel()
            await watcher.close()
            await end_sessions(server.rooms, room_id, [publisher_tab, viewer_tab])
        finally:
            if remb_task is not None:
                remb_task.cancel()
                await asyncio.gather(remb_task, return_exceptions=True)
            await watcher.close()
            await cdp.close()
