"""bridge: classify tickets as project or service work, compute KPIs, write them back.

The public names a plugin or an embedding application needs live here.
"""

from __future__ import annotations

import pluggy

from bridge.errors import BridgeError, InputError, RuleValidationError
from bridge.model import Classification, FieldChange, WorkItem

__all__ = [
    "BridgeError",
    "Classification",
    "FieldChange",
    "InputError",
    "RuleValidationError",
    "WorkItem",
    "hookimpl",
]

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("bridge")
"""Decorate plugin functions with this (``@bridge.hookimpl``) to implement a hook."""
