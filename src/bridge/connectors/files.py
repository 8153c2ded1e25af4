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

import codecs
import functools
import json
import re
import sys
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from bridge import hookimpl
from bridge.connectors import SkippedRecord, collecting_skipped
from bridge.connectors.base import ConnectorContext, ConnectorSpec, ExportFormat
from bridge.errors import ConfigError, InputError
from bridge.model import WorkItem

__all__ = [
    "MAX_NESTING",
    "REFUSED",
    "FileConnector",
    "LazyArray",
    "StatusReader",
    "builtin_formats",
    "export_files",
    "export_format",
    "read_export",
    "read_export_file",
    "read_export_statuses",
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


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_EXPORT_BYTES:
            raise InputError(
                f"{size / 1e6:.0f} MB is over the {MAX_EXPORT_BYTES // 2**20} MB limit for one "
                "export file; split the export into pages",
                path=str(path),
            )
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from None


def _load_json(path: Path, data: bytes | None = None) -> Any:
    """The whole document, decoded by the standard library: the reference reader, whose
    located messages every refusal gives (the streaming reader falls back on it)."""
    data = _read_bytes(path) if data is None else data
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, data, exc.start) from None
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


def _not_utf8(path: Path, data: bytes, start: int) -> InputError:
    line = data.count(b"\n", 0, start) + 1
    return InputError(
        f"line {line}: byte 0x{data[start]:02x} is not UTF-8; export the file as UTF-8",
        path=str(path),
    )


def _check_utf8(path: Path, data: bytes) -> None:
    """Refuse a file that is not UTF-8 before any of its items is read (the streaming reader
    decodes record by record, and the records' decoder does not look inside strings'
    bytes when it only finds where a record ends). In slices: no copy of the whole file."""
    if data.isascii():
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    step = 1 << 20
    for start in range(0, len(data), step):
        try:
            decoder.decode(data[start : start + step], final=start + step >= len(data))
        except UnicodeDecodeError as exc:
            raise _not_utf8(path, data, start + exc.start) from None


# Decoders of the streaming reader: msgspec decodes JSON two to three times faster than the
# standard library, into the same Python values, and it can stop at a record's boundaries
# (``msgspec.Raw``: the bytes of a value, checked but not decoded).
_DECODE = msgspec.json.Decoder().decode
_SPLIT_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_SPLIT_ARRAY = msgspec.json.Decoder(list[msgspec.Raw]).decode
# An object whose arrays come split into their elements' bytes, other values decoded.
_SPLIT_OBJECT_AND_ARRAYS = msgspec.json.Decoder(
    dict[str, list[msgspec.Raw] | dict[str, Any] | str | int | float | bool | None]
).decode
# What msgspec refuses that the standard library reads (NaN, 1e999, a lone surrogate, an
# int of 5000 digits), or nests deeper than it goes.
_MSGSPEC_REFUSES = (msgspec.DecodeError, ValueError, RecursionError)
_SPACE = re.compile(rb"[ \t\r\n]*")
#: What :meth:`LazyArray.partial` gives for an element its decoder refuses.
REFUSED: Any = object()


