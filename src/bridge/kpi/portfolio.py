"""Portfolio figures: KPIs aggregated across items, by project, by service or by any field.

Ratios are of sums (Σ EV / Σ PV), never means of ratios, so a large project weighs more
than a small one — the PMI convention for rolled-up SPI and CPI. Sums are exact
(``math.fsum``), so a figure does not depend on the order the items arrive in: from an
export, from the store, or merged from several processes.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from bridge.kpi.result import KpiResult
from bridge.model import FIELD_TYPES, Classification, WorkItem

__all__ = [
    "Evaluated",
    "ExactSum",
    "GroupFigures",
    "GroupTally",
    "Portfolio",
    "ReportTally",
    "group_key",
    "group_keys",
    "portfolio",
    "wilson",
]

NONE_GROUP = "(none)"


@dataclass(frozen=True, slots=True)
class Evaluated:
    """One item with its classification and KPIs, the unit the report aggregates."""

    item: WorkItem
    decision: Classification
    kpis: KpiResult
    #: The configured source the item came from (a bridge.yaml source name); None for an
    #: export, where the item's system stands in.
    source: str | None = None


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """The portfolio KPIs of one group (KPIS.md, "Portfolio")."""

    group: str
    items: int
    work_mix: Mapping[str, Mapping[str, float]]
    csat_top2_pct: float | None
    csat_mean: float | None
    csat_n: int
    low_sample: bool
    sla_attainment_pct: float | None
    sla_cycles: int
    tco_total: float | None
    spi: float | None
    cpi: float | None
    #: The 95 % Wilson interval of csat_top2_pct (None without ratings).
    csat_top2_ci: tuple[float, float] | None = None
    #: Items with at least one completed SLA clock: attainment counts clocks, not items.
    sla_items: int = 0
    tco_labour: float | None = None
    tco_other: float | None = None
    #: Items whose EV and PV (for SPI) / EV and AC (for CPI) are both known.
    spi_items: int = 0
    cpi_items: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "items": self.items,
            "work_mix": {k: dict(v) for k, v in self.work_mix.items()},
            "csat_top2_pct": self.csat_top2_pct,
            "csat_mean": self.csat_mean,
            "csat_n": self.csat_n,
            "low_sample": self.low_sample,
            "sla_attainment_pct": self.sla_attainment_pct,
            "sla_cycles": self.sla_cycles,
            "tco_total": self.tco_total,
            "spi": self.spi,
            "cpi": self.cpi,
            "csat_top2_ci": list(self.csat_top2_ci) if self.csat_top2_ci else None,
            "sla_items": self.sla_items,
            "tco_labour": self.tco_labour,
            "tco_other": self.tco_other,
            "spi_items": self.spi_items,
            "cpi_items": self.cpi_items,
        }


def group_keys(by: str) -> Callable[[WorkItem], tuple[str, ...]]:
    """The groups an item belongs to: one, except for list fields (``labels``,
    ``components``), where an item counts in the group of each of its values."""
    single = group_key(by)
    if not by.startswith("raw.") and FIELD_TYPES.get(by) == "list":

        def each(item: WorkItem) -> tuple[str, ...]:
            values: tuple[str, ...] = getattr(item, by)
            return tuple(dict.fromkeys(v for v in values if v)) or (NONE_GROUP,)

        return each
    return lambda item: (single(item),)


def group_key(by: str) -> Callable[[WorkItem], str]:
    """How items are grouped: ``project``, ``service``, a field name or ``raw.<path>``."""
    if by.startswith("raw."):
        path = by[4:].split(".")

        def raw_key(item: WorkItem) -> str:
            value: Any = item.raw
            for part in path:
                value = value.get(part) if isinstance(value, Mapping) else None
            if isinstance(value, Mapping):
                value = value.get("display_value", value.get("value"))
            return NONE_GROUP if value in (None, "") else str(value)

        return raw_key

    def field_key(item: WorkItem) -> str:
        value = getattr(item, by)
        if isinstance(value, tuple):
            return ", ".join(value) if value else NONE_GROUP
        return NONE_GROUP if value in (None, "") else str(value)

    return field_key


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion, in percent (95 % by default), or None for
    n = 0. Why Wilson: unlike the normal approximation it stays inside 0–100 % and is honest
    at small n and at 0 % or 100 %, which is where CSAT samples of a few ratings live; an
    interval says how sure a figure is, where a fixed "low n" threshold only says "unsure"."""
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _number(value: Any) -> TypeGuard[float]:
    """KPI figures are floats; anything else (None, a text from an old record) is not one."""
    return isinstance(value, float)


