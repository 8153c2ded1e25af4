"""``GET /dashboard``: the portfolio page behind the status token, from whatever the runtime
offers as its :class:`~bridge.dashboard.DashboardSource`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry

from bridge.config import load_config
from bridge.dashboard import DashboardSnapshot, DashboardSource, content_security_policy
from bridge.errors import BridgeError
from bridge.evaluations import encode
from bridge.kpi.portfolio import Evaluated
from bridge.kpi.result import KpiResult
from bridge.model import Classification, WorkItem
from bridge.plugins import load_registry, make_plugin_manager
from bridge.service.app import STATUS_TOKEN_ENV, create_app
from bridge.service.runtime import Runtime
from bridge.store import open_store
from bridge.store.base import Store
from tests.service.fake import Plugin

TOKEN = "status-token-0123456789abcdef"
HOSTILE = "<img src=x onerror=alert(1)></script>"
NOW = datetime(2026, 11, 2, tzinfo=UTC)


class FakeSource:
    def __init__(self, evaluated: Sequence[Evaluated], fail: Exception | None = None) -> None:
        self.evaluated = evaluated
        self.fail = fail
        self.calls = 0

    def evaluations(self) -> DashboardSnapshot:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return DashboardSnapshot(self.evaluated, NOW, "digest-0d1e", "EUR")


def _evaluated() -> list[Evaluated]:
    kpis = KpiResult({"csat.rating": 5.0, "tco.total": 12.5})
    kpis.facts["sla_completed"] = [False, True]
    return [
        Evaluated(
            WorkItem("OPS-7", "jira", summary=HOSTILE, url="https://acme.example/browse/OPS-7"),
            Classification("service", None, "incidents"),
            kpis,
        )
    ]


@pytest.fixture
def make_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., FlaskClient]]:
    """A test client of the app; ``token`` (None: none configured) and ``source`` (None: the
    runtime has no dashboard)."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(
        "bridge: 1\nrules: []\ndefault: {work_type: unclassified}\n"
    )
    (tmp_path / "bridge.yaml").write_text(
        "rules: rules\nsources:\n  - {name: desk, connector: fake}\n"
    )
    registry = load_registry(make_plugin_manager(load_entrypoints=False, extra_plugins=[Plugin()]))
    made: list[Runtime] = []
    stores.clear()

    def make(*, token: str | None = TOKEN, source: object = "store") -> FlaskClient:
        if token is None:
            monkeypatch.delenv(STATUS_TOKEN_ENV, raising=False)
        else:
            monkeypatch.setenv(STATUS_TOKEN_ENV, token)
        runtime = Runtime(
            load_config(tmp_path / "bridge.yaml", registry),
            store=open_store(f"sqlite://{tmp_path / f'state-{len(made)}.db'}"),
            registry=registry,
        )
        made.append(runtime)
        if source != "store":  # else the runtime's own: the store's evaluations
            runtime.dashboard = source  # type: ignore[assignment]
        stores.append(runtime.store)
        return create_app(runtime, lambda *job: None, metrics=CollectorRegistry()).test_client()

    yield make
    for runtime in made:
        runtime.close()


stores: list[Store] = []


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_fake_is_a_dashboard_source() -> None:
    assert isinstance(FakeSource([]), DashboardSource)


@pytest.mark.parametrize(
    "headers",
    [{}, _bearer("wrong-token-0123456789abcdef"), {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong", "other-scheme"],
)
def test_without_the_status_token_the_page_is_refused_and_its_source_not_asked(
    make_client: Callable[..., FlaskClient], headers: dict[str, str]
) -> None:
    source = FakeSource(_evaluated())
    answer = make_client(source=source).get("/dashboard", headers=headers)

    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="bridge"')
    assert "OPS-7" not in answer.get_data(as_text=True)
    assert source.calls == 0


def test_no_token_configured_means_no_dashboard_for_anyone(
    make_client: Callable[..., FlaskClient],
) -> None:
    answer = make_client(token=None, source=FakeSource(_evaluated())).get(
        "/dashboard", headers=_bearer(TOKEN)
    )
    assert answer.status_code == 401


def test_a_runtime_without_a_dashboard_says_so_past_the_token(
    make_client: Callable[..., FlaskClient],
) -> None:
    client = make_client(source=None)  # a deployment with no dashboard

    assert client.get("/dashboard").status_code == 401  # a stranger learns nothing
    answer = client.get("/dashboard", headers=_bearer(TOKEN))
    assert answer.status_code == 404
    assert "no dashboard" in answer.get_json()["error"]


def test_the_token_opens_the_page_of_the_sources_items(
    make_client: Callable[..., FlaskClient],
) -> None:
    source = FakeSource(_evaluated())
    answer = make_client(source=source).get(
        "/dashboard", headers={"Authorization": f"bearer {TOKEN}"}
    )

    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert answer.headers["Content-Security-Policy"] == content_security_policy()
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    page = answer.get_data(as_text=True)
    assert "digest-0d1e" in page
    assert "2026-11-02T00:00:00Z" in page
    assert HOSTILE not in page
    start = page.index('<script type="application/json" id="bridge-data">') + len(
        '<script type="application/json" id="bridge-data">'
    )
    data = json.loads(page[start : page.index("</script>", start)])
    assert [(i["key"], i["summary"], i["url"]) for i in data["items"]] == [
        ("OPS-7", HOSTILE, "https://acme.example/browse/OPS-7")
    ]
    assert source.calls == 1


def test_a_source_that_cannot_read_its_store_is_a_503(
    make_client: Callable[..., FlaskClient],
) -> None:
    source = FakeSource([], fail=BridgeError("database is locked"))
    answer = make_client(source=source).get("/dashboard", headers=_bearer(TOKEN))

    assert answer.status_code == 503
    assert "database is locked" not in answer.get_data(as_text=True)


def test_the_service_shows_the_stores_evaluations_of_its_sources(
    make_client: Callable[..., FlaskClient],
) -> None:
    client = make_client()
    store = stores[-1]
    for evaluated in _evaluated():
        store.put_evaluation("desk", evaluated.item.key, encode(evaluated), NOW)
        # A source bridge.yaml no longer names is not shown.
        store.put_evaluation("retired", "OLD-1", encode(evaluated), NOW)
    store.put_evaluation("desk", "BROKEN-1", '{"format": 99}', NOW)  # skipped, not a 500

    answer = client.get("/dashboard", headers=_bearer(TOKEN))

    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    start = page.index('<script type="application/json" id="bridge-data">') + len(
        '<script type="application/json" id="bridge-data">'
    )
    data = json.loads(page[start : page.index("</script>", start)])
    assert [(i["key"], i["source"]) for i in data["items"]] == [("OPS-7", "desk")]