class LazyArray(list[Any]):
    """A JSON array of an export, each element decoded when it is reached.

    It is a ``list`` to every format's ``isinstance`` check, so a format streams without
    knowing it: walking a page's ``issues`` holds one issue's object tree at a time, not
    155 MB of them. Iteration, ``len``, indexing and slicing work; C code that reads a list's
    storage directly (``json.dumps``) sees an empty list. The array is split into its
    elements' bytes when first walked: a reader that wants a few fields of every element
    (:meth:`partial`) decodes the whole array at once instead.
    """

    __slots__ = ("_array", "_depth", "_path", "_raws")

    def __init__(
        self,
        array: msgspec.Raw | None,
        path: Path,
        depth: int,
        raws: list[msgspec.Raw] | None = None,
    ) -> None:
        super().__init__()
        if array is None and raws is None:
            raise ValueError("a LazyArray needs the array's bytes or its elements'")
        self._array = array  # None when it came split
        self._raws = raws  # the elements' bytes, once split
        self._path = path
        self._depth = depth  # how deep each element may nest

    def _elements(self) -> list[msgspec.Raw]:
        if self._raws is None and self._array is not None:
            # The array was read (checked) whole with its document: splitting it is not
            # refused but by a bug, and then as the document would have been.
            try:
                self._raws = _SPLIT_ARRAY(self._array)
            except _MSGSPEC_REFUSES:
                _load_json(self._path)  # says what is wrong, located
                raise InputError("not valid JSON", path=str(self._path)) from None
        return self._raws or []

    def __len__(self) -> int:
        return len(self._elements())

    def __bool__(self) -> bool:
        return bool(self._elements())

    def __iter__(self) -> Iterator[Any]:
        path, depth = self._path, self._depth
        for raw in self._elements():
            yield _decode_value(raw, path, depth)

    def __getitem__(self, index: Any) -> Any:
        raws = self._elements()
        if isinstance(index, slice):
            return [_decode_value(raw, self._path, self._depth) for raw in raws[index]]
        return _decode_value(raws[index], self._path, self._depth)

    def __repr__(self) -> str:
        return f"<LazyArray of {len(self)} values from {self._path.name}>"

    def partial(self, shape: type[msgspec.Struct]) -> Iterator[Any]:
        """Each element decoded as ``shape`` (a msgspec Struct that names a few fields): a
        format reads what it needs of a record without building the rest of it. An element
        that does not decode as ``shape`` gives :data:`REFUSED`; nothing is checked beyond
        what ``shape`` checks, so a caller that acts on more than the fields it names reads
        the element whole (``self[index]``).

        Why the whole array first: one pass of msgspec over the array's bytes, where
        splitting it and decoding each element took three passes and a Python call per
        element (half the time of the pass that learns status categories). Only an array
        with an element ``shape`` refuses is taken element by element."""
        whole, each = _partial_decoders(shape)
        if self._array is not None:
            try:
                yield from whole(self._array)
                return
            except _MSGSPEC_REFUSES:
                pass
        for raw in self._elements():
            try:
                yield each(raw)
            except _MSGSPEC_REFUSES:
                yield REFUSED


@functools.cache
def _partial_decoders(
    shape: type[msgspec.Struct],
) -> tuple[Callable[[msgspec.Raw], list[Any]], Callable[[msgspec.Raw], Any]]:
    """The decoders of an array of ``shape`` and of one ``shape`` (made once: a decoder
    compiles its type)."""
    return msgspec.json.Decoder(list[shape]).decode, msgspec.json.Decoder(shape).decode  # type: ignore[valid-type]


def _decode_value(raw: msgspec.Raw, path: Path, depth: int) -> Any:
    try:
        value = _DECODE(raw)
    except _MSGSPEC_REFUSES:
        try:
            value = json.loads(bytes(raw).decode("utf-8"))
        except (ValueError, RecursionError):
            # Say what the reference reader says about the whole file, located.
            _load_json(path)
            raise InputError("not valid JSON", path=str(path)) from None
    deep = type(value) in _CONTAINERS and not _few_brackets(raw, depth)
    if deep and not _nested_at_most(value, depth):
        raise InputError(_too_deep(), path=str(path))
    return value


def _few_brackets(raw: msgspec.Raw, depth: int) -> bool:
    """Whether the record's bytes hold at most ``depth`` opening brackets, so that it
    cannot nest deeper (each level opens one; brackets in strings only add to the count).

    Why: counting bytes is a hundredth of walking the decoded record level by level, and a
    Jira issue holds 25-75 brackets, a ServiceNow record about 10: the walk is left for the
    records that could be deep. One ``translate`` that keeps only the opening brackets
    counts both kinds in one pass over the bytes, 40 % sooner than two ``count`` calls."""
    return len(bytes(raw).translate(None, _ALL_BUT_OPENING_BRACKETS)) <= depth


