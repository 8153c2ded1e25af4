"""The streaming pipeline gives exactly what the in-memory path gives, in the same order,
on one core and on two; a bad item is reported where it stands and the others go on."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.connectors import SkippedRecord
from bridge.connectors.files import builtin_formats, read_export
from bridge.errors import InputError
from bridge.kpi.compute import KpiEngine
from bridge.kpi.portfolio import Evaluated
from bridge.pipeline import evaluate_stream
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules

ROOT = Path(__file__).resolve().parents[1]
RULES = [str(ROOT / "rules")]
EXPORT = ROOT / "examples" / "export"
NOW = datetime(2026, 2, 1, 12, tzinfo=UTC)


def _in_memory(inputs: list[Path]) -> list[Evaluated]:
    """The path every command took before streaming: all items, categories learnt from all
    of them, then each item classified with its KPIs."""
    rule_set = load_rules(RULES)
    items = [item for path in inputs for item in read_export(path, builtin_formats())]
    kpis = KpiEngine.for_items(rule_set, items)
    engine = Engine(rule_set)
    out = []
    for item in items:
        decision = engine.classify(item, NOW)
        out.append(Evaluated(item, decision, kpis.compute(item, decision, NOW).finite()))
    return out


def _as_compared(e: Evaluated) -> tuple[object, ...]:
    return (e.item, e.item.raw, e.decision, e.kpis.values, e.kpis.missing, e.kpis.facts)


@pytest.mark.parametrize("jobs", [1, 2])
def test_streaming_equals_the_in_memory_path_on_the_bundled_export(jobs: int) -> None:
    expected = _in_memory([EXPORT])
    evaluation = evaluate_stream(RULES, [str(EXPORT)], NOW, builtin_formats(), jobs=jobs)
    found = list(evaluation.evaluated())
    assert evaluation.skipped == []
    assert len(found) == len(expected) == 406
    assert [_as_compared(e) for e in found] == [_as_compared(e) for e in expected]


def test_categories_are_learnt_from_the_whole_export_before_any_kpi(tmp_path: Path) -> None:
    """A status name only a later file's item is in still categorises an earlier item's
    history: reading the files in reverse order must not change any item's KPIs."""
    files = sorted(EXPORT.rglob("*.json"))
    for index, path in enumerate(reversed(files)):
        shutil.copy(path, tmp_path / f"{index:02d}-{path.name}")
    expected = {e.item.key: _as_compared(e) for e in _in_memory([tmp_path])}
    found = evaluate_stream(RULES, [str(tmp_path)], NOW, builtin_formats()).evaluated()
    assert {e.item.key: _as_compared(e) for e in found} == expected


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_bad_record_is_reported_where_it_stands_and_the_others_go_on(
    tmp_path: Path, jobs: int
) -> None:
    page = json.loads((EXPORT / "jira" / "ops-page-1.json").read_text("utf-8"))
    bad_key = page["issues"][10]["key"]
    page["issues"][10]["fields"]["created"] = "yesterday"
    (tmp_path / "a-ops.json").write_text(json.dumps(page), "utf-8")
    shutil.copy(EXPORT / "servicenow" / "incident.json", tmp_path / "incident.json")

    evaluation = evaluate_stream(RULES, [str(tmp_path)], NOW, builtin_formats(), jobs=jobs)
    results = list(evaluation.results)

    keys = [r.item.key if isinstance(r, Evaluated) else r.key for r in results]
    assert keys[:12] == [issue["key"] for issue in page["issues"][:12]]
    bad = results[10]
    assert isinstance(bad, SkippedRecord)
    assert bad.key == bad_key
    assert "fields.created" in bad.problem
    assert len(results) == 50 + 60
    assert sum(isinstance(r, Evaluated) for r in results) == 109


def test_keep_filters_before_evaluating() -> None:
    evaluation = evaluate_stream(
        RULES, [str(EXPORT)], NOW, builtin_formats(), keep=_servicenow_only, jobs=2
    )
    systems = {e.item.system for e in evaluation.evaluated()}
    assert systems == {"servicenow"}


def _servicenow_only(item: object) -> bool:
    return getattr(item, "system", None) == "servicenow"


def _die_on_incidents(item: object) -> bool:
    """A worker killed mid-file (the kernel's OOM killer does this): its process is gone."""
    if getattr(item, "type", None) == "Incident" and multiprocessing.parent_process():
        os.kill(os.getpid(), signal.SIGKILL)
    return True


def test_a_worker_that_dies_fails_the_run_with_a_message_instead_of_hanging() -> None:
    """multiprocessing.Pool, used before, waited forever for a dead worker's result."""
    evaluation = evaluate_stream(
        RULES, [str(EXPORT)], NOW, builtin_formats(), keep=_die_on_incidents, jobs=2
    )
    with pytest.raises(InputError, match="worker process died"):
        list(evaluation.results)


