"""Server configuration: one frozen dataclass tree, defaults in code.

`config.yaml` only overrides the defaults below. Loading is strict, like
livekit's `KnownFields(strict)`: an unknown or duplicated key, a value of the
wrong type or one out of range stops the server at startup with a message
naming the full dotted key, instead of being silently ignored and surprising
someone in the middle of a defense. The strict loader itself, which knows nothing
of these keys, is `config_loader.py`; a field's ``metadata`` gives its range
(``min``/``max``) or a ``check``, and a section's ``_problem()`` checks keys that
depend on each other.

Every key is documented in the repository's `config.yaml`; a test keeps the
two in step.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import zoneinfo
import enum
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from identity.settings import IdentitySettings
from orchestrator.documents import StudentUploadsClose
from orchestrator.model import AbsenceFrom, Settings

from .config_loader import ConfigError, build, read_yaml

__all__ = ["DEFAULT_CONFIG_PATH", "Config", "ConfigError", "MailConfig", "MailSecurity",
           "TlsMode", "load_config",
           "iter_config_keys"]

DEFAULT_CONFIG_PATH = Path("config.yaml")
"""Used when no --config is given; relative to the working directory."""


class TlsMode(enum.StrEnum):
    """How the server gets its TLS certificate."""

    AUTO = "auto"
    FILES = "files"
    OFF = "off"


def _between(low: float | None = None, high: float | None = None) -> dict[str, Any]:
    return {"min": low, "max": high}


def _check_ice_urls(urls: tuple[str, ...]) -> str | None:
    if not urls:
        return "must list at least one URL"
    for url in urls:
        if not url.startswith(("stun:", "turn:", "turns:")):
            return f"must hold stun:, turn: or turns: URLs, got {url!r}"
    return None


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Where the HTTP(S) server listens."""

    host: str = "0.0.0.0"
    port: int = field(default=8443, metadata=_between(1, 65535))
    # Host name or IP put into printed invite links; None means the
    # detected LAN address.
    public_host: str | None = None
    # Worker processes, each hosting its share of the defense days (server/workers.py);
    # 0 means one per CPU core, 1 a single process as before. `serve --workers` wins.
    workers: int = field(default=0, metadata=_between(0, 256))


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """Where the TLS certificate comes from (browsers need HTTPS for cameras)."""

    mode: TlsMode = TlsMode.AUTO
    cert_file: Path | None = None
    key_file: Path | None = None

    def _problem(self) -> tuple[str, str] | None:
        if self.mode is TlsMode.FILES:
            for name in ("cert_file", "key_file"):
                if getattr(self, name) is None:
                    return name, "is required when tls.mode is 'files'"
        if (self.cert_file is None) != (self.key_file is None):
            missing = "key_file" if self.key_file is None else "cert_file"
            return missing, "must be set together with the other of cert_file/key_file"
        return None


@dataclass(frozen=True, slots=True)
class IceServer:
    """A STUN or TURN server, as in the browser's RTCIceServer."""

    urls: tuple[str, ...] = field(default=(), metadata={"check": _check_ice_urls})
    username: str | None = None
    credential: str | None = None

    def _problem(self) -> tuple[str, str] | None:
        # Browsers reject a turn: server without credentials outright.
        if any(url.startswith("turn") for url in self.urls):
            for name in ("username", "credential"):
                if getattr(self, name) is None:
                    return name, "is required for turn: and turns: URLs"
        return None


def _check_turn_urls(urls: tuple[str, ...]) -> str | None:
    if not urls:
        return "must list at least one URL"
    for url in urls:
        if not url.startswith(("turn:", "turns:")):
            return f"must hold turn: or turns: URLs, got {url!r}"
    return None


