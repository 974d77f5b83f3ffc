"""The ``defense-room`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from server.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config

from .demo import create_demo_day, format_invite_lines
from .eventloop import new_event_loop
from .identity_eval import add_identity_eval
from .invites_cli import add_parser as add_invites_parser, run_invites
from .retention_cli import add_parser as add_retention_parser
from .retention_cli import run_retention
from .tls import detect_lan_address, self_signed_warning, ssl_context_for

logger = logging.getLogger("defense_room")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="defense-room", description="Defense room server: remote thesis defenses over WebRTC.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the defense room server")
    serve.add_argument("--config", type=Path, default=None,
                       help=f"configuration file (default: {DEFAULT_CONFIG_PATH} if it exists)")
    serve.add_argument("--demo", action="store_true",
                       help="create a demo defense day and print one invite link per person")
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=int, help="listen port (overrides server.port)")
    serve.add_argument("--workers", type=_worker_count, default=None, metavar="N",
                       help="worker processes, each hosting its share of the days "
                            "(default: server.workers, 0 there meaning one per CPU core "
                            "this process may use; "
                            "1: a single process)")
    # How the front starts each worker (server/workers.py); not for operators.
    serve.add_argument("--worker", help=argparse.SUPPRESS)
    serve.add_argument("--unix", type=Path, help=argparse.SUPPRESS)
    serve.add_argument("--front-pid", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--organizer-sha256", help=argparse.SUPPRESS)
    day = commands.add_parser("day", help="defense days: import a day file, check readiness")
    day_commands = day.add_subparsers(dest="day_command", required=True)
    day_import = day_commands.add_parser(
        "import", help="create a defense day from a YAML day file and print the invite links")
    day_import.add_argument("file", type=Path, help="day file (see examples/defense-day.yaml)")
    day_readiness = day_commands.add_parser(
        "readiness", help="which students lack consent or documents (rule B1)")
    day_readiness.add_argument("day_id", type=int, help="id printed by 'day import'")
    for sub in (day_import, day_readiness):
        sub.add_argument("--config", type=Path, default=None,
                         help=f"configuration file (default: {DEFAULT_CONFIG_PATH} if it exists)")
    add_retention_parser(commands)
    add_invites_parser(commands)
    add_identity_eval(commands)
    commands.add_parser(
        "organizer-token",
        help="make a token for creating days over HTTP and the config line that allows it")
    verify_cmd = commands.add_parser(
        "verify", help="check every hash and signature of an evidence pack or hand-over package")
    verify_cmd.add_argument("package", type=Path, help="the downloaded ZIP")
    verify_cmd.add_argument(
        "--key", metavar="FINGERPRINT|FILE",
        help="the server key to trust: its SHA-256 fingerprint (printed on every protocol) "
             "or its public key PEM file; without it nothing is vouched for")
    keys_cmd = commands.add_parser("keys", help="the server key that signs every package")
    keys_commands = keys_cmd.add_subparsers(dest="keys_command", required=True)
    keys_show = keys_commands.add_parser(
        "show", help="print the current key's fingerprint and every key ever used")
    keys_rotate = keys_commands.add_parser(
        "rotate", help="replace the signing key (older packages still verify with the old one)")
    for sub in (keys_show, keys_rotate):
        sub.add_argument("--config", type=Path, default=None,
                         help=f"configuration file (default: {DEFAULT_CONFIG_PATH} if it exists)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "organizer-token":
        return print_organizer_token()
    if args.command == "verify":
        from .verify import run

        return run(args.package, args.key)
    try:
        config = _load(args.config)
        if args.command == "serve":
            if args.worker is not None:
                from .worker import serve_worker

                return serve_worker(config, args.worker, unix=args.unix,
                                    front_pid=args.front_pid,
                                    organizer_sha256=args.organizer_sha256)
            workers = args.workers if args.workers is not None else config.server.workers
            return serve_forever(config, demo=args.demo, host=args.host, port=args.port,
                                 workers=workers or usable_cores(),
                                 config_path=_path_of(args.config), verbose=args.verbose)
        if args.command == "day":
            from .daycli import import_day, print_readiness

            if args.day_command == "import":
                return import_day(config, args.file)
            return print_readiness(config, args.day_id)
        if args.command == "invites":
            return run_invites(config, args)
        if args.command == "keys":
            return server_keys(config, args.keys_command)
        if args.command == "retention":
            return run_retention(config, dry_run=args.dry_run)
        if args.command == "identity-eval":
            from .identity_eval import run_identity_eval

            return run_identity_eval(config, args)
    except ConfigError as exc:
        print(f"defense-room: configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


def print_organizer_token() -> int:
    """Print a fresh organizer token and the configuration line that accepts it."""
    import secrets

    from storage.invites import hash_token

    token = secrets.token_urlsafe(32)
    print(f"Organizer token (keep it secret; it is not stored anywhere):\n  {token}\n"
          "Put this into config.yaml and restart the server:\n"
          f"api:\n  organizer_token_sha256: \"{hash_token(token)}\"", flush=True)
    return 0


def server_keys(config: Config, command: str) -> int:
    """`keys show` / `keys rotate`: the server key under the data folder."""
    from protocols.server_key import ServerKeyring, public_pem

    keyring = ServerKeyring(config.data_dir)
    if command == "rotate":
        old, new = keyring.rotate(time.time())
        print(f"Server key rotated.\n  old: {old or '(none)'}\n  new: {new}\n"
              "Packages made from now on are signed with the new key; older ones still "
              "verify with the old fingerprint.")
        return 0
    current = keyring.current()
    print(f"Server key (SHA-256 fingerprint): {current.fingerprint}")
    print(public_pem(current.public), end="")
    retired = sorted(set(keyring.known()) - {current.fingerprint})
    if retired:
        print("Retired keys (older packages verify with these):")
        print("\n".join(f"  {fp}" for fp in retired))
    return 0


def usable_cores() -> int:
    """The CPU cores this process may run on (``taskset``, a container's cpuset), which
    can be fewer than the machine has: one worker per core beyond them would only
    share them."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _worker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = -1
    if not 1 <= count <= 256:
        raise argparse.ArgumentTypeError(f"--workers takes a number from 1 to 256, not {text!r}")
    return count


def _path_of(path: Path | None) -> Path | None:
    """The configuration file `_load` reads, for the workers to read too."""
    if path is None:
        return DEFAULT_CONFIG_PATH.absolute() if DEFAULT_CONFIG_PATH.exists() else None
    return path.absolute()


def _load(path: Path | None) -> Config:
    if path is None:
        return load_config(DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None)
    if not path.exists():
        raise ConfigError(f"configuration file {path} does not exist")
    return load_config(path)


def serve_forever(config: Config, *, demo: bool, host: str | None, port: int | None,
                  workers: int = 1, config_path: Path | None = None,
                  verbose: bool = False) -> int:
    """Run the server until interrupted (Ctrl+C or SIGTERM shut it down gracefully).

    With `workers` > 1 this process is the front (`server.front`): it listens and
    relays to that many worker processes (`server.workers`), each started from
    `config_path` as ``serve --worker I/N``."""
    from protocols.server_key import ServerKey
    from storage.db import Database

    os.umask(0o077)  # S19: data, keys, recordings and takes readable by this user only
    listen_host = host or config.server.host
    listen_port = port if port is not None else config.server.port
    public_host = config.server.public_host or (
        detect_lan_address() if listen_host in ("0.0.0.0", "::") else listen_host)
    ssl_context, fingerprint = ssl_context_for(config, public_host)
    scheme = "https" if ssl_context is not None else "http"
    base_url = f"{scheme}://{public_host}:{listen_port}"
    certificate_warning = self_signed_warning(config, public_host, listen_host)
    if certificate_warning is not None:
        print(certificate_warning, file=sys.stderr, flush=True)

    office_token = None
    if demo and config.api.organizer_token_sha256 is None:
        # The demo's office page needs an organizer token: one for this run only,
        # printed below and stored nowhere (its hash lives in this process's config).
        import dataclasses
        import secrets

        from storage.invites import hash_token

        office_token = secrets.token_urlsafe(32)
        config = dataclasses.replace(config, api=dataclasses.replace(
            config.api, organizer_token_sha256=hash_token(office_token)))

    run_dir: Path | None = None
    database_of: Callable[[web.Application], Database]
    key_of: Callable[[web.Application], Awaitable[ServerKey]]
    if workers > 1:
        from protocols.server_key import ServerKeyring
        from server.front import FRONT_DATABASE, create_front
        from server.workers import Supervisor, worker_command

        run_dir = _socket_folder(config.data_dir)
        supervisor = Supervisor(workers, run_dir, worker_command(
            config_path, verbose=verbose, count=workers,
            organizer_sha256=None if office_token is None
            else config.api.organizer_token_sha256))
        app = create_front(config, supervisor)
        keyring = ServerKeyring(config.data_dir)

        def database_of(app: web.Application) -> Database:
            return app[FRONT_DATABASE]

        async def key_of(app: web.Application) -> ServerKey:
            return await asyncio.to_thread(keyring.current)
    else:
        from web_ui.app import create_app
        from web_ui.keys import DATABASE
        from web_ui.package_signing import server_key

        app = create_app(config)

        def database_of(app: web.Application) -> Database:
            return app[DATABASE]

        key_of = server_key

    lines: list[str] = []

    async def prepare(app: web.Application) -> None:
        lines.append(f"Defense room server at {base_url} (data in {config.data_dir.resolve()})")
        if workers > 1:
            lines.append(f"Workers: {workers} processes, each hosting the days whose id "
                         f"modulo {workers} is its number")
        if fingerprint:
            lines.append("TLS: self-signed certificate unless configured; SHA-256 fingerprint")
            lines.append(f"  {fingerprint}")
            lines.append("  (compare it with what the browser shows before accepting the warning)")
        key = await key_of(app)  # made now, on the first start, so it can be noted down
        lines.append("Package signing key, SHA-256 fingerprint (printed on every protocol;"
                     " `defense-room verify PACKAGE --key` checks packages against it):")
        lines.append(f"  {key.fingerprint}")
        if not config.ice_servers:
            lines.append("ICE: no STUN/TURN servers configured; participants must reach "
                         "this machine directly (same network or VPN).")
        if demo:
            invites = await create_demo_day(
                database_of(app), time.time(), valid_days_after=config.invites.valid_days_after,
                office_valid_days_after=config.invites.office_valid_days_after)
            lines.append("")
            lines.append("Demo defense day created. Personal invite links:")
            lines.extend(format_invite_lines(invites, base_url))
        if office_token is not None:
            lines.append("")
            lines.append("Office page (organizer token for this run only):")
            lines.append(f"  {base_url}/office#{office_token}")
        elif config.api.organizer_token_sha256 is not None:
            lines.append(f"Office page: {base_url}/office (sign in with the organizer token)")

    def announce(_: str) -> None:
        # run_app calls this once the socket listens: links printed now work now.
        print("\n".join(lines), flush=True)

    app.on_startup.append(prepare)
    try:
        web.run_app(app, host=listen_host, port=listen_port, ssl_context=ssl_context,
                    print=announce, access_log=None, loop=new_event_loop())
    finally:
        if run_dir is not None:
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)
    return 0


def _socket_folder(data_dir: Path) -> Path:
    """A private folder for the workers' unix sockets: under the data folder (this
    user's only, and no /tmp cleaner removes a socket of a server up for weeks), or a
    fresh one in the temporary folder where that path would be too long for a socket
    (about 100 bytes)."""
    import tempfile

    folder = data_dir.resolve() / "run"
    if len(str(folder / "worker-255.sock").encode()) < 100:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return folder
    return Path(tempfile.mkdtemp(prefix="defense-room-"))


if __name__ == "__main__":
    raise SystemExit(main())
