"""``-o``: a file is written whole or not at all, and what is not a file is written in place.

Found on this project's own benchmark machine: ``bridge classify -o /dev/null`` run as root
replaced /dev/null with a regular file (the whole-or-nothing write renames a temporary file
over its target). A FIFO stands in for the device here, so a regression cannot break the
machine the tests run on.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.cli.output import destination, write_output

REPO = Path(__file__).resolve().parents[2]


def _drain(path: Path, into: list[bytes]) -> threading.Thread:
    def read() -> None:
        with path.open("rb") as fifo:
            into.append(fifo.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_a_fifo_is_written_in_place_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _drain(fifo, got)
    write_output("items\n", str(fifo))
    reader.join(timeout=30)
    assert got == [b"items\n"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary file left beside it


def test_a_regular_file_is_replaced_whole_or_left_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old", encoding="utf-8")

    def fail_half_way() -> None:
        with destination(str(target)) as out:
            out.write("half")
            raise RuntimeError("the command failed half-way")

    with pytest.raises(RuntimeError):
        fail_half_way()
    assert target.read_text(encoding="utf-8") == "old"
    write_output("new", str(target))
    assert target.read_text(encoding="utf-8") == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_the_classify_command_writes_into_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "items.json"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _drain(fifo, got)
    export, rules = str(REPO / "examples" / "export"), str(REPO / "rules")
    result = CliRunner().invoke(
        cli, ["classify", "-r", rules, "-i", export, "-f", "json", "-o", str(fifo)]
    )
    reader.join(timeout=60)
    assert result.exit_code == 0, result.output
    assert len(got) == 1
    assert got[0].startswith(b"{")
    assert b'"items"' in got[0]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


class _Counting:
    """A stream that records each write it gets."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str, /) -> int:
        self.writes.append(text)
        return len(text)


def test_coalesced_text_reaches_the_stream_in_blocks_and_all_of_it_on_flush() -> None:
    from bridge.cli.output import Coalesced

    stream = _Counting()
    out = Coalesced(stream, block=10)
    for row in ("abcd", "efgh", "ij", "k"):
        assert out.write(row) == len(row)
    assert stream.writes == ["abcdefghij"]  # the block filled at the third row
    out.flush()
    out.flush()  # nothing held: nothing written
    assert stream.writes == ["abcdefghij", "k"]


def test_classify_writes_its_rows_in_blocks_not_one_write_per_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each write was a system call with PYTHONUNBUFFERED, and under --jobs a turn taken
    from the thread reading the workers' results."""
    from contextlib import contextmanager

    from bridge.cli import classify_cmd

    stream = _Counting()

    @contextmanager
    def spied(output: str | None) -> Iterator[_Counting]:
        yield stream

    monkeypatch.setattr(classify_cmd, "destination", spied)
    result = CliRunner().invoke(cli, ["classify", "-f", "json", "--now", "2026-02-01T12:00:00Z"])
    assert result.exit_code == 0, result.output
    document = json.loads("".join(stream.writes))
    assert len(document["items"]) == 406
    assert len(stream.writes) <= 4  # 406 rows, 0.8 MB: a few blocks, not 406 writes


_SPOOLED = "first row\nzweite Zeile: Grüße\n三行目\n" * 2000  # ~90 KB, not ASCII


def _spool(tmp_path: Path) -> Path:
    path = tmp_path / "spooled.txt"
    path.write_bytes(_SPOOLED.encode("utf-8"))
    return path


def test_a_spooled_file_follows_what_was_written_before_it(tmp_path: Path) -> None:
    """Through a Coalesced stream onto a file descriptor: the held text goes first, then
    the file (copied by the kernel on Linux), then what comes after."""
    from bridge.cli.output import Coalesced, append_file

    target = tmp_path / "out.txt"
    with target.open("w", encoding="utf-8", newline="") as stream:
        out = Coalesced(stream)
        out.write("head\n")
        append_file(out, _spool(tmp_path))
        out.write("tail\n")
        out.flush()
    assert target.read_text("utf-8") == "head\n" + _SPOOLED + "tail\n"


@pytest.mark.parametrize("kind", ["text only", "latin-1", "appending"])
def test_a_spooled_file_reaches_any_stream_as_its_text(tmp_path: Path, kind: str) -> None:
    """No descriptor (a test's capture), another encoding, or a descriptor the kernel
    will not copy to (opened for appending): read and written as text."""
    import io

    from bridge.cli.output import append_file

    if kind == "text only":
        stream: io.TextIOBase = io.StringIO()
        append_file(stream, _spool(tmp_path))
        assert stream.getvalue() == _SPOOLED  # type: ignore[attr-defined]
        return
    target = tmp_path / "out.txt"
    target.write_text("before\n", "utf-8")
    encoding = "latin-1" if kind == "latin-1" else "utf-8"
    text = _SPOOLED if kind == "appending" else "plain ASCII rows\n" * 500
    spooled = tmp_path / "spooled.txt"
    spooled.write_bytes(text.encode("utf-8"))
    with target.open("a", encoding=encoding, newline="") as stream:
        append_file(stream, spooled)
    assert target.read_bytes() == b"before\n" + text.encode(encoding)