def _check_ip(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"must be an IP address, got {value!r}"
    return None


@dataclass(frozen=True, slots=True)
class TurnServer:
    """A TURN server sharing a secret with this one (coturn's ``use-auth-secret``):
    each participant gets a user name and password of its own, valid for the day
    (server/turn.py), never a static password."""

    urls: tuple[str, ...] = field(default=(), metadata={"check": _check_turn_urls})
    # A file whose first line is coturn's static-auth-secret, never the secret itself.
    secret_file: Path | None = None
    # Credentials last until the end of the day (the defense day's time zone) plus
    # this margin, and never longer than max_ttl_s from when they are handed out.
    margin_s: float = field(default=7200.0, metadata=_between(0, 86_400))
    max_ttl_s: float = field(default=86_400.0, metadata=_between(300, 7 * 86_400))

    def _problem(self) -> tuple[str, str] | None:
        if self.secret_file is None:
            return "secret_file", "is required (coturn's static-auth-secret, in a file)"
        return None


@dataclass(frozen=True, slots=True)
class AnnouncedAddress:
    """1:1 NAT: the server binds ``private`` but its ICE candidates name ``public``."""

    private: str = field(default="", metadata={"check": _check_ip})
    public: str = field(default="", metadata={"check": _check_ip})

    def _problem(self) -> tuple[str, str] | None:
        for name in ("private", "public"):
            if not getattr(self, name):
                return name, "is required (an IP address)"
        return None


@dataclass(frozen=True, slots=True)
class MediaConfig:
    """Limits of the media forwarder and its signaling."""

    max_message_bytes: int = field(default=65536, metadata=_between(1024, 16 << 20))
    join_timeout_s: float = field(default=10.0, metadata=_between(0.5, 300))
    keyframe_min_interval_ms: int = field(default=300, metadata=_between(0, 60_000))
    max_participants: int = field(default=32, metadata=_between(2, 1000))
    # A participant whose tracks all stop for this long counts as gone (presence).
    media_stall_s: float = field(default=15.0, metadata=_between(2, 600))
    # Rule P5 (clause 6.4): a student's connection delivering less than this (kbit/s,
    # averaged over student_low_after_s) is reported to the secretary.
    student_min_kbps: int = field(default=200, metadata=_between(10, 100_000))
    student_low_after_s: float = field(default=10.0, metadata=_between(2, 600))
    # A participant whose browser has not answered the server's first offer by then
    # is dropped (bye "no_answer"): a browser without WebRTC, or a stuck page.
    first_answer_timeout_s: float = field(default=30.0, metadata=_between(1, 120))
    # Behind 1:1 NAT (a cloud machine): the public address put in the server's ICE
    # candidates in place of each private address it binds.
    announced_addresses: tuple[AnnouncedAddress, ...] = ()
    # Send each viewer only what its page shows (media/layers.py): no video to a
    # hidden tile, the base VP8 temporal layer to a small tile or a weak link.
    # False forwards everything to everyone (to compare, bench/capacity.py).
    layer_selection: bool = True

    def _problem(self) -> tuple[str, str] | None:
        privates = [a.private for a in self.announced_addresses]
        if len(set(privates)) != len(privates):
            return "announced_addresses", "lists a private address twice"
        return None


@dataclass(frozen=True, slots=True)
class SignalingConfig:
    """Limits of one signaling socket, so that no client floods the room (S5, S11, S18)."""

    # Messages per second a socket may send on average, and how many at once
    # (a browser sends a burst of ICE candidates, then stats every 2 s).
    messages_per_s: float = field(default=20.0, metadata=_between(0.1, 10_000))
    message_burst: int = field(default=60, metadata=_between(1, 100_000))
    # The same for page turns of the presentation, which reach everyone.
    pages_per_s: float = field(default=5.0, metadata=_between(0.01, 1000))
    page_burst: int = field(default=20, metadata=_between(1, 10_000))
    # Within this many seconds only the latest page turn is journaled (S5).
    page_journal_interval_s: float = field(default=1.0, metadata=_between(0.0, 60))
    # A socket with this many messages dropped within drop_window_s is closed.
    close_after_drops: int = field(default=50, metadata=_between(1, 100_000))
    drop_window_s: float = field(default=10.0, metadata=_between(0.1, 3600))
    # Sockets one address may hold open before they join (sent a valid token).
    max_waiting_per_ip: int = field(default=20, metadata=_between(1, 100_000))
    # ICE candidates one participant's connection may send.
    max_ice_candidates: int = field(default=50, metadata=_between(1, 10_000))


# Upper bounds catch unit mix-ups (seconds typed as minutes), not policy.
_DAY_MINUTES = 24 * 60


@dataclass(frozen=True, slots=True)
class PhasesConfig:
    """Lengths of the phases of one student's defense."""

    talk_minutes: int = field(default=10, metadata=_between(1, _DAY_MINUTES))
    questions_minutes: int = field(default=15, metadata=_between(1, _DAY_MINUTES))
    defense_max_minutes: int = field(default=30, metadata=_between(1, _DAY_MINUTES))
    warning_before_s: int = field(default=60, metadata=_between(0, 3600))


@dataclass(frozen=True, slots=True)
class AbsenceConfig:
    """What happens when someone drops out (clauses 7.8, 7.9)."""

    grace_minutes: int = field(default=15, metadata=_between(0, _DAY_MINUTES))
    counted_from: AbsenceFrom = AbsenceFrom.START
    reconnect_grace_s: float = field(default=30.0, metadata=_between(0, 3600))


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """The order of defenses (clause 7.4)."""

    lock_minutes: int = field(default=30, metadata=_between(0, _DAY_MINUTES))


@dataclass(frozen=True, slots=True)
class LobbyConfig:
    """Who waits to be let in."""

    # Students, supervisors, reviewers and observers wait in the lobby until the
    # secretary admits them; the commission enters directly.
    admission: bool = True


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """How long recordings are kept."""

    days: int = field(default=30, metadata=_between(1, 3650))


@dataclass(frozen=True, slots=True)
class RecordingsConfig:
    """Disk space for recording (rule D6, clause 7.11: the whole procedure is recorded)."""

    # Free disk space, in MB, the recordings disk must keep: less refuses to turn
    # the recording on, and falling under it while recording stops the recording
    # as a failure. 2048 MB is about 40 minutes of a full room (7 published
    # cameras at about 1 Mbit/s), and keeps room for the database and the files
    # built after the sitting. 0 turns the check off.
    min_free_mb: int = field(default=2048, metadata=_between(0, 10_000_000))
    # Seconds between two checks of the free space while recording.
    free_space_check_s: float = field(default=5.0, metadata=_between(0.01, 3600))


@dataclass(frozen=True, slots=True)
class DocumentsConfig:
    """Students' document uploads (rules B1, B2; findings S4, S9)."""

    # When a student's own uploads close; after that only the secretary replaces a
    # document, giving a reason. They close at the student's defense start (or the
    # end of the day) in any case; b1_deadline closes them two calendar days before.
    student_uploads_close: StudentUploadsClose = StudentUploadsClose.DEFENSE_START
    # Largest document accepted, in MiB.
    max_upload_mb: int = field(default=50, metadata=_between(1, 1024))
    # Uploads one invite link may have in progress at once (more: 429).
    uploads_per_token: int = field(default=2, metadata=_between(1, 100))
    # Uploads the whole server takes at once (more: 503).
    uploads_at_once: int = field(default=8, metadata=_between(1, 1000))


def _check_sha256(value: str | None) -> str | None:
    if value is not None and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value)):
        return "must be 64 lowercase hex digits (defense-room organizer-token prints them)"
    return None


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """Who may create defense days over HTTP."""

    # SHA-256 of the organizer's token; None: only the command line creates days.
    organizer_token_sha256: str | None = field(default=None, metadata={"check": _check_sha256})


