"""How long a rule regex takes on hostile text — printed, never asserted.

Run ``.venv/bin/python bench/bench_regex.py [--repeats N]``; see bench/README.md. Every
``matches:`` pattern of the shipped rules (``rules/``, ``examples/``) and of
``bench_classify.py``'s 50-rule set, plus patterns known to make backtracking matchers
explode, are compiled as a rule would compile them and searched in 255-character texts
built to be their worst case. The target is at most 1 ms per search: RE2 takes time linear
in the text whatever the pattern, so a hostile pattern cannot hang classification.

For contrast, Python's ``re`` runs the issue 12 pattern on a few short texts, in a child
process with a deadline (on 255 characters it would not finish in our lifetime).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bridge.rules.regex import Regex
from bridge.rules.source import parse_yaml

REPO = Path(__file__).resolve().parents[1]
TARGET_US = 1000.0
LENGTH = 255

# (pattern, why it is here): the classic catastrophic-backtracking shapes.
ADVERSARIAL: tuple[tuple[str, str], ...] = (
    (r"^([A-Za-z]+\s?)+:", "issue 12: words then a colon"),
    (r"^(a+)+$", "nested quantifier"),
    (r"(a|aa)+$", "overlapping alternatives"),
    (r"(a|a?)+$", "optional inside a repeat"),
    (r"^(\d+)*$", "nested quantifier, digits"),
    (r"(\w+\s?)*$", "words and optional spaces"),
    (r"^(\w+\s?)+$", "words and optional spaces, anchored"),
    (r"(.*a){20}", "20 nested .*"),
    (r"(x+x+)+y", "two greedy runs in a repeat"),
    (r"^(([a-z])+.)+[A-Z]([a-z])+$", "OWASP ReDoS example"),
    (
        r"^([a-zA-Z0-9])(([\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}"
        r"(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$",
        "OWASP e-mail validation",
    ),
    (r"(?i)\b(prod|production|outage)\b", "a typical admin pattern"),
    (r"[^\W\d_]{3,}-\d+\b", "Unicode classes and boundaries"),
)


def inputs() -> dict[str, str]:
    """255-character texts, each the worst case of some pattern above: a long run that
    almost matches and then fails at the very end."""
    return {
        "letters + !": "A" * (LENGTH - 1) + "!",
        "lower a + !": "a" * (LENGTH - 1) + "!",
        "words + !": ("Printer down " * 20)[: LENGTH - 1] + "!",
        "digits + x": "1" * (LENGTH - 1) + "x",
        "x run, no y": "x" * LENGTH,
        "e-mail-ish": ("a" * (LENGTH - 2)) + "@!",
        "umlauts + !": "ä" * (LENGTH - 1) + "!",
        "spaces + x": " " * (LENGTH - 1) + "x",
        "ab and spaces": ("ab " * LENGTH)[:LENGTH],
    }


def _matches(node: Any, ignore_case: bool = False) -> Iterator[tuple[str, bool]]:
    if isinstance(node, dict):
        if isinstance(node.get("matches"), str):
            yield node["matches"], node.get("ignore_case") is True
        for value in node.values():
            yield from _matches(value)
    elif isinstance(node, list):
        for value in node:
            yield from _matches(value)


def shipped_patterns() -> list[tuple[str, bool, str]]:
    """(pattern, ignore_case, where) of every ``matches:`` in rules/ and examples/."""
    found = []
    for folder in ("rules", "examples"):
        for path in sorted((REPO / folder).rglob("*.y*ml")):
            doc, _ = parse_yaml(str(path), path.read_bytes())
            if doc is not None:
                where = str(path.relative_to(REPO))
                found.extend((p, i, where) for p, i in _matches(doc.data))
    return found


def bench_patterns() -> list[tuple[str, bool, str]]:
    """The regexes of bench_classify.py's hand-written 50-rule set."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_classify import RULES_50_YAML

    doc, _ = parse_yaml("bench_classify.py", RULES_50_YAML.encode())
    assert doc is not None
    return [(p, i, "bench_classify 50 rules") for p, i in _matches(doc.data)]


