"""Finding, reading and checking rule files; and keeping the last good rule set running.

``load_rules`` is all-or-nothing: every problem in every file is reported together and no
rule set is returned while any remains, so ``bridge rules check`` and CI catch everything in
one run. The service uses :class:`LastGoodRules` instead: a reload that fails keeps the
previous rule set in force and says so, because one bad edit must not stop classification.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.errors import Diagnostic, RuleValidationError
from bridge.rules.ast import RuleSet
from bridge.rules.compile import compile_rule_set
from bridge.rules.operators import BUILTIN_OPERATORS, OperatorSpec
from bridge.rules.source import Path_, SourceDoc, parse_yaml
from bridge.rules.validate import schema_errors

__all__ = ["LastGoodRules", "RulesStatus", "load_rules", "rule_files"]

RULE_SUFFIXES = (".yaml", ".yml")

log = logging.getLogger("bridge.rules")


def rule_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Diagnostic]]:
    """The rule files the paths name: files as given, folders' ``*.yaml`` (not recursive).

    Folders are not searched recursively so that a ``tests/`` folder of rule tests can sit
    beside the rules without being read as rules.
    """
    files: list[Path] = []
    problems: list[Diagnostic] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in RULE_SUFFIXES and p.is_file())
            if not found:
                problems.append(
                    Diagnostic(
                        str(path),
                        0,
                        0,
                        "no rule files (*.yaml, *.yml) in "
                        "this folder; add one or name the right folder",
                    )
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Diagnostic(str(path), 0, 0, "no such file or folder"))
    return files, problems


def _calendar_problems(spec: Mapping[str, Any]) -> list[tuple[Path_, str]]:
    from bridge.kpi.calendar_spec import check_calendar_spec  # noqa: PLC0415 - keeps startup light

    return [(tuple(problem.path), problem.message) for problem in check_calendar_spec(spec)]


def load_rules(
    paths: Iterable[str | Path], operators: Sequence[OperatorSpec] = BUILTIN_OPERATORS
) -> RuleSet:
    """Read, check and compile a rule set; raise :class:`RuleValidationError` listing all
    problems when anything is wrong. Problems that do not stop the rules from working
    (``ignore_case`` on a number, CSAT on project work) are the rule set's ``warnings``.

    The operators are given, not looked up: the rule language knows nothing of plugins, and
    whoever built the plugin registry (the command line, the service) passes its operators
    (``list(registry.operators.values())``); bridge's own operators otherwise.
    """
    files, problems = rule_files(paths)
    docs: list[SourceDoc] = []
    contents: list[bytes] = []
    for file in files:
        try:
            data = file.read_bytes()
        except OSError as exc:
            problems.append(Diagnostic(str(file), 0, 0, f"cannot read: {exc.strerror}"))
            continue
        doc, parse_problems = parse_yaml(str(file), data)
        problems.extend(parse_problems)
        if doc is None:
            continue
        problems.extend(schema_errors(doc, operators))
        docs.append(doc)
        contents.append(data)
    by_name = {spec.name: spec for spec in operators}
    rule_set, compile_problems = compile_rule_set(
        docs, by_name, check_calendar=_calendar_problems, contents=contents
    )
    problems.extend(compile_problems)
    if problems or rule_set is None:
        if not problems:
            problems.append(Diagnostic("<rules>", 0, 0, "no rules could be loaded"))
        # The schema check and the compiler may report one problem; the error sorts the rest.
        raise RuleValidationError(list(set(problems)))
    return rule_set


@dataclass(frozen=True, slots=True)
class RulesStatus:
    """What the service is running, for ``/status`` and the logs."""

    digest: str | None
    loaded_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None

    @property
    def healthy(self) -> bool:
        return self.digest is not None and self.last_error is None


class LastGoodRules:
    """Holds the last rule set that loaded cleanly; a failed reload leaves it in force."""

    def __init__(
        self, paths: Sequence[str | Path], operators: Sequence[OperatorSpec] = BUILTIN_OPERATORS
    ) -> None:
        self._paths = list(paths)
        self._operators = operators
        self._lock = threading.Lock()
        self._current: RuleSet | None = None
        self._loaded_at: datetime | None = None
        self._attempt_at: datetime | None = None
        self._error: str | None = None

    def reload(self, now: datetime | None = None) -> bool:
        """Try to load the files again; True when the new rule set is now in force.

        Any failure keeps the last good set, not only invalid rules: a hostile or broken
        edit may also hit a bug or a limit (RecursionError, MemoryError...), and the service
        must go on classifying with what it had, and say why it did not switch.
        """
        stamp = now or datetime.now(UTC)
        try:
            rule_set = load_rules(self._paths, self._operators)
        except Exception as exc:  # every failure is reported, none is fatal
            self.fail(exc, stamp)
            return False
        with self._lock:
            changed = self._current is None or self._current.digest != rule_set.digest
            self._current = rule_set
            self._loaded_at = self._attempt_at = stamp
            self._error = None
        if changed:  # a reload of the same rules would only repeat them
            for warning in rule_set.warnings:
                log.warning("rules: %s", warning)
        return True

    def fail(self, error: BaseException, now: datetime | None = None) -> None:
        """Record a reload that could not even be attempted or finished; the set in force
        stays."""
        if isinstance(error, RuleValidationError):
            message = str(error)
        else:
            detail = str(error)[:500]
            message = (
                f"the rules could not be loaded ({type(error).__name__}"
                f"{': ' + detail if detail else ''}); the last good rule set stays in force"
            )
        with self._lock:
            self._attempt_at = now or datetime.now(UTC)
            self._error = message

    @property
    def current(self) -> RuleSet:
        """The rule set in force; raises if no load has ever succeeded."""
        with self._lock:
            if self._current is None:
                raise RuleValidationError(
                    [Diagnostic("<rules>", 0, 0, self._error or "rules were never loaded")]
                )
            return self._current

    def status(self) -> RulesStatus:
        with self._lock:
            return RulesStatus(
                digest=self._current.digest if self._current else None,
                loaded_at=self._loaded_at,
                last_attempt_at=self._attempt_at,
                last_error=self._error,
            )