def _check_weekend(days: tuple[int, ...]) -> str | None:
    if any(not 1 <= d <= 7 for d in days):
        return "must list ISO weekday numbers, Monday 1 to Sunday 7"
    if len(set(days)) >= 7:
        return "must leave at least one working weekday"
    return None


@dataclass(frozen=True, slots=True)
class CalendarConfig:
    """Working days, for appeal deadlines (section 8)."""

    weekend: tuple[int, ...] = field(default=(6, 7), metadata={"check": _check_weekend})
    holidays: tuple[datetime.date, ...] = ()
    end_of_studies: datetime.date | None = None
    # The last day of the attestation period: a defense moved after a failure gets
    # a new date no later than its end (clause 7.8). None: not checked.
    attestation_period_end: datetime.date | None = None


@dataclass(frozen=True, slots=True)
class InvitesConfig:
    """Invite link lifetime."""

    valid_days_after: int = field(default=1, metadata=_between(0, 365))
    # The chair's and the secretary's links last longer: they sign protocols, hand the
    # day over and open its recordings through the retention month (R1, R3).
    office_valid_days_after: int = field(default=40, metadata=_between(0, 3650))
    # The links of a student who appealed (to the defense day and to the appeal
    # sitting) last until the end of the day the decision reaches them (the next
    # working day after the sitting, clause 8.11) plus this many days.
    appeal_valid_days_after: int = field(default=7, metadata=_between(0, 365))


