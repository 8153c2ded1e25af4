"""Evaluating an export as a stream: items flow from the files through the rules and the KPIs
to whoever consumes them, one file at a time, so memory stays flat however large the export.

Why two passes: KPIs replay status histories, and a status name's category comes from the
configuration, then from the items of the same export (the first item in that status says
it), then from common names (:class:`~bridge.kpi.sla.StatusCategories`). Any later item can
teach a name an earlier item's history uses, so the categories are learnt over the whole
export before the first KPI is computed — the same table the in-memory path built, so the
results are identical. The first pass keeps only (status, category) pairs; it is skipped when
no rule asks for an SLA (nothing else reads the table).

Why processes: decoding, mapping and KPIs are pure Python, so a thread would not run a second
core. ``jobs > 1`` hands whole files to a pool of processes (forked from this one when it
runs a single thread, else from a fork server: see ``_context``), both passes: the first
pass's pairs are merged in input order into the table, then each file is evaluated (and
rendered, when the caller renders, or added up, when the caller only adds items up) in a
worker and the results merged in input order, with a bounded number of files in flight so a
slow consumer does not make the results pile up.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from bridge.connectors import SkippedRecord
from bridge.connectors.base import ExportFormat
from bridge.connectors.files import export_files, read_export_file, read_export_statuses
from bridge.errors import BridgeError, InputError
from bridge.kpi.compute import KpiEngine
from bridge.kpi.portfolio import Evaluated
from bridge.kpi.sla import StatusCategories
from bridge.model import WorkItem
from bridge.plugins import installed_operators
from bridge.rules.ast import RuleSet
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules

__all__ = [
    "DATA_ERRORS",
    "PARALLEL_MIN_BYTES",
    "Evaluation",
    "Render",
    "Rendered",
    "Renderer",
    "Result",
    "Spooled",
    "Tallied",
    "Tallier",
    "Tally",
    "auto_jobs",
    "available_cores",
    "evaluate_stream",
    "export_paths",
    "without_raw",
]

#: What data, not code, can make a KPI calculation raise: a value the mapping let through
#: that the arithmetic or a calendar cannot take. The item is reported and left out; any
#: other exception is a bug and keeps its traceback.
DATA_ERRORS = (ArithmeticError, ValueError)


@dataclass(frozen=True, slots=True)
class Rendered:
    """An evaluated item as the caller's ``render`` wrote it (see :func:`evaluate_stream`)."""

    text: str


@dataclass(frozen=True, slots=True)
class Spooled:
    """``count`` items' renderings of one export file, joined by ``join`` and written to
    ``path`` (UTF-8) by the worker that evaluated them (see ``join`` of
    :func:`evaluate_stream`). The file is removed when the next result is asked for."""

    path: str
    count: int


class Tally(Protocol):
    """Running figures a consumer keeps instead of the items (see ``tally`` of
    :func:`evaluate_stream`)."""

    @property
    def items(self) -> int:
        """How many items were added (merged ones included)."""
        ...

    def add(self, evaluated: Evaluated, /) -> None: ...

    def merge(self, other: Any, /) -> None:
        """Add what another tally of the same kind added."""
        ...


#: Builds an empty :class:`Tally` from the rule set, in each process that evaluates items.
Tallier = Callable[[RuleSet], Tally]


@dataclass(frozen=True, slots=True)
class Tallied:
    """The items of one export file, added up where they were evaluated."""

    tally: Tally


#: One result of the stream: an evaluated item (or its rendering, or a file's renderings
#: spooled, or its items added up), or a record (or item) left out with why.
Result = Evaluated | Rendered | Spooled | Tallied | SkippedRecord

Render = Callable[[Evaluated], str]

#: Builds a :data:`Render` from the rule set, where the items are evaluated: for output
#: whose form depends on the rules (the CSV's KPI columns).
Renderer = Callable[[RuleSet], Render]

Keep = Callable[[WorkItem], bool]


