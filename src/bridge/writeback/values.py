"""bridge's words in the site's own words: value maps for select and choice fields.

bridge decides in a closed vocabulary (``project``, ``execution``, ``breached``...), but a
site's select field offers options an admin named ("Project", "Executing"). A write-back
field may carry an explicit map (``values: {execution: Executing}``); every other value of
the vocabulary is matched to an option case-insensitively. Both are resolved once, when the
connector has read the field's options, and every bridge value that would have no option is
reported then — with the place in bridge.yaml — before anything is written.

A field may also say how a figure is written: ``round`` (decimals) and, for a figure that
moves with the clock (``evm.spi``, ``sla.<name>.remaining_seconds``), ``refresh`` (how often it
is written again). Without them such a figure differs at every evaluation, and every sync
rewrites it.

Pure: the connectors read the options and apply the result.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bridge.errors import ConfigError, ConfigInvalidError, Diagnostic
from bridge.kpi.next_change import moving
from bridge.kpi.sla import SLA_FIGURES
from bridge.model import PHASES, WORK_TYPES
from bridge.timefmt import parse_duration

__all__ = [
    "KPI_FIGURES",
    "MAPPED_FIELD_SCHEMA",
    "MAX_ROUND",
    "MIN_REFRESH",
    "SLA_FIGURES",
    "SLA_STATES",
    "ValueProblem",
    "WritebackOptions",
    "apply_options",
    "cadence_warning",
    "check_value_maps",
    "check_writeback_options",
    "mapped_value",
    "numeric",
    "option_problems",
    "problems_error",
    "resolve_value_map",
    "split_writeback_fields",
    "value_key",
    "vocabulary",
    "writeback_key_problem",
    "writeback_options",
]

MAX_ROUND = 6
# A refresh is a write per item and field: a shorter cadence spends the site's rate limit on
# precision nobody reads, and the worker takes due timers only every few seconds anyway.
MIN_REFRESH = timedelta(minutes=1)
# As bridge.yaml's own durations (config.schema.json, $defs/duration): a connector's settings
# schema stands alone and cannot refer to it. The text also gives its pattern error the
# duration message (bridge.rules.validate).
_DURATION_SCHEMA: Mapping[str, Any] = {
    "type": "string",
    "maxLength": 24,
    "pattern": r"^\s*([0-9]{1,6}(\.[0-9]+)?\s*[wdhmsWDHMS]\s*)+$",
}

# A write-back field as a mapping, in the connectors' settings schemas: its values in the
# site's own words ({field: Phase, values: {execution: Executing}}), and how a figure is
# written ({field: SPI, round: 2, refresh: 1d}).
MAPPED_FIELD_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["field"],
    "properties": {
        "field": {"type": "string", "minLength": 1},
        "values": {
            "description": "bridge's value → the site's option (others match case-insensitively)",
            "type": "object",
            "additionalProperties": {"type": "string", "minLength": 1},
        },
        "round": {
            "description": "decimals a number is written with (0-6); numbers only",
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_ROUND,
        },
        "refresh": {
            **_DURATION_SCHEMA,
            "description": (
                "how often a figure that moves with the clock is written again, e.g. 15m, "
                "1h, 1d (at least 1m); without it every sync rewrites it"
            ),
        },
    },
}

# Every KPI bridge computes, by group (docs/KPIS.md): what ``writeback.fields`` may name.
# A key bridge never computes would be accepted and never written, so bridge.yaml is checked
# against this list (tests/test_config.py compares it with what the KPI engine produces).
KPI_FIGURES: Mapping[str, tuple[str, ...]] = {
    "evm": (
        "bac",
        "planned_pct",
        "percent_complete",
        "percent_complete_source",
        "pv",
        "ev",
        "ac",
        "sv",
        "cv",
        "spi",
        "cpi",
        "eac",
        "etc",
        "vac",
        "es_days",
        "at_days",
        "sv_days",
    ),
    "effort": ("planned_hours", "actual_hours", "forecast_hours", "variance_pct"),
    "schedule": ("slip_days", "slip_business_days"),
    "cost": ("variance_pct",),
    "csat": ("rating", "satisfied"),
    "tco": ("labour_hours", "labour_cost", "other_cost", "total"),
}
_DECISIONS: tuple[str, ...] = ("work_type", "phase", "rule")
# Item fields admins know from the rules, and the KPI that carries them.
_FIELD_TO_KPI: Mapping[str, str] = {
    "spent_hours": "actual_hours",
    "estimate_hours": "planned_hours",
    "remaining_hours": "forecast_hours",
    "satisfaction": "rating",
    "budget": "bac",
    "actual_cost": "ac",
}


def _suggest(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def writeback_key_problem(key: str) -> str | None:
    """None when bridge computes a value under the ``writeback.fields`` key ``key``;
    otherwise what is wrong with it and what to write instead."""
    if key in _DECISIONS:
        return None
    group, _, figure = key.partition(".")
    if group == "sla":
        name, _, sla_figure = figure.rpartition(".")
        if not name or not sla_figure:
            return (
                f"{key!r} is not an SLA figure; write sla.<SLA name>.<figure>, e.g. "
                f"sla.time-to-resolution.state (figures: {', '.join(SLA_FIGURES)})"
            )
        if sla_figure in SLA_FIGURES:
            return None
        return (
            f"SLA figure {sla_figure!r} of {key!r} is never computed"
            f"{_suggest(sla_figure, SLA_FIGURES)} (figures: {', '.join(SLA_FIGURES)})"
        )
    figures = KPI_FIGURES.get(group)
    if figures is None:
        everything = [*_DECISIONS, *(f"{g}.{f}" for g, fs in KPI_FIGURES.items() for f in fs)]
        return (
            f"unknown KPI {key!r}{_suggest(key, everything)} (work_type, phase, rule, a KPI "
            f"of {', '.join(KPI_FIGURES)}, or sla.<name>.<figure>; see docs/KPIS.md)"
        )
    if figure in figures:
        return None
    instead = _FIELD_TO_KPI.get(figure)
    hint = (
        f"; did you mean '{group}.{instead}'?"
        if instead in figures
        else _suggest(f"{group}.{figure}", [f"{group}.{f}" for f in figures])
    )
    return (
        f"unknown KPI {key!r} (bridge computes no such value, so the field would only be "
        f"cleared){hint} "
        f"({group} KPIs: {', '.join(figures)})"
    )


SLA_STATES: tuple[str, ...] = (
    "running",
    "at_risk",
    "paused",
    "breaching",
    "met",
    "breached",
    "cancelled",
)
# Values newer than many sites' fields, and the value whose option stands in when a field has
# none for them: a "SLA state" select made before at-risk existed shows an at-risk clock as
# running, as it did before, rather than stopping the whole source at startup. (A value map
# or an added option still gives it its own; without a threshold it is never written.)
_STAND_INS: Mapping[str, str] = {"at_risk": "running"}
_YES_NO: tuple[str, ...] = ("yes", "no")
_PERCENT_SOURCES: tuple[str, ...] = ("field", "done", "effort")


def vocabulary(key: str, rule_ids: Sequence[str] = ()) -> tuple[str, ...] | None:
    """Every value bridge may write under writeback key ``key``; None when it is open
    (numbers, dates, free text): such a key cannot go to a select field and be checked."""
    if key == "work_type":
        return WORK_TYPES
    if key == "phase":
        return PHASES
    if key == "rule":
        return tuple(rule_ids) if rule_ids else None
    if key.startswith("sla."):
        figure = key.rsplit(".", 1)[-1]
        if figure == "state":
            return SLA_STATES
        if figure in ("breached", "ever_breached", "at_risk"):
            return _YES_NO
        if figure == "source":
            return ("computed", "native")
    if key == "evm.percent_complete_source":
        return _PERCENT_SOURCES
    return None


def value_key(value: Any) -> str | None:
    """The text a bridge value is looked up by in a value map (None: never mapped)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value.casefold()
    return None


