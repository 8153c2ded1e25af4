"""The jira plugin (built in, registered like any third-party plugin)."""

from __future__ import annotations