@dataclass
class Evaluation:
    """A streaming evaluation: the rule set is known before any item is read, ``results``
    yields each item's outcome in input order, and ``skipped`` lists what was left out so
    far (all of it once ``results`` is exhausted)."""

    rule_set: RuleSet
    results: Iterator[Result]
    skipped: list[SkippedRecord] = field(default_factory=list)

    def evaluated(self) -> Iterator[Evaluated]:
        """The evaluated items only; the others go to ``skipped`` as they pass."""
        for result in self.results:
            if isinstance(result, Evaluated):
                yield result
            elif isinstance(result, SkippedRecord):
                self.skipped.append(result)
            elif isinstance(result, Tallied):
                raise TypeError("an evaluation with a tally gives tallies: read its results")


#: Below this much export, ``--jobs`` left to bridge runs on one core: starting the workers
#: (forked: about 0.1 s) is not won back. Measured on two cores: 17 MB (4,000 items) breaks
#: even (0.87-0.97 s either way); 42 MB (10,000 items) 1.14-1.27 s on two against 1.41 s.
PARALLEL_MIN_BYTES = 32 * 2**20


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def auto_jobs(files: Sequence[Path]) -> int:
    """The processes for ``files`` when the user did not say: every core available for an
    export large enough to repay the pool, one otherwise."""
    try:
        size = sum(file.stat().st_size for file in files)
    except OSError:
        return 1
    return available_cores() if size >= PARALLEL_MIN_BYTES and len(files) > 1 else 1


def export_paths(input_paths: Sequence[str]) -> list[Path]:
    """Every export file the inputs name, in order (a folder's files by name); a path that
    does not exist fails here, before anything is evaluated."""
    return [file for entry in input_paths for file in export_files(Path(entry))]


def evaluate_stream(
    rule_paths: Sequence[str],
    input_paths: Sequence[str],
    now: datetime,
    formats: Sequence[ExportFormat],
    *,
    keep: Keep | None = None,
    jobs: int | None = 1,
    keep_raw: bool = True,
    render: Render | None = None,
    renderer: Renderer | None = None,
    tally: Tallier | None = None,
    join: str | None = None,
) -> Evaluation:
    """Load the rules, then evaluate the export lazily (see the module's docstring).

    :param formats: the export formats to read with (the registry's; the caller passes them).
    :param keep: only items it accepts are evaluated (and teach status categories). With
        ``jobs > 1`` it is pickled to the workers: a module-level function or a
        ``functools.partial`` of one; anything else runs on one core.
    :param keep_raw: False says no consumer reads an item's ``raw`` record (classify,
        report): an item that goes from a worker process to this one leaves it behind,
        less to pickle and send. In the process that evaluated it, an item keeps it:
        dropping it is a copy of the item (:func:`without_raw`), which cost more than it
        saved (4 % of a report).
    :param render: when given, each evaluated item is handed to it where it was evaluated
        and ``results`` yields its text (:class:`Rendered`) instead of the
        :class:`Evaluated`. Why: with ``jobs > 1`` the parent otherwise unpickles every
        item, its decision and its KPIs and formats them, as much CPU per item as a worker
        spends evaluating it; a line of text costs next to nothing to send. Pickled like
        ``keep``.
    :param renderer: instead of ``render``, a function that builds it from the rule set,
        called once in each process that evaluates items. Pickled like ``keep``.
    :param join: with ``render`` and ``jobs > 1``, for output that is the renderings
        joined by it (JSON's items, CSV's rows): a worker writes a file's renderings so
        joined to a spool file and ``results`` yields it (:class:`Spooled`, after the
        file's records left out) for the consumer to copy into its output (the kernel can
        copy it: :func:`bridge.cli.output.append_file`) before it asks for the next result.
        Why: 190 MB of text per 100,000 items went through this process, unpickled and
        written out, which on two cores took a tenth of the run from the workers. On one
        core renderings come one by one.
    :param tally: for a consumer that adds items up and keeps nothing else of them
        (``report``): with ``jobs > 1`` each worker adds a file's items into an empty
        tally this function makes from the rule set, and ``results`` yields it
        (:class:`Tallied`, after the file's records left out) instead of the items, for
        the consumer to merge. Why: a few KB of figures per file instead of every item,
        its decision and its KPIs, which the consumer spent as long unpickling and adding
        up as the workers spent evaluating them. On one core the items come one by one.
        Not with ``render``. Pickled like ``keep``.
    """
    rule_set = load_rules(rule_paths, installed_operators())
    files = export_paths(input_paths)
    if tally is not None and (render is not None or renderer is not None):
        raise ValueError("a tally adds up items: they cannot be rendered too")
    setup = _Setup(
        tuple(rule_paths), now, tuple(formats), keep, keep_raw, render, renderer, tally, join
    )
    if jobs is None:
        jobs = auto_jobs(files)
    if jobs > 1 and len(files) > 1 and _picklable(setup):
        results = _parallel(setup, rule_set, files, jobs)
    else:
        results = _serial(setup, rule_set, files)
    return Evaluation(rule_set, results)


