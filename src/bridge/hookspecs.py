"""Every hook a bridge plugin can implement.

Hooks are named ``bridge_<verb>_<noun>``. Registration hooks receive a ``register`` callable
rather than returning values, so one plugin can contribute several things and the registry
can reject a duplicate name with a message that names both plugins. Built-in connectors use
exactly these hooks; nothing is special-cased for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from bridge.connectors.base import ConnectorSpec, ExportFormat
    from bridge.rules.operators import OperatorSpec

hookspec = pluggy.HookspecMarker("bridge")

# --------------------------------------------------------------------------------------------
# Registration hooks: called once per plugin manager, in plugin registration order.
# --------------------------------------------------------------------------------------------


@hookspec
def bridge_register_connectors(register: Callable[[ConnectorSpec], None]) -> None:
    """Register connectors that pull items from a ticketing system and write KPIs back.

    :param register: call it once per :class:`bridge.connectors.base.ConnectorSpec`; a name
        already registered raises :class:`bridge.errors.PluginError`.
    :returns: nothing.
    """


@hookspec
def bridge_register_formats(register: Callable[[ExportFormat], None]) -> None:
    """Register export formats the file connector can read (a Jira search response, ...).

    :param register: call it once per :class:`bridge.connectors.base.ExportFormat`. Formats
        are tried in registration order; the first whose ``sniff`` accepts a document reads it.
    :returns: nothing.
    """


@hookspec
def bridge_register_operators(register: Callable[[OperatorSpec], None]) -> None:
    """Register extra condition operators for the rule language.

    :param register: call it once per :class:`bridge.rules.operators.OperatorSpec`. The
        operator's name becomes a key admins can write in a condition
        (``{field: summary, my_op: value}``) and is validated like the built-in ones.
    :returns: nothing.
    """
