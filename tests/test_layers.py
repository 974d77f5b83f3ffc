"""Every import points down: the packages stack in floors, and this test keeps it so.

`ALLOWED` is the house plan: which project packages each package may import. A
package imports only packages on floors below its own, so no two packages import
each other and no import climbs. Imports under ``if TYPE_CHECKING:`` count too: a
type-only import upward still ties the lower floor to the upper one. Run this file
with ``-s`` to print the table and the floors.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: package -> the project packages it may import (itself always).
ALLOWED: dict[str, frozenset[str]] = {
    "orchestrator": frozenset(),  # the pure procedure core: stdlib only
    "media": frozenset(),  # the forwarder: aiortc and aioice, no rules
    "identity": frozenset({"media"}),
    "storage": frozenset({"orchestrator"}),
    "recordings": frozenset({"orchestrator", "media", "storage"}),
    "protocols": frozenset({"orchestrator", "storage", "recordings"}),
    "server": frozenset({"orchestrator", "media", "identity", "storage", "recordings",
                         "protocols"}),
    "web_ui": frozenset({"orchestrator", "media", "identity", "storage", "recordings",
                         "protocols", "server"}),
    "defense_room": frozenset({"orchestrator", "media", "identity", "storage", "recordings",
                               "protocols", "server", "web_ui"}),
}
#: Not part of the product: they may import any package, and no package imports them.
OUTSIDE = ("tests", "bench")


def floors() -> list[list[str]]:
    """The packages by floor, lowest first: each floor imports only floors below."""
    placed: set[str] = set()
    result: list[list[str]] = []
    while len(placed) < len(ALLOWED):
        floor = sorted(p for p, deps in ALLOWED.items() if p not in placed and deps <= placed)
        if not floor:
            raise AssertionError(f"ALLOWED has a cycle among {sorted(set(ALLOWED) - placed)}")
        result.append(floor)
        placed.update(floor)
    return result


def project_imports(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level package) of every project import in one file."""
    own = path.relative_to(root).parts[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [own] if node.level else [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in ALLOWED or top in OUTSIDE:
                yield node.lineno, top


def violations(package: str, root: Path = ROOT) -> list[str]:
    """Each import of `package` that the table does not allow, as file:line."""
    found = []
    for path in sorted((root / package).rglob("*.py")):
        for line, target in sorted(project_imports(path, root)):
            if target != package and target not in ALLOWED[package]:
                found.append(f"{path.relative_to(root)}:{line} imports {target}")
    return found


def test_the_table_stacks_in_floors() -> None:
    stacked = floors()
    print("\npackage        may import")
    for package, deps in ALLOWED.items():
        print(f"{package:14} {', '.join(sorted(deps)) or '(nothing of the project)'}")
    print("floors, lowest first:", " < ".join("{" + ", ".join(f) + "}" for f in stacked))
    assert [p for floor in stacked for p in floor] != []


def test_every_package_is_in_the_table() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - set(OUTSIDE)
    assert packages == set(ALLOWED), (
        f"add {sorted(packages - set(ALLOWED))} to ALLOWED (or remove "
        f"{sorted(set(ALLOWED) - packages)})")


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_down(package: str) -> None:
    assert violations(package) == []


def test_the_checker_names_file_and_line(tmp_path: Path) -> None:
    # The checker itself must be able to fail: imports that climb, in a copy of a package.
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "days.py").write_text(
        "import os\n\nfrom server.config import Config\nfrom . import db\n"
        "def f() -> None:\n    import web_ui.app\n    from tests import conftest\n")
    assert violations("storage", tmp_path) == [
        "storage/days.py:3 imports server",
        "storage/days.py:6 imports web_ui",
        "storage/days.py:7 imports tests",
    ]
