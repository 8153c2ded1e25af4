"""Connectors: the edges that read items from ticketing systems and write KPIs back.

Two helpers every connector and export format shares live here, because both are about what
a connector must never do with hostile input: stop a whole export for one bad record
(:func:`skip_record`), and quote back what may be a secret (:func:`read_secret`).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.errors import ConfigError, Diagnostic

__all__ = [
    "MAX_SECRET_BYTES",
    "SecretError",
    "SkippedRecord",
    "collecting_skipped",
    "read_secret",
    "skip_record",
]

log = logging.getLogger("bridge.secrets")

# -- records an export reader leaves out ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A record of an export that was left out, where it is and what is wrong with it."""

    where: str  # the file and the record: "ops.json: issues[3] (OPS-7)"
    problem: str  # what is wrong, naming the field: "fields.duedate: expected ..."
    key: str | None = None  # the item's key, when the record has one

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


_SKIPPED: ContextVar[list[SkippedRecord] | None] = ContextVar("bridge_skipped", default=None)


def skip_record(where: str, problem: str, key: str | None = None) -> bool:
    """For an export format's reader, about a record it cannot map: True when whoever reads
    the export collects such records (it is listed and left out, and the reader goes on to
    the next); False when the reader must raise as before.

    A reader that never calls this still works: its first bad record stops the file. One
    that does lets a user see every other item, and the bad one named with why.
    """
    sink = _SKIPPED.get()
    if sink is None:
        return False
    sink.append(SkippedRecord(where, problem, key))
    return True


@contextmanager
def collecting_skipped(sink: list[SkippedRecord]) -> Iterator[None]:
    """Within this block, :func:`skip_record` appends to ``sink``. The file connector opens
    it around each step of a reader only, so the choice never leaks into other code."""
    token = _SKIPPED.set(sink)
    try:
        yield
    finally:
        _SKIPPED.reset(token)


# -- secrets bridge.yaml names ------------------------------------------------------------------

# A secret is a token, a password or a key: far shorter than this. A larger file is the wrong
# file (or /dev/zero), and reading it whole would take the memory.
MAX_SECRET_BYTES = 64 * 1024

_warned: set[tuple[str, int]] = set()
_warned_lock = threading.Lock()


class SecretError(ConfigError):
    """A secret that bridge.yaml names cannot be read. ``setting`` is the path of the
    ``*_env`` or ``*_file`` key inside the source's entry, so that whoever knows the file
    (the command line) can name its line when the connector could not."""

    def __init__(self, message: str, *, setting: tuple[str | int, ...], located: bool) -> None:
        super().__init__(message)
        self.setting = setting
        self.located = located

    def at(self, place: Diagnostic) -> SecretError:
        """The same error, its message starting with ``file:line:col``."""
        if self.located:
            return self
        return SecretError(
            f"{place.path}:{place.line}:{place.col}: {self}", setting=self.setting, located=True
        )


def read_secret(
    settings: Mapping[str, Any],
    key: str,
    *,
    source: str,
    required: bool = True,
    base_dir: str | Path | None = None,
    at: Sequence[str | int] = (),
    locate: Callable[[tuple[str | int, ...]], Diagnostic] | None = None,
) -> str | None:
    """The secret ``key`` from the variable ``<key>_env`` names, else the file ``<key>_file``
    names (relative to ``base_dir``, the folder of bridge.yaml).

    No message quotes either value: people paste the secret itself where its variable's
    name or its file's path goes, and a message is read in terminals, CI logs and tickets.
    The key and, given ``locate``, its line in bridge.yaml say where to look instead.
    A file that others can read is read, with a warning naming the file (a file that
    exists is a path, not a secret) and the fix.

    :param at: where ``settings`` sits inside the source's entry (``("auth", "oauth")``).
    :param locate: the source's :meth:`~bridge.config.SourceConfig.locate`.
    :raises SecretError: it is required and neither is given, the variable is unset or
        empty, or the file cannot be read, is empty or is too large to be a secret.
    """
    prefix = tuple(at)

    def error(setting: str, problem: str) -> SecretError:
        path = (*prefix, setting)
        message = f"source {source!r}: {_dotted(path)}: {problem}"
        if locate is None:
            return SecretError(message, setting=path, located=False)
        place = locate(path)
        return SecretError(
            f"{place.path}:{place.line}:{place.col}: {message}", setting=path, located=True
        )

    env_name = settings.get(f"{key}_env")
    file_name = settings.get(f"{key}_file")
    if isinstance(env_name, str):
        value = os.environ.get(env_name, "")
        if value:
            return value
        if not isinstance(file_name, str):
            raise error(
                f"{key}_env",
                "the environment variable it names is not set or empty; set it before "
                "starting bridge",
            )
    if isinstance(file_name, str):
        path = Path(file_name).expanduser()
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        text = _read_secret_file(path, lambda problem: error(f"{key}_file", problem))
        _warn_if_open(path, f"source {source!r}: {_dotted((*prefix, f'{key}_file'))}")
        if text:
            return text
        raise error(f"{key}_file", "the file it names is empty")
    if required:
        raise error(
            f"{key}_env",
            f"give {key}_env (an environment variable) or {key}_file (a file) for the "
            f"{key.replace('_', ' ')}",
        )
    return None


def _dotted(path: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in path)


def _read_secret_file(path: Path, error: Callable[[str], SecretError]) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or os.strerror(exc.errno or errno.EIO)
        raise error(f"cannot read the file it names ({reason})") from None
    if len(data) > MAX_SECRET_BYTES:
        raise error(
            f"the file it names holds more than {MAX_SECRET_BYTES // 1024} KB: not a secret "
            "(name the file that holds only the token or password)"
        )
    try:
        return data.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise error("the file it names is not UTF-8 text") from None


def _warn_if_open(path: Path, where: str) -> None:
    """A warning, once per file and mode, when users other than the owner may read or
    change a secret file: ``bridge`` works, but the secret is not one any more."""
    if os.name != "posix":
        return  # Windows keeps access in ACLs, not in these bits
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if not mode & 0o077:
        return
    with _warned_lock:
        if (str(path), mode) in _warned:
            return
        _warned.add((str(path), mode))
    verb = "read" if mode & 0o044 else "changed"
    log.warning(
        "%s: %s can be %s by other users (mode %04o); restrict it: chmod 600 %s",
        where,
        path,
        verb,
        mode,
        path,
    )
