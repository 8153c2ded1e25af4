"""A rules edit the service cannot load, whatever the failure, keeps the last good rule set
in force, and ``/status`` says so (503 "degraded", the reason, the digest still in force)
for as long as the files stay broken."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from bridge.config import load_config
from bridge.model import WorkItem
from bridge.service.app import create_app
from bridge.service.runtime import Runtime
from bridge.store import open_store

HOSTILE_RULES = Path(__file__).parents[1] / "data" / "hostile" / "rules" / "cases"
TOKEN = "status-token-for-the-runtime-tests-0123456789"
GOOD = """bridge: 1
rules:
  - {id: incidents, when: {field: type, equals: Incident}, then: {work_type: service}}
"""


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(GOOD)
    (tmp_path / "export").mkdir()
    (tmp_path / "status-token").write_text(TOKEN + "\n")
    (tmp_path / "bridge.yaml").write_text(
        "rules: rules\nsources:\n  - {name: export, connector: files, path: export}\n"
        "service: {status_token_file: status-token}\n"
    )
    made = Runtime(
        load_config(tmp_path / "bridge.yaml"),
        store=open_store(f"sqlite://{tmp_path / 'state.db'}"),
    )
    yield made
    made.close()


@pytest.fixture
def client(runtime: Runtime) -> FlaskClient:
    return create_app(runtime, lambda source, key, deleted: None).test_client()


def status(client: FlaskClient) -> tuple[int, dict[str, Any]]:
    answer = client.get("/status", headers={"Authorization": f"Bearer {TOKEN}"})
    body: dict[str, Any] = answer.get_json()
    return answer.status_code, body


def edit_rules(runtime: Runtime, text: str) -> None:
    (runtime.config.rules[0] / "r.yaml").write_text(text)


def decides(runtime: Runtime) -> str | None:
    item = WorkItem("OPS-1", "jira", type="Incident")
    now = runtime.rules.status().loaded_at
    assert now is not None
    return runtime.evaluators().engine.classify(item, now).rule


@pytest.mark.parametrize(
    "case", ["yaml-merge-bomb.yaml", "yaml-recursive-merge.yaml", "sla-target-overflow.yaml"]
)
def test_a_hostile_rules_edit_keeps_the_last_good_set(
    runtime: Runtime, client: FlaskClient, case: str
) -> None:
    assert status(client)[0] == 200
    good = runtime.rules.status().digest

    edit_rules(runtime, (HOSTILE_RULES / case).read_text("utf-8"))

    for _ in range(2):  # and it keeps saying so while the files stay as they are
        code, body = status(client)
        assert code == 503
        assert body["status"] == "degraded"
        assert body["rules"]["in_force"] == "last good"
        assert body["rules"]["digest"] == good
        assert "r.yaml:" in body["rules"]["error"]
    assert decides(runtime) == "incidents"

    edit_rules(runtime, GOOD.replace("incidents", "incidents-again"))
    code, body = status(client)
    assert (code, body["rules"]["in_force"], body["rules"]["error"]) == (200, "current", None)
    assert decides(runtime) == "incidents-again"


@pytest.mark.parametrize(
    "failure",
    [
        RecursionError("maximum recursion depth exceeded"),
        MemoryError(),
        OverflowError("date value out of range"),
        KeyError("rules"),
        RuntimeError("a bug in a plugin operator"),
    ],
    ids=lambda failure: type(failure).__name__,
)
def test_any_failure_while_reloading_keeps_the_last_good_set(
    runtime: Runtime, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    good = runtime.rules.status().digest

    def fail(*args: object, **kwargs: object) -> None:
        raise failure

    monkeypatch.setattr("bridge.rules.loader.load_rules", fail)
    edit_rules(runtime, GOOD + "# edited\n")

    code, body = status(client)
    assert code == 503
    assert body["rules"]["digest"] == good
    assert body["rules"]["in_force"] == "last good"
    assert body["rules"]["error"].startswith(
        f"the rules could not be loaded ({type(failure).__name__}"
    )
    assert body["rules"]["error"].endswith("the last good rule set stays in force")
    assert decides(runtime) == "incidents"


def test_a_rules_folder_that_cannot_be_listed_keeps_the_last_good_set(
    runtime: Runtime, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(paths: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("bridge.service.runtime.rule_files", refuse)

    code, body = status(client)
    assert code == 503
    assert body["rules"]["in_force"] == "last good"
    assert "PermissionError" in body["rules"]["error"]
    assert decides(runtime) == "incidents"
