"""``bridge serve`` (the webhook receiver under gunicorn) and ``bridge worker`` (the jobs)."""

from __future__ import annotations

import logging
from typing import Any

import click

from bridge.cli import handle_errors, stderr, stdout
from bridge.cli.options import CONFIG_OPTION, config_from
from bridge.errors import ConfigError

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

    Also serves /healthz, /status (which rule set is in force) and /metrics (Prometheus).
    """
    config = config_from(config_path)
    from gunicorn.app.base import BaseApplication  # noqa: PLC0415 - only the server needs it

    from bridge.service.app import check_webhook_sources, create_app  # noqa: PLC0415
    from bridge.service.runtime import Runtime  # noqa: PLC0415
    from bridge.service.tasks import Jobs, make_huey  # noqa: PLC0415

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 4)
            self.cfg.set("accesslog", "-")

        def load(self) -> Any:
            runtime = Runtime(config)
            jobs = Jobs(runtime, make_huey(config))
            return create_app(runtime, jobs.enqueue)

    # Before forking: a webhook secret bridge.yaml names but the environment lacks is an
    # error now (exit 2, naming the variable), not a 500 on every delivery.
    ready = check_webhook_sources(config)
    for name in (n for n, ok in ready.items() if not ok):
        stderr.print(
            f"[yellow]warning:[/] source {name!r} configures no webhook secret, so every "
            f"delivery to /webhooks/{name} will be refused",
            markup=True,
            highlight=False,
        )
    stdout.print(
        f"bridge receiving webhooks on http://{bind}/webhooks/<source> "
        f"({', '.join(n for n, ok in ready.items() if ok) or 'no source verifies them'})"
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
        stdout.print(f"bridge worker metrics on http://{host or '127.0.0.1'}:{port}/metrics")
    stdout.print(f"bridge worker: {workers} thread(s), {len(jobs.syncs)} schedule(s)")
    jobs.huey.create_consumer(workers=workers, worker_type="thread", periodic=True).run()
