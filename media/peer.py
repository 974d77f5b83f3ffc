"""One participant's RTCPeerConnection to the server and its negotiation.

Negotiation is one-sided after the start, which rules out glare: the client makes one
offer with its own camera and microphone; from then on only the server offers, to add
or retire the forwarded tracks the participant receives. A single task per peer does
that, one offer at a time, each answered before the next (``offer`` messages carry a
``tracks`` map from m-line mid to the publishing participant).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpTransceiver
from aiortc import RTCSessionDescription
from aiortc.sdp import SessionDescription, candidate_from_sdp

from . import hooks
from .codecs import sender_preferences
from .errors import NegotiationError, OutOfTurnError, UnsupportedCodecError
from .forwarder import ForwardedTrack, PublishedTrack
from .metrics import ForwardingMetrics

if TYPE_CHECKING:
    from .room import ParticipantInfo

logger = logging.getLogger(__name__)

ANSWER_TIMEOUT_S = 20.0


class Peer:
    """A participant's media session; owned by the Room."""

    def __init__(
        self,
        info: ParticipantInfo,
        *,
        signal: Callable[[dict[str, Any]], Awaitable[None]],
        ice_servers: list[RTCIceServer],
        metrics: ForwardingMetrics,
        keyframe_min_interval: float,
        on_published: Callable[[Peer, list[PublishedTrack]], Awaitable[None]],
        on_state: Callable[[Peer], Awaitable[None]],
    ) -> None:
        self._info = info
        self._signal = signal
        self._metrics = metrics
        self._keyframe_min_interval = keyframe_min_interval
        self._on_published = on_published
        self._on_state = on_state
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers))
        self._pc.on("connectionstatechange", self._connection_state_changed)
        self._initial_done = False
        self._wanted: dict[PublishedTrack, ParticipantInfo] = {}
        self._sending: dict[PublishedTrack, tuple[RTCRtpTransceiver, ForwardedTrack]] = {}
        self._retired: list[RTCRtpTransceiver] = []
        self._dirty = asyncio.Event()
        self._answer: asyncio.Future[RTCSessionDescription] | None = None
        self._negotiator: asyncio.Task[None] | None = None
        self._stopped = False
        self._negotiation_failed = False
        self._last_stats: list[dict[str, Any]] = []
        self._state_tasks: set[asyncio.Task[None]] = set()

    @property
    def info(self) -> ParticipantInfo:
        return self._info

    @property
    def connection_state(self) -> str:
        return self._pc.connectionState

    @property
    def negotiation_failed(self) -> bool:
        """The client stopped answering offers or sent an unusable answer."""
        return self._negotiation_failed

    @property
    def pc(self) -> RTCPeerConnection:
        return self._pc

    @property
    def last_stats(self) -> list[dict[str, Any]]:
        """The client's latest inbound-rtp report (from ``stats`` messages)."""
        return list(self._last_stats)

    def record_stats(self, inbound: list[dict[str, Any]]) -> None:
        self._last_stats = inbound

    def subscriptions(self) -> dict[str, PublishedTrack]:
        """Active forwarded tracks by m-line mid."""
        return {
            t.mid: pub for pub, (t, _) in self._sending.items() if t.mid is not None
        }

    async def start(self) -> None:
        self._negotiator = asyncio.create_task(self._negotiate_forever())

    async def send(self, message: dict[str, Any]) -> None:
        """Send a signaling message; a closed socket is the handler's business."""
        if self._stopped:
            return
        try:
            await self._signal(message)
        except ConnectionError:
            logger.debug("signal to %s dropped: socket closed", self._info.name)

    # -- the client's side of negotiation --------------------------------------------

    async def handle_offer(self, sdp: str) -> None:
        """Apply the client's one offer (its own media) and answer it."""
        if self._initial_done or self._pc.signalingState != "stable":
            raise OutOfTurnError("an offer is accepted only once, at the start")
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except (ValueError, AssertionError) as exc:
            raise NegotiationError(f"the offer could not be applied: {exc}") from exc
        sending = {
            m.rtp.muxId for m in SessionDescription.parse(sdp).media
            if m.direction in ("sendonly", "sendrecv") and m.port != 0
        }
        publications: list[PublishedTrack] = []
        for transceiver in self._pc.getTransceivers():
            if transceiver.mid not in sending:
                continue
            publication = self._publish(transceiver)
            if publication is not None:
                publications.append(publication)
        answer = await self._pc.createAnswer()
        await self._pc.setLocalDescription(answer)
        await self.send({"type": "answer", "sdp": self._pc.localDescription.sdp})
        self._initial_done = True
        await self._on_published(self, publications)
        self._dirty.set()

    def _publish(self, transceiver: RTCRtpTransceiver) -> PublishedTrack | None:
        try:
            codec = hooks.negotiated_codec(transceiver)
            publication = PublishedTrack(
                publisher_id=self._info.id,
                kind=transceiver.kind,
                codec=codec,
                metrics=self._metrics,
                keyframe_min_interval=self._keyframe_min_interval,
            )
        except UnsupportedCodecError as exc:
            logger.warning("%s: not forwarding %s: %s", self._info.name, transceiver.kind, exc)
            return None
        except Exception as exc:  # noqa: BLE001 - a bad m-line must not end the session
            logger.warning("%s: no usable %s codec: %s", self._info.name, transceiver.kind, exc)
            return None
        receiver = transceiver.receiver
        hooks.tap_receiver(receiver, publication.on_rtp)
        if transceiver.kind == "video":
            hooks.clamp_remb(receiver, publication.clamp_remb)

            async def remb(bitrate: int, ssrc: int) -> None:
                await hooks.send_remb(receiver, bitrate, ssrc)

            publication.set_remb_sink(remb)
        logger.info("%s publishes %s as %s", self._info.name, transceiver.kind, codec.mimeType)
        return publication

    async def handle_answer(self, sdp: str) -> None:
        """The client's answer to the server's latest offer."""
        if self._answer is None or self._answer.done():
            raise OutOfTurnError("no offer is waiting for an answer")
        self._answer.set_result(RTCSessionDescription(sdp=sdp, type="answer"))

    async def add_ice_candidate(self, candidate: str | None, mid: str | None, index: int | None) -> None:
        """A trickled candidate of the client; None or "" ends its candidates."""
        if not candidate:
            await self._pc.addIceCandidate(None)
            return
        text = candidate.split(":", 1)[1] if candidate.startswith("candidate:") else candidate
        try:
            parsed = candidate_from_sdp(text)
        except (ValueError, IndexError, AssertionError) as exc:
            raise NegotiationError(f"unreadable ICE candidate {candidate[:80]!r}") from exc
        parsed.sdpMid = mid
        parsed.sdpMLineIndex = index
        try:
            await self._pc.addIceCandidate(parsed)
        except (ValueError, AssertionError) as exc:
            raise NegotiationError(f"ICE candidate not accepted: {exc}") from exc

    # -- the server's side: forwarded tracks -------------------------------------------

    def subscribe(self, publication: PublishedTrack, publisher: ParticipantInfo) -> None:
        if publication not in self._wanted:
            self._wanted[publication] = publisher
            self._dirty.set()

    def unsubscribe(self, publication: PublishedTrack) -> None:
        if self._wanted.pop(publication, None) is not None:
            self._dirty.set()

    async def _negotiate_forever(self) -> None:
        try:
            while not self._stopped:
                await self._dirty.wait()
                self._dirty.clear()
                if self._initial_done and self._pc.connectionState != "closed":
                    await self._renegotiate()
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            if isinstance(exc, NegotiationError):
                logger.warning("negotiation with %s failed: %s", self._info.name, exc)
            else:
                logger.exception("negotiation with %s failed", self._info.name)
            self._negotiation_failed = True
            await self.send({"type": "error", "code": "sdp_rejected",
                             "message": f"The media session could not be updated ({exc}); "
                                        "please rejoin."})
            self._notify_state()

    async def _renegotiate(self) -> None:
        changed = False
        for publication in [p for p in self._sending if p not in self._wanted]:
            transceiver, track = self._sending.pop(publication)
            track.stop()
            transceiver.direction = "inactive"
            self._retired.append(transceiver)
            changed = True
        for publication, publisher in list(self._wanted.items()):
            if publication in self._sending or publication.closed:
                continue
            track = publication.subscribe(self._info.id)
            transceiver = self._pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(sender_preferences(publication.codec))
            hooks.tap_sender(transceiver.sender, track.on_keyframe_request, track.on_remb)
            self._sending[publication] = (transceiver, track)
            changed = True
        if not changed:
            return
        offer = await self._pc.createOffer()
        await self._pc.setLocalDescription(offer)
        tracks = {}
        for publication, (transceiver, _) in self._sending.items():
            publisher = self._wanted.get(publication)
            if transceiver.mid is not None and publisher is not None:
                tracks[transceiver.mid] = {**publisher.as_json(), "participant": publisher.id,
                                           "kind": publication.kind}
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        await self.send({"type": "offer", "sdp": self._pc.localDescription.sdp, "tracks": tracks})
        try:
            answer = await asyncio.wait_for(self._answer, ANSWER_TIMEOUT_S)
        except asyncio.TimeoutError as exc:
            raise NegotiationError(
                f"no answer to the server's offer within {ANSWER_TIMEOUT_S:.0f} s"
            ) from exc
        finally:
            self._answer = None
        try:
            await self._pc.setRemoteDescription(answer)
        except (ValueError, AssertionError) as exc:
            raise NegotiationError(f"the answer could not be applied: {exc}") from exc
        for transceiver in self._retired:
            await transceiver.sender.stop()
        self._retired.clear()

    # -- lifecycle ---------------------------------------------------------------------

    def _connection_state_changed(self) -> None:
        logger.info("%s media connection %s", self._info.name, self._pc.connectionState)
        self._notify_state()

    def _notify_state(self) -> None:
        # A task of its own: the Room may stop this peer in response, and stop()
        # awaits the negotiator, which must therefore not be the caller.
        if self._stopped:
            return
        task = asyncio.create_task(self._on_state(self))
        self._state_tasks.add(task)
        task.add_done_callback(self._state_tasks.discard)

    async def stop(self, reason: str) -> None:
        """Close the connection and end the session with ``bye``. Idempotent."""
        if self._stopped:
            return
        await self.send({"type": "bye", "reason": reason})
        self._stopped = True
        if self._negotiator is not None:
            self._negotiator.cancel()
            await asyncio.gather(self._negotiator, return_exceptions=True)
        if self._answer is not None and not self._answer.done():
            self._answer.cancel()
        for _, track in self._sending.values():
            track.stop()
        self._sending.clear()
        await self._pc.close()
        for task in list(self._state_tasks):
            task.cancel()
        await asyncio.gather(*self._state_tasks, return_exceptions=True)
