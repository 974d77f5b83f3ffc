"""A defense room: the participants' peer connections and who receives what.

The Room owns every Peer and every PublishedTrack of one defense day. Everyone
in the room receives every other participant's audio and video, except that
``may_receive`` may narrow it and people in the lobby (``set_lobby``, the closed
sitting of clause 7.12) neither receive nor are received. The Room is the only
place that links publications to subscriptions.

Presence comes from the media: a participant is present while their peer
connection is ``connected`` (aiortc's ICE consent checks turn a vanished phone
into ``failed`` within about 30 s) and, once they have sent media, while it
still flows (no packet on any of their tracks for ``media_stall_s`` means gone:
a frozen phone whose ICE still answers); not while their WebSocket is open. A
one-second watchdog, running while the room has peers, notices stalls (and passes
the subscribers' lowest bandwidth estimate on to each publisher). A
``RoomObserver`` hears presence changes and publications come and go, each
exactly once per change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiortc import RTCIceServer

from .forwarder import PublishedTrack
from .metrics import ForwardingMetrics
from .participant import ParticipantInfo
from .peer import Peer

logger = logging.getLogger(__name__)

Signal = Callable[[dict[str, Any]], Awaitable[None]]

SEND_TIMEOUT_S = 5.0


def everyone(publisher: ParticipantInfo, subscriber: ParticipantInfo) -> bool:
    return publisher.id != subscriber.id


class RoomObserver(Protocol):
    """Told, synchronously on the event loop, what changes in a room."""

    def presence_changed(self, participant: ParticipantInfo, present: bool) -> None: ...

    def publication_added(self, participant: ParticipantInfo, track: PublishedTrack) -> None: ...

    def publication_removed(self, participant: ParticipantInfo, track: PublishedTrack) -> None: ...


class Room:
    """One videoconference; see the module doc."""

    def __init__(
        self,
        room_id: str,
        *,
        ice_servers: list[RTCIceServer],
        keyframe_min_interval: float = 0.3,
        may_receive: Callable[[ParticipantInfo, ParticipantInfo], bool] = everyone,
        media_stall_s: float = 15.0,
        max_ice_candidates: int = 50,
        layer_selection: bool = False,
    ) -> None:
        self._room_id = room_id
        self._ice_servers = ice_servers
        self._keyframe_min_interval = keyframe_min_interval
        self._may_receive = may_receive
        self._peers: dict[str, Peer] = {}
        self._publications: dict[str, list[PublishedTrack]] = {}
        self._metrics = ForwardingMetrics()
        self._lock = asyncio.Lock()
        self._lobby: frozenset[str] = frozenset()
        self._present: dict[str, ParticipantInfo] = {}
        self._observers: list[RoomObserver] = []
        self._media_stall_s = media_stall_s
        self._max_ice_candidates = max_ice_candidates
        self._watchdog: asyncio.TimerHandle | None = None
        self._layer_selection = layer_selection

    @property
    def room_id(self) -> str:
        return self._room_id

    @property
    def metrics(self) -> ForwardingMetrics:
        return self._metrics

    @property
    def peers(self) -> dict[str, Peer]:
        return dict(self._peers)

    def peer(self, participant_id: str) -> Peer | None:
        return self._peers.get(participant_id)

    @property
    def present(self) -> frozenset[str]:
        """Participants whose media connection is up."""
        return frozenset(self._present)

    @property
    def lobby(self) -> frozenset[str]:
        return self._lobby

    def publications(self) -> list[tuple[ParticipantInfo, PublishedTrack]]:
        return [
            (peer.info, publication)
            for pid, peer in self._peers.items()
            for publication in self._publications.get(pid, [])
        ]

    def observe(self, observer: RoomObserver) -> None:
        self._observers.append(observer)

    def unobserve(self, observer: RoomObserver) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    def set_lobby(self, lobby: frozenset[str]) -> None:
        """Who waits in the lobby: they neither receive media nor are received."""
        self._lobby = frozenset(lobby)
        for pid, peer in self._peers.items():
            for publisher_id, publications in self._publications.items():
                publisher = self._peers.get(publisher_id)
                if publisher is None or publisher is peer:
                    continue
                allowed = self._allowed(publisher.info, peer.info)
                for publication in publications:
                    if allowed:
                        peer.subscribe(publication, publisher.info)
                    else:
                        peer.unsubscribe(publication)

    def _allowed(self, publisher: ParticipantInfo, subscriber: ParticipantInfo) -> bool:
        return (
            publisher.id not in self._lobby
            and subscriber.id not in self._lobby
            and self._may_receive(publisher, subscriber)
        )

    def set_view(self, participant_id: str, widths: Mapping[str, int]) -> None:
        """What ``participant_id``'s page shows: the video of each publisher in
        ``widths`` (tile width in device pixels); other video is not sent to it."""
        peer = self._peers.get(participant_id)
        if peer is not None:
            peer.set_view(widths)

    async def send_to(self, participant_id: str, message: dict[str, Any]) -> None:
        peer = self._peers.get(participant_id)
        if peer is not None:
            await peer.send(message)

    async def broadcast(self, message: dict[str, Any]) -> None:
        """Send to everyone at once; a socket that takes over 5 s is skipped (its
        client resynchronises from the next message or on rejoin)."""
        peers = list(self._peers.values())
        results = await asyncio.gather(
            *(asyncio.wait_for(peer.send(message), SEND_TIMEOUT_S) for peer in peers),
            return_exceptions=True)
        for peer, result in zip(peers, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("room %s: %s message to %s not sent: %r", self._room_id,
                               message.get("type"), peer.info.name, result)

    def _media_present(self, peer: Peer) -> bool:
        if peer.connection_state != "connected":
            return False
        silences = [s for p in self._publications.get(peer.info.id, [])
                    if (s := p.silent_for()) is not None]
        return not silences or min(silences) < self._media_stall_s

    def _watch(self) -> None:
        self._watchdog = None
        for publications in list(self._publications.values()):
            for publication in publications:
                try:
                    publication.remb_tick()
                except Exception:
                    # One publication's estimate must not stop the watchdog: it
                    # re-arms below, and presence (absence rules) depends on it.
                    logger.exception("room %s: bandwidth tick of %s's %s failed",
                                     self._room_id, publication.publisher_id,
                                     publication.kind)
        self._update_presence()  # re-arms while the room has peers

    def _update_presence(self) -> None:
        # One watchdog at a time: armed here, and only when none is pending.
        if self._watchdog is None and self._peers:
            self._watchdog = asyncio.get_running_loop().call_later(1.0, self._watch)
        for pid, peer in self._peers.items():
            if self._media_present(peer) and pid not in self._present:
                self._present[pid] = peer.info
                for observer in list(self._observers):
                    observer.presence_changed(peer.info, True)
        for pid, info in list(self._present.items()):
            current = self._peers.get(pid)
            if current is None or not self._media_present(current):
                del self._present[pid]
                for observer in list(self._observers):
                    observer.presence_changed(info, False)

    def roster(self) -> list[dict[str, Any]]:
        """Who is in the room, what the server receives from them, and the state of
        their media connection (presence comes from the media, not the socket)."""
        return [
            {
                **peer.info.as_json(),
                "publishing": sorted(p.kind for p in self._publications.get(pid, [])),
                "connection": peer.connection_state,
                "present": pid in self._present,
                "lobby": pid in self._lobby,
            }
            for pid, peer in self._peers.items()
        ]

    async def join(
        self,
        info: ParticipantInfo,
        signal: Signal,
        welcome: Callable[[list[dict[str, Any]]], dict[str, Any]],
    ) -> Peer:
        """Add a participant; a second connection of the same person replaces the first.

        ``welcome(roster)`` builds the first message the participant gets, before any
        roster update or offer.
        """
        async with self._lock:
            old = self._peers.get(info.id)
        if old is not None:
            await self.leave(info.id, reason="replaced")
        peer = Peer(
            info,
            signal=signal,
            ice_servers=self._ice_servers,
            metrics=self._metrics,
            keyframe_min_interval=self._keyframe_min_interval,
            on_published=self._on_published,
            on_state=self._on_peer_state,
            max_remote_candidates=self._max_ice_candidates,
            layer_selection=self._layer_selection,
        )
        async with self._lock:
            self._peers[info.id] = peer
            # What is already published goes into the newcomer's first offer.
            for publisher_id, existing in self._publications.items():
                publisher = self._peers.get(publisher_id)
                if publisher is None or publisher is peer:
                    continue
                for publication in existing:
                    if self._allowed(publisher.info, info):
                        peer.subscribe(publication, publisher.info)
        await peer.send(welcome(self.roster()))
        await peer.start()
        logger.info("room %s: %s (%s) joined", self._room_id, info.name, info.role)
        await self._broadcast_roster()
        return peer

    async def leave(self, participant_id: str, reason: str, only: Peer | None = None) -> None:
        """Remove a participant and everything they published. Idempotent.

        With ``only``, nothing happens unless that Peer is still the participant's
        current one (a replaced connection closing late must not remove its successor).
        """
        async with self._lock:
            if only is not None and self._peers.get(participant_id) is not only:
                return
            peer = self._peers.pop(participant_id, None)
            publications = self._publications.pop(participant_id, [])
        if peer is None:
            return
        self._update_presence()
        for publication in publications:
            publication.close()
            for other in self._peers.values():
                other.unsubscribe(publication)
            for observer in list(self._observers):
                observer.publication_removed(peer.info, publication)
        await peer.stop(reason)
        logger.info("room %s: %s left (%s)", self._room_id, peer.info.name, reason)
        await self._broadcast_roster()

    async def stop(self) -> None:
        """Close every peer. Idempotent."""
        for participant_id in list(self._peers):
            await self.leave(participant_id, reason="shutdown")
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    async def _on_published(self, peer: Peer, publications: list[PublishedTrack]) -> None:
        """A peer answered its first offer: forward what it publishes to the others."""
        if self._peers.get(peer.info.id) is not peer:
            return
        self._publications.setdefault(peer.info.id, []).extend(publications)
        for other in self._peers.values():
            if other is peer:
                continue
            for publication in publications:
                if self._allowed(peer.info, other.info):
                    other.subscribe(publication, peer.info)
        for publication in publications:
            for observer in list(self._observers):
                observer.publication_added(peer.info, publication)
        await self._broadcast_roster()

    async def _on_peer_state(self, peer: Peer) -> None:
        if peer.negotiation_failed and self._peers.get(peer.info.id) is peer:
            await self.leave(peer.info.id, reason="negotiation_failed")
            return
        if peer.connection_state == "failed":
            logger.warning("room %s: media of %s failed", self._room_id, peer.info.name)
        if self._peers.get(peer.info.id) is peer:
            self._update_presence()
        await self._broadcast_roster()

    async def _broadcast_roster(self) -> None:
        await self.broadcast({"type": "participants", "participants": self.roster()})
