"""The announced address behind 1:1 NAT: the server's candidates name the public address.

A cloud machine has a private address on its interface and a public one that the
provider translates to it, every port, both ways. aiortc (aioice) gathers candidates
from the interfaces, so its offers name the private address, which no participant
can reach. Where an offer leaves the server (the signaling session), every ICE
candidate on a private address listed in ``media.announced_addresses`` is rewritten
to the public one, and so is the ``c=`` line that names the default candidate.

The private host candidate is replaced, not kept beside the public one: a participant
on the provider's own private network is rare, and a candidate nobody else can
reach costs every browser a failed check (and a hint to the world of the private
layout). aioice still answers on the private socket: the NAT delivers the browsers'
checks there, and its replies leave with the public address as their source.

aiortc does not trickle: all candidates are in the offer's SDP, so this is the one
place they leave the server.
"""

from __future__ import annotations

from collections.abc import Mapping


def announce_sdp(sdp: str, public_for: Mapping[str, str]) -> str:
    """``sdp`` with each candidate (and ``c=`` line) on a private address of
    ``public_for`` naming its public address instead; anything else unchanged."""
    if not public_for:
        return sdp
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(newline)
    return newline.join(_announce_line(line, public_for) for line in lines)


def _announce_line(line: str, public_for: Mapping[str, str]) -> str:
    if line.startswith("a=candidate:"):
        # foundation component transport priority address port typ type [...]
        fields = line.split(" ")
        if len(fields) > 5 and fields[4] in public_for:
            fields[4] = public_for[fields[4]]
            return " ".join(fields)
    elif line.startswith("c=IN IP4 ") or line.startswith("c=IN IP6 "):
        address = line[len("c=IN IP4 "):]
        if address in public_for:
            return line[:len("c=IN IP4 ")] + public_for[address]
    return line