def mapped_value(value: Any, mapping: Mapping[str, str] | None) -> Any:
    """``value`` in the site's words when the map names it; unchanged otherwise."""
    if not mapping:
        return value
    key = value_key(value)
    if key is None:
        return value
    return mapping.get(key, value)


@dataclass(frozen=True, slots=True)
class ValueProblem:
    """A bridge value without an option, or a map entry naming no option.

    ``path`` is relative to the write-back field's entry (``("values", "execution")`` for a
    map entry, ``()`` for the entry itself), so the caller can name the line in bridge.yaml.
    """

    path: tuple[str, ...]
    message: str


def _options_text(options: Sequence[str]) -> str:
    shown = ", ".join(repr(o) for o in options[:20])
    return shown + (f" and {len(options) - 20} more" if len(options) > 20 else "")


def resolve_value_map(
    key: str,
    field_label: str,
    explicit: Mapping[str, str],
    options: Sequence[tuple[str, str]] | None,
    values: Sequence[str] | None,
) -> tuple[dict[str, str], list[ValueProblem]]:
    """The map (casefolded bridge value → the site's value) for one write-back field.

    :param explicit: the admin's ``values:`` map as written.
    :param options: the field's options as (stored value, label) pairs; None when the site
        did not say (a text field, or options that could not be read): the explicit map is
        then taken as written and nothing is checked.
    :param values: the vocabulary of ``key`` (:func:`vocabulary`), None when open.
    """
    problems: list[ValueProblem] = []
    by_text: dict[str, str] = {}
    if options is not None:
        for stored, _label in options:
            by_text.setdefault(stored.casefold(), stored)
        for stored, label in options:
            by_text.setdefault(label.casefold(), stored)
    names = sorted({label or stored for stored, label in options or ()})
    result: dict[str, str] = {}
    for bridge_value, site_value in explicit.items():
        site = str(site_value)
        if values is not None and str(bridge_value).casefold() not in {
            v.casefold() for v in values
        }:
            problems.append(
                ValueProblem(
                    ("values", str(bridge_value)),
                    f"{key} never takes the value {bridge_value!r} "
                    f"(its values: {', '.join(values)})",
                )
            )
            continue
        if options is not None:
            found = by_text.get(site.casefold())
            if found is None:
                problems.append(
                    ValueProblem(
                        ("values", str(bridge_value)),
                        f"{site!r} is not an option of field {field_label} "
                        f"(options: {_options_text(names)})",
                    )
                )
                continue
            site = found
        result[str(bridge_value).casefold()] = site
    if options is None or values is None:
        return result, problems
    unmatched = []
    for value in values:
        folded = value.casefold()
        if folded in result:
            continue
        # An option written in words is the value too: "At risk" for at_risk.
        found = by_text.get(folded) or by_text.get(folded.replace("_", " "))
        if found is None:
            unmatched.append(value)
        else:
            result[folded] = found
    for value in list(unmatched):
        stand_in = _STAND_INS.get(value)
        if stand_in is not None and stand_in in result:
            result[value.casefold()] = result[stand_in]
            unmatched.remove(value)
    if unmatched:
        example = ", ".join(f"{v}: <option>" for v in unmatched[:3])
        problems.append(
            ValueProblem(
                (),
                f"field {field_label} has no option for {', '.join(repr(v) for v in unmatched)} "
                f"(options: {_options_text(names)}); map them in writeback.fields.{key} as "
                f"{{field: ..., values: {{{example}}}}}, or add the options on the site",
            )
        )
    return result, problems


