"""``bridge serve`` itself — gunicorn, several worker processes — in a subprocess: /metrics
counts every delivery whichever worker took it, the detail needs the status token, a chunked
body over the cap is refused as too large, and a status token bridge.yaml names but the
environment lacks stops it before it starts."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector

from bridge.service.app import MAX_BODY_BYTES

HOOK_SECRET = "serve-hook-secret"
TOKEN = "serve-status-token-0123456789"
SOURCE = "snow-9c1e"
WORKERS = 3
DEADLINE = 60.0  # seconds: generous, for a loaded machine
RULES = """bridge: 1
rules:
  - {id: incidents, when: {field: type, equals: Incident}, then: {work_type: service}}
default: {work_type: unclassified}
"""


@dataclass
class Serving:
    base: str
    tmp: Path  # TMPDIR of bridge serve: its metrics directory is made in here
    log: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    (tmp_path / "run").mkdir(exist_ok=True)
    env.update(
        SERVE_SN_PASSWORD="unused",
        SERVE_SN_HOOK=HOOK_SECRET,
        SERVE_STATUS_TOKEN=TOKEN,
        TMPDIR=str(tmp_path / "tmp"),
        XDG_RUNTIME_DIR=str(tmp_path / "run"),  # gunicorn's control socket: not in $HOME
        **extra,
    )
    return env


def write_config(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    path = tmp_path / "bridge.yaml"
    path.write_text(f"""rules: rules
store: sqlite://{tmp_path}/state.db
queue: sqlite://{tmp_path}/queue.db
sources:
  - name: {SOURCE}
    connector: servicenow
    url: http://127.0.0.1:9
    auth: {{user: bridge.integration, password_env: SERVE_SN_PASSWORD}}
    scope: {{tables: {{incident: ""}}}}
    webhook_secret_env: SERVE_SN_HOOK
service: {{status_token_env: SERVE_STATUS_TOKEN}}
""")
    return path


def bridge(*args: str) -> list[str]:
    return [sys.executable, "-c", "from bridge.cli import main; main()", *args]


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[Serving]:
    port = free_port()
    log = tmp_path / "serve.log"
    command = bridge(
        "serve", "-c", str(write_config(tmp_path)), "--bind", f"127.0.0.1:{port}",
        "--workers", str(WORKERS),
    )  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, stdout=out, stderr=subprocess.STDOUT, env=environment(tmp_path)
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield Serving(base, tmp_path / "tmp", log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def delivery(n: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"table": "incident", "sys_id": f"{n:032x}", "sys_mod_count": "1", "operation": "update"}
    ).encode()
    mac = hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Bridge-Signature": f"sha256={mac}", "Content-Type": "application/json"}


def post(base: str, n: int) -> int:
    body, headers = delivery(n)
    # A connection of its own each time, so that the workers share the deliveries.
    response = requests.post(f"{base}/webhooks/{SOURCE}", data=body, headers=headers, timeout=10)
    return response.status_code


def workers_that_counted(tmp: Path) -> int:
    """How many worker processes have counted a delivery, from their files."""
    counted = 0
    for file in tmp.glob("bridge-metrics-*/counter_*.db"):
        families = MultiProcessCollector.merge([str(file)], accumulate=True)
        if any(
            sample.value > 0
            for family in families
            if family.name == "bridge_webhook_deliveries"
            for sample in family.samples
        ):
            counted += 1
    return counted


def queued_in(text: str) -> float:
    wanted = f'bridge_webhook_deliveries_total{{outcome="queued",source="{SOURCE}"}} '
    lines = [line for line in text.splitlines() if line.startswith(wanted)]
    assert len(lines) == 1, text
    return float(lines[0][len(wanted) :])


def test_metrics_count_every_delivery_whichever_worker_took_it(serving: Serving) -> None:
    sent = 0
    deadline = time.monotonic() + DEADLINE
    with ThreadPoolExecutor(max_workers=8) as pool:
        # Until at least two workers have taken some: only then can a per-worker count show.
        while sent < 20 or workers_that_counted(serving.tmp) < 2:
            assert time.monotonic() < deadline, (
                f"after {sent} deliveries, fewer than two workers' metric files count any"
            )
            codes = list(pool.map(lambda n: post(serving.base, n), range(sent, sent + 10)))
            assert codes == [202] * 10
            sent += 10

        # Every scrape, whichever worker answers it, sees all of them.
        scrapes = list(
            pool.map(
                lambda _: requests.get(
                    f"{serving.base}/metrics",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=10,
                ),
                range(2 * WORKERS),
            )
        )
    for scrape in scrapes:
        assert scrape.status_code == 200
        assert queued_in(scrape.text) == sent
        assert f'bridge_items_queued_total{{source="{SOURCE}"}} {float(sent)}' in scrape.text
        assert "bridge_worker_" not in scrape.text  # the jobs' metrics are bridge worker's


def test_the_service_tells_strangers_only_whether_it_is_ok(serving: Serving) -> None:
    public = requests.get(f"{serving.base}/status", timeout=10)
    assert (public.status_code, public.json()) == (200, {"status": "ok"})
    detail = requests.get(
        f"{serving.base}/status", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert detail.json()["sources"] == [SOURCE]
    assert requests.get(f"{serving.base}/metrics", timeout=10).status_code == 401
    unknown = requests.post(f"{serving.base}/webhooks/other", data=b"{}", timeout=10)
    assert unknown.status_code == 404
    assert SOURCE not in unknown.text


def test_a_chunked_body_over_the_cap_is_too_large_under_gunicorn(serving: Serving) -> None:
    body = b" " * MAX_BODY_BYTES + delivery(1)[0]
    mac = hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    refused = requests.post(
        f"{serving.base}/webhooks/{SOURCE}",
        data=chunks(),
        headers={"X-Bridge-Signature": f"sha256={mac}"},
        timeout=30,
    )
    assert refused.status_code == 413, refused.text


def test_serve_stops_before_starting_when_the_status_token_is_unset(tmp_path: Path) -> None:
    env = environment(tmp_path)
    del env["SERVE_STATUS_TOKEN"]
    finished = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        bridge("serve", "-c", str(write_config(tmp_path)), "--bind", f"127.0.0.1:{free_port()}"),
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert finished.returncode == 2, finished.stdout + finished.stderr
    assert "service.status_token_env: the environment variable it names" in finished.stderr
    assert "SERVE_STATUS_TOKEN" not in finished.stderr  # what is written there may be a secret
    assert "Listening" not in finished.stdout + finished.stderr
    assert list((tmp_path / "tmp").iterdir()) == []  # its metrics directory is gone too
