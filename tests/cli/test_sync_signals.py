"""``bridge sync`` and its signals: Ctrl-C and SIGTERM stop it between two items, once the
writes under way are finished; a second signal ends it at once.

Why this matters: Python's own KeyboardInterrupt is raised wherever the main thread is. The
chaos harness found a sync that never ended after Ctrl-C (a lock left held by an interrupt
landing in its ``__enter__``, the writer threads waiting for it), and, before that, a store
transaction left open that lost the writer threads' memos.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bridge.store import open_store
from bridge.testing.chaos import Figures, ServiceNowChaos, _bridge


@pytest.fixture
def site(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = f"sqlite://{tmp_path / 'state.db'}"
    chaos = ServiceNowChaos(tmp_path, 200, random.Random(7), store)
    yield chaos, chaos.write_config()
    chaos.close()


def _start(chaos: ServiceNowChaos, config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        [*_bridge(), "sync", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=chaos.env,
    )


def _after_writes(chaos: ServiceNowChaos, process: subprocess.Popen[bytes], count: int) -> None:
    deadline = time.monotonic() + 60
    while chaos.writes() < count:
        assert process.poll() is None, "the sync ended before it was to be stopped"
        assert time.monotonic() < deadline, "the sync wrote nothing for 60 s"
        time.sleep(0.01)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_sync_between_items_and_the_next_one_finishes(site, how) -> None:  # type: ignore[no-untyped-def]
    chaos, config = site
    process = _start(chaos, config)
    _after_writes(chaos, process, 5)
    process.send_signal(how)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + how, err.decode()
    assert b"stopping once the writes under way are finished" in err
    assert b"interrupted" in err
    assert b"Traceback" not in err
    stopped_at = chaos.writes()
    assert stopped_at < 200  # it stopped, it did not finish
    store = open_store(chaos.store)
    try:
        assert store.get_cursor(chaos.source) is None  # the next sync pulls everything again
    finally:
        store.close()

    again = _start(chaos, config)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err.decode()
    figures = Figures("servicenow", 7, 200)
    chaos.count(figures)
    assert figures.duplicate_notes == 0
    assert figures.wrong == []  # every record has its work note


def test_a_second_signal_ends_the_sync_at_once(site) -> None:  # type: ignore[no-untyped-def]
    chaos, config = site
    process = _start(chaos, config)
    _after_writes(chaos, process, 5)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGINT
    assert b"stopped at once" in err or b"interrupted" in err  # the first may have finished
