"""Tests for server.config: defaults, strict loading, docs in step."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.config import (
    Config,
    ConfigError,
    IceServer,
    TlsMode,
    iter_config_keys,
    load_config,
)

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"
_KEY_LINE = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*):")


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def flatten_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in data.items():
        keys.append(prefix + key)
        if isinstance(value, dict):
            keys.extend(flatten_keys(value, prefix + key + "."))
    return keys


def test_defaults_need_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None)
    assert cfg.data_dir == tmp_path / "data"
    assert dataclasses.replace(cfg, data_dir=Path("data")) == Config()
    assert Config().ice_servers == ()  # never a public STUN server by default
    assert Config().tls.mode == "auto"


def test_derived_paths() -> None:
    cfg = Config(data_dir=Path("/srv/defense"))
    assert cfg.database_path == Path("/srv/defense/defense-room.sqlite3")
    assert cfg.recordings_dir == Path("/srv/defense/recordings")


def test_config_is_frozen() -> None:
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.server.port = 1  # type: ignore[misc]


def test_every_field_is_documented_in_config_yaml() -> None:
    text = REPO_CONFIG.read_text(encoding="utf-8")
    documented = set(flatten_keys(yaml.safe_load(text)))
    comment_lines = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    missing = []
    for key in iter_config_keys():
        if "[]." in key:
            # List items have no default entry; they are shown as a
            # commented example.
            leaf = key.rsplit(".", 1)[1]
            if not any(f"{leaf}:" in line for line in comment_lines):
                missing.append(key)
        elif key not in documented:
            missing.append(key)
    assert missing == []
    assert documented <= set(iter_config_keys())


def test_every_key_in_config_yaml_has_a_comment_above() -> None:
    lines = REPO_CONFIG.read_text(encoding="utf-8").splitlines()
    undocumented = [
        line
        for index, line in enumerate(lines)
        if _KEY_LINE.match(line) and (index == 0 or not lines[index - 1].lstrip().startswith("#"))
    ]
    assert undocumented == []


def test_config_yaml_holds_the_defaults() -> None:
    cfg = load_config(REPO_CONFIG)
    assert cfg.data_dir == REPO_CONFIG.parent / "data"
    assert dataclasses.replace(cfg, data_dir=Config().data_dir) == Config()


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, "# nothing here\n"))
    assert dataclasses.replace(cfg, data_dir=Path("data")) == Config()


def test_values_override_defaults(tmp_path: Path) -> None:
    cfg = load_config(
        write_config(
            tmp_path,
            "server:\n  port: 9000\n  public_host: defense.example.edu\n"
            "media:\n  join_timeout_s: 3\n"
            "phases:\n  talk_minutes: 12\n",
        )
    )
    assert cfg.server.port == 9000
    assert cfg.server.public_host == "defense.example.edu"
    assert cfg.media.join_timeout_s == 3.0
    assert isinstance(cfg.media.join_timeout_s, float)
    assert cfg.phases.talk_minutes == 12
    assert cfg.phases.questions_minutes == 15


def test_unknown_key_names_the_full_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, "server:\n  prot: 8443\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "unknown config key 'server.prot'" in str(info.value)
    assert "did you mean 'server.port'" in str(info.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("dat_dir: x\n", "dat_dir"),
        ("ice_servers:\n  - url: stun:stun.example.edu\n", "ice_servers[0].url"),
        ("phases:\n  talk: 5\n", "phases.talk"),
    ],
)
def test_unknown_keys_anywhere(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"unknown config key '{key}'")):
        load_config(write_config(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ('server:\n  port: "8443"\n', "server.port", "'8443'"),
        ("server:\n  port: true\n", "server.port", "True"),
        ("server:\n  port: 8443.5\n", "server.port", "8443.5"),
        ("media:\n  join_timeout_s: soon\n", "media.join_timeout_s", "'soon'"),
        ("server:\n  host: 127\n", "server.host", "127"),
        ("data_dir: 5\n", "data_dir", "5"),
        ("ice_servers: stun:x\n", "ice_servers", "'stun:x'"),
        ("server: 8443\n", "server", "8443"),
    ],
)
def test_wrong_type_names_key_and_value(tmp_path: Path, text: str, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, text))
    message = str(info.value)
    assert f"'{key}'" in message
    assert value in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("server:\n  port: 0\n", "server.port"),
        ("server:\n  port: 70000\n", "server.port"),
        ("media:\n  join_timeout_s: -1\n", "media.join_timeout_s"),
        ("retention:\n  days: 0\n", "retention.days"),
        ("phases:\n  talk_minutes: 6000\n", "phases.talk_minutes"),
        ("invites:\n  valid_days_after: -1\n", "invites.valid_days_after"),
    ],
)
def test_out_of_range_names_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
        load_config(write_config(tmp_path, text))


def test_bad_tls_mode_lists_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, "tls:\n  mode: on\n"))
    assert "'tls.mode'" in str(info.value)
    assert "'auto', 'files', 'off'" in str(info.value)


def test_tls_files_mode_needs_cert(tmp_path: Path) -> None:
    path = write_config(tmp_path, "tls:\n  mode: files\n  key_file: key.pem\n")
    with pytest.raises(ConfigError, match=re.escape("'tls.cert_file' is required")):
        load_config(path)


def test_tls_files_mode_needs_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, "tls:\n  mode: files\n  cert_file: cert.pem\n")
    with pytest.raises(ConfigError, match=re.escape("'tls.key_file' is required")):
        load_config(path)


def test_relative_paths_resolve_against_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(
        write_config(
            folder,
            "data_dir: state\n"
            "tls:\n  mode: files\n  cert_file: tls/cert.pem\n  key_file: /abs/key.pem\n",
        )
    )
    assert cfg.tls.mode is TlsMode.FILES
    assert cfg.data_dir == folder / "state"
    assert cfg.tls.cert_file == folder / "tls" / "cert.pem"
    assert cfg.tls.key_file == Path("/abs/key.pem")


def test_ice_servers(tmp_path: Path) -> None:
    cfg = load_config(
        write_config(
            tmp_path,
            "ice_servers:\n"
            "  - urls: stun:stun.example.edu:3478\n"
            "  - urls: [turn:turn.example.edu:3478, turns:turn.example.edu:5349]\n"
            "    username: defense\n"
            "    credential: secret\n",
        )
    )
    assert cfg.ice_servers == (
        IceServer(urls=("stun:stun.example.edu:3478",)),
        IceServer(
            urls=("turn:turn.example.edu:3478", "turns:turn.example.edu:5349"),
            username="defense",
            credential="secret",
        ),
    )


def test_ice_server_url_scheme_is_checked(tmp_path: Path) -> None:
    path = write_config(tmp_path, "ice_servers:\n  - urls: [stun:ok, http://bad]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "'ice_servers[0].urls'" in str(info.value)
    assert "'http://bad'" in str(info.value)


def test_turn_server_needs_credentials(tmp_path: Path) -> None:
    path = write_config(tmp_path, "ice_servers:\n  - urls: turn:t.example.edu\n")
    with pytest.raises(ConfigError, match=re.escape("'ice_servers[0].username'")):
        load_config(path)


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, "server:\n  port: 1\n  port: 2\n")
    with pytest.raises(ConfigError, match="duplicate config key 'port' on line 3"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write_config(tmp_path, "server: [\n"))


def test_announced_addresses_are_checked(tmp_path: Path) -> None:
    cfg = load_config(write_config(
        tmp_path, "media:\n  announced_addresses:\n    - {private: 10.0.0.5, public: 203.0.113.7}\n"))
    assert [(a.private, a.public) for a in cfg.media.announced_addresses] == [("10.0.0.5", "203.0.113.7")]
    with pytest.raises(ConfigError, match=re.escape("'media.announced_addresses[0].public' must be an IP")):
        load_config(write_config(
            tmp_path, "media:\n  announced_addresses:\n    - {private: 10.0.0.5, public: cloud.example}\n"))
    with pytest.raises(ConfigError, match=re.escape("'media.announced_addresses[0].public' is required")):
        load_config(write_config(tmp_path, "media:\n  announced_addresses:\n    - {private: 10.0.0.5}\n"))
    with pytest.raises(ConfigError, match="lists a private address twice"):
        load_config(write_config(tmp_path, "media:\n  announced_addresses:\n"
                                 "    - {private: 10.0.0.5, public: 203.0.113.7}\n"
                                 "    - {private: 10.0.0.5, public: 203.0.113.8}\n"))
    with pytest.raises(ConfigError, match=re.escape("'media.first_answer_timeout_s' must be at most 120")):
        load_config(write_config(tmp_path, "media:\n  first_answer_timeout_s: 600\n"))
