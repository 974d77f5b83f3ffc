"""The product server (web_ui.app with media.Room's forwarder), run for the bench.

Usage: _server.py INVITES. Prints ``{"port": ..., "tokens": [...]}`` once listening on
127.0.0.1; see bench/_control.py for the rest of the contract.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _control import add_stats_route, install_encoder_spy, latency_summary, serve  # noqa: E402

from defense_room.eventloop import new_event_loop  # noqa: E402
from server.config import Config, TlsConfig, TlsMode  # noqa: E402
from storage.invites import Role  # noqa: E402
from web_ui.app import create_app  # noqa: E402
from web_ui.keys import INVITES, ROOMS  # noqa: E402


def diagnostics(room: Any) -> list[dict[str, Any]]:
    """Per publication: what the receiver and the assembler saw (private attributes,
    read for the report only)."""
    result = []
    for publisher_id, publications in getattr(room, "_publications", {}).items():
        peer = room.peer(publisher_id)
        lost = {}
        if peer is not None:
            for receiver in peer.pc.getReceivers():
                streams = getattr(receiver, "_RTCRtpReceiver__remote_streams", {})
                for ssrc, stream in streams.items():
                    lost[str(ssrc)] = {"received": stream.packets_received, "lost": stream.packets_lost}
        for publication in publications:
            assembler = getattr(publication, "_assembler", None)
            entry: dict[str, Any] = {"publisher": publisher_id, "kind": publication.kind,
                                     "subscribers": publication.subscriber_count}
            for name in ("frames_released", "frames_dropped", "skips", "dropped"):
                if hasattr(assembler, name):
                    entry[f"assembler_{name}"] = getattr(assembler, name)
            result.append(entry)
        if lost:
            result.append({"publisher": publisher_id, "rtp_streams": lost})
    return result


async def main(invites: int, data_dir: Path) -> None:
    install_encoder_spy()
    base = Config()
    config = dataclasses.replace(
        base,
        data_dir=data_dir,
        server=dataclasses.replace(base.server, host="127.0.0.1", port=0),
        tls=TlsConfig(mode=TlsMode.OFF),
        ice_servers=(),
    )
    app = create_app(config)

    def stats(reset: bool) -> dict[str, Any]:
        rooms = list(app[ROOMS].rooms.values())
        if not rooms:
            return {"latency": {}, "counters": {}}
        if len(rooms) > 1:
            raise RuntimeError(f"the bench expects one room, found {len(rooms)}")
        metrics = rooms[0].metrics
        body: dict[str, Any] = {"latency": latency_summary(metrics), "counters": {
            "frames_in": dict(metrics.frames_in), "frames_out": dict(metrics.frames_out),
            "frames_dropped": metrics.frames_dropped,
            "frames_before_keyframe": metrics.frames_before_keyframe,
            "keyframe_requests": metrics.keyframe_requests,
        }}
        body["diagnostics"] = diagnostics(rooms[0])
        if reset:
            metrics.reset_latency()
        return body

    add_stats_route(app, stats)

    async def announce(port: int) -> dict[str, Any]:
        store = app[INVITES]
        day = await store.create_day("Bench day", datetime.date.today(), time.time(), "Europe/Moscow")
        tokens = []
        for i in range(invites):
            role = Role.STUDENT if i == 0 else Role.MEMBER
            issued = await store.issue(day, role, f"bench participant {i}", time.time() + 3600)
            tokens.append(issued.token)
        return {"tokens": tokens}

    # The lag probe wakes the loop every 100 ms, not 10: at 10 ms it cost each
    # server ~1.8 % of a core, counted as if it were forwarding work.
    await serve(app, announce, lag_period_s=0.1)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        # The product's event loop (uvloop), as `defense-room serve` runs it.
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(main(int(sys.argv[1]), Path(tmp) / "data"))
