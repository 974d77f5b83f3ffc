"""The announced address behind 1:1 NAT (issue 17, item 2).

The server binds its private address (10.77.0.1); a DNAT rule in the test namespace
makes 203.0.113.7 (on no interface) that address, as a cloud provider's 1:1 NAT does.
The participant's firewall lets it reach the public address only. With
``media.announced_addresses`` the offer's candidates name the public address: the
participant joins, its selected pair goes to the public address, and it decodes video.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from media.announce import announce_sdp
from media.testing import FrameNumberTrack
from server.config import AnnouncedAddress
from storage.invites import Role

from . import netlab
from .conftest import make_config
from .media_helpers import joined
from .net_helpers import lab_server, run_peer

PRIVATE = "10.77.0.1"
PUBLIC = "203.0.113.7"

OFFER = "\r\n".join([
    "v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0",
    "m=audio 40000 UDP/TLS/RTP/SAVPF 96", f"c=IN IP4 {PRIVATE}",
    f"a=candidate:1 1 udp 2130706431 {PRIVATE} 40000 typ host",
    "a=candidate:2 1 udp 2130706431 10.77.0.2 40001 typ host",
    f"a=candidate:3 1 udp 1694498815 198.51.100.9 40002 typ srflx raddr {PRIVATE} rport 40000",
    "a=end-of-candidates", ""])


def test_announce_rewrites_only_the_mapped_address() -> None:
    out = announce_sdp(OFFER, {PRIVATE: PUBLIC})
    assert f"c=IN IP4 {PUBLIC}" in out
    assert f"a=candidate:1 1 udp 2130706431 {PUBLIC} 40000 typ host" in out
    assert "a=candidate:2 1 udp 2130706431 10.77.0.2 40001 typ host" in out
    # A related address is not where anyone sends: left as it was.
    assert f"198.51.100.9 40002 typ srflx raddr {PRIVATE} rport 40000" in out
    assert out.count("\r\n") == OFFER.count("\r\n")
    assert announce_sdp(OFFER, {}) == OFFER


async def test_participant_reaching_only_the_public_address_gets_media(
        tmp_path: Path, isolated_network: None) -> None:
    base = make_config(tmp_path)
    config = dataclasses.replace(base, media=dataclasses.replace(
        base.media, announced_addresses=(AnnouncedAddress(private=PRIVATE, public=PUBLIC),)))
    async with lab_server(config) as lab, netlab.one_to_one_nat(PUBLIC, PRIVATE), netlab.Host(3) as host:
        publisher = await joined(lab.url("127.0.0.1"), (await lab.invite(Role.MEMBER, "Publisher")).token,
                                 tracks=[FrameNumberTrack()])
        try:
            # Everything of the server's but the public address is out of reach.
            await host.block(addresses=["10.77.0.0/24", host.gateway])
            invite = await lab.invite(Role.STUDENT, "Behind the NAT")
            result = (await run_peer(host, lab.url(PUBLIC), invite.token, tmp_path / "peer.log")).result
            print(f"aiortc through 1:1 NAT: {result}")
            assert result["frames"] == 20, result
            assert result["remote"].startswith(PUBLIC + ":"), result
            assert result["local_type"] == "host", result
        finally:
            await publisher.close()