# -- the work, the same in one process or in many -------------------------------------------


@dataclass(frozen=True)
class _Setup:
    """What every worker needs: everything in it is pickled once per worker."""

    rule_paths: tuple[str, ...]
    now: datetime
    formats: tuple[ExportFormat, ...]
    keep: Keep | None
    keep_raw: bool
    render: Render | None = None
    renderer: Renderer | None = None
    tally: Tallier | None = None
    join: str | None = None

    def render_for(self, rule_set: RuleSet) -> Render | None:
        return self.renderer(rule_set) if self.renderer is not None else self.render


def _picklable(setup: _Setup) -> bool:
    try:
        pickle.dumps(setup)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


def _needs_categories(rule_set: RuleSet) -> bool:
    """Whether any outcome asks for an SLA, the only KPIs that replay status histories."""
    outcomes = [rule.then for rule in rule_set.rules if rule.enabled]
    outcomes.append(rule_set.default)
    return any(group.startswith("sla.") for o in outcomes for group in o.kpis)


def _statuses(path: Path, setup: _Setup, known: Container[str]) -> list[tuple[str, str]]:
    """The first category each status of the file's kept items has, in order, leaving out
    statuses in ``known`` (learnt from earlier files: a later item cannot change them)."""
    pairs: dict[str, str] = {}
    if setup.keep is None:
        for status, category in read_export_statuses(path, setup.formats, known):
            pairs.setdefault(status, category)
        return list(pairs.items())
    for item in read_export_file(path, setup.formats, skipped=[]):
        if not setup.keep(item):
            continue
        if item.status is not None and item.status_category is not None:
            pairs.setdefault(item.status, item.status_category)
    return list(pairs.items())


def _categories(
    learned: Iterator[list[tuple[str, str]]], configured: Mapping[str, str]
) -> dict[str, str]:
    """What :meth:`StatusCategories.learn` builds from all items, from each file's pairs:
    the first item in a status says its category, the configuration overrides."""
    table: dict[str, str] = {}
    for pairs in learned:
        for status, category in pairs:
            table.setdefault(status, category)
    table.update(configured)
    return table


def _evaluate_file(
    path: Path,
    setup: _Setup,
    engine: Engine,
    kpis: KpiEngine,
    render: Render | None,
    *,
    send: bool = False,
) -> Iterator[Result]:
    """The results of one file, in its order: records the format cannot map, items with
    their KPIs, items whose KPIs cannot be computed. ``send``: the results go to another
    process, where an item that is not rendered here goes without its ``raw`` unless it
    is wanted (a rendered one keeps it: no one sees the item, and the copy cost a worker
    4 % of its time)."""
    drop_raw = send and not setup.keep_raw and render is None
    skipped: list[SkippedRecord] = []
    keep, now = setup.keep, setup.now
    for item in read_export_file(path, setup.formats, skipped=skipped):
        if skipped:
            yield from skipped
            skipped.clear()
        if keep is not None and not keep(item):
            continue
        try:
            decision = engine.classify(item, now)
            result = kpis.compute(item, decision, now).finite()
        except DATA_ERRORS as exc:
            problem = f"cannot be evaluated: {type(exc).__name__}: {exc}"
            yield SkippedRecord(item.key, problem, item.key)
            continue
        evaluated = Evaluated(without_raw(item) if drop_raw else item, decision, result)
        yield evaluated if render is None else Rendered(render(evaluated))
    yield from skipped


