"""The ``bridge`` command line: the one place where errors become exit codes.

Exit codes: 0 success; 1 the thing checked is wrong (invalid rules, failing rule tests);
2 usage, configuration or input problems (a missing file, an export bridge cannot read).
A :class:`~bridge.errors.BridgeError` is printed as a message, never as a traceback.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from bridge import __version__
from bridge.errors import BridgeError, ConfigInvalidError, RuleValidationError

__all__ = ["cli", "fail", "main", "plain", "stderr", "stdout"]

P = ParamSpec("P")
R = TypeVar("R")

EXIT_INVALID = 1
EXIT_USAGE = 2


def _width() -> int | None:
    """Wide tables when piped (rich assumes 80 columns), the terminal's width otherwise."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    return None if sys.stdout.isatty() else 160


stdout = Console(highlight=False, soft_wrap=True, width=_width())
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text: object) -> str:
    """Text from a ticket, a site or an error, safe to put in rich markup: its brackets
    are escaped and control characters (ANSI escapes among them) shown as ``?``."""
    return escape(_CONTROL.sub("?", str(text)))


class Exit(Exception):
    """Stop the command with an exit code after its output has been written."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def fail(message: str, code: int = EXIT_USAGE) -> Exit:
    """Print ``error: message`` to stderr and return the exit signal to raise."""
    stderr.print(f"[bold red]error:[/] {plain(message)}", markup=True, highlight=False)
    return Exit(code)


def print_diagnostics(error: RuleValidationError | ConfigInvalidError) -> None:
    for diagnostic in error.diagnostics:
        stderr.print(str(diagnostic), markup=False)
    count = len(error.diagnostics)
    stderr.print(f"{count} problem{'s' if count != 1 else ''} found", style="bold red")


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn BridgeErrors raised by a command into messages and exit codes."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except RuleValidationError as exc:
            print_diagnostics(exc)
            raise SystemExit(EXIT_INVALID) from None
        except ConfigInvalidError as exc:
            print_diagnostics(exc)
            raise SystemExit(EXIT_USAGE) from None
        except BridgeError as exc:
            stderr.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
            raise SystemExit(EXIT_USAGE) from None
        except Exit as exc:
            raise SystemExit(exc.code) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bridge")
def cli() -> None:
    """bridge: classify tickets as project or service work and compute their KPIs."""


def _register() -> None:
    from bridge.cli import (  # noqa: PLC0415
        classify_cmd,
        report_cmd,
        rules_cmd,
        service_cmd,
        status_cmd,
        sync_cmd,
    )

    cli.add_command(rules_cmd.rules)
    cli.add_command(classify_cmd.classify)
    cli.add_command(classify_cmd.explain)
    cli.add_command(report_cmd.report)
    cli.add_command(sync_cmd.sync)
    cli.add_command(service_cmd.serve)
    cli.add_command(service_cmd.worker)
    cli.add_command(status_cmd.status)


_register()


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    try:
        return cli.main(args=argv, prog_name="bridge", standalone_mode=True)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)