class MailSecurity(enum.StrEnum):
    """How the connection to the mail server is protected."""

    STARTTLS = "starttls"  # plain connect, then STARTTLS (port 587)
    TLS = "tls"  # TLS from the first byte (port 465)
    NONE = "none"  # no encryption: only for a relay on the same machine


def _check_sender(value: str | None) -> str | None:
    if value is not None and ("@" not in value or any(c in value for c in "\r\n<>")):
        return "must be an e-mail address like defense@university.example"
    return None


def _check_link_base(value: str | None) -> str | None:
    if value is not None and (not value.startswith(("https://", "http://"))
                              or value.endswith("/")):
        return "must be an address like https://defense.university.example:8443, no final /"
    return None


@dataclass(frozen=True, slots=True)
class MailConfig:
    """E-mail to the people of a day (`server.mail`): off unless turned on."""

    enabled: bool = False
    host: str | None = None
    port: int = field(default=587, metadata=_between(1, 65535))
    security: MailSecurity = MailSecurity.STARTTLS
    username: str | None = None
    # A file holding the password (its first line), never the password itself.
    password_file: Path | None = None
    # The CA certificate(s) the server's certificate is verified with; None: the system's.
    ca_file: Path | None = None
    sender: str | None = field(default=None, metadata={"check": _check_sender})
    # Where the links in mail point (scheme, host and port the participants reach).
    link_base_url: str | None = field(default=None, metadata={"check": _check_link_base})
    timeout_s: float = field(default=30.0, metadata=_between(1, 600))
    # The first wait before a failed mail is tried again; it doubles up to an hour.
    retry_s: float = field(default=60.0, metadata=_between(0.01, 86_400))
    # Tries before a queued mail is given up (and the failure journaled).
    max_attempts: int = field(default=20, metadata=_between(1, 1000))
    # How often the journal is read for moved dates and appeals, and the queue sent.
    poll_s: float = field(default=10.0, metadata=_between(0.01, 3600))

    def _problem(self) -> tuple[str, str] | None:
        if self.enabled:
            for name in ("host", "sender", "link_base_url"):
                if getattr(self, name) is None:
                    return name, "is required when mail.enabled is true"
        if (self.username is None) != (self.password_file is None):
            missing = "password_file" if self.password_file is None else "username"
            return missing, "must be set together with the other of username/password_file"
        if self.security is MailSecurity.NONE and self.username is not None:
            return "security", "must not be 'none' with a login: the password would go in clear"
        return None


