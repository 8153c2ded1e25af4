"""Show that editors complete and document rule files from ``schemas/rules.schema.json``.

VS Code's YAML extension and JetBrains IDEs get completion and hover from
yaml-language-server and the schema a file names on its first line
(``# yaml-language-server: $schema=...``). This script drives that same server the way an
editor does (LSP, JSON-RPC over stdio with ``Content-Length`` framing): it opens a rule
file that names the published schema, asks for completion at an empty key inside a rule,
inside a condition and at a ``field:`` value, asks for hover on a key, and prints what the
server offers, so a change to the schema can be checked from a terminal or CI.

yaml-language-server is a Node.js program, not a dependency of bridge. Install it with
npm, anywhere::

    npm install --prefix /tmp/yls yaml-language-server
    python tools/editor_completion_demo.py --server /tmp/yls/node_modules/.bin/yaml-language-server

Without ``--server`` the script looks for ``yaml-language-server`` on PATH and under
``./node_modules/.bin``. Exit 0 when every request was answered with something, 1 when
the server offered nothing somewhere, 2 when the server is missing or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "rules.schema.json"
TIMEOUT = 30.0  # seconds for one answer: the first completion also loads the schema
INSTALL = (
    "yaml-language-server is not installed; install it with npm, e.g.\n"
    "  npm install --prefix /tmp/yls yaml-language-server\n"
    "and pass --server /tmp/yls/node_modules/.bin/yaml-language-server"
)

# The rule file the "editor" opens. Each probe is (request, what, 0-based line, the text
# before the cursor on that line).
RULE_LINES = (
    "# yaml-language-server: $schema={schema}",
    "bridge: 1",
    "rules:",
    "  - id: incidents",
    "    description: Incidents restore a service.",
    "    when:",
    "      all:",
    "        - field: type",
    "          equals: Incident",
    "        - field: ",
    "    then:",
    "      work_type: service",
    "      kpis: [csat]",
    "  - id: epics",
    "    ",
)
PROBES: tuple[tuple[str, str, int, str], ...] = (
    ("completion", "an empty key inside a rule (line 15)", 14, "    "),
    ("completion", "the operator key of a condition (line 9)", 8, "          "),
    ("completion", "the value of `field:` (line 10)", 9, "        - field: "),
    ("completion", "the value of `work_type:` (line 12)", 11, "      work_type: "),
    ("hover", "the key `when:`", 5, "    wh"),
    ("hover", "the operator `equals:`", 8, "          equ"),
)


class LanguageServer:
    """One yaml-language-server process, spoken to as an editor speaks to it."""

    def __init__(self, command: Sequence[str], settings: dict[str, Any]) -> None:
        self._settings = settings
        self._process = subprocess.Popen(  # noqa: S603 - the server the user named
            [*command, "--stdio"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._next_id = 0
        self._answers: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.diagnostics: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # -- framing ----------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        stdin = self._process.stdin
        if stdin is None:
            raise RuntimeError("the server's input is closed")
        with self._lock:
            stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode("ascii") + body)
            stdin.flush()

    @staticmethod
    def _read_message(stream: IO[bytes]) -> dict[str, Any] | None:
        length = None
        while True:
            line = stream.readline()
            if not line:
                return None
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("ascii").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length is None:
            return None
        message: dict[str, Any] = json.loads(stream.read(length))
        return message

    def _read_loop(self) -> None:
        stream = self._process.stdout
        if stream is None:
            return
        while (message := self._read_message(stream)) is not None:
            if "id" in message and "method" in message:
                self._answer_server(message)
            elif "id" in message:
                waiting = self._answers.get(int(message["id"]))
                if waiting is not None:
                    waiting.put(message)
            elif message.get("method") == "textDocument/publishDiagnostics":
                self.diagnostics = list(message["params"].get("diagnostics", []))

    def _answer_server(self, request: dict[str, Any]) -> None:
        """The server asks the editor things too: its settings, mostly."""
        result: Any = None
        if request["method"] == "workspace/configuration":
            items = request["params"].get("items", [])
            result = [self._settings.get(item.get("section", ""), None) for item in items]
        self._send({"id": request["id"], "result": result})

    # -- requests ---------------------------------------------------------------------------

    def request(self, method: str, params: dict[str, Any]) -> Any:
        self._next_id += 1
        number = self._next_id
        waiting: queue.Queue[dict[str, Any]] = queue.Queue()
        self._answers[number] = waiting
        self._send({"id": number, "method": method, "params": params})
        try:
            answer = waiting.get(timeout=TIMEOUT)
        except queue.Empty:
            raise RuntimeError(f"no answer to {method} within {TIMEOUT:.0f}s") from None
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result")

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self._send({"method": method, "params": params})

    def close(self) -> None:
        try:
            self.request("shutdown", {})
            self.notify("exit", {})
            self._process.wait(timeout=5)
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait()


def find_server(given: str | None) -> list[str] | None:
    """The command that starts yaml-language-server, or None when there is none."""
    candidates = [given] if given else ["yaml-language-server"]
    if not given:
        candidates.append(str(Path.cwd() / "node_modules" / ".bin" / "yaml-language-server"))
    for candidate in candidates:
        found = shutil.which(candidate) if candidate else None
        if found:
            return [found]
    return None


def _labels(result: Any) -> list[str]:
    items = result.get("items", []) if isinstance(result, dict) else result or []
    labels = []
    for item in items:
        detail = (item.get("documentation") or {}) if isinstance(item, dict) else {}
        text = detail.get("value", "") if isinstance(detail, dict) else str(detail)
        first = text.strip().splitlines()[0] if text.strip() else ""
        labels.append(f"{item['label']}" + (f"  — {first[:70]}" if first else ""))
    return labels


def _hover_text(result: Any) -> str:
    if not isinstance(result, dict):
        return ""
    contents = result.get("contents")
    if isinstance(contents, dict):
        return str(contents.get("value", "")).strip()
    if isinstance(contents, list):
        return "\n".join(str(c.get("value", c) if isinstance(c, dict) else c) for c in contents)
    return str(contents or "").strip()


def run(server: list[str], out: IO[str]) -> int:
    """Open the rule file, send every probe, print what came back; the exit status."""
    settings = {
        "yaml": {"validate": True, "hover": True, "completion": True, "schemas": {}},
        "[yaml]": {},
        "editor": {"tabSize": 2},
        "files": {},
    }
    lsp = LanguageServer(server, settings)
    empty = 0
    with tempfile.TemporaryDirectory(prefix="bridge-editor-demo-") as folder:
        path = Path(folder) / "rules.yaml"
        text = "\n".join(RULE_LINES).replace("{schema}", SCHEMA.as_uri()) + "\n"
        path.write_text(text, "utf-8")
        uri = path.as_uri()
        try:
            lsp.request(
                "initialize",
                {
                    "processId": os.getpid(),
                    "rootUri": Path(folder).as_uri(),
                    "capabilities": {
                        "textDocument": {
                            "completion": {"completionItem": {"snippetSupport": False}},
                            "hover": {"contentFormat": ["plaintext", "markdown"]},
                        },
                        "workspace": {"configuration": True},
                    },
                },
            )
            lsp.notify("initialized", {})
            lsp.notify("workspace/didChangeConfiguration", {"settings": settings})
            lsp.notify(
                "textDocument/didOpen",
                {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}},
            )
            out.write(f"yaml-language-server: {' '.join(server)}\n")
            out.write(f"rule file (modeline: $schema={SCHEMA.as_uri()}):\n")
            for number, written in enumerate(text.splitlines()):
                out.write(f"  {number + 1:>2} | {written}\n")
            for kind, what, line, before in PROBES:
                position = {"line": line, "character": len(before)}
                params = {"textDocument": {"uri": uri}, "position": position}
                out.write(f"\n{kind} at {what} [{line + 1}:{len(before) + 1}]:\n")
                if kind == "completion":
                    labels = _labels(lsp.request("textDocument/completion", params))
                    for label in labels:
                        out.write(f"  - {label}\n")
                else:
                    shown = _hover_text(lsp.request("textDocument/hover", params))
                    labels = [shown] if shown else []
                    for hover_line in shown.splitlines():
                        out.write(f"  | {hover_line}\n")
                if not labels:
                    empty += 1
                    out.write("  (nothing offered)\n")
        except RuntimeError as exc:
            print(f"error: yaml-language-server: {exc}", file=sys.stderr)
            return 2
        finally:
            lsp.close()
    return 1 if empty else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--server", help="the yaml-language-server executable")
    args = parser.parse_args(argv)
    server = find_server(args.server)
    if server is None:
        print(f"error: {INSTALL}", file=sys.stderr)
        return 2
    if not SCHEMA.is_file():
        print(f"error: no {SCHEMA}; run from a bridge checkout", file=sys.stderr)
        return 2
    return run(server, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
