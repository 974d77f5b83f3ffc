"""One participant's RTCPeerConnection to the server and its negotiation.

The server makes every offer and the client only answers. That keeps one numbering
of payload types and RTP header extensions for the whole connection (aiortc's: it
rebuilds both for every offer it makes, so as an answerer it would later contradict
what a browser had offered), and it rules out glare.

The first offer has two ``recvonly`` m-lines, audio and video, for the participant's
own microphone and camera (named in the offer's ``publish`` field), plus one
``sendonly`` m-line per track forwarded to the participant. The client answers
``sendonly`` on the first two to publish, or ``inactive`` to only watch. Later offers
add or retire forwarded tracks. One task per peer does all of it, one offer at a time,
each answered before the next.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpTransceiver
from aiortc import RTCRtpCodecParameters, RTCSessionDescription
from aiortc.sdp import SessionDescription, candidate_from_sdp

from . import hooks
from .answers import normalize_answer
from .codecs import (FORWARDED_MIME_TYPES, codec_name, offer_opus_dtx, publish_preferences,
                     sender_preferences)
from .errors import InternalsChangedError, NegotiationError, OutOfTurnError, UnsupportedCodecError
from .forwarder import ForwardedTrack, PublishedTrack
from .metrics import ForwardingMetrics
from .participant import ParticipantInfo


logger = logging.getLogger(__name__)

ANSWER_TIMEOUT_S = 20.0
# The first answer waits for the browser's camera permission prompt. Only a
# backstop: the signaling session drops a silent participant sooner, after
# media.first_answer_timeout_s (at most this), with the reason "no_answer".
FIRST_ANSWER_TIMEOUT_S = 120.0


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
        on_state: Callable[[Peer], Coroutine[Any, Any, None]],
        max_remote_candidates: int = 50,
        layer_selection: bool = False,
    ) -> None:
        offer_opus_dtx()
        self._info = info
        self._signal = signal
        self._metrics = metrics
        self._keyframe_min_interval = keyframe_min_interval
        self._on_published = on_published
        self._on_state = on_state
        # One transport for everything from the start: with aiortc's default
        # ("balanced") a second m-line of a kind in the first offer would stay on a
        # transport that BUNDLE then discards, and its sender would never start.
        self._pc = RTCPeerConnection(RTCConfiguration(
            iceServers=ice_servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self._pc.on("connectionstatechange", self._connection_state_changed)
        # The participant's own audio and video arrive on these two.
        self._inbound = [self._pc.addTransceiver(kind, direction="recvonly")
                         for kind in ("audio", "video")]
        # VP8 first: see codecs.publish_preferences for why.
        self._inbound[1].setCodecPreferences(publish_preferences("video"))
        self._published: list[PublishedTrack] | None = None
        self._wanted: dict[PublishedTrack, ParticipantInfo] = {}
        self._sending: dict[PublishedTrack, tuple[RTCRtpTransceiver, ForwardedTrack]] = {}
        self._retired: list[RTCRtpTransceiver] = []
        # Forwarded tracks whose m-line the client rejected (no codec it decodes).
        self._unreachable: dict[PublishedTrack, RTCRtpTransceiver] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._dirty = asyncio.Event()
        self._dirty.set()  # the first offer goes out at once
        self._answer: asyncio.Future[RTCSessionDescription] | None = None
        self._negotiator: asyncio.Task[None] | None = None
        self._remote_candidates = 0
        self._max_remote_candidates = max_remote_candidates
        self._stopped = False
        self._negotiation_failed = False
        self._last_stats: list[dict[str, Any]] = []
        self._state_tasks: set[asyncio.Task[None]] = set()
        self._layer_selection = layer_selection
        # Publisher id -> tile width the page shows; None until the page says.
        self._view: dict[str, int] | None = None

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
    def answered(self) -> bool:
        """The client has answered the server's first offer."""
        return self._published is not None

    @property
    def published(self) -> list[PublishedTrack]:
        """The participant's own tracks the server receives (empty until answered)."""
        return list(self._published or [])

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

    # -- what the client sends ---------------------------------------------------------

    async def handle_offer(self, sdp: str) -> None:
        raise OutOfTurnError("the server makes the offers; answer them with 'answer'")

    async def handle_answer(self, sdp: str) -> None:
        """The client's answer to the server's latest offer."""
        if self._answer is None or self._answer.done():
            raise OutOfTurnError("no offer is waiting for an answer")
        self._answer.set_result(RTCSessionDescription(sdp=sdp, type="answer"))

    async def add_ice_candidate(self, candidate: str | None, mid: str | None, index: int | None) -> None:
        """A trickled candidate of the client; None or "" ends its candidates.

        At most ``max_remote_candidates`` are taken: each one makes aiortc check
        another address pair, so more would only cost (the connection goes on)."""
        if not candidate:
            # With no candidate at all (a browser hiding its addresses), ending the
            # list would fail ICE at once; the client's checks will reveal its address.
            if self._remote_candidates:
                await self._pc.addIceCandidate(None)
            return
        if self._remote_candidates >= self._max_remote_candidates:
            raise NegotiationError(
                f"ICE candidate refused: this connection already has "
                f"{self._max_remote_candidates} candidates, the most it takes")
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
        self._remote_candidates += 1

    # -- forwarded tracks ----------------------------------------------------------------

    def subscribe(self, publication: PublishedTrack, publisher: ParticipantInfo) -> None:
        if publication not in self._wanted:
            self._wanted[publication] = publisher
            self._dirty.set()

    def unsubscribe(self, publication: PublishedTrack) -> None:
        if self._wanted.pop(publication, None) is not None:
            self._dirty.set()

    def forwarded(self, publication: PublishedTrack) -> ForwardedTrack | None:
        """The track carrying ``publication`` to this participant, while one does."""
        entry = self._sending.get(publication)
        return None if entry is None else entry[1]

    def set_view(self, widths: Mapping[str, int]) -> None:
        """The page shows these publishers' video, each in a tile this many device
        pixels wide; any other video is not sent to it (audio always is)."""
        self._view = dict(widths)
        for publication, (_, track) in self._sending.items():
            self._apply_view(publication, track)

    def _apply_view(self, publication: PublishedTrack, track: ForwardedTrack) -> None:
        if self._view is not None:
            width = self._view.get(publication.publisher_id)
            widest = max(self._view.values(), default=0)
            track.set_view(width, largest=width is not None and width >= widest)

    # -- negotiation ---------------------------------------------------------------------

    async def _negotiate_forever(self) -> None:
        try:
            while not self._stopped:
                await self._dirty.wait()
                self._dirty.clear()
                if self._pc.connectionState != "closed":
                    await self._negotiate()
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            if isinstance(exc, NegotiationError):
                logger.warning("negotiation with %s failed: %s", self._info.name, exc)
            else:
                logger.exception("negotiation with %s failed", self._info.name)
            self._negotiation_failed = True
            await self.send({"type": "error", "code": "sdp_rejected",
                             "message": f"The media session could not be set up ({exc}); "
                                        "please rejoin."})
            self._notify_state()

    async def _negotiate(self) -> None:
        first = self._published is None
        changed = first
        added: list[tuple[RTCRtpTransceiver, ForwardedTrack]] = []
        for publication in [p for p in self._sending if p not in self._wanted]:
            transceiver, track = self._sending.pop(publication)
            track.stop()
            transceiver.direction = "inactive"
            self._retired.append(transceiver)
            changed = True
        for publication in [p for p in self._unreachable if p not in self._wanted]:
            del self._unreachable[publication]
        for publication in list(self._wanted):
            if publication in self._sending or publication in self._unreachable or publication.closed:
                continue
            track = publication.subscribe(self._info.id)
            transceiver = self._pc.addTransceiver(track, direction="sendonly")
            # Every codec the publisher negotiated: the client accepts those it decodes.
            transceiver.setCodecPreferences(sender_preferences(publication.codecs))
            hooks.tap_sender(transceiver.sender, track.on_keyframe_request, track.on_remb)
            self._sending[publication] = (transceiver, track)
            self._apply_view(publication, track)
            added.append((transceiver, track))
            changed = True
        if not changed:
            return

        offer = await self._pc.createOffer()
        await self._pc.setLocalDescription(offer)
        offer_sdp = self._pc.localDescription.sdp
        tracks = {}
        for publication, (transceiver, _) in self._sending.items():
            publisher = self._wanted.get(publication)
            if transceiver.mid is not None and publisher is not None:
                tracks[transceiver.mid] = {**publisher.as_json(), "participant": publisher.id,
                                           "kind": publication.kind}
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        await self.send({
            "type": "offer",
            "sdp": self._pc.localDescription.sdp,
            "publish": {t.kind: t.mid for t in self._inbound},
            "tracks": tracks,
        })
        timeout = FIRST_ANSWER_TIMEOUT_S if first else ANSWER_TIMEOUT_S
        try:
            answer = await asyncio.wait_for(self._answer, timeout)
        except asyncio.TimeoutError as exc:
            raise NegotiationError(
                f"no answer to the server's offer within {timeout:.0f} s"
            ) from exc
        finally:
            self._answer = None
        # A rejected m-line (JSEP allows it) must not cost the client the others.
        normalized = normalize_answer(answer.sdp, offer_sdp)
        try:
            await self._pc.setRemoteDescription(
                RTCSessionDescription(sdp=normalized.sdp, type="answer"))
        except Exception as exc:  # aiortc raises assorted types for a bad SDP
            raise NegotiationError(f"the answer could not be applied: {exc}") from exc
        for publication, (transceiver, track) in list(self._sending.items()):
            if transceiver.mid in normalized.rejected:
                self._reject(publication, transceiver, track)
                added = [(t, f) for t, f in added if t is not transceiver]
        for transceiver in self._pc.getTransceivers():
            hooks.receive_inline(transceiver.receiver.transport)
        for transceiver, track in added:
            publisher = self._wanted.get(track.source)
            _bind(transceiver, track, functools.partial(
                self._tell_unavailable, track.source, publisher))
        if first:
            # No await between applying the answer and tapping the receivers: media
            # cannot arrive before the transports connect, which needs the loop.
            self._published = self._publish_from(answer.sdp)
            await self._on_published(self, self._published)
        for transceiver in self._retired:
            await transceiver.sender.stop()
        self._retired.clear()

    def _reject(self, publication: PublishedTrack, transceiver: RTCRtpTransceiver,
                track: ForwardedTrack) -> None:
        """The client rejected this forwarded track's m-line: it decodes none of the
        codecs its publisher negotiated. Not offered again while subscribed."""
        del self._sending[publication]
        track.stop()
        transceiver.direction = "inactive"
        self._unreachable[publication] = transceiver
        self._tell_unavailable(publication, self._wanted.get(publication), publication.codec)

    def _tell_unavailable(self, publication: PublishedTrack, publisher: ParticipantInfo | None,
                          codec: RTCRtpCodecParameters) -> None:
        """Tell the client that a track cannot reach it (called on the media path:
        the message goes out from a task of its own)."""
        if publisher is None or self._stopped:
            return
        logger.info("%s cannot receive %s's %s (%s)", self._info.name, publisher.name,
                    publication.kind, codec.mimeType)
        task = asyncio.get_running_loop().create_task(self.send({
            "type": "track_unavailable", "participant": publisher.id, "name": publisher.name,
            "kind": publication.kind, "codec": codec_name(codec),
        }))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _publish_from(self, answer_sdp: str) -> list[PublishedTrack]:
        sending = {
            m.rtp.muxId for m in SessionDescription.parse(answer_sdp).media
            if m.direction in ("sendonly", "sendrecv") and m.port != 0
        }
        publications = []
        for transceiver in self._inbound:
            if transceiver.mid in sending:
                publication = self._publish(transceiver)
                if publication is not None:
                    publications.append(publication)
        return publications

    def _publish(self, transceiver: RTCRtpTransceiver) -> PublishedTrack | None:
        try:
            # In the server's order of preference (VP8 first); which one the client
            # really sends, the forwarder reads from its packets.
            codecs = [c for c in hooks.negotiated_codecs(transceiver)
                      if c.mimeType.lower() in FORWARDED_MIME_TYPES]
            if not codecs:
                raise UnsupportedCodecError(
                    f"the client negotiated no codec the server forwards for {transceiver.kind}")
            codec = codecs[0]
            publication = PublishedTrack(
                publisher_id=self._info.id,
                kind=transceiver.kind,
                codec=codec,
                codecs=codecs,
                metrics=self._metrics,
                keyframe_min_interval=self._keyframe_min_interval,
                layer_selection=self._layer_selection,
            )
        except (UnsupportedCodecError, InternalsChangedError) as exc:
            logger.warning("%s: not forwarding %s: %s", self._info.name, transceiver.kind, exc)
            return None
        receiver = transceiver.receiver
        hooks.tap_receiver(receiver, publication.on_rtp, transceiver)
        if transceiver.kind == "video":
            hooks.relay_bandwidth_estimates(receiver)
            publication.set_remb_sink(functools.partial(hooks.send_remb, receiver))
        logger.info("%s publishes %s, negotiated %s", self._info.name, transceiver.kind,
                    ", ".join(c.mimeType for c in codecs))
        return publication

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
        for task in list(self._tasks):
            task.cancel()
        for publication in self._published or []:
            publication.close()
        await self._pc.close()
        # A state task may be what called stop(): never cancel or await oneself.
        others = [t for t in self._state_tasks if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


def _bind(transceiver: RTCRtpTransceiver, track: ForwardedTrack,
          on_unreachable: Callable[[RTCRtpCodecParameters], None]) -> None:
    """Let ``track`` write its packets through ``transceiver``'s sender as negotiated."""
    sender = transceiver.sender
    write = hooks.rtp_writer(sender)

    def report(ntp: int, rtp_timestamp: int, packets: int, octets: int) -> None:
        hooks.report_sent(sender, ntp_time=ntp, rtp_timestamp=rtp_timestamp,
                          packets=packets, octets=octets)

    track.bind(hooks.outbound_formats(transceiver), write, report, on_unreachable=on_unreachable)
    hooks.answer_nacks(sender, track.retransmission, write)
