"""A progress line on stderr while a long command runs — only when a person watches.

A 40,000-item export takes tens of seconds; silence for that long reads as a hang. When
stderr is not a terminal (a pipe, a CI log, a cron mail) nothing extra is printed: a log
full of redraws helps nobody.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from bridge.cli import stderr

__all__ = ["progress", "watched"]


def watched(stream: TextIO | None = None) -> bool:
    """Whether a person is looking at ``stream`` (stderr by default)."""
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def progress(
    label: str, total: int | None = None, *, when: bool = True
) -> Iterator[Callable[..., None]]:
    """``advance(n)`` to count work done; a bar when ``total`` is known, a counter and a
    spinner when it is not. A no-op when stderr is not a terminal, or not ``when`` (a table
    being printed on the same terminal, which a redrawn line would tear)."""
    if not (when and watched()):

        def nothing(n: int = 1) -> None:
            return None

        yield nothing
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    else:
        columns.append(TextColumn("{task.completed:,.0f}"))
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(label, total=total)
        waiting = 0

        def advance(n: int = 1) -> None:
            # Redrawn in steps: per item, the bar would cost more than a fast item.
            nonlocal waiting
            waiting += n
            if waiting >= 256:
                bar.advance(task, waiting)
                waiting = 0

        yield advance
        bar.advance(task, waiting)