class ExactSum:
    """A running sum with no rounding error until it is read (Shewchuk's partials, as
    ``math.fsum`` keeps them), so a report can add items up as they stream by and still
    give the figure ``math.fsum`` would give over all of them, in any order. A sum too
    large for a float reads as infinite (the report says why) rather than raising."""

    __slots__ = ("_overflowed", "_partials", "count")

    def __init__(self) -> None:
        self.count = 0
        self._partials: list[float] = []
        self._overflowed = 0.0

    def add(self, x: float) -> None:
        self.count += 1
        if self._overflowed or not math.isfinite(x):
            self._overflowed += x
            return
        partials = self._partials
        i = 0
        for partial in partials:
            big, small = (x, partial) if abs(x) >= abs(partial) else (partial, x)
            high = big + small
            if not math.isfinite(high):  # past the largest float: the sum is infinite
                self._overflowed = high
                return
            low = small - (high - big)
            if low:
                partials[i] = low
                i += 1
            x = high
        partials[i:] = [x]

    def merge(self, other: ExactSum) -> None:
        """Add ``other``'s items: its partials are exact parts of its sum, so adding them
        gives what adding its items one by one gives, unless a partial sum passes the
        largest float on the way (then, as when adding, the order can decide between
        infinite and finite)."""
        count = self.count + other.count
        if other._overflowed:
            self._overflowed += other._overflowed
        else:
            for partial in other._partials:
                self.add(partial)
        self.count = count

    @property
    def value(self) -> float:
        if self._overflowed:
            return self._overflowed
        try:
            return math.fsum(self._partials)
        except OverflowError:  # the exact sum is beyond the largest float
            return math.copysign(math.inf, self._partials[-1])


class GroupTally:
    """The running figures of one group: everything :class:`GroupFigures` needs, and
    nothing per item, so memory does not grow with the items."""

    __slots__ = (
        "ac",
        "completed",
        "ev_ac",
        "ev_pv",
        "items",
        "labour",
        "met",
        "mix",
        "other",
        "pv",
        "ratings",
        "sla_items",
        "tco",
        "top2",
    )

    def __init__(self) -> None:
        self.items = 0
        self.mix: Counter[str] = Counter()
        self.ratings = ExactSum()
        self.top2 = 0
        self.completed = 0
        self.met = 0
        self.sla_items = 0
        self.tco = ExactSum()
        self.labour = ExactSum()
        self.other = ExactSum()
        self.ev_pv = ExactSum()  # Σ EV over items with EV and PV
        self.pv = ExactSum()
        self.ev_ac = ExactSum()  # Σ EV over items with EV and AC
        self.ac = ExactSum()

    def add(self, e: Evaluated) -> None:
        self.items += 1
        self.mix[e.decision.work_type] += 1
        values = e.kpis.values
        rating = values.get("csat.rating")
        if _number(rating):
            self.ratings.add(rating)
            self.top2 += rating >= 4
        flags = e.kpis.facts.get("sla_completed")
        if flags:
            self.sla_items += 1
            self.completed += len(flags)
            self.met += sum(1 for breached in flags if not breached)
        if e.decision.work_type == "service":
            for name, tally in (
                ("tco.total", self.tco),
                ("tco.labour_cost", self.labour),
                ("tco.other_cost", self.other),
            ):
                value = values.get(name)
                if _number(value):
                    tally.add(value)
        ev = values.get("evm.ev")
        if _number(ev):
            pv, ac = values.get("evm.pv"), values.get("evm.ac")
            if _number(pv):
                self.ev_pv.add(ev)
                self.pv.add(pv)
            if _number(ac):
                self.ev_ac.add(ev)
                self.ac.add(ac)

    def merge(self, other: GroupTally) -> None:
        """Add the items ``other`` counted (the figures of both together)."""
        self.items += other.items
        self.mix.update(other.mix)
        self.top2 += other.top2
        self.completed += other.completed
        self.met += other.met
        self.sla_items += other.sla_items
        for mine, theirs in (
            (self.ratings, other.ratings),
            (self.tco, other.tco),
            (self.labour, other.labour),
            (self.other, other.other),
            (self.ev_pv, other.ev_pv),
            (self.pv, other.pv),
            (self.ev_ac, other.ev_ac),
            (self.ac, other.ac),
        ):
            mine.merge(theirs)

    def figures(self, group: str, min_sample: int) -> GroupFigures:
        total, n = self.items, self.ratings.count
        return GroupFigures(
            group=group,
            items=total,
            work_mix={
                w: {"count": self.mix[w], "share": self.mix[w] / total if total else 0.0}
                for w in ("project", "service", "unclassified")
            },
            csat_top2_pct=_ratio(100.0 * self.top2, n),
            csat_mean=_ratio(self.ratings.value, n),
            csat_n=n,
            low_sample=n < min_sample,
            sla_attainment_pct=_ratio(100.0 * self.met, self.completed),
            sla_cycles=self.completed,
            tco_total=self.tco.value if self.tco.count else None,
            spi=_ratio(self.ev_pv.value, self.pv.value) if self.pv.count else None,
            cpi=_ratio(self.ev_ac.value, self.ac.value) if self.ac.count else None,
            csat_top2_ci=wilson(self.top2, n),
            sla_items=self.sla_items,
            tco_labour=self.labour.value if self.labour.count else None,
            tco_other=self.other.value if self.other.count else None,
            spi_items=self.pv.count,
            cpi_items=self.ac.count,
        )


