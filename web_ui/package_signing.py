"""What the web edge shares for signing packages: the server key, the hash cache of
the evidence packs, and the limit on how many packs are built at once (S17).

Installed once when the routes are added (`install`); the key itself is read or
made on first use, in a thread.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from protocols.evidence import DigestCache
from protocols.server_key import ServerKey, ServerKeyring

from .keys import CONFIG

#: Evidence packs built at the same time; further requests wait their turn.
EVIDENCE_CONCURRENCY = 2

SERVER_KEYRING = web.AppKey("server_keyring", ServerKeyring)
DIGESTS = web.AppKey("evidence_digests", DigestCache)
EVIDENCE_SLOTS = web.AppKey("evidence_slots", asyncio.Semaphore)


def install(app: web.Application) -> None:
    """Put the keyring, the digest cache and the evidence limit under their AppKeys."""
    app[SERVER_KEYRING] = ServerKeyring(app[CONFIG].data_dir)
    app[DIGESTS] = DigestCache()
    app[EVIDENCE_SLOTS] = asyncio.Semaphore(EVIDENCE_CONCURRENCY)


async def server_key(app: web.Application) -> ServerKey:
    """The server's signing key (made on first use)."""
    return await asyncio.to_thread(app[SERVER_KEYRING].current)