def _table(setup: _Setup, rule_set: RuleSet, files: list[Path]) -> dict[str, str]:
    """The status categories of the whole export (the first pass), or only the configured
    ones when no rule asks for an SLA."""
    configured = rule_set.kpi.status_categories
    if not _needs_categories(rule_set):
        return dict(configured)
    learned: dict[str, str] = {}
    for path in files:
        for status, category in _statuses(path, setup, learned):
            learned.setdefault(status, category)
    return _categories(iter([list(learned.items())]), configured)


_ITEM_FIELDS = tuple(f.name for f in fields(WorkItem) if f.name != "raw")


def without_raw(item: WorkItem) -> WorkItem:
    """The item with an empty ``raw`` (a dict, as EMPTY_RAW, a mappingproxy, does not
    pickle). Copied slot by slot: ``dataclasses.replace`` checks and converts every field
    again, three times the cost, for values that were checked when the item was made."""
    copy = object.__new__(WorkItem)
    for name in _ITEM_FIELDS:
        object.__setattr__(copy, name, getattr(item, name))
    object.__setattr__(copy, "raw", {})
    return copy


def _serial(setup: _Setup, rule_set: RuleSet, files: list[Path]) -> Iterator[Result]:
    table = _table(setup, rule_set, files)
    engine = Engine(rule_set)
    kpis = KpiEngine(rule_set, StatusCategories(table))
    render = setup.render_for(rule_set)
    with _few_collections():
        for path in files:
            yield from _evaluate_file(path, setup, engine, kpis, render)


@contextmanager
def _few_collections() -> Iterator[None]:
    """Run with the cyclic garbage collector seldom, and blind to what exists already.

    Why: a decoded record is a tree of a few hundred dicts and lists that lives while it is
    mapped, so the collector's default threshold (700 allocations) ran it several times
    per record, each time walking the record, and the full collections that follow walked
    every rule and module object too: 40 % of a single pass. What an export makes holds no
    reference cycles (JSON values, frozen dataclasses), so reference counting frees it; the
    collector runs every 50,000 allocations for whatever else does, and the objects made
    before the stream (rules, compiled code, modules) are frozen out of its walks. The
    previous settings come back when the stream ends.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, threshold[1], threshold[2])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


# -- many processes ---------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}
#: What forked workers take from the parent instead of loading it again (see _context).
_FORKED: dict[str, Any] = {}


def _start_worker(setup: _Setup) -> None:
    _WORKER["setup"] = setup
    # A forked worker has the parent's rule set, for this very setup; others load it.
    inherited = _FORKED.get("rule_set") if _FORKED.get("setup") is setup else None
    rule_set = inherited or load_rules(setup.rule_paths, installed_operators())
    _WORKER["rule_set"] = rule_set
    _WORKER["engine"] = Engine(rule_set)
    _WORKER["kpis"] = {}
    _WORKER["render"] = setup.render_for(rule_set)
    _WORKER["known"] = {}


def _worker_statuses(path: Path) -> list[tuple[str, str]] | _Failure:
    """The first pass over one file (see :func:`_statuses`), in a worker.

    ``known`` is every status this worker has reported: the pool hands a worker files in
    input order, so a status it met in an earlier file was reported there, and the parent,
    which keeps the first file's pair, would not take this one anyway."""
    known: dict[str, str] = _WORKER["known"]
    try:
        pairs = _statuses(path, _WORKER["setup"], known)
    except BridgeError as exc:
        return _Failure(str(exc))
    for status, category in pairs:
        known.setdefault(status, category)
    return pairs


def _worker_evaluate(
    path: Path, table: tuple[tuple[str, str], ...], spool: str | None = None
) -> list[Result | str] | _Failure:
    """The file's results; a rendering goes as its bare text (a str pickles in a few
    bytes, a dataclass instance as a call to rebuild it) and is wrapped again in the
    parent, or, with ``spool`` (a folder), all of them in a file there; with a tally, the
    items go added up (see ``join`` and ``tally`` of :func:`evaluate_stream`)."""
    cache: dict[tuple[tuple[str, str], ...], KpiEngine] = _WORKER["kpis"]
    kpis = cache.get(table)
    if kpis is None:
        cache.clear()
        kpis = cache[table] = KpiEngine(_WORKER["rule_set"], StatusCategories(dict(table)))
    setup: _Setup = _WORKER["setup"]
    tallier = setup.tally
    try:
        with _few_collections():
            results = _evaluate_file(
                path, setup, _WORKER["engine"], kpis, _WORKER["render"], send=tallier is None
            )
            if tallier is not None:
                return _tallied(results, tallier(_WORKER["rule_set"]))
            if spool is not None and setup.join is not None:
                return _spooled(results, spool, setup.join)
            return [result.text if type(result) is Rendered else result for result in results]
    except BridgeError as exc:
        return _Failure(str(exc))