def search_us(regex: Regex, text: str, repeats: int) -> float:
    """Median µs of one search (the first, which builds RE2's DFA, is timed apart)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        regex.search(text)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def measure(pattern: str, ignore_case: bool, repeats: int) -> dict[str, Any]:
    start = time.perf_counter_ns()
    regex = Regex(pattern, ignore_case=ignore_case)  # not the cache: its real compile time
    compile_us = (time.perf_counter_ns() - start) / 1000
    texts = inputs()
    first = next(iter(texts.values()))
    start = time.perf_counter_ns()
    regex.search(first)
    cold_us = (time.perf_counter_ns() - start) / 1000
    worst_name, worst_us = max(
        ((name, search_us(regex, text, repeats)) for name, text in texts.items()),
        key=lambda pair: pair[1],
    )
    return {"compile": compile_us, "cold": cold_us, "worst": worst_us, "on": worst_name}


PYTHON_RE = """
import re, sys, time
pattern = re.compile(r"^([A-Za-z]+\\s?)+:")
for n in map(int, sys.argv[1:]):
    start = time.perf_counter()
    pattern.search("A" * n + "!")
    print(n, time.perf_counter() - start, flush=True)
"""


def python_re_contrast(deadline_s: float) -> list[tuple[int, float]]:
    """Python's re on the issue 12 pattern, 16-24 letters and a !, in a child process."""
    lengths = [16, 18, 20, 22, 24]
    try:
        done = subprocess.run(  # noqa: S603 - this interpreter, our own script
            [sys.executable, "-c", PYTHON_RE, *map(str, lengths)],
            capture_output=True,
            text=True,
            timeout=deadline_s,
            check=False,
        )
        out = done.stdout
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    return [(int(n), float(s)) for n, s in (line.split() for line in out.splitlines())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=51, help="searches per text (median)")
    parser.add_argument("--no-contrast", action="store_true", help="skip Python's re")
    args = parser.parse_args()

    rows: list[tuple[str, bool, str]] = [
        *shipped_patterns(),
        *bench_patterns(),
        *((p, False, f"adversarial: {why}") for p, why in ADVERSARIAL),
    ]
    shipped = sum(1 for _, _, where in rows if where.startswith(("rules", "examples")))
    print(f"bridge regex benchmark: RE2 via google-re2, texts of {LENGTH} characters")
    print(f"  CPython {sys.version.split()[0]}; {args.repeats} searches per text, median")
    print(
        f"  patterns: {shipped} in the shipped rules (rules/, examples/), "
        f"{len(rows) - shipped - len(ADVERSARIAL)} in bench_classify's 50-rule set, "
        f"{len(ADVERSARIAL)} adversarial"
    )
    print()
    header = f"  {'pattern':<44} {'compile µs':>10} {'1st µs':>8} {'worst µs':>9}  worst on"
    print(header)
    print("  " + "-" * (len(header) - 2))
    worst_all = 0.0
    over = 0
    for pattern, ignore_case, where in rows:
        shown = ("(i) " if ignore_case else "") + pattern
        shown = shown if len(shown) <= 44 else shown[:41] + "..."
        m = measure(pattern, ignore_case, args.repeats)
        worst_all = max(worst_all, m["worst"])
        over += m["worst"] > TARGET_US
        print(
            f"  {shown:<44} {m['compile']:>10.0f} {m['cold']:>8.1f} {m['worst']:>9.1f}"
            f"  {m['on']} ({where})"
        )
    print()
    verdict = "met" if over == 0 else f"NOT met by {over}"
    print(
        f"  slowest search: {worst_all:.1f} µs on {LENGTH} characters; target ≤ "
        f"{TARGET_US:.0f} µs per search: {verdict}"
    )
    if args.no_contrast:
        return
    print()
    print(r"Python's re on ^([A-Za-z]+\s?)+: (n letters and a !; stopped after 60 s)")
    timings = python_re_contrast(60.0)
    for n, seconds in timings:
        print(f"  n = {n:>3}: {seconds * 1000:>10.1f} ms")
    if len(timings) >= 2:
        (n1, s1), (n2, s2) = timings[-2], timings[-1]
        factor = (s2 / s1) ** (1 / (n2 - n1)) if s1 > 0 else float("nan")
        at_27 = s2 * factor ** (27 - n2)
        print(
            f"  ×{factor:.2f} per letter: 27 letters ≈ {at_27:.0f} s; "
            f"{LENGTH} letters ≈ 10^{(LENGTH - n2) * _log10(factor):.0f} × {s2:.1f} s"
        )


def _log10(x: float) -> float:
    import math

    return math.log10(x) if x > 0 else float("nan")


if __name__ == "__main__":
    main()
