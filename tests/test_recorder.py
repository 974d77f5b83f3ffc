"""Recorder tests: real VP8/Opus/H.264 packets muxed into real files, reopened with av."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from media.assembler import EncodedFrame
from media.testing import dominant_frequency, frame_number_image, read_frame_number
from recordings.errors import RecordingError, UnsupportedTrack
from recordings.recorder import Recorder, TrackKey
from recordings.remux import finalize

from .timing import wait_until

FPS = 30
VIDEO_TICKS = 90_000 // FPS
AUDIO_TICKS = 960  # 20 ms at 48 kHz
TONE_HZ = 440.0
ROOT = Path(__file__).resolve().parent.parent

VIDEO = TrackKey("alice", "video", "VP8", 90_000)
AUDIO = TrackKey("alice", "audio", "opus", 48_000)


def encode_video(count: int, codec: str = "libvpx", first: int = 0) -> list[tuple[bytes, bool]]:
    """``count`` frame-number pictures encoded (test setup, before the recorder)."""
    enc = av.CodecContext.create(codec, "w")
    assert isinstance(enc, av.VideoCodecContext)
    enc.width, enc.height = 320, 240
    enc.pix_fmt = "yuv420p"
    enc.time_base = Fraction(1, FPS)
    enc.bit_rate = 600_000
    enc.gop_size = 2 * FPS
    enc.options = ({"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
                   if codec == "libvpx" else {"preset": "ultrafast", "tune": "zerolatency"})
    out: list[tuple[bytes, bool]] = []
    for i in range(count):
        frame = av.VideoFrame.from_ndarray(frame_number_image(first + i, 320, 240),
                                           format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out += [(bytes(p), p.is_keyframe) for p in enc.encode(frame)]
    out += [(bytes(p), p.is_keyframe) for p in enc.encode(None)]
    return out


def encode_tone(count: int) -> list[bytes]:
    """``count`` 20 ms Opus packets of a sine tone."""
    enc = av.CodecContext.create("libopus", "w")
    assert isinstance(enc, av.AudioCodecContext)
    enc.sample_rate = 48_000
    enc.layout = "mono"
    enc.format = "s16"
    enc.time_base = Fraction(1, 48_000)
    out: list[bytes] = []
    for i in range(count):
        t = (np.arange(AUDIO_TICKS) + i * AUDIO_TICKS) / 48_000
        wave = (0.3 * 32767 * np.sin(2 * math.pi * TONE_HZ * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(wave.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48_000
        frame.pts = i * AUDIO_TICKS
        out += [bytes(p) for p in enc.encode(frame)]
    return out


def video_frames(packets: list[tuple[bytes, bool]], rtp_start: int, t0: float = 100.0) -> list[EncodedFrame]:
    return [EncodedFrame(data, (rtp_start + i * VIDEO_TICKS) % (1 << 32), key, t0 + i / FPS)
            for i, (data, key) in enumerate(packets)]


def audio_frames(packets: list[bytes], rtp_start: int, t0: float = 100.0) -> list[EncodedFrame]:
    return [EncodedFrame(data, (rtp_start + i * AUDIO_TICKS) % (1 << 32), True, t0 + i * 0.02)
            for i, data in enumerate(packets)]


def decoded_numbers(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [read_frame_number(f) for f in container.decode(video=0)]


def decoded_audio(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        chunks = [f.to_ndarray()[0] for f in container.decode(audio=0)]
    return np.concatenate(chunks)


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    rec = Recorder(tmp_path / "rec")
    rec.start()
    yield rec
    rec.stop()


@pytest.fixture(scope="module")
def vp8_3s() -> list[tuple[bytes, bool]]:
    return encode_video(3 * FPS)


@pytest.fixture(scope="module")
def opus_3s() -> list[bytes]:
    return encode_tone(150)


async def test_records_vp8_and_opus_without_reencoding(
        recorder: Recorder, vp8_3s: list[tuple[bytes, bool]], opus_3s: list[bytes]) -> None:
    # The RTP clock wraps during the recording.
    vf = video_frames(vp8_3s, (1 << 32) - 45 * VIDEO_TICKS)
    af = audio_frames(opus_3s, (1 << 32) - 20_000)
    for i in range(max(len(vf), len(af))):
        if i < len(vf):
            assert recorder.write(VIDEO, vf[i])
        if i < len(af):
            assert recorder.write(AUDIO, af[i])
    await wait_until(lambda: recorder.backlog, lambda left: left == 0, "the writer to catch up", 10)
    # Nothing was encoded: no stream has an encoder, or any codec context that was opened.
    streams = recorder.open_streams()
    assert len(streams) == 2
    for stream in streams:
        ctx = stream.codec_context
        assert ctx is None or not (ctx.is_open or ctx.is_encoder)
    recorder.stop()

    folder = recorder.folder
    assert sorted(p.name for p in folder.iterdir()) == [
        "alice-audio-1.webm", "alice-audio-1.webm.json", "alice-video-1.webm", "alice-video-1.webm.json"]
    assert decoded_numbers(folder / "alice-video-1.webm") == list(range(3 * FPS))
    with av.open(str(folder / "alice-video-1.webm")) as container:
        assert container.duration is not None
        assert container.duration / 1e6 == pytest.approx(3.0, abs=0.1)
        assert (container.streams.video[0].codec_context.width,
                container.streams.video[0].codec_context.height) == (320, 240)
    samples = decoded_audio(folder / "alice-audio-1.webm")
    assert len(samples) / 48_000 == pytest.approx(3.0, abs=0.1)
    assert dominant_frequency(samples[4800:]) == pytest.approx(TONE_HZ, abs=5)

    sidecar = json.loads((folder / "alice-video-1.webm.json").read_text())
    assert sidecar["first_arrived"] == 100.0
    assert sidecar["complete"] is True
    assert sidecar["frames"] == 3 * FPS
    assert sidecar["duration_s"] == pytest.approx(89 / FPS)
    assert recorder.dropped == 0 and recorder.skipped == 0 and recorder.errors == 0


async def test_video_waits_for_keyframe_and_reconnect_starts_segment_2(
        recorder: Recorder, vp8_3s: list[tuple[bytes, bool]]) -> None:
    frames = video_frames(vp8_3s, 5000)
    first_key_after = next(i for i, (_, key) in enumerate(vp8_3s) if key and i > 0)
    # Join mid-GOP: everything before the second keyframe is skipped.
    for frame in frames[10:]:
        recorder.write(VIDEO, frame)
    await wait_until(lambda: (recorder.backlog, sorted(p.name for p in recorder.folder.glob("*"))),
                     lambda seen: seen[0] == 0 and "alice-video-1.webm.json" in seen[1],
                     "the first segment (backlog, files)", 10)
    sidecar = json.loads((recorder.folder / "alice-video-1.webm.json").read_text())
    assert sidecar["complete"] is False
    assert (recorder.folder / "alice-video-1.webm.part").exists()
    recorder.end_track(VIDEO)
    await wait_until(lambda: sorted(p.name for p in recorder.folder.glob("*")),
                     lambda names: "alice-video-1.webm" in names, "segment 1 closed", 10)
    # Reconnect: a new stream with a new RTP timestamp base.
    for frame in video_frames(encode_video(FPS, first=500), 12345):
        recorder.write(VIDEO, frame)
    recorder.stop()
    assert recorder.skipped == first_key_after - 10
    assert decoded_numbers(recorder.folder / "alice-video-1.webm") == list(range(first_key_after, 3 * FPS))
    assert decoded_numbers(recorder.folder / "alice-video-2.webm") == list(range(500, 500 + FPS))
    assert not list(recorder.folder.glob("*.part"))


def test_h264_goes_into_matroska(recorder: Recorder) -> None:
    track = TrackKey("bob", "video", "H264", 90_000)
    for frame in video_frames(encode_video(FPS, codec="libx264"), 0):
        recorder.write(track, frame)
    recorder.stop()
    assert decoded_numbers(recorder.folder / "bob-video-1.mkv") == list(range(FPS))


def test_overflow_drops_without_blocking(tmp_path: Path, vp8_3s: list[tuple[bytes, bool]],
                                         caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder(tmp_path / "rec", queue_frames=5)  # not started: nothing drains
    frames = video_frames(vp8_3s, 0)
    started = time.monotonic()
    results = [rec.write(VIDEO, frame) for frame in frames[:20]]
    assert time.monotonic() - started < 0.5
    assert results == [True] * 5 + [False] * 15
    assert rec.dropped == 15
    assert len([r for r in caplog.records if "frames dropped" in r.getMessage()]) == 1
    rec.stop()
    rec.stop()
    assert rec.write(VIDEO, frames[0]) is False


def test_queued_frames_are_written_when_the_writer_catches_up(
        tmp_path: Path, vp8_3s: list[tuple[bytes, bool]]) -> None:
    rec = Recorder(tmp_path / "rec", queue_frames=30)
    frames = video_frames(vp8_3s, 0)
    accepted = [f for f in frames if rec.write(VIDEO, f)]
    rec.start()
    rec.stop()
    assert len(accepted) == 30 and rec.dropped == len(frames) - 30
    assert decoded_numbers(rec.folder / "alice-video-1.webm") == list(range(30))


def test_start_stop_lifecycle_leaves_no_thread(tmp_path: Path) -> None:
    # Only this recorder's threads: an earlier test's server may still be closing its own.
    before = {t for t in threading.enumerate() if t.name.startswith("recorder:")}
    rec = Recorder(tmp_path / "rec")
    rec.start()
    with pytest.raises(RecordingError):
        rec.start()
    rec.stop()
    rec.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("recorder:") and t not in before]


def test_rejects_tracks_it_cannot_record() -> None:
    with pytest.raises(UnsupportedTrack, match="'VP9'"):
        TrackKey("alice", "video", "VP9", 90_000)
    with pytest.raises(UnsupportedTrack, match="'../x'"):
        TrackKey("../x", "audio", "opus", 48_000)


CRASH_WRITER = """
import sys, time
from pathlib import Path
from recordings.recorder import Recorder
from tests.test_recorder import AUDIO, VIDEO, audio_frames, encode_tone, encode_video, video_frames
video = video_frames(encode_video(5 * 30), 7777)
audio = audio_frames(encode_tone(250), 999)
rec = Recorder(Path(sys.argv[1]))
rec.start()
for i in range(250):
    if i < len(video):
        rec.write(VIDEO, video[i])
    rec.write(AUDIO, audio[i])
