"""The orchestrator core does no I/O and never reads the clock (STYLE.md section 1).

That it imports nothing else of the project is `tests/test_layers.py`'s table."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "orchestrator"
FORBIDDEN = {"asyncio", "aiohttp", "aiortc", "av", "sqlite3", "sqlite_utils", "time"}
#: Date arithmetic is pure (the working-day calendar needs it); reading the clock is not.
CLOCK_READS = {"now", "today", "utcnow"}


@pytest.mark.parametrize("module", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_imports_no_io(module: Path) -> None:
    tree = ast.parse(module.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN
    reads = [node.func.attr for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr in CLOCK_READS]
    assert not reads, f"{module.name} reads the clock: {reads}"
