"""The file connector: reads exports saved from Jira or ServiceNow instead of a live system.

It is how admins try rules before bridge touches production, and how ``bridge classify``
runs with no credentials. A path is a JSON file or a folder of them (read in name order);
each file's shape is recognised by the registered :class:`~bridge.connectors.base.ExportFormat`
plugins, so a new system's export needs a plugin, not a change here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bridge import hookimpl
from bridge.connectors.base import ConnectorContext, ConnectorSpec, ExportFormat
from bridge.errors import ConfigError, InputError
from bridge.model import WorkItem

__all__ = ["FileConnector", "export_files", "export_format", "read_export", "read_export_file"]

# A single export file larger than this is almost certainly not an export; refuse it with a
# message instead of letting json.loads take the machine's memory.
MAX_EXPORT_BYTES = 512 * 1024 * 1024


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
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}", path=str(path)
        ) from None


def _describe_shape(doc: Any) -> str:
    if isinstance(doc, dict):
        keys = ", ".join(sorted(doc)[:8]) or "none"
        return f"an object with the keys {keys}"
    return f"a JSON {type(doc).__name__.replace('list', 'array').replace('dict', 'object')}"


def export_format(doc: Any, formats: Sequence[ExportFormat]) -> ExportFormat | None:
    """The first format that recognises ``doc``, None for none: the order is the registry's,
    so a plugin's format can claim a shape a built-in one would also accept."""
    return next((fmt for fmt in formats if fmt.sniff(doc)), None)


def read_export_file(path: Path, formats: Sequence[ExportFormat]) -> Iterator[WorkItem]:
    """The items of one export file, read by the first format that recognises it."""
    doc = _load_json(path)
    fmt = export_format(doc, formats)
    if fmt is None:
        shapes = "; ".join(f"{fmt.shape}" for fmt in formats)
        raise InputError(
            f"not an export bridge knows: found {_describe_shape(doc)}; expected one of: {shapes}",
            path=str(path),
        )
    yield from fmt.read(doc, path.name)


def read_export(path: Path, formats: Sequence[ExportFormat] | None = None) -> Iterator[WorkItem]:
    """The items of an export file or folder, in file-name order."""
    if formats is None:
        from bridge.plugins import default_registry  # noqa: PLC0415 - avoids an import cycle

        formats = list(default_registry().formats.values())
    for file in export_files(path):
        yield from read_export_file(file, formats)


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
        )
    )