def _spooled(results: Iterator[Result], spool: str, join: str) -> list[Result | str]:
    """The records left out, in order, then the file the renderings went to, joined. Where
    the file cannot be written (the disk is full) the renderings go as text instead, as
    without a spool: the texts of the file are kept until it is whole for that."""
    out: list[Result | str] = []
    texts: list[str] = []
    name = ""
    try:
        handle, name = tempfile.mkstemp(dir=spool, suffix=".txt")
        with open(handle, "w", encoding="utf-8", newline="", buffering=SPOOL_BUFFER) as spooled:
            for result in results:
                if type(result) is Rendered:
                    texts.append(result.text)  # first: kept even if the write fails
                    if len(texts) > 1:
                        spooled.write(join)
                    spooled.write(result.text)
                else:
                    out.append(result)
    except OSError:
        if name:
            Path(name).unlink(missing_ok=True)
        # What was written and what is left, as text (the order of records left out and
        # items does not matter to a joined output).
        for result in results:
            if type(result) is Rendered:
                texts.append(result.text)
            else:
                out.append(result)
        return [*out, *texts]
    out.append(Spooled(name, len(texts)))
    return out


def _tallied(results: Iterator[Result], tally: Tally) -> list[Result | str]:
    """The records left out, in order, then the tally of the items."""
    out: list[Result | str] = []
    for result in results:
        if type(result) is Evaluated:
            tally.add(result)
        else:
            out.append(result)
    out.append(Tallied(tally))
    return out


class _Failure(Exception):
    """A file a worker could not read: its message, raised again in the parent as an
    InputError (exceptions with keyword arguments do not survive pickling whole)."""


def _context(setup: _Setup) -> multiprocessing.context.BaseContext:
    """How workers start: forked from this process where it runs a single thread (it has
    bridge imported and the rules loaded: the workers start at once, half a second sooner
    than from a fork server), else from a fork server with bridge imported in it, else
    spawned. A process with other threads is never forked: a lock one of them held would
    stay held in the copy."""
    methods = multiprocessing.get_all_start_methods()
    # Linux only: on macOS a forked process can crash in the system's own libraries (which
    # is why Python spawns there by default).
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    modules = ["bridge.pipeline"]
    for function in (setup.keep, setup.render, setup.renderer, setup.tally):
        module = getattr(getattr(function, "func", function), "__module__", None)
        if isinstance(module, str) and module.startswith("bridge."):
            modules.append(module)
    context.set_forkserver_preload(modules)
    return context


def _raised(results: Iterator[Any]) -> Iterator[Any]:
    """``results``, a :class:`_Failure` raised again as an InputError."""
    for result in results:
        if isinstance(result, _Failure):
            raise InputError(str(result))
        yield result


def _ordered(
    submit: Callable[[Path], Future[Any]], files: list[Path], window: int
) -> Iterator[Any]:
    """Each file's result in input order, at most ``window`` files in flight."""
    pending: deque[Future[Any]] = deque()
    queue = iter(files)
    for path in queue:
        pending.append(submit(path))
        if len(pending) >= window:
            break
    while pending:
        result = pending.popleft().result()
        path_next = next(queue, None)
        if path_next is not None:
            pending.append(submit(path_next))
        if isinstance(result, _Failure):
            raise InputError(str(result))
        yield result


