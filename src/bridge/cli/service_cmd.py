"""``bridge serve`` (the webhook receiver under gunicorn) and ``bridge worker`` (the jobs)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING, Any

import click

from bridge.cli import handle_errors, plain, stderr, stdout
from bridge.cli.options import CONFIG_OPTION, config_from
from bridge.errors import ConfigError

if TYPE_CHECKING:
    from bridge.config import Config

__all__ = ["serve", "worker"]


@click.command()
@CONFIG_OPTION
@click.option(
    "--bind",
    default="127.0.0.1:8080",
    show_default=True,
    help="Address to listen on (host:port); put TLS in front (a proxy).",
)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@handle_errors
def serve(config_path: str, bind: str, workers: int) -> None:
    """Receive webhooks: verify, deduplicate, queue (POST /webhooks/<source>).

    Also serves /healthz, /status (ok or degraded; with the status token, which rule set is
    in force) and /metrics (Prometheus, summed over the workers; with the status token when
    one is configured).
    """
    config = config_from(config_path)
    # Each gunicorn worker counts in its own process: every one writes its counters to files
    # here, and /metrics sums them all. A fresh directory: files left by an earlier run would
    # be counted again.
    metrics_dir = tempfile.mkdtemp(prefix="bridge-metrics-")
    owner = os.getpid()
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    try:
        _serve(config, bind, workers, metrics_dir)
    finally:
        if os.getpid() == owner:  # gunicorn's workers leave through here too
            shutil.rmtree(metrics_dir, ignore_errors=True)
            # This process may go on (tests, an embedding program): its metrics must not
            # point at the directory just removed.
            if before is None:
                os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            else:
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = before
            if "prometheus_client.values" in sys.modules:
                from prometheus_client import values  # noqa: PLC0415

                values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def _serve(config: Config, bind: str, workers: int, metrics_dir: str) -> None:
    # Before prometheus-client is imported (it chooses how to keep values then) and before
    # gunicorn forks the workers.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    if "prometheus_client.values" in sys.modules:  # a plugin imported it: choose again
        from prometheus_client import values  # noqa: PLC0415

        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    from gunicorn.app.base import BaseApplication  # noqa: PLC0415 - only the server needs it
    from prometheus_client import multiprocess  # noqa: PLC0415

    from bridge.service.app import (  # noqa: PLC0415
        STATUS_TOKEN_ENV,
        check_webhook_sources,
        create_app,
        read_status_token,
    )
    from bridge.service.runtime import Runtime  # noqa: PLC0415
    from bridge.service.tasks import Jobs, make_huey  # noqa: PLC0415

    def child_exit(server: Any, worker: Any) -> None:
        # A dead worker's counters stay in the sum; its live-gauge files go.
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 4)
            self.cfg.set("accesslog", "-")
            self.cfg.set("child_exit", child_exit)

        def load(self) -> Any:
            runtime = Runtime(config)
            jobs = Jobs(runtime, make_huey(config))
            return create_app(runtime, jobs.enqueue)

    # Before forking: a webhook secret bridge.yaml names but the environment lacks is an
    # error now (exit 2, naming the variable), not a 500 on every delivery.
    ready = check_webhook_sources(config)
    for name in (n for n, ok in ready.items() if not ok):
        stderr.print(
            f"[yellow]warning:[/] source {plain(repr(name))} configures no webhook secret, "
            f"so every delivery to /webhooks/{plain(name)} will be refused",
            markup=True,
            highlight=False,
        )
    # Likewise a status token bridge.yaml names but the environment lacks.
    token = read_status_token(config)
    stdout.print(
        f"bridge receiving webhooks on http://{plain(bind)}/webhooks/<source> "
        f"({plain(', '.join(n for n, ok in ready.items() if ok) or 'no source verifies them')})"
    )
    stdout.print(
        "/status detail and /metrics need Authorization: Bearer <the status token>"
        if token
        else "no status token (service.status_token_env or status_token_file in bridge.yaml, "
        f"or {STATUS_TOKEN_ENV}): /status says only ok or degraded, and /metrics is open"
    )
    Server().run()


@click.command()
@CONFIG_OPTION
@click.option(
    "--workers",
    default=4,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Jobs run at once (threads).",
)
@click.option(
    "--metrics",
    "metrics_bind",
    default=None,
    metavar="HOST:PORT",
    help="Serve Prometheus metrics here (pending, given up, retries, lease skips/takeovers).",
)
@handle_errors
def worker(config_path: str, workers: int, metrics_bind: str | None) -> None:
    """Run queued jobs: items from webhooks, the sweeper of pending items, and the scheduled
    syncs of bridge.yaml."""
    config = config_from(config_path)
    from bridge.service.runtime import Runtime  # noqa: PLC0415
    from bridge.service.tasks import Jobs, make_huey  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    jobs = Jobs(Runtime(config), make_huey(config))
    if metrics_bind:
        from prometheus_client import start_http_server  # noqa: PLC0415

        host, _, port = metrics_bind.rpartition(":")
        if not port.isdigit():
            raise ConfigError(f"--metrics {metrics_bind!r}: write HOST:PORT, e.g. 127.0.0.1:9101")
        start_http_server(int(port), addr=host or "127.0.0.1", registry=jobs.metrics)
        stdout.print(f"bridge worker metrics on http://{plain(host or '127.0.0.1')}:{port}/metrics")
    stdout.print(
        f"bridge worker: {workers} thread(s), {len(jobs.syncs)} schedule(s), "
        f"timers every {config.worker.tick.total_seconds():g} s"
    )
    ticking = jobs.start_ticks()
    try:
        jobs.huey.create_consumer(workers=workers, worker_type="thread", periodic=True).run()
    finally:
        ticking.set()