@dataclass(frozen=True, slots=True)
class Config:
    """The whole server configuration."""

    server: ServerConfig = field(default_factory=ServerConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    data_dir: Path = Path("data")
    # Empty on purpose: given no ICE servers, aiortc would contact a public
    # STUN server, and a defense must not talk to third parties.
    ice_servers: tuple[IceServer, ...] = ()
    # TURN servers with per-person, per-day credentials (server/turn.py).
    turn: tuple[TurnServer, ...] = ()
    media: MediaConfig = field(default_factory=MediaConfig)
    signaling: SignalingConfig = field(default_factory=SignalingConfig)
    phases: PhasesConfig = field(default_factory=PhasesConfig)
    absence: AbsenceConfig = field(default_factory=AbsenceConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    lobby: LobbyConfig = field(default_factory=LobbyConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    recordings: RecordingsConfig = field(default_factory=RecordingsConfig)
    documents: DocumentsConfig = field(default_factory=DocumentsConfig)
    invites: InvitesConfig = field(default_factory=InvitesConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    calendar: CalendarConfig = field(default_factory=CalendarConfig)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    mail: MailConfig = field(default_factory=MailConfig)

    @property
    def database_path(self) -> Path:
        """The SQLite file."""
        return self.data_dir / "defense-room.sqlite3"

    @property
    def recordings_dir(self) -> Path:
        """Where recordings are written (a day's folder: `recordings.plan.day_folder`)."""
        return self.data_dir / "recordings"

    @property
    def documents_dir(self) -> Path:
        """Where theses, presentations and reviews are kept (`storage.document_files`)."""
        return self.data_dir / "documents"

    @property
    def handover_dir(self) -> Path:
        """Where hand-over packages are built."""
        return self.data_dir / "handover"

    def procedure_settings(self, timezone: str = "UTC") -> Settings:
        """The procedure core's settings for a day in `timezone`. A day journals them
        when its procedure begins and replays with those (`orchestrator.replay`), so
        a change here affects only days that have not begun."""
        period_end = self.calendar.attestation_period_end
        return Settings(
            talk_minutes=self.phases.talk_minutes,
            questions_minutes=self.phases.questions_minutes,
            defense_max_minutes=self.phases.defense_max_minutes,
            warning_before_s=self.phases.warning_before_s,
            # One key for both limits (clauses 7.8 and 7.9; config.yaml says so).
            absence_grace_minutes=self.absence.grace_minutes,
            absence_from=self.absence.counted_from,
            failure_grace_minutes=self.absence.grace_minutes,
            queue_lock_minutes=self.queue.lock_minutes,
            attestation_period_end=0.0 if period_end is None else datetime.datetime.combine(
                period_end + datetime.timedelta(days=1), datetime.time(),
                zoneinfo.ZoneInfo(timezone)).timestamp() - 1,
        )

    def _problem(self) -> tuple[str, str] | None:
        # The chair's and secretary's links open the recordings for the whole
        # retention period (R1, R3): they must not expire before it ends.
        if self.invites.office_valid_days_after < self.retention.days:
            return ("invites.office_valid_days_after",
                    f"({self.invites.office_valid_days_after}) must be at least "
                    f"retention.days ({self.retention.days}): the chair and the secretary "
                    "open the recordings until they are deleted")
        return None


def load_config(path: Path | None = None) -> Config:
    """Load `path` over the defaults; None gives the defaults alone.

    Relative paths in the file resolve against the file's folder (against
    the working directory when there is no file). Raises ConfigError.
    """
    if path is None:
        return build(Config, {}, "", Path.cwd())
    return build(Config, read_yaml(path), "", path.absolute().parent)


def iter_config_keys(cls: type[Any] = Config, prefix: str = "") -> list[str]:
    """Every dotted key the configuration accepts, e.g. "server.port".

    Keys of list items are written with "[]", e.g. "ice_servers[].urls".
    """
    keys: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        keys.append(key)
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            keys.extend(iter_config_keys(typing.cast(type[Any], tp), key + "."))
        elif typing.get_origin(tp) is tuple:
            item = typing.get_args(tp)[0]
            if dataclasses.is_dataclass(item):
                keys.extend(iter_config_keys(typing.cast(type[Any], item), key + "[]."))
    return keys