class Portfolio:
    """Portfolio figures built as items arrive: per group of ``by`` (None: no groups) and
    for all items together. Adding is all a streaming report keeps per item."""

    def __init__(self, by: str | None, *, min_sample: int = 30) -> None:
        self.by = by
        self.min_sample = min_sample
        self._keys = group_keys(by) if by is not None else None
        self._groups: dict[str, GroupTally] = defaultdict(GroupTally)
        self._total = GroupTally()

    def add(self, e: Evaluated) -> None:
        self._total.add(e)
        if self._keys is not None:
            for name in self._keys(e.item):
                self._groups[name].add(e)

    @property
    def items(self) -> int:
        return self._total.items

    def merge(self, other: Portfolio) -> None:
        """Add the items ``other`` (grouped by the same field) counted."""
        if other.by != self.by:
            raise ValueError(f"cannot merge figures by {other.by} into figures by {self.by}")
        self._total.merge(other._total)
        for name, tally in other._groups.items():
            self._groups[name].merge(tally)

    def result(self) -> tuple[list[GroupFigures], GroupFigures]:
        """Figures per group (sorted by name) and for all items together."""
        rows = [self._groups[name].figures(name, self.min_sample) for name in sorted(self._groups)]
        return rows, self._total.figures("all items", self.min_sample)

    def __getstate__(self) -> dict[str, Any]:
        # The group-key function is a closure, which does not pickle: made again from `by`.
        return {name: value for name, value in vars(self).items() if name != "_keys"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._keys = group_keys(self.by) if self.by is not None else None


class ReportTally:
    """Every running figure of ``bridge report``: all items together, and one section per
    work type (service, project) or, with ``group_by``, one by that field.

    Why a class of its own: with ``--jobs`` each worker adds up its files' items into one
    (figures of a few KB) and the report merges them, where sending every item, its
    decision and its KPIs to be added up in one process left the workers waiting on it
    (1.2x on two cores)."""

    def __init__(self, group_by: str | None, *, min_sample: int = 30) -> None:
        self.everything = Portfolio(None, min_sample=min_sample)
        self.sections: dict[str, tuple[Portfolio, str | None]]
        if group_by is not None:
            self.sections = {group_by: (Portfolio(group_by, min_sample=min_sample), None)}
        else:
            self.sections = {
                work: (Portfolio(work, min_sample=min_sample), work)
                for work in ("service", "project")
            }

    @property
    def items(self) -> int:
        return self.everything.items

    def add(self, e: Evaluated) -> None:
        self.everything.add(e)
        for tally, work_type in self.sections.values():
            if work_type is None or e.decision.work_type == work_type:
                tally.add(e)

    def merge(self, other: ReportTally) -> None:
        self.everything.merge(other.everything)
        for name, (tally, _) in self.sections.items():
            tally.merge(other.sections[name][0])


def portfolio(
    evaluated: Iterable[Evaluated], by: str | None, *, min_sample: int = 30
) -> tuple[list[GroupFigures], GroupFigures]:
    """Figures per group (sorted by name) and for all items together."""
    tally = Portfolio(by, min_sample=min_sample)
    for e in evaluated:
        tally.add(e)
    return tally.result()
