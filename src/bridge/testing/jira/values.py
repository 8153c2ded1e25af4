"""Jira's value formats as the double stores and shows them: times, ADF, display text.

Pure functions: what a value looks like in REST, in a changelog item and to a JQL comparison.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def jira_time(at: datetime) -> str:
    """Jira's REST form ``2023-03-01T11:34:49.730+0000`` (UTC, milliseconds, no colon)."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def parse_jira_time(text: str) -> datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, fmt).astimezone(UTC)
        except ValueError:
            continue
    return None


def adf_text(text: str) -> dict[str, Any]:
    """A minimal ADF document holding ``text`` as paragraphs (one per line)."""
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []}
        for line in text.split("\n")
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


def adf_to_text(doc: Any) -> str:
    """The plain text of an ADF document, blocks on separate lines (what v2 shows)."""
    if isinstance(doc, str):
        return doc
    if not isinstance(doc, Mapping):
        return ""
    if doc.get("type") == "text":
        return str(doc.get("text", ""))
    if doc.get("type") == "hardBreak":
        return "\n"
    parts = [adf_to_text(child) for child in doc.get("content") or []]
    block = doc.get("type") in ("doc", "bulletList", "orderedList", "listItem")
    return ("\n" if block else "").join(parts)


def is_adf(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and value.get("type") == "doc"
        and value.get("version") == 1
        and isinstance(value.get("content"), list)
    )


def as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        return parse_jira_time(value)
    return None


def stable_id(name: str) -> str:
    """The same id for the same name in every run (``hash`` is salted per process)."""
    return str(10000 + zlib.crc32(name.casefold().encode()) % 90000)


def with_base(value: Any, base: str, version: int) -> Any:
    """Stored values carry ``{base}``/``{v}`` placeholders in links; fill them in."""
    if isinstance(value, str):
        if "{base}" in value:
            return value.replace("{base}", base).replace("{v}", str(version))
        return value
    if isinstance(value, Mapping):
        return {k: with_base(v, base, version) for k, v in value.items()}
    if isinstance(value, list):
        return [with_base(v, base, version) for v in value]
    return value


def text_of(value: Any) -> Any:
    if isinstance(value, Mapping):
        for attr in ("value", "name", "key", "accountId", "displayName"):
            if attr in value:
                return value[attr]
        return None
    return value


def sortable(value: Any) -> Any:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or None
    if isinstance(value, str):
        return value.casefold()
    return value


def change_id(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        for attr in ("id", "accountId"):
            if attr in value:
                return str(value[attr])
        return None
    if isinstance(value, list):
        return None
    return str(value)


def change_string(value: Any) -> str | None:
    if value is None:
        return None
    if is_adf(value):
        return adf_to_text(value)
    if isinstance(value, Mapping):
        text = text_of(value)
        return None if text is None else str(text)
    if isinstance(value, list):
        return " ".join(str(text_of(v)) for v in value)
    return str(value)
