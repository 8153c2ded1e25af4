"""Shared pieces of the live ServiceNow connector tests: the spec, the double, a connector."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bridge.connectors.base import ConnectorContext
from bridge.connectors.http import RetryPolicy
from bridge.connectors.servicenow.connector import ServiceNowConnector
from bridge.rules.ast import RuleSet
from bridge.rules.loader import load_rules
from bridge.store.base import Store
from bridge.testing.openapi import OpenApiSpec
from bridge.testing.servicenow import ServiceNowDouble

DATA = Path(__file__).parents[2] / "data" / "servicenow"
SPEC_PATH = DATA / "openapi-table-api.yaml"
RULES = DATA / "rules"

PASSWORD_ENV = "BRIDGE_TEST_SN_PASSWORD"
WRITEBACK = {
    "work_type": "u_work_type",
    "phase": "u_phase",
    "rule": "u_rule",
    "sla.resolution.state": "u_sla_state",
}
U_FIELDS = tuple(WRITEBACK.values())
SLA_NAME = "Priority 1 resolution (4 hour)"
NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def fixture(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def spec() -> OpenApiSpec:
    return OpenApiSpec.load(SPEC_PATH)


@pytest.fixture(scope="session")
def rule_set() -> RuleSet:
    return load_rules([RULES])


class Sleeps:
    """A fake ``time.sleep`` that records the waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


class InstanceClock:
    """The double's clock: ``sys_updated_on`` has one-second granularity, so tests that
    change a record right after a sync move the instance's time on explicitly."""

    def __init__(self) -> None:
        self.now = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def instance_clock() -> InstanceClock:
    return InstanceClock()


@pytest.fixture
def double(spec: OpenApiSpec, instance_clock: InstanceClock) -> Iterator[ServiceNowDouble]:
    with ServiceNowDouble(spec=spec, clock=instance_clock) as sn:
        for table in ("incident", "problem", "change_request", "sc_req_item", "pm_project"):
            sn.add_table(table, U_FIELDS)
        sn.add_table("pm_project_task", U_FIELDS)
        yield sn


def settings(url: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "sn",
        "connector": "servicenow",
        "url": url,
        "auth": {"user": "bridge.integration", "password_env": PASSWORD_ENV},
        "scope": {"tables": {"incident": ""}},
        "writeback": {"fields": dict(WRITEBACK)},
        "webhook_secret_env": "BRIDGE_TEST_SN_WEBHOOK",
    }
    base.update(overrides)
    return base


ConnectorFactory = Callable[..., ServiceNowConnector]


@pytest.fixture
def make_connector(
    double: ServiceNowDouble,
    sleeps: Sleeps,
    instance_clock: InstanceClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ConnectorFactory]:
    monkeypatch.setenv(PASSWORD_ENV, "secret")
    monkeypatch.setenv("BRIDGE_TEST_SN_WEBHOOK", "hook-secret")
    made: list[ServiceNowConnector] = []

    def make(store: Store | None = None, **overrides: Any) -> ServiceNowConnector:
        connector = ServiceNowConnector(
            settings(double.url, **overrides),
            ConnectorContext(store=store),
            sleep=sleeps,
            retry=RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05),
            wall_clock=instance_clock,  # bridge's host and the instance agree on the time
        )
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


def incident(sn: ServiceNowDouble, n: int, **fields: str) -> str:
    """An incident opened ``n`` hours into 2026-06-01, last updated then too."""
    stamp = f"2026-06-01 {n % 24:02d}:00:00"
    values = {
        "state": "2",
        "priority": "3",
        "short_description": f"incident {n}",
        "opened_at": stamp,
        "sys_created_on": stamp,
        "sys_updated_on": stamp,
        **dict.fromkeys(U_FIELDS, ""),
    }
    values.update(fields)
    return sn.add_record("incident", values)


def spec_problems(spec: OpenApiSpec, calls: Any) -> list[str]:
    """Every request of a ``responses`` run checked against the Table API spec."""
    problems: list[str] = []
    for call in calls:
        request = call.request
        split = urlsplit(request.url)
        if split.path == "/oauth_token.do":
            continue
        body = request.body
        if isinstance(body, bytes):
            body = body.decode()
        problems.extend(
            spec.validate_request(
                request.method,
                split.path,
                parse_qs(split.query, keep_blank_values=True),
                json.loads(body) if body else None,
                content_type=request.headers.get("Content-Type"),
            )
        )
    return problems
