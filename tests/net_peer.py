"""An aiortc participant run as its own process inside a netlab host:

    python -m tests.net_peer BASE_URL TOKEN ONLY

It joins (publishing nothing), keeps of the ``welcome`` message's TURN URLs only
those of transport ONLY ("udp", "tcp"; "-" keeps them all: aiortc uses the first
TURN URL it can), waits for a forwarded video track, decodes 20 frames of it and
prints one JSON line: the frames, and the selected candidate pair (local candidate
type, addresses), then leaves.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection

from media.testing import read_frame_number
from web_ui.client import RoomClient

FRAMES = 20


def _keep(url: str, only: str) -> bool:
    if only in ("", "-"):
        return True
    if only == "tcp":
        return url.startswith("turn:") and "transport=tcp" in url
    return url.startswith("turn:") and "transport=tcp" not in url


class Client(RoomClient):
    def __init__(self, base_url: str, token: str, only: str) -> None:
        super().__init__(base_url, token)
        self._only = only

    def _new_peer_connection(self, ice_servers: list[dict[str, Any]]) -> RTCPeerConnection:
        kept = [{**s, "urls": [u for u in s["urls"] if _keep(u, self._only)]} for s in ice_servers]
        print(json.dumps({"ice_servers": kept}), flush=True)
        return super()._new_peer_connection([s for s in kept if s["urls"]])


def selected_pair(pc: RTCPeerConnection) -> dict[str, Any]:
    """The nominated pair of the (bundled) ICE transport (aioice internals)."""
    for transceiver in pc.getTransceivers():
        ice = transceiver.receiver.transport.transport
        pair = ice._connection._nominated.get(1)
        if pair is not None:
            local = pair.local_candidate
            return {"local_type": local.type, "local": f"{local.host}:{local.port}",
                    "remote": f"{pair.remote_candidate.host}:{pair.remote_candidate.port}",
                    "remote_type": pair.remote_candidate.type}
    return {}


async def main(base_url: str, token: str, only: str) -> None:
    client = Client(base_url, token, only)
    started = time.monotonic()
    try:
        await client.connect()
        await client.start_media(timeout=40)
        await client.wait_for(lambda: any(r.kind == "video" and r.track is not None
                                          for r in client.received.values()), 40, "a video track")
        track: MediaStreamTrack = next(r.track for r in client.received.values()
                                       if r.kind == "video" and r.track is not None)
        numbers = []
        for _ in range(FRAMES):
            frame = await asyncio.wait_for(track.recv(), 30)
            numbers.append(read_frame_number(frame))  # type: ignore[arg-type]
        print(json.dumps({"frames": len(numbers), "numbers": numbers,
                          "seconds": round(time.monotonic() - started, 2),
                          "connection": client.pc.connectionState, **selected_pair(client.pc)}),
              flush=True)
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
