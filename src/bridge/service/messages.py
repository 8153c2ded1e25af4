"""The job queue's messages: JSON that bridge wrote, never pickle.

huey pickles what it queues by default, and unpickling runs code: anyone who could push to
the Redis list (or write the SQLite queue file) would run it in the worker, which holds the
Jira and ServiceNow credentials. bridge's queue carries JSON instead (:class:`JsonSerializer`):
a task message is ``{"bridge.queue": 1, "task": {...}}`` — huey's message fields, its
arguments JSON values, with tuples, datetimes and timedeltas tagged (``{"$datetime": "…"}``) —
and anything else huey keeps (a lock, a revocation) is ``{"bridge.queue": 1, "value": ...}``.
Decoding builds only those values; it never imports or calls anything.

A message that is not bridge's — a pickle pushed onto the list, garbage, another shape or
version, a task this worker does not have, arguments its function does not take — is
refused: the worker logs a warning (its length and a short escaped prefix, nothing more of
it), drops it without running it and goes on with the next (:class:`JsonQueue`).

The queue stores no task results: bridge never reads them, and unread they only grow.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
from datetime import datetime, timedelta
from typing import Any, NoReturn

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.api import TaskWrapper
from huey.exceptions import HueyException
from huey.registry import Message
from huey.serializer import Serializer
from huey.utils import Error

__all__ = [
    "MARKER",
    "MAX_MESSAGE_BYTES",
    "VERSION",
    "JsonQueue",
    "JsonSerializer",
    "MemoryQueue",
    "RedisQueue",
    "RefusedMessage",
    "SqliteQueue",
    "preview",
]

log = logging.getLogger("bridge.queue")

MARKER = "bridge.queue"
VERSION = 1
MAX_MESSAGE_BYTES = 256 * 1024
_MAX_DEPTH = 32
_MAX_NAME = 200
_PREVIEW_BYTES = 16
_TAGS = ("$dict", "$tuple", "$datetime", "$timedelta", "$error")


class RefusedMessage(ValueError):
    """A queue entry bridge did not write; the reason never quotes its content."""


def _refuse(reason: str) -> NoReturn:
    raise RefusedMessage(reason)


def preview(data: object) -> str:
    """Its length and a short escaped prefix: enough to recognise it, too little to leak."""
    raw = _as_bytes(data)
    if raw is None:
        return f"a {type(data).__name__}"
    return f"{len(raw)} bytes, starting {raw[:_PREVIEW_BYTES]!r}"


def _as_bytes(data: object) -> bytes | None:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8", "backslashreplace")
    return None


# ---- values ---------------------------------------------------------------------------------


def _encode(value: object) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("bridge's queue carries finite numbers only")
        return value
    if isinstance(value, Error):  # a namedtuple: before tuple
        return {"$error": _encode(value.metadata)}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("bridge's queue carries objects with string keys only")
        body = {k: _encode(v) for k, v in value.items()}
        return {"$dict": body} if any(k.startswith("$") for k in body) else body
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$timedelta": [value.days, value.seconds, value.microseconds]}
    raise TypeError(
        "bridge's queue carries JSON values, tuples, datetimes and timedeltas, "
        f"not {type(value).__name__}"
    )


def _decode(value: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        _refuse("values nested too deep")
    if isinstance(value, list):
        return [_decode(v, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value  # str, int, float, bool, None: json.loads makes nothing else
    if not any(k.startswith("$") for k in value):
        return {k: _decode(v, depth + 1) for k, v in value.items()}
    if len(value) != 1:
        _refuse("a tagged value with other keys")
    ((tag, body),) = value.items()
    if tag == "$dict" and isinstance(body, dict):
        return {k: _decode(v, depth + 1) for k, v in body.items()}
    if tag == "$tuple" and isinstance(body, list):
        return tuple(_decode(v, depth + 1) for v in body)
    if tag == "$datetime" and isinstance(body, str):
        try:
            return datetime.fromisoformat(body)
        except ValueError:
            _refuse("a malformed datetime")
    if (
        tag == "$timedelta"
        and isinstance(body, list)
        and len(body) == 3
        and all(_is_int(p) for p in body)
    ):
        try:
            return timedelta(days=body[0], seconds=body[1], microseconds=body[2])
        except OverflowError:
            _refuse("a timedelta out of range")
    if tag == "$error" and isinstance(body, dict):
        return Error(_decode(body, depth + 1))
    _refuse("an unknown or malformed tagged value" if tag not in _TAGS else f"a malformed {tag}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ---- task messages ----------------------------------------------------------------------------


def _encode_task(message: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in zip(message._fields, message, strict=True):
        if value is None:
            out[field] = None
        elif field in ("on_complete", "on_error"):
            out[field] = _encode_task(value)
        elif field == "chord_config":
            cid, size, idx, callback = value
            out[field] = [_encode(cid), _encode(size), _encode(idx), _encode_task(callback)]
        elif field == "args":
            out[field] = [_encode(v) for v in value]
        else:
            out[field] = _encode(value)
    return out


def _optional(check: Any, what: str) -> Any:
    def field(value: Any, depth: int) -> Any:
        decoded = _decode(value, depth)
        if decoded is not None and not check(decoded):
            _refuse(f"{what} is not {check.__doc__}")
        return decoded

    return field


def _name(value: object) -> bool:
    """a short string"""
    return isinstance(value, str) and 0 < len(value) <= _MAX_NAME


def _when(value: object) -> bool:
    """a datetime"""
    return isinstance(value, datetime)


def _count(value: object) -> bool:
    """a count"""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _seconds(value: object) -> bool:
    """a number of seconds"""
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _integer(value: object) -> bool:
    """an integer"""
    return _is_int(value)


def _expiry(value: object) -> bool:
    """seconds, a datetime or a timedelta"""
    return _is_number(value) or isinstance(value, datetime | timedelta)


def _args(value: Any, depth: int) -> tuple[Any, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        _refuse("args is not a list")
    return tuple(_decode(v, depth + 1) for v in value)


def _kwargs(value: Any, depth: int) -> dict[str, Any]:
    decoded = _decode({} if value is None else value, depth)
    if not isinstance(decoded, dict):
        _refuse("kwargs is not an object")
    return decoded


def _chord(value: Any, depth: int) -> Any:
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 4):
        _refuse("chord_config is not [id, size, index, task]")
    cid, size, idx, callback = value
    if not (_name(cid) and _is_int(size) and _is_int(idx)):
        _refuse("chord_config is not [id, size, index, task]")
    return (cid, size, idx, _decode_task(callback, depth + 1))


def _linked(value: Any, depth: int) -> Any:
    return None if value is None else _decode_task(value, depth + 1)


_FIELDS: dict[str, Any] = {
    "id": _optional(_name, "id"),
    "name": _optional(_name, "name"),
    "eta": _optional(_when, "eta"),
    "retries": _optional(_count, "retries"),
    "retry_delay": _optional(_seconds, "retry_delay"),
    "priority": _optional(_integer, "priority"),
    "args": _args,
    "kwargs": _kwargs,
    "on_complete": _linked,
    "on_error": _linked,
    "expires": _optional(_expiry, "expires"),
    "expires_resolved": _optional(_when, "expires_resolved"),
    "timeout": _optional(_seconds, "timeout"),
    "chord_config": _chord,
    "retry_backoff": _optional(_seconds, "retry_backoff"),
}


def _decode_task(doc: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        _refuse("tasks nested too deep")
    if not isinstance(doc, dict):
        _refuse("the task is not an object")
    unknown = set(doc) - set(Message._fields)
    if unknown:
        _refuse(f"{len(unknown)} unknown task field(s)")
    if not isinstance(doc.get("id"), str) or not isinstance(doc.get("name"), str):
        _refuse("the task has no id or no name")
    fields = {
        field: _FIELDS.get(field, _decode)(doc.get(field), depth + 1) for field in Message._fields
    }
    return Message(**fields)


class JsonSerializer(Serializer):  # type: ignore[misc]  # huey is untyped
    """huey's serializer for bridge's queue: JSON with a marker and a version, never pickle."""

    def __init__(self) -> None:
        super().__init__()

    def serialize(self, data: object) -> bytes:
        if isinstance(data, Message):
            doc = {MARKER: VERSION, "task": _encode_task(data)}
        else:
            doc = {MARKER: VERSION, "value": _encode(data)}
        raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        encoded = raw.encode("utf-8")
        if len(encoded) > MAX_MESSAGE_BYTES:
            raise ValueError(f"a queue message of {len(encoded)} bytes is over {MAX_MESSAGE_BYTES}")
        return encoded

    def deserialize(self, data: object) -> Any:
        """The message or value; :class:`RefusedMessage` for anything bridge did not write."""
        raw = _as_bytes(data)
        if raw is None:
            _refuse(f"not bytes but {type(data).__name__}")
        if len(raw) > MAX_MESSAGE_BYTES:
            _refuse(f"over {MAX_MESSAGE_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            _refuse("not UTF-8 text (a pickle, or not bridge's)")
        try:
            doc = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            _refuse("not JSON")
        if not isinstance(doc, dict) or MARKER not in doc:
            _refuse(f"no {MARKER!r} marker: not bridge's")
        version = doc[MARKER]
        if not _is_int(version) or version != VERSION:
            _refuse(f"not version {VERSION} of bridge's queue format")
        if set(doc) == {MARKER, "task"}:
            return _decode_task(doc["task"], 1)
        if set(doc) == {MARKER, "value"}:
            return _decode(doc["value"], 1)
        _refuse('neither a "task" nor a "value"')


def _no_constant(name: str) -> NoReturn:
    _refuse("NaN or an infinity")


# ---- the queue --------------------------------------------------------------------------------


class _CheckedTaskWrapper(TaskWrapper):  # type: ignore[misc]  # huey is untyped
    """Keeps each task's signature, so a message's arguments are checked before it runs."""

    def create_task(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        task_class = super().create_task(func, *args, **kwargs)
        task_class.bridge_signature = inspect.signature(func)
        return task_class


class JsonQueue(Huey):  # type: ignore[misc]  # huey is untyped
    """A huey that speaks :class:`JsonSerializer`, stores no results, and drops (with a
    warning) what it cannot read instead of stopping or running it."""

    #: Refused entries skipped in one read before the worker is given a turn to stop.
    max_refused_per_read = 1000

    def __init__(self, name: str = "bridge", **kwargs: Any) -> None:
        kwargs.setdefault("serializer", JsonSerializer())
        kwargs.setdefault("results", False)
        super().__init__(name, **kwargs)

    def get_task_wrapper_class(self) -> Any:
        return _CheckedTaskWrapper

    def deserialize_task(self, data: object) -> Any:
        message = self.serializer.deserialize(data)
        if not isinstance(message, Message):
            _refuse("a value where a task belongs")
        try:
            task = self._registry.create_task(message)
        except HueyException:
            _refuse(f"no task named {message.name[:80]!r} here")
        signature = getattr(type(task), "bridge_signature", None)
        if signature is not None and not getattr(task, "context", False):
            try:
                signature.bind(*task.args, **task.kwargs)
            except TypeError:
                _refuse(f"arguments that task {message.name[:80]!r} does not take")
        return task

    def _accept(self, data: object, where: str) -> Any:
        try:
            return self.deserialize_task(data)
        except RefusedMessage as exc:
            log.warning(
                "refused a message on %s's %s (%s): %s; dropped without running it",
                self.name,
                where,
                preview(data),
                exc,
            )
            return None

    def dequeue(self) -> Any:
        for _ in range(self.max_refused_per_read):
            data = self.storage.dequeue()
            if data is None:
                return None
            task = self._accept(data, "queue")
            if task is not None:
                return task
        return None

    def read_schedule(self, timestamp: datetime | None = None) -> list[Any]:
        if timestamp is None:
            timestamp = self._get_timestamp()
        accepted = (self._accept(d, "schedule") for d in self.storage.read_schedule(timestamp))
        return [task for task in accepted if task is not None]


class RedisQueue(JsonQueue, RedisHuey):  # type: ignore[misc]
    """Several machines: Redis."""


class SqliteQueue(JsonQueue, SqliteHuey):  # type: ignore[misc]
    """One machine: a SQLite file."""


class MemoryQueue(JsonQueue, MemoryHuey):  # type: ignore[misc]
    """Tests and ``immediate`` mode: in memory."""