@pytest.mark.parametrize("jobs", [1, 2])
def test_without_raw_items_from_workers_leave_their_record_behind(jobs: int) -> None:
    """keep_raw=False: an item sent from a worker goes without its record (less to
    pickle); one evaluated in this process keeps it (the copy cost more than it saved)."""
    kept = list(evaluate_stream(RULES, [str(EXPORT)], NOW, builtin_formats()).evaluated())
    dropped = evaluate_stream(
        RULES, [str(EXPORT)], NOW, builtin_formats(), keep_raw=False, jobs=jobs
    )
    for with_raw, without in zip(kept, dropped.evaluated(), strict=True):
        assert without.item == with_raw.item  # raw is not compared
        assert without.item.raw == ({} if jobs == 2 else with_raw.item.raw)
        assert without.kpis.values == with_raw.kpis.values


def test_jobs_left_to_bridge_use_every_core_only_for_an_export_worth_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bridge.pipeline import PARALLEL_MIN_BYTES, auto_jobs, available_cores, export_paths

    small = export_paths([str(Path(__file__).resolve().parents[1] / "examples" / "export")])
    assert auto_jobs(small) == 1
    large = []
    for n in range(2):  # sparse: as large as a big export, without the disk
        path = tmp_path / f"page-{n}.json"
        with path.open("wb") as handle:
            handle.truncate(PARALLEL_MIN_BYTES // 2 + 1)
        large.append(path)
    assert auto_jobs(large) == available_cores()
    assert auto_jobs(large[:1]) == 1  # one file goes to one worker anyway


def test_workers_are_forked_only_from_a_process_with_one_thread() -> None:
    """A fork copies locks other threads hold (held forever in the copy): with another
    thread alive the workers come from the fork server, and give the same results."""
    from bridge.pipeline import _context, _Setup

    setup = _Setup(tuple(RULES), NOW, tuple(builtin_formats()), None, True)
    # Other tests may have left a thread behind; macOS is never forked.
    alone = threading.active_count() == 1 and sys.platform.startswith("linux")
    assert _context(setup).get_start_method() == ("fork" if alone else "forkserver")
    forked = [
        _as_compared(e)
        for e in evaluate_stream(RULES, [str(EXPORT)], NOW, builtin_formats(), jobs=2).evaluated()
    ]
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert _context(setup).get_start_method() == "forkserver"
        served = evaluate_stream(RULES, [str(EXPORT)], NOW, builtin_formats(), jobs=2)
        assert [_as_compared(e) for e in served.evaluated()] == forked
    finally:
        stop.set()
        other.join()
    assert len(forked) == 406


def _render_with_raw(evaluated: Evaluated) -> str:
    """A renderer that reads the record (a custom field, say): module level, for the workers."""
    return f"{evaluated.item.key} {len(evaluated.item.raw)}"


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_renderer_sees_the_record_even_when_the_caller_drops_it(jobs: int) -> None:
    """keep_raw=False is about what the caller receives; a rendering made where the item is
    evaluated, worker or not, has the whole item (dropping its raw there cost a worker 4 %
    of its time for nothing)."""
    evaluation = evaluate_stream(
        RULES,
        [str(EXPORT)],
        NOW,
        builtin_formats(),
        jobs=jobs,
        keep_raw=False,
        render=_render_with_raw,
    )
    texts = [getattr(result, "text", "") for result in evaluation.results]
    assert len(texts) == 406
    assert all(int(text.rsplit(" ", 1)[1]) > 0 for text in texts)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux's")
def test_the_workers_results_go_through_a_pipe_of_a_megabyte() -> None:
    """A file's rows (about 300 KB) fit at once: a worker no longer waits on a 64 KB pipe
    for this process's result thread to read each piece."""
    import fcntl
    from concurrent.futures import ProcessPoolExecutor

    from bridge.pipeline import RESULT_PIPE_BYTES, _widen_result_pipe

    with ProcessPoolExecutor(1) as pool:
        reader = pool._result_queue._reader  # type: ignore[attr-defined]
        _widen_result_pipe(pool)
        assert fcntl.fcntl(reader.fileno(), fcntl.F_GETPIPE_SZ) == RESULT_PIPE_BYTES
        assert pool.submit(len, "x" * RESULT_PIPE_BYTES).result() == RESULT_PIPE_BYTES


class _Count:
    """A tally of how many items, and which keys (module level: pickled to the workers)."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    @property
    def items(self) -> int:
        return len(self.keys)

    def add(self, evaluated: Evaluated, /) -> None:
        self.keys.append(evaluated.item.key)

    def merge(self, other: _Count, /) -> None:
        self.keys += other.keys


def _counter(rule_set: object) -> _Count:
    return _Count()


def test_with_a_tally_workers_send_each_file_added_up_and_one_core_sends_items() -> None:
    from bridge.pipeline import Tallied

    serial = evaluate_stream(RULES, [str(EXPORT)], NOW, builtin_formats(), tally=_counter)
    keys = [result.item.key for result in serial.results if isinstance(result, Evaluated)]
    parallel = evaluate_stream(RULES, [str(EXPORT)], NOW, builtin_formats(), tally=_counter, jobs=2)
    results = list(parallel.results)
    assert all(isinstance(result, Tallied) for result in results)  # no item, no text
    tallies = [result.tally for result in results if isinstance(result, Tallied)]
    assert all(isinstance(tally, _Count) for tally in tallies)
    assert len(tallies) == len(export_files_of(EXPORT))  # one per file
    assert [key for tally in tallies for key in tally.keys] == keys  # in input order


def export_files_of(path: Path) -> list[Path]:
    from bridge.pipeline import export_paths

    return export_paths([str(path)])


def test_a_tally_is_not_read_as_items_nor_rendered() -> None:
    with pytest.raises(ValueError, match="cannot be rendered"):
        evaluate_stream(RULES, [str(EXPORT)], NOW, builtin_formats(), tally=_counter, render=str)
    evaluation = evaluate_stream(
        RULES, [str(EXPORT)], NOW, builtin_formats(), tally=_counter, jobs=2
    )
    with pytest.raises(TypeError, match="read its results"):
        list(evaluation.evaluated())


def _key_of(evaluated: Evaluated) -> str:
    return evaluated.item.key


def test_with_join_workers_spool_each_files_renderings_and_the_files_go_after_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The renderings of a file reach the consumer as a file the kernel can copy, not as
    text through this process; each is removed once the next result is asked for, and
    their folder when the stream ends."""
    from bridge.pipeline import Rendered, Spooled

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    serial = evaluate_stream(RULES, [str(EXPORT)], NOW, builtin_formats(), render=_key_of, join="|")
    keys = [result.text for result in serial.results if isinstance(result, Rendered)]
    parallel = evaluate_stream(
        RULES, [str(EXPORT)], NOW, builtin_formats(), render=_key_of, join="|", jobs=2
    )
    spooled: list[Spooled] = []
    texts = []
    for result in parallel.results:
        assert isinstance(result, Spooled)  # nothing is left out of the bundled export
        for earlier in spooled:
            assert not Path(earlier.path).exists()
        texts.append(Path(result.path).read_text("utf-8"))
        spooled.append(result)
    assert len(spooled) == len(export_files_of(EXPORT))
    assert sum(s.count for s in spooled) == len(keys) == 406
    assert "|".join(texts) == "|".join(keys)
    assert list(tmp_path.iterdir()) == []


def test_a_stream_left_half_way_leaves_no_spool_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    evaluation = evaluate_stream(
        RULES, [str(EXPORT)], NOW, builtin_formats(), render=_key_of, join="|", jobs=2
    )
    next(evaluation.results)
    assert len(list(tmp_path.iterdir())) == 1  # the spool folder, while the stream runs
    evaluation.results.close()  # type: ignore[attr-defined]
    assert list(tmp_path.iterdir()) == []


def test_an_item_left_out_goes_before_its_files_spooled_renderings() -> None:
    from bridge.connectors import SkippedRecord
    from bridge.pipeline import Rendered, Spooled, _spooled

    skipped = SkippedRecord("K-2", "cannot be evaluated", "K-2")
    results = [Rendered("a"), Rendered("b"), skipped, Rendered("c")]
    with tempfile.TemporaryDirectory() as folder:
        out = _spooled(iter(results), folder, ", ")
        assert out[0] == skipped
        assert isinstance(out[1], Spooled)
        assert out[1].count == 3
        assert Path(out[1].path).read_text("utf-8") == "a, b, c"


def test_a_spool_that_cannot_be_written_sends_the_renderings_as_text(tmp_path: Path) -> None:
    """A full disk (here: a folder that is gone) costs the spool, not the run."""
    from bridge.connectors import SkippedRecord
    from bridge.pipeline import Rendered, _spooled

    skipped = SkippedRecord("K-2", "cannot be evaluated", "K-2")
    results = iter([Rendered("a"), skipped, Rendered("b")])
    assert _spooled(results, str(tmp_path / "gone"), ",") == [skipped, "a", "b"]


def test_without_a_usable_temporary_folder_the_renderings_come_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TMPDIR missing (or read-only): nothing is spooled, the run goes on as before."""
    from bridge.pipeline import Rendered

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "missing"))
    evaluation = evaluate_stream(
        RULES, [str(EXPORT)], NOW, builtin_formats(), render=_key_of, join="|", jobs=2
    )
    results = list(evaluation.results)
    assert all(isinstance(result, Rendered) for result in results)
    assert len(results) == 406
