"""A participant's SDP answer made acceptable to aiortc when it rejects m-lines.

JSEP (RFC 8829 5.3.1) lets an answerer reject an m-line it cannot use, e.g. Firefox
without H.264 offered a track only in H.264: port 0, no ICE credentials, no DTLS
fingerprint, often no codec it was offered. aiortc validates every m-line as if it
were in use and refuses the whole answer ("ICE username fragment or password is
missing"), which would cost the participant their own camera and microphone too.

Every m-line here shares one BUNDLE transport (the server offers max-bundle), so a
rejected one is given that transport's ICE and DTLS parameters, the codecs it was
offered and the direction ``inactive``: aiortc then applies the answer, and nothing
flows on that m-line. Pure: SDP text in, SDP text and the rejected mids out.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from aiortc.sdp import MediaDescription, SessionDescription

from .errors import NegotiationError


@dataclass(frozen=True, slots=True)
class NormalizedAnswer:
    sdp: str
    #: mids of the audio/video m-lines the answer rejected (port 0).
    rejected: tuple[str, ...]


def normalize_answer(answer_sdp: str, offer_sdp: str) -> NormalizedAnswer:
    """``answer_sdp`` with each rejected audio/video m-line filled in (see the module
    doc); unchanged when it rejects none."""
    try:
        answer = SessionDescription.parse(answer_sdp)
    except (ValueError, IndexError, KeyError, AssertionError):
        return NormalizedAnswer(answer_sdp, ())  # aiortc will say what is wrong with it
    rejected = [(i, m) for i, m in enumerate(answer.media)
                if m.port == 0 and m.kind in ("audio", "video")]
    if not rejected:
        return NormalizedAnswer(answer_sdp, ())
    offer = SessionDescription.parse(offer_sdp)
    primary = _bundle_primary(answer)
    if primary is None:
        raise NegotiationError("the answer rejects every audio and video m-line")
    # Only the rejected sections are rewritten; the rest stays as the client wrote it
    # (aiortc's own serializer would drop what it does not model, e.g. a=rtcp-mux
    # without an a=rtcp line, as Firefox writes it).
    head, *sections = _split_sections(answer_sdp)
    if len(sections) != len(answer.media):
        return NormalizedAnswer(answer_sdp, ())  # aiortc will say what is wrong with it
    mids = []
    for index, media in rejected:
        offered = offer.media[index] if index < len(offer.media) else None
        if offered is None or offered.kind != media.kind:
            raise NegotiationError(f"the answer's m-line {index} does not match the offer")
        if not media.rtp.muxId:
            media.rtp.muxId = offered.rtp.muxId
        _fill_rejected(media, offered, primary)
        sections[index] = str(media)
        mids.append(media.rtp.muxId)
    return NormalizedAnswer(head + "".join(sections), tuple(mids))


def _split_sections(sdp: str) -> list[str]:
    """The session part, then each media section, as CRLF-terminated text."""
    lines = sdp.replace("\r\n", "\n").rstrip("\n").split("\n")
    parts: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            parts.append([])
        parts[-1].append(line)
    return ["".join(f"{line}\r\n" for line in part) for part in parts]


def _bundle_primary(answer: SessionDescription) -> MediaDescription | None:
    """The m-line whose transport the bundle uses: the group's first mid, or else the
    first m-line not rejected."""
    live = [m for m in answer.media if m.port != 0 and m.ice is not None
            and m.ice.usernameFragment and m.ice.password]
    bundle = next((g for g in answer.group if g.semantic == "BUNDLE"), None)
    if bundle is not None and bundle.items:
        for media in live:
            if media.rtp.muxId == bundle.items[0]:
                return media
    return live[0] if live else None


def _fill_rejected(media: MediaDescription, offered: MediaDescription,
                   primary: MediaDescription) -> None:
    media.ice = copy.deepcopy(primary.ice)
    media.ice_candidates = list(primary.ice_candidates)
    media.ice_candidates_complete = primary.ice_candidates_complete
    media.ice_options = primary.ice_options
    media.dtls = copy.deepcopy(primary.dtls)
    media.host = primary.host
    # aiortc writes a=rtcp-mux only next to an a=rtcp line.
    media.rtcp_port = primary.rtcp_port if primary.rtcp_port is not None else 9
    media.rtcp_host = primary.rtcp_host
    media.rtcp_mux = True
    media.direction = "inactive"
    media.msid = None
    media.ssrc = []
    media.ssrc_group = []
    media.fmt = list(offered.fmt)
    media.rtp.codecs = copy.deepcopy(offered.rtp.codecs)
    media.rtp.headerExtensions = []