while rec.backlog:
    time.sleep(0.01)
time.sleep(0.2)
print("written", flush=True)
time.sleep(60)
"""


def test_sigkill_loses_less_than_a_second(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    proc = subprocess.Popen([sys.executable, "-c", CRASH_WRITER, str(folder)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "written"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    part = folder / "alice-video-1.webm.part"
    numbers = decoded_numbers(part)
    assert numbers == list(range(len(numbers)))
    video_loss = 5.0 - len(numbers) / FPS
    audio_loss = 5.0 - len(decoded_audio(folder / "alice-audio-1.webm.part")) / 48_000
    print(f"lost after SIGKILL: video {video_loss:.2f} s, audio {audio_loss:.2f} s")
    # Only the open cluster is lost: at most cluster_time_limit (1 s) of media. Feeding
    # exactly 5 s and killing then is the worst case (the cluster 4-5 s is still open).
    assert video_loss <= 1.0 + 1e-6 and audio_loss <= 1.0 + 1e-6

    final = finalize(part)
    assert final.name == "alice-video-1.final.webm"
    assert part.exists()
    with av.open(str(final)) as container:
        assert container.duration is not None
        assert container.duration / 1e6 == pytest.approx(len(numbers) / FPS, abs=0.1)
    assert decoded_numbers(final) == numbers
    audio_final = finalize(folder / "alice-audio-1.webm.part")
    assert dominant_frequency(decoded_audio(audio_final)[4800:]) == pytest.approx(TONE_HZ, abs=5)
