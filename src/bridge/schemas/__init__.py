"""The JSON Schemas bridge validates with, and their published form for editors.

``rules.schema.json`` and ``config.schema.json`` in this package are what the loaders check
against: the one source of truth. What editors get (``bridge schema``, and the copies under
``schemas/`` at the top of the repository) is derived from them: the rules schema as it is,
and the bridge.yaml schema with each installed connector's settings schema folded in under
``if connector == <name>``, so completion and hover reach every source setting.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["SCHEMA_IDS", "editor_schema", "packaged_schema"]

# Stable ids: editors and yaml-language-server cache schemas by them.
SCHEMA_IDS = {
    "rules": "urn:bridge:schema:rules:1",
    "config": "urn:bridge:schema:config:1",
}


@cache
def _text(name: str) -> str:
    return resources.files("bridge.schemas").joinpath(f"{name}.schema.json").read_text("utf-8")


def packaged_schema(name: str) -> dict[str, Any]:
    """The schema the loader validates ``name`` (``rules`` or ``config``) with."""
    schema: dict[str, Any] = json.loads(_text(name))
    return schema


def editor_schema(
    name: str,
    connectors: dict[str, Any] | None = None,
    operators: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What an editor should validate ``name`` with. For ``rules``, ``operators`` maps each
    condition operator to the schema of its value (the registry's, as the loader adds them);
    for ``config``, ``connectors`` maps a connector's name to its settings schema, folded
    into the source definition so the one file checks a source's own settings too."""
    schema = packaged_schema(name)
    schema["$id"] = SCHEMA_IDS[name]
    if name == "rules":
        leaf = schema["$defs"]["leaf"]["properties"]
        for operator, value in (operators or {}).items():
            leaf[operator] = copy.deepcopy(dict(value))
        _annotate_leaf(leaf)
        return schema
    if name != "config" or not connectors:
        return schema
    source = schema["$defs"]["source"]
    branches = []
    for connector, settings in sorted(connectors.items()):
        if not settings:
            continue
        folded = copy.deepcopy(dict(settings))
        folded.pop("$schema", None)
        folded.pop("$id", None)
        branches.append(
            {
                "if": {
                    "properties": {"connector": {"const": connector}},
                    "required": ["connector"],
                },
                "then": folded,
            }
        )
    if branches:
        source.setdefault("allOf", []).extend(branches)
    return schema


def _annotate_leaf(leaf: dict[str, Any]) -> None:
    """Words for the editor, which the loader does without: the field names as completion
    suggestions (``examples``: ``raw.*`` paths stay valid, as they are for the loader) and
    each built-in operator's meaning as its hover text."""
    from bridge.model import FIELD_TYPES  # noqa: PLC0415 - only editors need these words
    from bridge.rules.operators import BUILTIN_OPERATORS  # noqa: PLC0415

    kinds = ", ".join(f"{name} ({kind})" for name, kind in FIELD_TYPES.items())
    leaf["field"] = {
        **leaf["field"],
        "description": (
            "The field the condition reads: a normalized field of the item, or "
            f"raw.<path> into the system's own record. Fields: {kinds}."
        ),
        "examples": [*FIELD_TYPES, "raw.fields.customfield_10050"],
    }
    leaf["ignore_case"] = {
        **leaf["ignore_case"],
        "description": "Compare text without regard to case (text, category and list fields).",
    }
    for spec in BUILTIN_OPERATORS:
        if spec.name in leaf and spec.description:
            leaf[spec.name] = {"description": spec.description, **leaf[spec.name]}
