"""Every exception bridge raises on purpose, in one tree.

Only the edges (the CLI, the webhook app, the job runner) catch these; the pure core raises
them and never prints. Each class carries its context as attributes so an edge can render a
precise message, choose an exit code or HTTP status, and decide whether to retry.

::

    BridgeError(Exception)
    ├── ConfigError                  bridge.yaml / environment / credentials missing or malformed
    │   └── ConfigInvalidError       .diagnostics: every problem in bridge.yaml, located
    ├── InputError                   an export or fixture file that cannot be read (.path)
    ├── RuleError                    rule files that cannot be used
    │   └── RuleValidationError      .diagnostics: every problem found, each with file:line:col
    ├── PluginError                  a plugin failed to load or registered a duplicate name
    ├── ConnectorError               .connector; retryable: ClassVar[bool]
    │   ├── ConnectorTransportError  network failure or timeout          retryable
    │   ├── ConnectorAuthError       401 / 403                           not retryable
    │   ├── RateLimitedError         429; .retry_after seconds           retryable
    │   ├── ItemNotFoundError        404; .item_key (also a LookupError) not retryable
    │   ├── WriteConflictError       409 on write-back                   retryable
    │   └── RemoteValidationError    400; .field_errors                  not retryable
    ├── WritebackError               a planned write could not be applied (.item_key)
    └── WebhookError
        ├── WebhookSignatureError    → HTTP 401
        └── WebhookPayloadError      → HTTP 400
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

__all__ = [
    "BridgeError",
    "ConfigError",
    "ConfigInvalidError",
    "ConnectorAuthError",
    "ConnectorError",
    "ConnectorTransportError",
    "Diagnostic",
    "InputError",
    "ItemNotFoundError",
    "PluginError",
    "RateLimitedError",
    "RemoteValidationError",
    "RuleError",
    "RuleValidationError",
    "WebhookError",
    "WebhookPayloadError",
    "WebhookSignatureError",
    "WriteConflictError",
    "WriteDeferredError",
    "WritebackError",
]


@dataclass(frozen=True, slots=True, order=True)
class Diagnostic:
    """One problem in one file, at a 1-based line and column (0 when unknown)."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


class BridgeError(Exception):
    """Base of every error bridge raises on purpose."""

    # What a write-back wrote before it failed (a ``writeback.plan.Applied``), set by the
    # connector that raises; the report and the audit log count it. None: nothing.
    applied: object = None


class ConfigError(BridgeError):
    """The configuration, the environment or a credential is missing or malformed."""


class ConfigInvalidError(ConfigError):
    """bridge.yaml has problems; ``diagnostics`` lists them all with their positions."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(sorted(diagnostics))
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class InputError(BridgeError):
    """An input file (export, test fixture) cannot be read; the message says where and why."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class RuleError(BridgeError):
    """Rule files cannot be used."""


class RuleValidationError(RuleError):
    """Rule files are invalid; ``diagnostics`` holds every problem, not only the first."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(sorted(diagnostics))
        count = len(self.diagnostics)
        head = "\n".join(str(d) for d in self.diagnostics)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the rules:\n{head}")


class PluginError(BridgeError):
    """A plugin failed to load, or registered a name that is already taken."""

    def __init__(self, message: str, *, plugin_name: str | None = None) -> None:
        super().__init__(message)
        self.plugin_name = plugin_name


class ConnectorError(BridgeError):
    """A ticketing system refused or failed a request.

    ``retryable`` says whether repeating the same request later can succeed.
    """

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        connector: str | None = None,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
        reason: str | None = None,
        item_key: str | None = None,
        field_errors: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.connector = connector
        self.status = status
        self.method = method
        self.url = url
        # Subclass-specific context, kept on the base so one constructor serves the tree.
        self.retry_after = retry_after
        self.reason = reason
        self.item_key = item_key
        self.field_errors = dict(field_errors or {})

    def restated(self, message: str) -> ConnectorError:
        """The same error (same class, same context) with a fuller message."""
        return type(self)(
            message,
            connector=self.connector,
            status=self.status,
            method=self.method,
            url=self.url,
            retry_after=self.retry_after,
            reason=self.reason,
            item_key=self.item_key,
            field_errors=self.field_errors,
        )


class ConnectorTransportError(ConnectorError):
    """The network failed or the request timed out; safe to retry idempotent requests."""

    retryable = True


class ConnectorAuthError(ConnectorError):
    """401 / 403: the credentials are wrong or lack a permission the message names."""


class RateLimitedError(ConnectorError):
    """429: the system asked us to slow down for ``retry_after`` seconds."""

    retryable = True


class ItemNotFoundError(ConnectorError, LookupError):
    """404: the item is gone or hidden from the integration user; ``item_key`` names it."""


class WriteConflictError(ConnectorError):
    """409: a concurrent update won; re-read and plan again."""

    retryable = True


class RemoteValidationError(ConnectorError):
    """400: the system rejected the request body; ``field_errors`` maps field to message."""


class WritebackError(BridgeError):
    """A planned write could not be applied to an item."""

    def __init__(self, message: str, *, item_key: str | None = None) -> None:
        super().__init__(message)
        self.item_key = item_key


class WriteDeferredError(WritebackError):
    """Not a failure: the write must wait until ``retry_at`` (an earlier write's outcome is
    not known yet). The item stays pending until then, and no attempt is counted."""

    def __init__(self, message: str, *, retry_at: datetime, item_key: str | None = None) -> None:
        super().__init__(message, item_key=item_key)
        self.retry_at = retry_at


class StoreUnavailableError(BridgeError):
    """The store could not be read (down, locked, refused): the service answers 503."""


class WebhookError(BridgeError):
    """A webhook delivery cannot be accepted."""


class WebhookSignatureError(WebhookError):
    """The signature is missing, malformed or wrong (HTTP 401)."""


class WebhookPayloadError(WebhookError):
    """The body is not a payload we understand (HTTP 400)."""
