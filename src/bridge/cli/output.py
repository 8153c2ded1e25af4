"""Where a command's output goes: standard output, or the file ``--output/-o`` names.

Every command that writes a document takes ``-o``, so a report can be saved without a
shell redirect (a scheduled job, Windows), and a file is written whole or not at all: the
text goes to a temporary file beside it that replaces it at the end.
"""

from __future__ import annotations

import codecs
import errno
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Protocol

import click
from rich.console import Console

from bridge.cli import fail, stdout

__all__ = [
    "FILE_WIDTH",
    "OUTPUT_OPTION",
    "Coalesced",
    "TextOut",
    "append_file",
    "console_for",
    "destination",
    "write_output",
]

#: Tables written to a file are as wide as this: wide enough for every column, narrow
#: enough to read in an editor.
FILE_WIDTH = 120

OUTPUT_OPTION = click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write to this file instead of standard output.",
)


class TextOut(Protocol):
    """Where a writer's text goes: a stream, or a :class:`Coalesced` one."""

    def write(self, text: str, /) -> int: ...


class Coalesced:
    """Text gathered into blocks of about ``block`` characters before it reaches ``out``.

    Why: a command that writes a row at a time (``classify``) made one write per item,
    and with PYTHONUNBUFFERED (set in many container images) one system call per item;
    under ``--jobs`` each call also gave up the GIL to the thread that reads the workers'
    results, so the rows and the results took turns. :meth:`flush` writes what is held.
    For a terminal, where rows should show as they come, write to the stream itself."""

    def __init__(self, out: TextOut, block: int = 1 << 18) -> None:
        self._out = out
        self._block = block
        self._parts: list[str] = []
        self._size = 0

    def write(self, text: str, /) -> int:
        self._parts.append(text)
        self._size += len(text)
        if self._size >= self._block:
            self.flush()
        return len(text)

    @property
    def stream(self) -> TextOut:
        """Where the text goes."""
        return self._out

    def flush(self) -> None:
        if self._parts:
            self._out.write("".join(self._parts))
            self._parts.clear()
            self._size = 0


def append_file(out: TextOut, path: str | Path) -> None:
    """The text of a UTF-8 file written to ``out`` after what was written to it so far.

    Why: ``classify --jobs`` spools each export file's rows in the worker that rendered
    them (:class:`bridge.pipeline.Spooled`), and copying them through Python (read,
    decode, encode, write) cost this process as much as passing them from the workers had.
    Where ``out`` is, under any :class:`Coalesced`, a UTF-8 stream with a file descriptor
    on Linux (standard output redirected, ``-o``), the kernel copies the file
    (``os.sendfile``); anywhere else it is read and written as text, a megabyte at a
    time."""
    stream = out
    if isinstance(out, Coalesced):
        out.flush()
        stream = out.stream
    descriptor = _utf8_descriptor(stream)
    with open(path, "rb") as source:
        if descriptor is not None and _sent(source, descriptor):
            return
        decoder = codecs.getincrementaldecoder("utf-8")()
        for block in iter(lambda: source.read(1 << 20), b""):
            stream.write(decoder.decode(block))
        stream.write(decoder.decode(b"", final=True))


def _utf8_descriptor(stream: TextOut) -> int | None:
    """The descriptor under ``stream``, flushed, when bytes written to it are what writing
    UTF-8 text to ``stream`` gives (Linux: no newline translation, and sendfile to any
    file); None otherwise."""
    if not sys.platform.startswith("linux"):
        return None
    encoding = getattr(stream, "encoding", None)
    try:
        if not isinstance(encoding, str) or codecs.lookup(encoding).name != "utf-8":
            return None
        flush = getattr(stream, "flush", None)
        if flush is not None:
            flush()
        descriptor = stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, LookupError, OSError, ValueError):  # UnsupportedOperation too
        return None
    return descriptor if isinstance(descriptor, int) else None


def _sent(source: IO[bytes], descriptor: int) -> bool:
    """Whether the kernel copied all of ``source`` to ``descriptor``. False, with nothing
    copied and ``source`` where the rest starts, where it cannot (a descriptor opened for
    appending, a file system without it); an error after a part was copied is raised."""
    size = os.fstat(source.fileno()).st_size
    offset = 0
    while offset < size:
        try:
            sent = os.sendfile(descriptor, source.fileno(), offset, size - offset)
        except OSError as exc:
            if offset == 0 and exc.errno in _SENDFILE_CANNOT:
                return False
            raise
        if sent == 0:  # the file ended sooner than it said: the rest as text
            source.seek(offset)
            return False
        offset += sent
    return True


_SENDFILE_CANNOT = frozenset(
    code
    for code in (
        getattr(errno, name, None) for name in ("EINVAL", "ENOSYS", "EOPNOTSUPP", "ENOTSUP")
    )
    if code is not None
)


@contextmanager
def destination(output: str | None) -> Iterator[IO[str]]:
    """Standard output, or a temporary file beside ``output`` that replaces it once whole:
    a command that fails half-way leaves the file as it was, never half-written.

    What exists and is not a regular file (``/dev/null``, a FIFO, ``/dev/stdout``) is
    written in place, as a shell redirect does: renaming over it would replace the device
    with a file (as root, /dev/null itself)."""
    if output is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(output)
    if _exists_but_is_not_a_file(target):
        try:
            stream = target.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise fail(f"--output: cannot write {output}: {exc.strerror}") from None
        with stream:
            yield stream
        return
    try:
        handle, temporary = tempfile.mkstemp(
            dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}."
        )
    except OSError as exc:
        raise fail(f"--output: cannot write {output}: {exc.strerror}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            yield out
        # mkstemp makes the file private (0600); the result gets the mode of the file it
        # replaces, or what the umask gives a new file, as a plain redirect would.
        os.chmod(temporary, _mode_for(target))
        os.replace(temporary, target)
    except OSError as exc:
        raise fail(f"--output: cannot write {output}: {exc.strerror}") from None
    finally:
        Path(temporary).unlink(missing_ok=True)


def _exists_but_is_not_a_file(target: Path) -> bool:
    try:
        return not stat.S_ISREG(target.stat().st_mode)
    except OSError:
        return False  # not there (or not reachable): made, or refused, by mkstemp below


def _mode_for(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def write_output(text: str, output: str | None) -> None:
    """``text`` to standard output, or to ``output`` in one piece."""
    with destination(output) as out:
        out.write(text)


@contextmanager
def console_for(output: str | None) -> Iterator[Console]:
    """The console tables are printed on: the terminal's, or one writing plain text (no
    colours, no markup codes) into ``output``."""
    if output is None:
        yield stdout
        return
    console = Console(
        record=True,
        width=FILE_WIDTH,
        no_color=True,
        emoji=False,
        file=open(os.devnull, "w"),  # noqa: SIM115
    )
    try:
        yield console
    finally:
        console.file.close()
    write_output(console.export_text(styles=False), output)
