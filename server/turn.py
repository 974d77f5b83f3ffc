"""Short-lived TURN credentials (coturn's shared-secret scheme, ``use-auth-secret``).

The server and the TURN server share a secret; nobody else ever sees it. Each
participant gets, in the ``welcome`` message, a user name ``"<expiry>:<person id>"``
and the password ``base64(HMAC-SHA1(secret, user name))``; coturn recomputes the
password from the name and refuses the name once ``expiry`` (Unix seconds) has
passed. So a credential is per person, cannot be stretched by its holder, and dies
with the day: it is valid until the end of the current day in the defense day's
time zone plus a margin (a defense running past midnight keeps its relay: coturn
checks the credential again on every allocation refresh), and never longer than
``max_ttl_s`` from now.

The credential functions are pure; ``TurnIssuer`` reads the secret files once, at
startup, and fails with a ConfigError naming the file when one is unusable.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import zoneinfo
from dataclasses import dataclass
from typing import Any

from .config import TurnServer
from .config_loader import ConfigError


@dataclass(frozen=True, slots=True)
class TurnCredential:
    """What one participant may use with one TURN server until ``expires_at``."""

    username: str
    credential: str
    expires_at: int


def credential_for(secret: bytes, username: str) -> str:
    """coturn's password for ``username``: base64 of HMAC-SHA1 keyed with the secret."""
    return base64.b64encode(hmac.new(secret, username.encode(), hashlib.sha1).digest()).decode()


def end_of_day(now: float, timezone: str) -> float:
    """The next midnight after ``now`` in ``timezone`` (an IANA name), as Unix time."""
    zone = zoneinfo.ZoneInfo(timezone)
    today = datetime.datetime.fromtimestamp(now, zone).date()
    return datetime.datetime.combine(today + datetime.timedelta(days=1), datetime.time(0),
                                     tzinfo=zone).timestamp()


def expiry(now: float, timezone: str, margin_s: float, max_ttl_s: float) -> int:
    """Until when a credential handed out at ``now`` is valid: the end of today in
    ``timezone`` plus ``margin_s``, but no later than ``max_ttl_s`` from now."""
    return int(min(end_of_day(now, timezone) + margin_s, now + max_ttl_s))


def issue(secret: bytes, person_id: str, *, now: float, timezone: str,
          margin_s: float, max_ttl_s: float) -> TurnCredential:
    """A credential for ``person_id``; the name carries its expiry, the password its HMAC."""
    if ":" in person_id:
        # coturn reads the expiry up to the first ':'; an id with one would still work,
        # but the name would no longer say plainly whose it is.
        raise ValueError(f"a person id for TURN must not contain ':', got {person_id!r}")
    expires_at = expiry(now, timezone, margin_s, max_ttl_s)
    username = f"{expires_at}:{person_id}"
    return TurnCredential(username, credential_for(secret, username), expires_at)


class TurnIssuer:
    """The configured TURN servers with their secrets, read once at startup."""

    def __init__(self, servers: tuple[TurnServer, ...]) -> None:
        self._servers = [(server, _read_secret(server, index)) for index, server in enumerate(servers)]

    @property
    def configured(self) -> bool:
        return bool(self._servers)

    def ice_servers(self, person_id: str, *, now: float, timezone: str) -> list[dict[str, Any]]:
        """RTCIceServer entries for the person's browser, fresh credentials in each."""
        entries: list[dict[str, Any]] = []
        for server, secret in self._servers:
            credential = issue(secret, person_id, now=now, timezone=timezone,
                               margin_s=server.margin_s, max_ttl_s=server.max_ttl_s)
            entries.append({"urls": list(server.urls), "username": credential.username,
                            "credential": credential.credential})
        return entries


def _read_secret(server: TurnServer, index: int) -> bytes:
    path = server.secret_file
    assert path is not None  # TurnServer._problem requires it
    key = f"turn[{index}].secret_file"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config key '{key}': cannot read the TURN secret from {path}: {exc}") from exc
    secret = lines[0].strip() if lines else ""
    if len(secret) < 16:
        raise ConfigError(f"config key '{key}': the TURN secret in {path} (its first line) must be "
                          "at least 16 characters; generate one with 'openssl rand -hex 32'")
    return secret.encode()
