"""A minimal live connector for service tests: items in memory, HMAC-signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar

from bridge import WorkItem, hookimpl
from bridge.connectors.base import ConnectorContext, ConnectorSpec, WebhookEvent
from bridge.errors import (
    ConnectorTransportError,
    ItemNotFoundError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from bridge.kpi.result import KpiResult
from bridge.model import Classification
from bridge.rules.ast import RuleSet
from bridge.writeback.plan import SetFields, WriteOp

SECRET = b"s3cret"
BOT = "bridge-bot"


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()


class FakeConnector:
    items: ClassVar[dict[str, WorkItem]] = {}
    written: ClassVar[dict[str, dict[str, Any]]] = {}
    fail_next: ClassVar[list[Exception]] = []

    def __init__(self, settings: Mapping[str, Any], context: ConnectorContext) -> None:
        self.name = str(settings["name"])

    def prepare(self, rule_set: RuleSet) -> None:
        pass

    def pull(self, *, since: datetime | None = None) -> Iterator[WorkItem]:
        yield from self.items.values()

    def fetch(self, key: str) -> WorkItem:
        if self.fail_next:
            raise self.fail_next.pop(0)
        if key not in self.items:
            raise ItemNotFoundError(f"{key} is gone", item_key=key)
        return self.items[key]

    def plan(
        self,
        item: WorkItem,
        decision: Classification,
        kpis: KpiResult,
        *,
        currency: str | None = None,
    ) -> list[WriteOp]:
        if self.written.get(item.key, {}).get("work_type") == decision.work_type:
            return []
        return [SetFields({"work_type": decision.work_type})]

    def apply(self, item: WorkItem, ops: list[WriteOp]) -> None:
        for op in ops:
            if isinstance(op, SetFields):
                self.written.setdefault(item.key, {}).update(op.values)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        given = headers.get("X-Fake-Signature", "")
        if not hmac.compare_digest(given.encode(), sign(body).encode()):
            raise WebhookSignatureError("X-Fake-Signature does not match the body")
        try:
            data = json.loads(body)
            key = str(data["key"])
        except (ValueError, KeyError, TypeError):
            raise WebhookPayloadError('expected {"key": ...}') from None
        ignore = "bridge's own write" if data.get("user") == BOT else None
        return WebhookEvent(
            headers.get("X-Delivery"),
            "update",
            (key,),
            deleted=bool(data.get("deleted")),
            ignore_reason=ignore,
        )

    def close(self) -> None:
        pass


class Plugin:
    @hookimpl
    def bridge_register_connectors(self, register: Any) -> None:
        register(ConnectorSpec("fake", FakeConnector, "in-memory test connector"))


def transient() -> Exception:
    return ConnectorTransportError("the connection timed out")