def _parallel(setup: _Setup, rule_set: RuleSet, files: list[Path], jobs: int) -> Iterator[Result]:
    """Both passes in worker processes.

    Why ``concurrent.futures`` and not ``multiprocessing.Pool``: the Pool's worker-handler
    thread waits on the result pipe too, so it spins while each result is being read, a
    third of a core in this process (1.1 s of CPU over 100,000 items), taken from the
    workers on a two-core machine. And a worker that dies (killed, out of memory) fails the
    run here, where a Pool would wait for its result forever.
    """
    _FORKED.update(setup=setup, rule_set=rule_set)
    pool = ProcessPoolExecutor(
        min(jobs, len(files)), _context(setup), initializer=_start_worker, initargs=(setup,)
    )
    _widen_result_pipe(pool)
    # The spool folder goes after the pool has stopped: no worker writes into it then.
    with _spool_folder(setup) as spool:
        try:
            window = 4 * jobs
            # The first pass runs in the workers too, a few files per task, and this
            # process merges the files' pairs in input order, first pair of a status
            # first: the table the serial pass builds. Run here, it left the workers idle
            # for a tenth of the run.
            configured = rule_set.kpi.status_categories
            if _needs_categories(rule_set):
                # In order, a chunk of files per task (each worker's files still come in
                # input order); the pairs are small, so nothing needs a window here. At
                # most four files: the large pages at an export's end, sixteen to a chunk,
                # left one worker waiting on the other.
                chunk = max(1, min(4, len(files) // (8 * jobs)))
                learned = pool.map(_worker_statuses, files, chunksize=chunk)
                table = tuple(_categories(_raised(learned), configured).items())
            else:
                table = tuple(dict(configured).items())
            with _few_collections():
                yield from _merged(pool, table, files, window, spool)
        except BrokenProcessPool:
            raise InputError(
                "a worker process died (killed, or out of memory?); try a smaller --jobs"
            ) from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            _FORKED.clear()


#: The buffer a worker writes a spool file through (a file's renderings are about 300 KB).
SPOOL_BUFFER = 1 << 18


@contextmanager
def _spool_folder(setup: _Setup) -> Iterator[str | None]:
    """Where the workers write their files' renderings when they are joined (see ``join``
    of :func:`evaluate_stream`), removed with whatever is left in it at the end; None when
    they are not. Made by this process: a worker killed mid-file leaves nothing behind."""
    if setup.join is None or (setup.render is None and setup.renderer is None):
        yield None
        return
    try:
        made = tempfile.TemporaryDirectory(prefix="bridge-spool-", ignore_cleanup_errors=True)
    except OSError:  # TMPDIR missing or read-only: the rows go through the pipe instead
        yield None
        return
    with made as folder:
        yield folder


#: The pipe size a worker's results get (Linux's default limit for a process that is not
#: root: /proc/sys/fs/pipe-max-size).
RESULT_PIPE_BYTES = 1 << 20


def _widen_result_pipe(pool: ProcessPoolExecutor) -> None:
    """Give the pipe that carries every worker's results 1 MB instead of 64 KB, where the
    system allows it (Linux).

    Why: a file's rendered rows are about 300 KB. Through 64 KB, a worker's send blocked
    until this process's result thread had read each piece, and that thread needs the GIL
    for every piece it reads: on two cores the workers stood idle for 0.1-0.2 s of a
    3.7 s run. The pipe is reached through the pool's own attributes; where they or the
    call are not there, the pool works as it did."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    reader = getattr(getattr(pool, "_result_queue", None), "_reader", None)
    if setsize is None or reader is None:
        return
    # Over the system's limit, or not a pipe: the default size stays.
    with suppress(OSError, ValueError, AttributeError):
        fcntl.fcntl(reader.fileno(), setsize, RESULT_PIPE_BYTES)


def _merged(
    pool: ProcessPoolExecutor,
    table: tuple[tuple[str, str], ...],
    files: list[Path],
    window: int,
    spool: str | None,
) -> Iterator[Result]:
    """The workers' results in input order (the second pass); a spooled file is removed
    once the consumer asks for what follows it."""
    for results in _ordered(
        lambda path: pool.submit(_worker_evaluate, path, table, spool), files, window
    ):
        for result in results:
            if type(result) is str:
                yield Rendered(result)
            elif type(result) is Spooled:
                try:
                    yield result
                finally:
                    Path(result.path).unlink(missing_ok=True)
            else:
                yield result
