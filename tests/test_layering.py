"""The layers, enforced: the functional core imports nothing of the edges above it.

The rule language and the KPIs are pure; connectors, the plugin manager, the state store
and the command line are edges that use them. An import the other way (even one inside a
function, "to avoid a cycle") makes the core depend on I/O and on the installed plugins,
so every import statement of the core's modules is read here, not only the top-level ones.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "bridge"

# package (relative to src/bridge) → modules its files must not import (nor their children)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "rules": ("bridge.connectors", "bridge.plugins", "bridge.store", "bridge.cli"),
    "kpi": ("bridge.connectors", "bridge.plugins", "bridge.store", "bridge.cli"),
    "connectors/jira": ("bridge.config", "bridge.store", "bridge.plugins", "bridge.cli"),
    "connectors/servicenow": ("bridge.config", "bridge.store", "bridge.plugins", "bridge.cli"),
    "connectors/base.py": ("bridge.config", "bridge.store", "bridge.plugins", "bridge.cli"),
}


def _package_of(path: Path) -> tuple[str, ...]:
    """The package a module of src/bridge belongs to (itself, for an ``__init__.py``)."""
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return parts[:-1]


def imported_modules(path: Path, package: tuple[str, ...]) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in the file, wherever it is written; relative ones
    are made absolute from ``package``, and ``from a import b`` yields ``a.b`` too, since
    ``b`` may be a module."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def _files(where: str) -> list[Path]:
    target = SRC / where
    return [target] if target.is_file() else sorted(target.rglob("*.py"))


def _violations(where: str) -> list[str]:
    found = []
    for path in _files(where):
        for line, module in imported_modules(path, _package_of(path)):
            for banned in FORBIDDEN[where]:
                if module == banned or module.startswith(banned + "."):
                    found.append(f"{path.relative_to(SRC.parent)}:{line}: imports {module}")
                    break
    return sorted(set(found))


@pytest.mark.parametrize("where", sorted(FORBIDDEN))
def test_the_core_and_the_connectors_do_not_reach_up(where: str) -> None:
    assert _files(where), f"nothing to check under {where}"
    assert _violations(where) == []


def test_the_checker_sees_imports_inside_functions_and_relative_ones(tmp_path: Path) -> None:
    """The check itself: a lazy import and a relative one are both found."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import json\n"
        "def f():\n"
        "    from bridge.plugins import default_registry\n"
        "    from ..store import base\n"
    )
    assert sorted(imported_modules(sample, ("bridge", "rules"))) == [
        (1, "json"),
        (3, "bridge.plugins"),
        (3, "bridge.plugins.default_registry"),
        (4, "bridge.store"),
        (4, "bridge.store.base"),
    ]


def test_calendar_arithmetic_does_not_import_its_spec_parser() -> None:
    """calendar_spec builds calendars, so it imports calendar; not the other way round."""
    calendar = SRC / "kpi" / "calendar.py"
    modules = {module for _, module in imported_modules(calendar, ("bridge", "kpi"))}
    assert not any(m.startswith("bridge.kpi.calendar_spec") for m in modules)
