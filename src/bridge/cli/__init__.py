"""The ``bridge`` command line: the one place where errors become exit codes.

Exit codes: 0 success; 1 the thing checked is wrong (invalid rules, failing rule tests);
2 usage, configuration or input problems (a missing file, an export bridge cannot read).
A :class:`~bridge.errors.BridgeError` is printed as a message, never as a traceback.

Everything printed that comes from a ticket, a site, a file or an error goes through
:func:`plain` (tables, trees, messages) or :func:`json_text` / :func:`printable` (JSON, CSV):
a status like ``[/]`` is not rich markup, and an escape sequence in one does not reach the
terminal.
"""

from __future__ import annotations

import json
import math
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
from bridge.timefmt import json_value

__all__ = [
    "cli",
    "csv_cell",
    "fail",
    "json_text",
    "json_value",
    "main",
    "plain",
    "printable",
    "stderr",
    "stdout",
    "warn",
]

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


# emoji=False: ":warning:" in a ticket's status is text, not a picture.
stdout = Console(highlight=False, soft_wrap=True, width=_width(), emoji=False)
stderr = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


# C0 and C1 controls but tab and newline (ESC starts ANSI sequences, U+009B is a one-character
# CSI, CR overwrites the line), and the invisible marks that reorder or break lines (bidi
# overrides and isolates, line and paragraph separators).
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[{_UNSAFE}]")
# What JSON leaves raw in a string that a terminal would act on (json.dumps escapes the C0
# controls itself).
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """Text with its control characters (ANSI escapes among them) shown as ``?``: for output
    that is not markup (CSV, plain lines) but still ends up in a terminal."""
    return _CONTROL.sub("?", str(text))


def plain(text: object) -> str:
    """Text from a ticket, a site or an error, safe to put in rich markup: its brackets
    are escaped and control characters (ANSI escapes among them) shown as ``?``."""
    return escape(printable(text))


def csv_cell(value: Any) -> Any:
    """A CSV cell: empty for no value (null, or a float with no finite value), ``true`` or
    ``false`` for a flag, text with
    its control characters shown as ``?`` (a CSV file gets printed to terminals too)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool):  # as JSON and spreadsheets spell them, not Python
        return "true" if value else "false"
    if isinstance(value, str):
        return printable(value)
    return value


def _finite(value: Any) -> Any:
    """``value`` with every infinite or NaN float made None: JSON has neither."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def json_text(document: Any) -> str:
    """``document`` as standard JSON, safe to print: no NaN or Infinity (a value that has
    none is null; KPIs say why in their ``missing`` list), and the characters a terminal
    acts on that JSON leaves raw written as ``\\u`` escapes, so the data stays exact."""
    text = json.dumps(_finite(document), indent=2, ensure_ascii=False, allow_nan=False, default=str)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


def warn(message: str) -> None:
    """Print ``warning: message`` to stderr; the message may hold data (it is escaped)."""
    stderr.print(f"[yellow]warning:[/] {plain(message)}", highlight=False)


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
        stderr.print(plain(diagnostic))
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
            # The message may quote a site's answer or a ticket's value: escaped, like data.
            stderr.print(f"[bold red]error:[/] {plain(exc)}", markup=True, highlight=False)
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
        explain_cmd,
        plan_cmd,
        report_cmd,
        rules_cmd,
        schema_cmd,
        service_cmd,
        status_cmd,
        sync_cmd,
    )

    cli.add_command(rules_cmd.rules)
    cli.add_command(classify_cmd.classify)
    cli.add_command(explain_cmd.explain)
    cli.add_command(report_cmd.report)
    cli.add_command(sync_cmd.sync)
    cli.add_command(plan_cmd.plan)
    cli.add_command(service_cmd.serve)
    cli.add_command(service_cmd.worker)
    cli.add_command(status_cmd.status)
    cli.add_command(schema_cmd.schema)


_register()


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    try:
        return cli.main(args=argv, prog_name="bridge", standalone_mode=True)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)
