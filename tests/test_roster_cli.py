"""``defense-room day import`` and ``day readiness``, run as real processes."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LINK = re.compile(r"^(chair|member|secretary|student|supervisor|reviewer|observer)\s+(.+?)\s+"
                  r"(https://127\.0\.0\.1:8443/j/\S+)$")


async def run_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "defense_room.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, stdout.decode(), stderr.decode()


async def test_import_then_readiness(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("data_dir: ./state\nserver:\n  host: 127.0.0.1\n")
    rc, out, err = await run_cli("day", "import", str(EXAMPLES / "defense-day-csv.yaml"),
                                 "--config", str(config))
    assert rc == 0, err
    links = [m.groups() for line in out.splitlines() if (m := LINK.match(line))]
    roles = [role for role, *_ in links]
    assert roles.count("student") == 3 and len(links) == 13
    # Rule P1: the supervisors, reviewers and the observer get their links too.
    assert (roles.count("supervisor"), roles.count("reviewer"), roles.count("observer")) == (
        2, 2, 1)
    day = re.search(r"Defense day (\d+) created", out)
    assert day is not None, out
    assert (tmp_path / "state" / "defense-room.sqlite3").exists()

    rc, out, err = await run_cli("day", "readiness", day.group(1), "--config", str(config))
    assert rc == 0, err
    lines = out.splitlines()
    popov = next(line for line in lines if "Попов Артём Евгеньевич" in line)
    assert popov.split()[-1] == "NO"
    assert "no consent to personal-data processing on file" in out
    assert re.search(r"^\d of 3 students can defend\.$", out, re.MULTILINE), out

    rc, _, err = await run_cli("day", "readiness", "99", "--config", str(config))
    assert rc == 1 and "no defense day with id 99" in err


async def test_bad_day_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "day.yaml"
    bad.write_text((EXAMPLES / "defense-day.yaml").read_text(encoding="utf-8")
                   .replace("timezone: Europe/Moscow\nnorm", "timezone: Moscow\nnorm"),
                   encoding="utf-8")
    rc, out, err = await run_cli("day", "import", str(bad), "--config", str(tmp_path / "c.yaml"))
    assert rc == 2 and "c.yaml does not exist" in err
    (tmp_path / "c.yaml").write_text("data_dir: ./state\n")
    rc, out, err = await run_cli("day", "import", str(bad), "--config", str(tmp_path / "c.yaml"))
    assert rc == 2, out
    assert f"{bad}: 'timezone'" in err and "'Moscow'" in err
