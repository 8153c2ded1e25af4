"""The published schemas (``schemas/`` at the top, ``bridge schema``) are the ones the
loaders validate with, and every shipped rule file, config and fixture passes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from bridge.cli import cli
from bridge.config import load_config
from bridge.errors import BridgeError
from bridge.plugins import default_registry
from bridge.rules.loader import load_rules
from bridge.rules.source import parse_yaml
from bridge.schemas import SCHEMA_IDS, editor_schema

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "schemas"
DATA = Path(__file__).parent / "data"


def published(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PUBLISHED / f"{name}.schema.json").read_text("utf-8"))
    return loaded


def connectors() -> dict[str, Any]:
    return {n: s.settings_schema for n, s in default_registry().connectors.items()}


def operators() -> dict[str, Any]:
    return {n: s.value_schema for n, s in default_registry().operators.items()}


def read(path: Path) -> Any:
    """As bridge reads YAML (1.2: ``on:`` is a key, not ``true``)."""
    doc, problems = parse_yaml(str(path), path.read_bytes())
    assert doc is not None, problems
    return doc.data


@pytest.mark.parametrize("name", ["rules", "config"])
def test_the_published_schema_is_the_one_the_loader_uses(name: str) -> None:
    expected = editor_schema(name, connectors(), operators())
    assert published(name) == expected, (
        f"schemas/{name}.schema.json is out of date: run "
        f"`bridge schema {name} > schemas/{name}.schema.json`"
    )
    assert published(name)["$id"] == SCHEMA_IDS[name]
    Draft202012Validator.check_schema(published(name))


@pytest.mark.parametrize("name", ["rules", "config"])
def test_bridge_schema_prints_it(name: str) -> None:
    result = CliRunner().invoke(cli, ["schema", name], catch_exceptions=False)
    assert result.exit_code == 0
    assert json.loads(result.output) == published(name)


def rule_files() -> list[Path]:
    shipped = sorted((ROOT / "rules").glob("*.yaml"))
    fixtures = sorted((DATA / "rules" / "valid").glob("*.yaml"))
    return [*shipped, *fixtures]


@pytest.mark.parametrize("path", rule_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_rule_file_passes_the_published_schema(path: Path) -> None:
    errors = list(Draft202012Validator(published("rules")).iter_errors(read(path)))
    assert errors == []


@pytest.mark.parametrize(
    "document",
    [
        {"bridge": 1, "rules": [], "default": {"work_type": "unclassified"}, "extra": 1},
        {"bridge": 1, "rules": [{"id": "x", "when": {"field": "type", "equal": "Bug"}}]},
        {"bridge": 1, "rules": "not a list", "default": {"work_type": "service"}},
        {"bridge": 1, "rules": [], "default": {"work_type": "neither"}},
    ],
    ids=["unknown-top-key", "misspelled-operator", "wrong-type", "unknown-work-type"],
)
def test_the_schema_and_the_loader_refuse_the_same_shape_mistakes(
    document: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(document))
    assert list(Draft202012Validator(published("rules")).iter_errors(document))
    with pytest.raises(BridgeError):
        load_rules([path])


def test_the_schema_and_the_loader_accept_the_same_rule_files(tmp_path: Path) -> None:
    for path in rule_files():
        assert not list(Draft202012Validator(published("rules")).iter_errors(read(path)))
    load_rules([ROOT / "rules"])  # and the loader takes them


@pytest.mark.parametrize(
    "path",
    [
        *sorted((DATA / "config").glob("*.yaml")),
        DATA / "hostile" / "values" / "sync" / "bridge.yaml",
    ],
    ids=lambda p: p.name,
)
def test_config_fixtures_agree_with_the_loader(path: Path) -> None:
    """A bridge.yaml fixture the loader takes passes the published schema; one the schema
    refuses, the loader refuses too."""
    schema_ok = not list(Draft202012Validator(published("config")).iter_errors(read(path)))
    try:
        load_config(path)
    except BridgeError:
        loader_ok = False
    else:
        loader_ok = True
    if loader_ok:
        assert schema_ok, f"{path.name}: the loader takes it, the published schema does not"
    if not schema_ok:
        assert not loader_ok, f"{path.name}: the schema refuses it, the loader does not"


def test_a_source_s_own_settings_are_checked_by_the_published_schema() -> None:
    document = {
        "sources": [
            {"name": "jira", "connector": "jira", "url": "https://x.atlassian.net", "pagesize": 5}
        ]
    }
    errors = list(Draft202012Validator(published("config")).iter_errors(document))
    assert any("pagesize" in e.message for e in errors)
