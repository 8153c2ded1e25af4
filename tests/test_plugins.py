"""Plugins: built-ins register through the same hooks a third-party package uses."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.connectors.base import ConnectorContext
from bridge.connectors.files import read_export
from bridge.errors import PluginError, RuleValidationError
from bridge.plugins import Registry, load_registry, make_plugin_manager
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules

SITE = Path(__file__).parent / "data" / "plugins" / "site"


@pytest.fixture
def installed_sample() -> Iterator[None]:
    """Put the sample distribution on sys.path, as pip would, for one test."""
    sys.path.insert(0, str(SITE))
    import importlib

    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(SITE))
        sys.modules.pop("bridge_sample_plugin", None)


def _registry() -> Registry:
    return load_registry(make_plugin_manager())


def test_builtins_are_registered_through_hooks() -> None:
    registry = load_registry(make_plugin_manager(load_entrypoints=False))
    assert {"files"} <= set(registry.connectors)
    assert {"jira-search", "servicenow-table"} <= set(registry.formats)
    assert "equals" in registry.operators


def test_an_installed_plugin_adds_a_connector_format_and_operator(
    installed_sample, tmp_path
) -> None:
    registry = _registry()
    assert "sample" in registry.connectors
    assert "sample-tickets" in registry.formats
    assert "longer_than_words" in registry.operators

    connector = registry.connectors["sample"].factory(
        {"rows": [{"id": "S-1", "kind": "Bug"}]}, ConnectorContext()
    )
    assert [i.key for i in connector.pull()] == ["S-1"]

    export = tmp_path / "tickets.json"
    export.write_text(
        json.dumps(
            {
                "tickets": [
                    {
                        "id": "S-1",
                        "kind": "Incident",
                        "title": "printer on floor three is on fire again",
                    },
                    {"id": "S-2", "kind": "Incident", "title": "short"},
                ]
            }
        )
    )
    items = list(read_export(export, list(registry.formats.values())))
    rules = tmp_path / "rules.yaml"
    rules.write_text("""bridge: 1
rules:
  - id: wordy
    when: {field: summary, longer_than_words: 3}
    then: {work_type: service}
""")
    rule_set = load_rules([rules], list(registry.operators.values()))
    engine = Engine(rule_set)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert [engine.classify(i, now).rule for i in items] == ["wordy", None]


def test_plugin_operator_values_are_validated(installed_sample, tmp_path) -> None:
    registry = _registry()
    rules = tmp_path / "rules.yaml"
    rules.write_text("""bridge: 1
rules:
  - id: a
    when: {field: summary, longer_than_words: many}
    then: {work_type: service}
  - id: b
    when: {field: summary, longer_than_words: -1}
    then: {work_type: service}
  - id: c
    when: {field: labels, longer_than_words: 2}
    then: {work_type: service}
""")
    with pytest.raises(RuleValidationError) as caught:
        load_rules([rules], list(registry.operators.values()))
    assert [f"{d.line}:{d.col}: {d.message}" for d in caught.value.diagnostics] == [
        "4:47: expected a whole number, found text 'many'",
        "7:47: -1 is not a word count; write a whole number >= 0",
        "10:27: operator longer_than_words does not apply to labels (a list); operators for "
        "it: contains, contains_any, contains_all, matches, exists",
    ]


def test_a_plugin_cannot_take_a_builtin_name() -> None:
    from bridge import hookimpl
    from bridge.connectors.base import ConnectorSpec

    class Clash:
        @hookimpl
        def bridge_register_connectors(self, register):  # type: ignore[no-untyped-def]
            register(ConnectorSpec("files", dict))

    with pytest.raises(PluginError, match="two plugins register the connector 'files'"):
        load_registry(make_plugin_manager(load_entrypoints=False, extra_plugins=[Clash()]))


def test_disable_switch_blocks_a_plugin(installed_sample, monkeypatch) -> None:
    monkeypatch.setenv("BRIDGE_DISABLE_PLUGINS", "sample,servicenow")
    registry = _registry()
    assert "sample" not in registry.connectors
    assert "servicenow-table" not in registry.formats
    assert "jira-search" in registry.formats


def test_misspelled_hook_fails_at_startup() -> None:
    from bridge import hookimpl

    class Typo:
        @hookimpl
        def bridge_register_conectors(self, register):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(Exception, match="unknown hook"):
        make_plugin_manager(load_entrypoints=False, extra_plugins=[Typo()])
