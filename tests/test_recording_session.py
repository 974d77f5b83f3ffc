"""A real aiortc session recorded from the forwarder's encoded frames, then decoded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import numpy as np

from media.assembler import EncodedFrame
from media.forwarder import PublishedTrack
from media.testing import FrameNumberTrack, ToneTrack, dominant_frequency, read_frame_number
from recordings.recorder import Recorder
from recordings.segment import TrackKey
from storage.invites import Role
from web_ui.client import RoomClient

from .conftest import EncoderSpy, RunningServer
from .media_helpers import assert_sent_without_encoding, increasing_run
from .timing import wait_until


def first_channel(frame: av.AudioFrame) -> np.ndarray:
    data: np.ndarray = frame.to_ndarray()
    if frame.format.is_planar:
        return np.asarray(data[0])
    return np.asarray(data.reshape(-1)[:: len(frame.layout.channels)])


async def test_forwarded_session_is_recorded_without_transcoding(
        server: RunningServer, encoder_spy: EncoderSpy, tmp_path: Path) -> None:
    student = await server.invite(Role.STUDENT, "Студент")
    member = await server.invite(Role.MEMBER, "Член")
    video = FrameNumberTrack()
    publisher = RoomClient(server.base_url, student.token, tracks=[video, ToneTrack(frequency=440)])
    subscriber = RoomClient(server.base_url, member.token)
    recorder = Recorder(tmp_path / "rec")
    recorder.start()
    written: list[str] = []

    def to_recorder(publication: PublishedTrack, frame: EncodedFrame) -> None:
        kind = publication.kind
        codec = "opus" if kind == "audio" else publication.codec.mimeType.split("/")[1].upper()
        key = TrackKey(publication.publisher_id, kind, codec, publication.codec.clockRate)
        if recorder.write(key, frame):
            written.append(kind)

    try:
        for client in (publisher, subscriber):
            await client.connect()
            await client.start_media()
        room = server.rooms.get(str(server.day_id))
        assert room is not None
        peer = room.peer(publisher.participant_id)
        assert peer is not None
        await wait_until(lambda: peer.published, lambda tracks: len(tracks) == 2,
                         "both of the publisher's tracks", 10)
        for publication in peer.published:
            publication.add_sink(to_recorder)
        await wait_until(lambda: (written.count("video"), written.count("audio")),
                         lambda counts: counts[0] >= 60 and counts[1] >= 100,
                         "2 s of recorded video and audio (video, audio frames)", 20)
        for publication in peer.published:
            publication.remove_sink(to_recorder)
        await assert_sent_without_encoding(
            [s for p in room.peers.values() for s in p.pc.getSenders() if s.track], encoder_spy)
    finally:
        await asyncio.to_thread(recorder.stop)
        await publisher.close()
        await subscriber.close()

    assert recorder.dropped == 0 and len(recorder.closed_files) == 2, recorder.closed_files
    video_file = next(p for p in recorder.closed_files if "-video-" in p.name)
    audio_file = next(p for p in recorder.closed_files if "-audio-" in p.name)
    with av.open(str(video_file)) as container:
        numbers = [read_frame_number(frame) for frame in container.decode(video=0)]
    assert len(numbers) >= 55 and increasing_run(numbers) >= 55, numbers
    assert max(numbers) < video.frames_sent
    with av.open(str(audio_file)) as container:
        samples = np.concatenate([first_channel(f) for f in container.decode(audio=0)])
    assert len(samples) >= 48_000 * 1.5
    assert abs(dominant_frequency(samples[-48_000:]) - 440) < 15
