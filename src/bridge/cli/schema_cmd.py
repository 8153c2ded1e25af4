"""``bridge schema rules|config``: the JSON Schemas for editors."""

from __future__ import annotations

import json

import click

from bridge.cli import handle_errors
from bridge.plugins import default_registry
from bridge.schemas import editor_schema


@click.command()
@click.argument("which", type=click.Choice(["rules", "config"]))
@handle_errors
def schema(which: str) -> None:
    """Print the JSON Schema of a rule file or of bridge.yaml (with the installed
    connectors' settings), for editors: point yaml-language-server at it."""
    registry = default_registry()
    connectors = {name: spec.settings_schema for name, spec in registry.connectors.items()}
    operators = {name: spec.value_schema for name, spec in registry.operators.items()}
    click.echo(json.dumps(editor_schema(which, connectors, operators), indent=2))
