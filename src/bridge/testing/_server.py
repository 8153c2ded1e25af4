"""The HTTP side shared by bridge's fake servers: serving, recording and fault injection.

A double is only as good as the client behaviour it provokes, and what provokes it is the same
for every system: real sockets on 127.0.0.1 (keep-alive, timeouts, hang-ups), requests that a
test can count afterwards, faults queued ahead of time, and a stop that does not leave threads
sleeping. :class:`HttpDouble` holds all of that once; a double adds its own state and answers
in :meth:`HttpDouble._respond`.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar, cast
from urllib.parse import parse_qsl, urlsplit

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"

QueryT = TypeVar("QueryT")
BodyT = TypeVar("BodyT")


@dataclass(slots=True)
class Request:
    """One request as it came off the socket, before a double reads meaning into it."""

    method: str
    path: str
    query: list[tuple[str, str]]  # in order, blanks kept
    headers: dict[str, str]  # lower-case names
    sent_headers: dict[str, str]  # names as the client spelled them
    body: bytes


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def group_query(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Every value of each parameter, in order, for callers that must see repeats."""
    query: dict[str, list[str]] = {}
    for name, value in pairs:
        query.setdefault(name, []).append(value)
    return query


def json_response(status: int, doc: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
    """A compact JSON answer."""
    body = json.dumps(doc, separators=(",", ":")).encode()
    return Response(status, body, [("Content-Type", JSON_CONTENT_TYPE), *headers])


@dataclass(frozen=True, slots=True)
class RecordedRequest(Generic[QueryT, BodyT]):
    """One request a double answered, and the status it got.

    Each double fixes the shape of ``query`` and ``body`` in its own subclass (tests written
    against either double read them as that double has always shown them).
    """

    method: str
    path: str
    query: QueryT
    headers: Mapping[str, str]
    body: BodyT
    status: int


RecordT = TypeVar("RecordT", bound=RecordedRequest[Any, Any])

FaultKind = Literal["status", "timeout", "overloaded"]


@dataclass(slots=True)
class Fault:
    """A queued fault: which requests it takes, how many more, and what it does to them."""

    kind: FaultKind
    remaining: int | None  # None: until clear_faults()
    method: str | None  # upper-case
    path: re.Pattern[str] | None
    status: int = 0
    retry_after: float | None = None
    delay: float | None = None
    reason: str | None = None
    apply: bool = False  # a timeout that still processes the request after its delay

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.path is None or self.path.search(path) is not None


class HttpDouble(ABC, Generic[RecordT]):
    """A fake server on an ephemeral port of 127.0.0.1, with what every double needs.

    Subclasses answer in :meth:`_respond` (``None`` drops the connection unanswered) and keep
    what they saw with :meth:`_remember`. A response that is ready after :meth:`stop` began is
    dropped: the client is going away with the server.
    """

    server_software: ClassVar[str] = "HttpDouble"
    """The ``Server`` header."""
    thread_name: ClassVar[str] = "http-double"
    fault_scope: ClassVar[str | None] = None
    """The path regex a fault injected without ``path`` is limited to (None: every path)."""

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url = ""
        self._requests: list[RecordT] = []
        self._faults: list[Fault] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> str:
        """Serve on an ephemeral port of 127.0.0.1; returns the base URL."""
        if self._server is not None:
            return self._url
        self._stopping.clear()
        server = _Server(self)
        self._server = server
        host, port = server.server_address[:2]
        self._url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=self.thread_name,
            daemon=True,
        )
        self._thread.start()
        return self._url

    def stop(self) -> None:
        """Stop serving and cut open connections; sleeping requests are woken and dropped."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.cut_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL (``http://127.0.0.1:<port>``); empty until :meth:`start`."""
        return self._url

    def _sleep(self, seconds: float | None) -> bool:
        """Sleep unless the double stops first; True when it did stop."""
        return seconds is not None and seconds > 0 and self._stopping.wait(seconds)

    # -- recorded requests --------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordT]:
        """Every request answered since the last :meth:`reset_counters`, in order."""
        with self._lock:
            return list(self._requests)

    def count(self, method: str | None = None, path_regex: str | None = None) -> int:
        """How many recorded requests used ``method`` and had a path matching the regex."""
        pattern = re.compile(path_regex) if path_regex else None
        with self._lock:
            return sum(
                1
                for r in self._requests
                if (method is None or r.method == method.upper())
                and (pattern is None or pattern.search(r.path))
            )

    def reset_counters(self) -> None:
        """Forget recorded requests (state is kept)."""
        with self._lock:
            self._requests.clear()

    def _remember(self, record: RecordT) -> None:
        with self._lock:
            self._requests.append(record)

    # -- faults -------------------------------------------------------------------------------

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add_fault(
        self,
        kind: FaultKind,
        times: int | None,
        method: str | None,
        path: str | None,
        **details: Any,
    ) -> None:
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        scope = path if path is not None else self.fault_scope
        fault = Fault(
            kind,
            times,
            method.upper() if method else None,
            re.compile(scope) if scope is not None else None,
            **details,
        )
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        """The first queued fault for this request, counted as used."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    # -- serving ------------------------------------------------------------------------------

    @abstractmethod
    def _respond(self, request: Request) -> Response | None:
        """The answer to one request; None drops the connection without one."""

    def _serve(self, request: Request) -> Response | None:
        response = self._respond(request)
        return None if self._stopping.is_set() else response


class _Server(ThreadingHTTPServer):
    """A thread per connection; open connections are remembered so that stopping can cut
    them (a keep-alive connection would otherwise hold its thread until the client left)."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # many concurrent clients in the benchmarks
    allow_reuse_address = True

    def __init__(self, double: HttpDouble[Any]) -> None:
        self.double = double
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and went away is part of the tests, not an error.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections give up their thread
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and
    # delayed ACKs add ~40 ms to every keep-alive request and swamp any benchmark.
    disable_nagle_algorithm = True

    @property
    def _double(self) -> HttpDouble[Any]:
        return cast(_Server, self.server).double

    def version_string(self) -> str:
        return self._double.server_software

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the double's recorded requests instead."""

    def _serve(self) -> None:
        split = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qsl(split.query, keep_blank_values=True),
            headers=headers,
            sent_headers=dict(self.headers.items()),
            body=self._read_body(headers),
        )
        response = self._double._serve(request)
        if response is None:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def _read_body(self, headers: Mapping[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve
