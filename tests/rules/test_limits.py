"""What a rule file can make bridge do is bounded: values, nesting, durations, SLA targets."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bridge.rules.source import MAX_DEPTH, MAX_NODES, parse_yaml
from bridge.timefmt import MAX_DURATION, DurationTooLongError, parse_duration


def parse(text: str) -> tuple[object, list[str]]:
    doc, problems = parse_yaml("r.yaml", text.encode())
    return (doc.data if doc else None), [str(p) for p in problems]


def test_merge_keys_follow_yaml_first_merged_wins_own_keys_win() -> None:
    data, problems = parse("a: &a {x: 1, y: 1}\nb: &b {x: 2, z: 2}\nc: {<<: [*a, *b], y: 3}\n")
    assert problems == []  # x in both merged mappings is not a duplicate key
    assert data == {"a": {"x": 1, "y": 1}, "b": {"x": 2, "z": 2}, "c": {"x": 1, "z": 2, "y": 3}}


def test_a_key_written_twice_is_still_a_duplicate() -> None:
    _, problems = parse("a: {x: 1, x: 2}\n")
    assert problems == [
        "r.yaml:1:11: duplicate key 'x' (first at line 1, column 5); each key may appear once "
        "in a mapping"
    ]


def test_aliases_within_the_budget_load() -> None:
    data, problems = parse("office: &o {timezone: Europe/Berlin}\nother: *o\nthird: *o\n")
    assert problems == []
    assert data == {name: {"timezone": "Europe/Berlin"} for name in ("office", "other", "third")}


def test_aliases_are_counted_before_they_are_expanded() -> None:
    # 600 values repeated 500 times: 300,000 values from a file of 3 kB.
    text = "a: &a [" + ", ".join(["1"] * 600) + "]\nb: [" + ", ".join(["*a"] * 500) + "]\n"
    data, problems = parse(text)
    assert data is None
    before = 1 + 1 + 1 + 600 + 1 + 1  # the document, a, its list and values, b, its list
    over = (MAX_NODES - before) // 601  # aliases before the one that passes the budget
    col = len("b: [") + 1 + over * len("*a, ")
    assert problems == [
        f"r.yaml:2:{col}: aliases (*name) and merge keys (<<) here expand the file to more "
        f"than {MAX_NODES:,} values; write the repeated part once, or use fewer aliases"
    ]


def test_an_anchor_inside_itself_is_refused() -> None:
    assert parse("x: &a [1, *a]\n") == (
        None,
        [
            "r.yaml:1:11: this alias refers to the anchor it is inside, so the value would "
            "never end; point it at another anchor or write the value out"
        ],
    )


def test_nesting_stops_at_the_limit_and_nothing_else_walks_the_file() -> None:
    text = "x: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    data, problems = parse(text)
    assert data is None
    assert problems == [
        f"r.yaml:1:{MAX_DEPTH + 4}: nesting deeper than {MAX_DEPTH} levels; flatten it "
        "(one all: or any: can hold many conditions)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4h", timedelta(hours=4)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        (" 2w ", timedelta(weeks=2)),
        ("1.5d", timedelta(days=1, hours=12)),
        ("36500d", MAX_DURATION),
    ],
)
def test_durations_as_admins_write_them(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("36501d", "'36501d' is longer than 100 years"),
        ("999999999999w", "'999999999999w' is longer than 100 years"),
        ("9" * 60 + "s", "is longer than 100 years, the longest duration bridge accepts"),
    ],
)
def test_a_duration_too_long_is_refused_not_overflowed(text: str, message: str) -> None:
    with pytest.raises(DurationTooLongError, match=message):
        parse_duration(text)


@pytest.mark.parametrize("text", ["", "h", "4x", "4h x", "-4h", "1" * 65 + "h"])
def test_what_is_not_a_duration_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"write e\.g\. 4h, 1h30m, 5d or 2w") as caught:
        parse_duration(text)
    assert not isinstance(caught.value, DurationTooLongError)
