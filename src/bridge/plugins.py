"""The plugin manager and the registry built from it.

Built-in plugins are registered under their entry-point names before entry points are
loaded, so the same package never registers twice and a third-party plugin is loaded the
same way (``[project.entry-points.bridge]``). Environment switches, for operations:

- ``BRIDGE_DISABLE_PLUGINS=a,b`` blocks the named plugins (built-in or not);
- ``BRIDGE_TRACE_HOOKS=1`` prints every hook call to stderr.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any

import pluggy

from bridge import hookspecs
from bridge.connectors.base import ConnectorSpec, ExportFormat
from bridge.errors import PluginError
from bridge.rules.operators import BUILTIN_OPERATORS, OperatorSpec

__all__ = [
    "DEFAULT_PLUGINS",
    "Registry",
    "default_registry",
    "installed_operators",
    "load_registry",
    "make_plugin_manager",
]

ENTRY_POINT_GROUP = "bridge"

# (entry-point name, module path): built-ins, registered like any third-party plugin.
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("files", "bridge.connectors.files"),
    ("jira", "bridge.connectors.jira"),
    ("servicenow", "bridge.connectors.servicenow"),
)


def make_plugin_manager(
    *, load_entrypoints: bool = True, extra_plugins: Iterable[object] = ()
) -> pluggy.PluginManager:
    """A fresh plugin manager: built-ins, then entry points, then ``extra_plugins``."""
    pm = pluggy.PluginManager("bridge")
    pm.add_hookspecs(hookspecs)
    disabled = {n.strip() for n in os.environ.get("BRIDGE_DISABLE_PLUGINS", "").split(",") if n}
    for name in disabled:
        pm.set_blocked(name)
    for name, module_path in DEFAULT_PLUGINS:
        if name not in disabled:
            pm.register(_import(name, module_path), name=name)
    if load_entrypoints:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:  # a broken third-party plugin must not be a traceback
            raise PluginError(f"Error loading a bridge plugin: {exc}") from exc
    for plugin in extra_plugins:
        pm.register(plugin)
    pm.check_pending()
    if os.environ.get("BRIDGE_TRACE_HOOKS"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def _import(name: str, module_path: str) -> ModuleType:
    try:
        return importlib.import_module(module_path)
    except ImportError as exc:
        raise PluginError(f'Error importing plugin "{name}": {exc}', plugin_name=name) from exc


@dataclass
class Registry:
    """Everything the plugins contributed, by name."""

    connectors: dict[str, ConnectorSpec] = field(default_factory=dict)
    formats: dict[str, ExportFormat] = field(default_factory=dict)
    operators: dict[str, OperatorSpec] = field(default_factory=dict)

    def _add(self, kind: str, table: dict[str, Any], name: str, value: object) -> None:
        if name in table:
            raise PluginError(f"two plugins register the {kind} {name!r}", plugin_name=name)
        table[name] = value

    def add_connector(self, spec: ConnectorSpec) -> None:
        self._add("connector", self.connectors, spec.name, spec)

    def add_format(self, fmt: ExportFormat) -> None:
        self._add("export format", self.formats, fmt.name, fmt)

    def add_operator(self, spec: OperatorSpec) -> None:
        self._add("operator", self.operators, spec.name, spec)


def load_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every registration hook once and collect what the plugins registered."""
    registry = Registry()
    for spec in BUILTIN_OPERATORS:
        registry.add_operator(spec)
    # pluggy calls implementations last-registered first, so a third-party export format is
    # sniffed before the built-in ones and can claim a shape they would also accept.
    pm.hook.bridge_register_connectors(register=registry.add_connector)
    pm.hook.bridge_register_formats(register=registry.add_format)
    pm.hook.bridge_register_operators(register=registry.add_operator)
    return registry


@cache
def default_registry() -> Registry:
    """The registry of the installed plugins, built once per process."""
    return load_registry(make_plugin_manager())


def installed_operators() -> list[OperatorSpec]:
    """The operators of every installed plugin, bridge's own included: whoever loads rules
    for real (the commands, the service) passes these, so a rule using a plugin's operator
    loads everywhere the plugin is installed."""
    return list(default_registry().operators.values())
