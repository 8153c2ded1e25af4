"""The file connector: reads exports saved from Jira or ServiceNow instead of a live system.

It is how admins try rules before bridge touches production, and how ``bridge classify``
runs with no credentials. A path is a JSON file or a folder of them (read in name order);
each file's shape is recognised by the registered :class:`~bridge.connectors.base.ExportFormat`
plugins, so a new system's export needs a plugin, not a change here.

An export is input nobody vetted: a file is refused, with its name and why, when it is too
large, not UTF-8, not JSON or nested deeper than an export ever is; a record the format
cannot map is left out and listed when the caller asks for that (``skipped=``), so one bad
ticket does not hide the other thousand.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bridge import hookimpl
from bridge.connectors import SkippedRecord, collecting_skipped
from bridge.connectors.base import ConnectorContext, ConnectorSpec, ExportFormat
from bridge.errors import ConfigError, InputError
from bridge.model import WorkItem

__all__ = [
    "MAX_NESTING",
    "FileConnector",
    "export_files",
    "export_format",
    "read_export",
    "read_export_file",
]

# A single export file larger than this is almost certainly not an export; refuse it with a
# message instead of letting json.loads take the machine's memory.
MAX_EXPORT_BYTES = 512 * 1024 * 1024
# Jira and ServiceNow records, rich text included, nest a few dozen levels. Deeper is not an
# export, and code that walks values recursively (str() of a raw field, JSON output) would
# run out of stack on it.
MAX_NESTING = 100


def export_files(path: Path) -> list[Path]:
    """The JSON files a path names: itself, or the ``*.json`` files of a folder, sorted."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
        if not files:
            raise InputError("the folder holds no *.json export files", path=str(path))
        return files
    if not path.exists():
        raise InputError("no such file or folder", path=str(path))
    return [path]


def _load_json(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_EXPORT_BYTES:
            raise InputError(
                f"{size / 1e6:.0f} MB is over the {MAX_EXPORT_BYTES // 2**20} MB limit for one "
                "export file; split the export into pages",
                path=str(path),
            )
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"line {line}: byte 0x{data[exc.start]:02x} is not UTF-8; export the file as UTF-8",
            path=str(path),
        ) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}", path=str(path)
        ) from None
    except RecursionError:
        raise InputError(_too_deep(), path=str(path)) from None
    except ValueError:
        # Python refuses to turn more than 4300 digits into an int (a guard against
        # quadratic-time conversion); json.loads says so without a position.
        raise InputError(
            f"a number has more than {_int_digits_limit()} digits; no ticket field holds "
            "one: is this file an export?",
            path=str(path),
        ) from None
    if not _nested_at_most(doc, MAX_NESTING):
        raise InputError(_too_deep(), path=str(path))
    return doc


def _too_deep() -> str:
    return (
        f"nested more than {MAX_NESTING} levels deep; an export is a few levels deep "
        "(is this file an export?)"
    )


def _int_digits_limit() -> int:
    return sys.get_int_max_str_digits() or 4300


def _nested_at_most(doc: Any, limit: int) -> bool:
    """Whether no value in ``doc`` is nested deeper than ``limit`` containers. Iterative:
    a recursive walk would fail on exactly the documents it is meant to refuse."""
    stack: list[tuple[Any, int]] = [(doc, 1)] if type(doc) in (dict, list) else []
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return False
        children = value.values() if type(value) is dict else value
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))
    return True


def _describe_shape(doc: Any) -> str:
    if isinstance(doc, dict):
        keys = ", ".join(sorted(doc)[:8]) or "none"
        return f"an object with the keys {keys}"
    return f"a JSON {type(doc).__name__.replace('list', 'array').replace('dict', 'object')}"


def export_format(doc: Any, formats: Sequence[ExportFormat]) -> ExportFormat | None:
    """The first format that recognises ``doc``, None for none: the order is the registry's,
    so a plugin's format can claim a shape a built-in one would also accept."""
    return next((fmt for fmt in formats if fmt.sniff(doc)), None)


def read_export_file(
    path: Path,
    formats: Sequence[ExportFormat],
    *,
    skipped: list[SkippedRecord] | None = None,
) -> Iterator[WorkItem]:
    """The items of one export file, read by the first format that recognises it.

    :param skipped: when given, a record the format cannot map is appended here and left
        out (for formats that report records through
        :func:`bridge.connectors.skip_record`); otherwise it stops the file with an
        InputError, as a file that cannot be read does either way.
    """
    doc = _load_json(path)
    fmt = export_format(doc, formats)
    if fmt is None:
        shapes = "; ".join(f"{fmt.shape}" for fmt in formats)
        raise InputError(
            f"not an export bridge knows: found {_describe_shape(doc)}; expected one of: {shapes}",
            path=str(path),
        )
    if skipped is None:
        yield from fmt.read(doc, path.name)
        return
    items = iter(fmt.read(doc, path.name))
    while True:
        # Collect only while the format's code runs: between two items the caller's code
        # runs, and it must not find records skipped on its behalf.
        with collecting_skipped(skipped):
            item = next(items, None)
        if item is None:
            return
        yield item


def read_export(
    path: Path,
    formats: Sequence[ExportFormat] | None = None,
    *,
    skipped: list[SkippedRecord] | None = None,
) -> Iterator[WorkItem]:
    """The items of an export file or folder, in file-name order (``skipped``: see
    :func:`read_export_file`)."""
    if formats is None:
        from bridge.plugins import default_registry  # noqa: PLC0415 - avoids an import cycle

        formats = list(default_registry().formats.values())
    for file in export_files(path):
        yield from read_export_file(file, formats, skipped=skipped)


class FileConnector:
    """A connector over an export on disk: pulls, never writes."""

    def __init__(
        self, settings: Mapping[str, Any], context: ConnectorContext | None = None
    ) -> None:
        path = settings.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigError("the files connector needs `path:` naming an export file or folder")
        self.name = str(settings.get("name", "files"))
        base = Path(context.base_dir) if context is not None else Path()
        self.path = base / path

    def pull(self, *, since: datetime | None = None) -> Iterator[WorkItem]:
        for item in read_export(self.path):
            if since is None or item.updated is None or item.updated >= since:
                yield item


@hookimpl
def bridge_register_connectors(register: Any) -> None:
    register(
        ConnectorSpec(
            "files",
            FileConnector,
            "exports saved as JSON files",
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "connector", "path"],
                "properties": {
                    "name": {"type": "string"},
                    "connector": {"const": "files"},
                    "path": {"type": "string", "minLength": 1},
                },
            },
            live=False,
        )
    )