_ALL_BUT_OPENING_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[{")


def _load_streaming(path: Path, *, arrays_whole: bool = False) -> Any:
    """The document with its arrays decoded element by element (:class:`LazyArray`): an
    object's other values, and anything that is neither object nor array, are decoded
    whole. Whatever msgspec refuses is read by :func:`_load_json` instead, so a file is
    accepted or refused, with the same message, as the reference reader does.

    ``arrays_whole``: for a reader of a few fields of every element
    (:meth:`LazyArray.partial`), an object's arrays are kept as their bytes, whole, and
    split only if they are walked. Otherwise they are split into their elements in the same
    msgspec pass that splits the object, one pass over the file instead of two."""
    data = _read_bytes(path)
    _check_utf8(path, data)
    body = memoryview(data)[3:] if data.startswith(codecs.BOM_UTF8) else memoryview(data)
    start = _SPACE.match(data, 3 if data.startswith(codecs.BOM_UTF8) else 0)
    first = data[start.end() : start.end() + 1] if start else b""
    try:
        if first == b"{" and arrays_whole:
            doc: Any = {}
            for name, raw in _SPLIT_OBJECT(body).items():
                if bytes(memoryview(raw)[:1]) == b"[":
                    doc[name] = LazyArray(raw, path, MAX_NESTING - 2)
                else:
                    doc[name] = _decode_value(raw, path, MAX_NESTING - 1)
            return doc
        if first == b"{":
            try:
                doc = _SPLIT_OBJECT_AND_ARRAYS(body)
            except _MSGSPEC_REFUSES:
                # A value msgspec refuses (1e999 in a page's total): the arrays still
                # stream, split from their bytes, and only that value goes to the reference
                # reader.
                return _load_streaming(path, arrays_whole=True)
            for name, value in doc.items():
                if type(value) is list:
                    doc[name] = LazyArray(None, path, MAX_NESTING - 2, value)
                elif type(value) is dict and not _nested_at_most(value, MAX_NESTING - 1):
                    raise InputError(_too_deep(), path=str(path))
            return doc
        if first == b"[":
            # Split at once: what msgspec refuses here, the standard library reads below.
            array = msgspec.Raw(body)
            return LazyArray(array, path, MAX_NESTING - 1, _SPLIT_ARRAY(body))
    except _MSGSPEC_REFUSES:
        pass
    return _load_json(path, data)


def _too_deep() -> str:
    return (
        f"nested more than {MAX_NESTING} levels deep; an export is a few levels deep "
        "(is this file an export?)"
    )


def _int_digits_limit() -> int:
    return sys.get_int_max_str_digits() or 4300


_CONTAINERS = (dict, list)


def _nested_at_most(doc: Any, limit: int) -> bool:
    """Whether no value in ``doc`` is nested deeper than ``limit`` containers. Iterative:
    a recursive walk would fail on exactly the documents it is meant to refuse; level by
    level, so that the per-value work is list building in C (this runs on every record)."""
    level = [doc] if type(doc) in _CONTAINERS else []
    for _ in range(limit):
        if not level:
            return True
        children: list[Any] = []
        extend = children.extend
        for value in level:
            extend(value.values() if type(value) is dict else value)
        level = [child for child in children if type(child) in _CONTAINERS]
    return not level


def _describe_shape(doc: Any) -> str:
    if isinstance(doc, dict):
        keys = ", ".join(sorted(doc)[:8]) or "none"
        return f"an object with the keys {keys}"
    if isinstance(doc, list):
        return "a JSON array"
    return f"a JSON {type(doc).__name__.replace('dict', 'object')}"


def export_format(doc: Any, formats: Sequence[ExportFormat]) -> ExportFormat | None:
    """The first format that recognises ``doc``, None for none: the order is the registry's,
    so a plugin's format can claim a shape a built-in one would also accept."""
    return next((fmt for fmt in formats if fmt.sniff(doc)), None)


def _open(
    path: Path, formats: Sequence[ExportFormat], *, partial: bool = False
) -> tuple[Any, ExportFormat]:
    """The document and its format; ``partial``: see ``arrays_whole`` of
    :func:`_load_streaming`."""
    doc = _load_streaming(path, arrays_whole=partial)
    fmt = export_format(doc, formats)
    if fmt is None:
        shapes = "; ".join(f"{fmt.shape}" for fmt in formats)
        raise InputError(
            f"not an export bridge knows: found {_describe_shape(doc)}; expected one of: {shapes}",
            path=str(path),
        )
    return doc, fmt


def _items(
    doc: Any, fmt: ExportFormat, path: Path, skipped: list[SkippedRecord] | None
) -> Iterator[WorkItem]:
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
    doc, fmt = _open(path, formats)
    yield from _items(doc, fmt, path, skipped)


#: A format's own status reader: ``(doc, source, known)`` → the (status, category) pair of
#: each record that maps to an item with both, in order, leaving out records whose status
#: is in ``known``. It reads only a record's status fields when they say the status is
#: known (or absent), and maps the record whole otherwise.
StatusReader = Callable[[Any, str, Container[str]], Iterator[tuple[str, str]]]


def _status_reader(fmt: ExportFormat) -> StatusReader | None:
    # Imported here: the built-in plugins import this package's modules.
    from bridge.connectors.jira import SEARCH_FORMAT, search_statuses  # noqa: PLC0415
    from bridge.connectors.servicenow import TABLE_EXPORT, table_statuses  # noqa: PLC0415

    # By the reading function, not the format object: a worker process gets the formats
    # pickled, as copies, and its functions by reference (the same objects).
    if fmt.read is SEARCH_FORMAT.read:
        return search_statuses
    if fmt.read is TABLE_EXPORT.read:
        return table_statuses
    return None


def read_export_statuses(
    path: Path, formats: Sequence[ExportFormat], known: Container[str]
) -> Iterator[tuple[str, str]]:
    """The (status, category) of each item of the file that has both, in order, as
    :func:`read_export_file` (records it cannot map left out) reads them, except that items
    whose status is in ``known`` may be left out too.

    Why: learning status categories (the first item in a status says it) needs only the
    first item of each status, and mapping every record to find them cost as much as the
    evaluation itself. The built-in formats read a known status from the record's status
    fields alone (a msgspec Struct skips the rest of the record in C); other formats map
    every record.
    """
    doc, fmt = _open(path, formats, partial=True)
    reader = _status_reader(fmt)
    if reader is not None:
        yield from reader(doc, path.name, known)
        return
    for item in _items(doc, fmt, path, []):
        if item.status is not None and item.status_category is not None:
            yield item.status, item.status_category


def read_export(
    path: Path,
    formats: Sequence[ExportFormat] | None = None,
    *,
    skipped: list[SkippedRecord] | None = None,
) -> Iterator[WorkItem]:
    """The items of an export file or folder, in file-name order (``skipped``: see
    :func:`read_export_file`). ``formats``: the registered ones, which the caller passes (a
    connector does not reach up to the plugin manager); None reads the built-in formats
    (Jira search responses, ServiceNow Table API responses)."""
    if formats is None:
        formats = builtin_formats()
    for file in export_files(path):
        yield from read_export_file(file, formats, skipped=skipped)


def builtin_formats() -> list[ExportFormat]:
    """The export formats bridge ships; plugins' formats come from the registry, through
    whoever calls."""
    # Imported here: the built-in plugins import this package's modules.
    from bridge.connectors.jira import SEARCH_FORMAT  # noqa: PLC0415
    from bridge.connectors.servicenow import TABLE_EXPORT  # noqa: PLC0415

    return [TABLE_EXPORT, SEARCH_FORMAT]  # the registry's order


class FileConnector:
    """A connector over an export on disk: pulls, never writes. ``formats``: see
    :func:`read_export`."""

    def __init__(
        self,
        settings: Mapping[str, Any],
        context: ConnectorContext | None = None,
        *,
        formats: Sequence[ExportFormat] | None = None,
    ) -> None:
        self.formats = list(formats) if formats is not None else None
        path = settings.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigError("the files connector needs `path:` naming an export file or folder")
        self.name = str(settings.get("name", "files"))
        base = Path(context.base_dir) if context is not None else Path()
        self.path = base / path

    def pull(self, *, since: datetime | None = None) -> Iterator[WorkItem]:
        for item in read_export(self.path, self.formats):
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