def split_writeback_fields(
    fields: Mapping[str, Any],
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """``writeback.fields`` as (key → field, key → value map): an entry is a field name, or
    ``{field: name, values: {bridge value: site value}}``."""
    targets: dict[str, str] = {}
    values: dict[str, dict[str, str]] = {}
    for key, entry in fields.items():
        if isinstance(entry, Mapping):
            targets[key] = str(entry["field"])
            values[key] = {str(k): str(v) for k, v in (entry.get("values") or {}).items()}
        else:
            targets[key] = str(entry)
    return targets, values


Located = tuple[tuple[str | int, ...], str]


def problems_error(
    source: str,
    problems: Sequence[Located],
    locate: Callable[[tuple[str | int, ...]], Diagnostic] | None,
) -> ConfigError:
    """One error listing every (path in the source's entry, message): at their lines in
    bridge.yaml when the settings came from it, by their paths otherwise."""
    if locate is not None:
        return ConfigInvalidError(
            [replace(locate(path), message=f"source {source!r}: {msg}") for path, msg in problems]
        )
    return ConfigError(
        "\n".join(f"source {source!r}: {'.'.join(map(str, path))}: {msg}" for path, msg in problems)
    )


def check_value_maps(
    source: str,
    targets: Mapping[str, tuple[str, Sequence[tuple[str, str]] | None]],
    explicit: Mapping[str, Mapping[str, str]],
    rule_ids: Sequence[str],
    locate: Callable[[tuple[str | int, ...]], Diagnostic] | None,
) -> dict[str, dict[str, str]]:
    """The value map of every write-back key (key → (field label, its options or None)),
    or one ConfigError naming every bridge value that has no option, before any write."""
    maps: dict[str, dict[str, str]] = {}
    problems: list[Located] = []
    for key, (label, options) in targets.items():
        resolved, found = resolve_value_map(
            key,
            label,
            explicit.get(key, {}),
            options,
            vocabulary(key, rule_ids) if options is not None else None,
        )
        if resolved:
            maps[key] = resolved
        problems.extend((("writeback", "fields", key, *p.path), p.message) for p in found)
    if problems:
        raise problems_error(source, problems, locate)
    return maps


# -- how a figure is written: round and refresh ----------------------------------------------

# What bridge writes under the keys that do not hold a number (every other key it computes
# does): what ``round`` is refused on, in the words of its message.
_NOT_NUMBERS: Mapping[str, str] = {
    "work_type": "text",
    "phase": "text",
    "rule": "text",
    "evm.percent_complete_source": "text",
    "csat.satisfied": "a yes/no flag",
}
_SLA_NOT_NUMBERS: Mapping[str, str] = {
    "state": "text",
    "source": "text",
    "breached": "a yes/no flag",
    "ever_breached": "a yes/no flag",
    "at_risk": "a yes/no flag",
    "breach_time": "a date-time",
}


def _not_a_number(key: str) -> str | None:
    if key.startswith("sla."):
        return _SLA_NOT_NUMBERS.get(key.rsplit(".", 1)[-1])
    return _NOT_NUMBERS.get(key)


def numeric(key: str) -> bool:
    """Whether bridge writes a number under ``writeback.fields`` key ``key`` (False for a key
    it computes nothing under): only a number can be rounded."""
    return writeback_key_problem(key) is None and _not_a_number(key) is None


@dataclass(frozen=True, slots=True)
class WritebackOptions:
    """How one write-back figure is written, beyond the field it goes to.

    ``round``: the decimals it is written with, so that a figure that moved by less than its
    last decimal plans no write. ``refresh``: for a figure that moves with the clock, how
    often it is written again; between two refreshes the value of the period's start stands,
    where without it every evaluation computes (and writes) a new one.
    """

    round: int | None = None
    refresh: timedelta | None = None


def _schema_accepts_duration(text: str) -> bool:
    return len(text) <= _DURATION_SCHEMA["maxLength"] and bool(
        re.search(_DURATION_SCHEMA["pattern"], text)
    )


def option_problems(key: str, entry: object) -> list[ValueProblem]:
    """What is wrong with the ``round`` and ``refresh`` of one ``writeback.fields`` entry that
    the schema cannot see, as it knows the entry and not what bridge computes under the key.

    Values the schema refuses (``round: two``, ``refresh: soon``) are left to it, and so is a
    key bridge computes nothing under (:func:`writeback_key_problem` names it): each mistake is
    reported once, as itself.
    """
    if not isinstance(entry, Mapping) or writeback_key_problem(key) is not None:
        return []
    problems: list[ValueProblem] = []
    digits = entry.get("round")
    kind = _not_a_number(key)
    if kind is not None and isinstance(digits, int) and not isinstance(digits, bool):
        problems.append(
            ValueProblem(
                ("round",),
                f"round: {digits} rounds numbers, and {key} is {kind}; remove round",
            )
        )
    refresh = entry.get("refresh")
    if refresh is None:
        return problems
    if not moving(key):
        problems.append(
            ValueProblem(
                ("refresh",),
                f"{key} does not move with the clock: it changes only when the item does or "
                "at an instant bridge evaluates it at anyway (a breach, a due date), so between "
                "evaluations it never changes and a refresh would rewrite the same value; "
                "remove refresh",
            )
        )
    elif isinstance(refresh, str) and _schema_accepts_duration(refresh):
        try:
            period = parse_duration(refresh)
        except ValueError as exc:  # over the 100 years bridge accepts
            problems.append(ValueProblem(("refresh",), str(exc)))
        else:
            if period < MIN_REFRESH:
                problems.append(
                    ValueProblem(
                        ("refresh",),
                        f"refresh: {refresh.strip()} is shorter than a minute, the shortest "
                        "refresh (each one is a write per item); write at least 1m",
                    )
                )
    return problems


def writeback_options(fields: Mapping[str, Any]) -> dict[str, WritebackOptions]:
    """The options of every ``writeback.fields`` entry that has any, already checked (the
    schema and :func:`option_problems`); entries without options are left out."""
    options: dict[str, WritebackOptions] = {}
    for key, entry in fields.items():
        if not isinstance(entry, Mapping):
            continue
        digits, refresh = entry.get("round"), entry.get("refresh")
        if digits is None and refresh is None:
            continue
        options[str(key)] = WritebackOptions(
            round=None if digits is None else int(digits),  # YAML's 2.0 is the schema's 2
            refresh=None if refresh is None else parse_duration(str(refresh)),
        )
    return options


def check_writeback_options(
    source: str,
    fields: Mapping[str, Any],
    locate: Callable[[tuple[str | int, ...]], Diagnostic] | None = None,
) -> dict[str, WritebackOptions]:
    """:func:`writeback_options` of a source's ``writeback.fields`` (schema-checked), or one
    ConfigError naming every problem of :func:`option_problems`: settings parsed without
    bridge.yaml (a test, a plugin) get the checks load_config gives bridge.yaml."""
    problems: list[Located] = [
        (("writeback", "fields", str(key), *p.path), p.message)
        for key, entry in fields.items()
        for p in option_problems(str(key), entry)
    ]
    if problems:
        raise problems_error(source, problems, locate)
    return writeback_options(fields)


def cadence_warning(key: str, entry: object) -> str | None:
    """The warning for a figure that moves with the clock written without ``refresh`` (None
    for any other entry): it differs at every evaluation, so every sync rewrites it on every
    item, spending the site's rate limit and filling its history with nothing new."""
    if not moving(key) or (isinstance(entry, Mapping) and "refresh" in entry):
        return None
    refresh, digits = ("1h", 0) if key.startswith("sla.") else ("1d", 2)
    rounded = isinstance(entry, Mapping) and "round" in entry
    fix = f"add refresh: {refresh}" + ("" if rounded else f" (and round: {digits})")
    if not isinstance(entry, Mapping):
        fix += f", e.g. {{field: {entry}, refresh: {refresh}, round: {digits}}}"
    return (
        f"writeback.fields.{key} moves with the clock and has no refresh: every sync rewrites "
        f"it; {fix}"
    )


# Past 2**53 a float has no fraction left to round, and its digits would exceed Decimal's.
_WHOLE_FLOATS = 2.0**53


def _rounded(value: object, digits: int) -> object:
    """``value`` to ``digits`` decimals as a person rounds it (half away from zero, on the
    number as printed: 0.125 → 0.13 and 1.005 → 1.01, where ``round`` gives 0.12 and 1.0);
    anything but a finite float is returned as it is."""
    if not isinstance(value, float) or not math.isfinite(value) or abs(value) >= _WHOLE_FLOATS:
        return value  # ints are whole already; bools, text, dates and None are not numbers
    exact = Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return float(exact) + 0.0  # -0.0 → 0.0: a site shows "-0" otherwise


def apply_options(
    values: Mapping[str, object], options: Mapping[str, WritebackOptions]
) -> dict[str, object]:
    """``values`` (writeback key → value) with every number rounded as its key's ``round``
    says. Applied where the value is planned, so that the value compared with the site's is
    the one written: a figure that moved by less than its last decimal plans no write."""
    result = dict(values)
    for key, option in options.items():
        if option.round is not None and key in result:
            result[key] = _rounded(result[key], option.round)
    return result
