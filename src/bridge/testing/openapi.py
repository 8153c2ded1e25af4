"""Check a request against an OpenAPI 3.0 document before a test double answers it.

A fake server only proves something about a client if it refuses what the real one would
refuse, so the doubles run every request through :meth:`OpenApiSpec.validate_request` and
answer 400 with the problems. Problems are sentences for a test failure message, not codes.

Only requests are checked (responses are the double's own). The rules follow the published
documents as they are, including their quirks:

- Path templates are matched segment by segment; a literal segment beats a template
  (``/issue/bulkfetch`` over ``/issue/{issueIdOrKey}``). A server URL's path (``/api/now``) is
  a prefix the request path must carry.
- Query values arrive as strings and are coerced by the parameter's schema (``integer``,
  ``number``, ``boolean``) before they are validated. Arrays follow ``style``/``explode``
  (default: repeated parameter); Atlassian declares many arrays without a style but documents
  them as "comma-separated", so an array whose description says so also splits on commas.
- A query parameter whose name is not a name (ServiceNow's ``name-value pairs``) stands for
  free-form filter parameters: unknown names are then allowed, except those that use the
  prefix of the declared ones (``sysparm_``), which are still reported as unknown.
- Schemas are OpenAPI 3.0 dialect: ``nullable: true`` becomes a JSON Schema ``null`` type,
  ``readOnly`` properties are neither required nor checked in a request body, and
  ``additionalProperties`` is honoured as written (absent means allowed).
- Header and cookie parameters are not checked: a test double receives whatever headers
  ``requests`` adds, and the documents list few of them.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from jsonschema import Draft4Validator, ValidationError
from jsonschema.exceptions import best_match

__all__ = ["OpenApiSpec", "OperationInfo", "OperationMatch"]

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]$]+")
_INT = re.compile(r"[+-]?\d+")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_MAX_PROBLEMS = 20
_MAX_MESSAGE = 300


@dataclass(frozen=True, slots=True)
class OperationInfo:
    """One operation the document declares."""

    method: str  # upper case
    template: str  # as written in ``paths`` (without the server's base path)
    operation_id: str | None
    deprecated: bool = False


@dataclass(frozen=True, slots=True)
class OperationMatch:
    """An operation found for a concrete request path, with the path parameters it bound."""

    operation: OperationInfo
    path_params: Mapping[str, str]


# ------------------------------------------------------------------------------------------
# Compiled pieces
# ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Param:
    name: str
    location: str
    required: bool
    schema: Mapping[str, Any]
    style: str
    explode: bool
    comma_separated: bool
    validator: _Compiled | None = None

    @property
    def is_array(self) -> bool:
        return self.schema.get("type") == "array"


@dataclass(slots=True)
class _Operation:
    info: OperationInfo
    raw: Mapping[str, Any]
    path_item: Mapping[str, Any]
    compiled: bool = False
    params: dict[tuple[str, str], _Param] = field(default_factory=dict)
    free_form_query: bool = False
    reserved_prefixes: tuple[str, ...] = ()
    body_allowed: bool = False
    body_required: bool = False
    media: dict[str, _Compiled | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class _Compiled:
    """One schema, checked by the fast predicate first and explained by jsonschema."""

    validator: Draft4Validator
    fast: Callable[[Any], bool] | None

    def errors(self, instance: Any) -> list[ValidationError]:
        if self.fast is not None and self.fast(instance):
            return []
        found = [_deepest(e) for e in self.validator.iter_errors(instance)]
        return sorted(found, key=lambda e: [str(p) for p in e.absolute_path])


def _deepest(error: ValidationError) -> ValidationError:
    """For "not valid under any of the given schemas", the alternative that came closest:
    ``body.child.name: 1 is not of type 'string'`` says more than the whole object did."""
    while error.context:
        best = best_match(error.context)
        if best is None or len(best.absolute_path) < len(error.absolute_path):
            break
        if best.validator == "type" and best.validator_value == "null":
            others = [e for e in error.context if e is not best]
            if not others:
                break
            best = best_match(others)
            if best is None:
                break
        error = best
    return error


@dataclass(frozen=True, slots=True)
class _Template:
    segments: tuple[str | re.Pattern[str], ...]
    names: tuple[tuple[str, ...], ...]  # parameter names per templated segment
    literal_score: tuple[int, ...]  # 1 for a literal segment; higher sorts first
    path: str


def _compile_template(path: str) -> _Template:
    parts = path.strip("/").split("/") if path.strip("/") else []
    segments: list[str | re.Pattern[str]] = []
    names: list[tuple[str, ...]] = []
    score: list[int] = []
    for part in parts:
        if "{" not in part:
            segments.append(part)
            names.append(())
            score.append(1)
            continue
        found: list[str] = []
        pattern = ""
        for piece in re.split(r"(\{[^}]+\})", part):
            if piece.startswith("{") and piece.endswith("}"):
                found.append(piece[1:-1])
                pattern += "([^/]+)"
            else:
                pattern += re.escape(piece)
        segments.append(re.compile(pattern))
        names.append(tuple(found))
        score.append(0)
    return _Template(tuple(segments), tuple(names), tuple(score), path)


def _match_template(template: _Template, parts: Sequence[str]) -> dict[str, str] | None:
    bound: dict[str, str] = {}
    for segment, names, part in zip(template.segments, template.names, parts, strict=True):
        if isinstance(segment, str):
            if segment != part:
                return None
            continue
        m = segment.fullmatch(part)
        if m is None:
            return None
        for name, value in zip(names, m.groups(), strict=True):
            bound[name] = unquote(value)
    return bound


# ------------------------------------------------------------------------------------------
# OpenAPI 3.0 schema → JSON Schema draft 4
# ------------------------------------------------------------------------------------------


def _convert(schema: Any) -> Any:
    """The request-side JSON Schema of an OpenAPI 3.0 schema object (recursively)."""
    if isinstance(schema, list):
        return [_convert(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("example", "examples", "description", "xml", "externalDocs", "discriminator"):
            continue
        if isinstance(key, str) and key.startswith("x-"):
            continue
        if key == "properties" and isinstance(value, Mapping):
            props: dict[str, Any] = {}
            for name, sub in value.items():
                # A readOnly property is the server's to set: a client may echo it back.
                props[name] = {} if _read_only(sub) else _convert(sub)
            out[key] = props
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _convert(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_convert(s) for s in value]
        elif key in ("nullable", "readOnly", "writeOnly", "deprecated", "format"):
            continue
        else:
            out[key] = value
    if "required" in out and isinstance(schema.get("properties"), Mapping):
        props_in = schema["properties"]
        kept = [r for r in out["required"] if not _read_only(props_in.get(r))]
        if kept:
            out["required"] = kept
        else:
            del out["required"]
    if schema.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if "type" not in out and any(k in out for k in ("allOf", "anyOf", "oneOf", "$ref")):
            out = {"anyOf": [{"type": "null"}, out]}
    if "$ref" in out and len(out) > 1:
        # Draft 4 ignores a $ref's siblings; keep them by nesting the reference.
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}, out]} if out else {"$ref": ref}
    return out


def _inline(schema: Any, components: Mapping[str, Any], stack: tuple[str, ...]) -> Any:
    """``schema`` with component references copied in, except recursive ones.

    Following a ``$ref`` is the costliest step of a check; inlined, a typical body is checked
    several times faster. A recursive reference stays a ``$ref`` into the root's components.
    """
    if isinstance(schema, list):
        return [_inline(s, components, stack) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and len(schema) == 1 and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        target = components.get("schemas", {}).get(name)
        if target is None or name in stack or len(stack) > 12:
            return schema
        return _inline(target, components, (*stack, name))
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "definitions") and isinstance(value, Mapping):
            out[key] = {k: _inline(v, components, stack) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = _inline(value, components, stack)
        else:
            out[key] = value
    return _simplify(out)


def _simplify(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop subschemas that accept anything: each still costs a descent when validating."""
    for key in ("items", "additionalProperties"):
        if schema.get(key) == {} or schema.get(key) is True:
            del schema[key]
    props = schema.get("properties")
    if isinstance(props, dict) and "additionalProperties" not in schema:
        kept = {k: v for k, v in props.items() if v != {}}
        if kept:
            schema["properties"] = kept
        else:
            del schema["properties"]
    subs = schema.get("allOf")
    if isinstance(subs, list):
        kept_subs = [s for s in subs if s != {}]
        if kept_subs:
            schema["allOf"] = kept_subs
        else:
            del schema["allOf"]
    return schema


def _read_only(schema: Any) -> bool:
    return isinstance(schema, Mapping) and schema.get("readOnly") is True


# ------------------------------------------------------------------------------------------
# A fast yes/no check
# ------------------------------------------------------------------------------------------

_Check = Callable[[Any], bool]


class _Unsupported(Exception):
    """A keyword the fast check does not know: jsonschema alone judges that schema."""


_TYPES: Mapping[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}

_IGNORED = frozenset({"title", "default", "format", "$schema", "id", "components"})


class _FastCompiler:
    """Compiles a converted schema into a plain predicate.

    jsonschema spends most of a check building a validator per subschema it descends into;
    a valid request (the usual case) needs only a yes, so the predicate answers first and
    jsonschema is asked only to explain a no. Anything the predicate is unsure of makes it
    give up at compile time, never answer wrongly.
    """

    def __init__(self, components: Mapping[str, Any]) -> None:
        self.schemas: Mapping[str, Any] = components.get("schemas") or {}
        self.compiled: dict[str, _Check] = {}

    def ref(self, ref: str) -> _Check:
        if not ref.startswith("#/components/schemas/"):
            raise _Unsupported(ref)
        name = ref.rsplit("/", 1)[1]
        if name not in self.schemas:
            raise _Unsupported(ref)
        if name not in self.compiled:
            slot: list[_Check] = []

            def forward(v: Any) -> bool:
                return slot[0](v)

            self.compiled[name] = forward
            slot.append(self.compile(self.schemas[name]))
        return self.compiled[name]

    def compile(self, schema: Any) -> _Check:
        if schema is True or schema == {}:
            return lambda v: True
        if not isinstance(schema, Mapping):
            raise _Unsupported(repr(schema))
        checks: list[_Check] = []
        for key, value in schema.items():
            if key in _IGNORED:
                continue
            check = self._keyword(key, value, schema)
            if check is not None:
                checks.append(check)
        if len(checks) == 1:
            return checks[0]
        return lambda v: all(c(v) for c in checks)

    def _keyword(self, key: str, value: Any, schema: Mapping[str, Any]) -> _Check | None:
        if key == "$ref":
            return self.ref(str(value))
        if key == "type":
            kinds = [value] if isinstance(value, str) else list(value)
            tests = [_TYPES[k] for k in kinds]
            return lambda v: any(t(v) for t in tests)
        if key == "enum":
            allowed = [_canonical(a) for a in value]
            return lambda v: _canonical(v) in allowed
        if key == "properties":
            props = {k: self.compile(sub) for k, sub in value.items()}
            return lambda v: (
                not isinstance(v, dict) or all(c(v[k]) for k, c in props.items() if k in v)
            )
        if key == "required":
            names = list(value)
            return lambda v: not isinstance(v, dict) or all(n in v for n in names)
        if key == "additionalProperties":
            known = set(schema.get("properties") or {})
            if "patternProperties" in schema:
                raise _Unsupported(key)
            if value is False:
                return lambda v: not isinstance(v, dict) or all(k in known for k in v)
            extra = self.compile(value)
            return lambda v: (
                not isinstance(v, dict) or all(extra(x) for k, x in v.items() if k not in known)
            )
        if key == "items":
            if isinstance(value, list):
                raise _Unsupported(key)
            item = self.compile(value)
            return lambda v: not isinstance(v, list) or all(item(x) for x in v)
        if key in ("allOf", "anyOf", "oneOf"):
            subs = [self.compile(sub) for sub in value]
            if key == "allOf":
                return lambda v: all(c(v) for c in subs)
            if key == "anyOf":
                return lambda v: any(c(v) for c in subs)
            return lambda v: sum(1 for c in subs if c(v)) == 1
        if key == "not":
            sub = self.compile(value)
            return lambda v: not sub(v)
        return self._limit(key, value, schema)

    def _limit(self, key: str, value: Any, schema: Mapping[str, Any]) -> _Check | None:
        if key in ("minLength", "maxLength"):
            low = key == "minLength"
            return lambda v: not isinstance(v, str) or (len(v) >= value if low else len(v) <= value)
        if key in ("minItems", "maxItems", "minProperties", "maxProperties"):
            kind = list if key.endswith("Items") else dict
            low = key.startswith("min")
            return lambda v: (
                not isinstance(v, kind) or (len(v) >= value if low else len(v) <= value)
            )
        if key in ("minimum", "maximum"):
            exclusive = schema.get("exclusiveMinimum" if key == "minimum" else "exclusiveMaximum")
            if key == "minimum":
                return lambda v: not _TYPES["number"](v) or (v > value if exclusive else v >= value)
            return lambda v: not _TYPES["number"](v) or (v < value if exclusive else v <= value)
        if key in ("exclusiveMinimum", "exclusiveMaximum"):
            if not isinstance(value, bool):
                raise _Unsupported(key)
            return None
        if key == "pattern":
            regex = re.compile(str(value))
            return lambda v: not isinstance(v, str) or regex.search(v) is not None
        if key == "uniqueItems":
            if value is not True:
                return None
            return lambda v: not isinstance(v, list) or len({_canonical(x) for x in v}) == len(v)
        raise _Unsupported(key)


def _canonical(value: Any) -> str:
    def norm(x: Any) -> Any:
        if isinstance(x, float) and x.is_integer():
            return int(x)
        if isinstance(x, dict):
            return {k: norm(v) for k, v in x.items()}
        if isinstance(x, list):
            return [norm(v) for v in x]
        return x

    return json.dumps(norm(value), sort_keys=True)


def _fast_check(schema: Any, components: Mapping[str, Any]) -> _Check | None:
    try:
        return _FastCompiler(components).compile(schema)
    except (_Unsupported, KeyError, TypeError, re.error):
        return None


# ------------------------------------------------------------------------------------------
# The spec
# ------------------------------------------------------------------------------------------


class OpenApiSpec:
    """An OpenAPI 3.0 document, ready to judge requests.

    Operations and their validators are compiled on first use and kept, so one large
    document (Jira's is 2.4 MB) costs its parse once and each request little more than the
    schema check. Safe to share between the threads of a server.
    """

    def __init__(self, document: Mapping[str, Any], *, source: str | None = None) -> None:
        if not isinstance(document, Mapping) or not isinstance(document.get("paths"), Mapping):
            raise ValueError(f"{source or 'document'}: not an OpenAPI document (no 'paths')")
        self.document = document
        self.source = source
        self._lock = threading.Lock()
        self._components: dict[str, Any] | None = None
        self._base_paths = _base_paths(document.get("servers"))
        self._ops: dict[tuple[str, str], _Operation] = {}
        self._by_length: dict[int, list[_Template]] = {}
        for path, item in document["paths"].items():
            if not isinstance(item, Mapping):
                continue
            template = _compile_template(str(path))
            self._by_length.setdefault(len(template.segments), []).append(template)
            for method in _METHODS:
                op = item.get(method)
                if isinstance(op, Mapping):
                    info = OperationInfo(
                        method=method.upper(),
                        template=str(path),
                        operation_id=op.get("operationId"),
                        deprecated=op.get("deprecated") is True,
                    )
                    self._ops[(method.upper(), str(path))] = _Operation(info, op, item)
        for templates in self._by_length.values():
            templates.sort(key=lambda t: t.literal_score, reverse=True)
        self._match = lru_cache(maxsize=4096)(self._match_uncached)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> OpenApiSpec:
        """Read a JSON or YAML document (YAML by extension or when it is not JSON)."""
        text = Path(path).read_text(encoding="utf-8")
        doc: Any = None
        is_yaml = str(path).endswith((".yaml", ".yml"))
        if not is_yaml:
            try:
                doc = json.loads(text)
            except json.JSONDecodeError:
                is_yaml = True
        if is_yaml:
            doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
        return cls(doc, source=str(path))

    # -- lookup -------------------------------------------------------------------------------

    @property
    def base_paths(self) -> tuple[str, ...]:
        """The path prefixes of the document's servers (``("",)`` when it names none)."""
        return self._base_paths

    def operations(self) -> list[OperationInfo]:
        """Every operation the document declares, in document order."""
        return [op.info for op in self._ops.values()]

    def match(self, method: str, path: str) -> OperationMatch | None:
        """The operation serving ``method path`` (a URL path, query string ignored)."""
        found = self._match(method.upper(), path.split("?", 1)[0])
        if found is None:
            return None
        op, params = found
        return OperationMatch(op.info, dict(params))

    def operation_id(self, method: str, path: str) -> str | None:
        """The ``operationId`` serving ``method path``; None when none (or it has no id)."""
        found = self.match(method, path)
        return found.operation.operation_id if found else None

    def _candidates(self, path: str) -> Iterator[tuple[_Template, dict[str, str]]]:
        """Templates matching ``path`` under any method, in precedence order, with what each
        binds: lazy, because a match usually stops at the first one."""
        for base in self._base_paths:
            if base and not (path == base or path.startswith(base + "/")):
                continue
            rest = path[len(base) :].strip("/")
            parts = rest.split("/") if rest else []
            for template in self._by_length.get(len(parts), ()):
                bound = _match_template(template, parts)
                if bound is not None:
                    yield template, bound

    def _match_uncached(
        self, method: str, path: str
    ) -> tuple[_Operation, tuple[tuple[str, str], ...]] | None:
        for template, bound in self._candidates(path):
            op = self._ops.get((method, template.path))
            if op is not None:
                return op, tuple(bound.items())
        return None

    # -- validation ---------------------------------------------------------------------------

    def validate_request(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | list[str]],
        body: Any | None,
        *,
        content_type: str | None = None,
    ) -> list[str]:
        """What the document does not allow about this request; ``[]`` when it is allowed.

        ``path`` is the URL path (percent-encoded is fine); ``query`` maps each name to its
        value or values as sent; ``body`` is the decoded JSON body, or None when there is none.
        """
        method = method.upper()
        path = path.split("?", 1)[0]
        found = self._match(method, path)
        if found is None:
            others = sorted(
                {
                    m
                    for t, _ in self._candidates(path)
                    for (m, p) in self._ops
                    if p == t.path and m != method
                }
            )
            if others:
                return [f"{method} {path}: method not allowed here (allowed: {', '.join(others)})"]
            return [f"{method} {path}: no such operation in {self._title()}"]
        op, bound = found
        if not op.compiled:
            self._compile(op)
        problems: list[str] = []
        where = f"{method} {op.info.template}"
        path_values = dict(bound)
        for (name, location), path_param in op.params.items():
            if location == "path":
                value = path_values.get(name)
                if value is not None:
                    problems.extend(self._check_value(path_param, [value], where))
        normalized = {k: v if isinstance(v, list) else [v] for k, v in query.items()}
        for name, values in normalized.items():
            param = op.params.get((name, "query"))
            if param is None:
                if op.free_form_query and not name.startswith(op.reserved_prefixes):
                    continue
                known = sorted(n for (n, loc) in op.params if loc == "query")
                hint = f" (known: {', '.join(known)})" if known else " (it takes none)"
                problems.append(f"{where}: unknown query parameter {name!r}{hint}")
                continue
            problems.extend(self._check_value(param, values, where))
        for (name, location), param in op.params.items():
            if location == "query" and param.required and name not in normalized:
                problems.append(f"{where}: missing required query parameter {name!r}")
        problems.extend(self._check_body(op, body, content_type, where))
        return problems[:_MAX_PROBLEMS]

    def _title(self) -> str:
        info = self.document.get("info")
        title = info.get("title") if isinstance(info, Mapping) else None
        return repr(title) if title else "the document"

    def _check_value(self, param: _Param, raw: Sequence[str], where: str) -> list[str]:
        label = f"{param.location} parameter {param.name!r}"
        if param.is_array:
            items: list[str] = []
            if param.explode and param.style == "form":
                for value in raw:
                    items.extend(_split(value) if param.comma_separated else [value])
            else:
                sep = {"spaceDelimited": " ", "pipeDelimited": "|"}.get(param.style, ",")
                if len(raw) > 1:
                    return [f"{where}: {label} given {len(raw)} times; send one {sep!r}-list"]
                items = raw[0].split(sep) if raw[0] else []
            item_schema = param.schema.get("items")
            item_schema = item_schema if isinstance(item_schema, Mapping) else {}
            coerced_items: list[Any] = []
            for item in items:
                ok, value, problem = _coerce(item, item_schema)
                if not ok:
                    return [f"{where}: {label}: {problem}"]
                coerced_items.append(value)
            instance: Any = coerced_items
        else:
            if len(raw) > 1:
                return [f"{where}: {label} given {len(raw)} times; it takes one value"]
            ok, instance, problem = _coerce(raw[0], param.schema)
            if not ok:
                return [f"{where}: {label}: {problem}"]
        if param.validator is None:
            return []
        errors = param.validator.errors(instance)
        return [f"{where}: {label}: {_short(e.message)}" for e in errors][:3]

    def _check_body(
        self, op: _Operation, body: Any | None, content_type: str | None, where: str
    ) -> list[str]:
        if body is None:
            if op.body_required:
                return [f"{where}: a request body is required"]
            return []
        if not op.body_allowed:
            return [f"{where}: takes no request body"]
        if not op.media:
            return []
        media = _media_type(content_type, op.media) if content_type else _default_media(op.media)
        if media is None:
            allowed = ", ".join(op.media) or "none"
            return [f"{where}: content type {content_type!r} not accepted (accepts {allowed})"]
        validator = op.media[media]
        if validator is None:
            return []
        return [
            f"{where}: body{_pointer(e.absolute_path)}: {_short(e.message)}"
            for e in validator.errors(body)
        ]

    # -- compilation --------------------------------------------------------------------------

    def _components_schema(self) -> dict[str, Any]:
        if self._components is None:
            comps = self.document.get("components")
            converted: dict[str, Any] = {}
            section = comps.get("schemas") if isinstance(comps, Mapping) else None
            if isinstance(section, Mapping):
                converted["schemas"] = {k: _convert(v) for k, v in section.items()}
            self._components = converted
        return self._components

    def _validator(self, schema: Any) -> _Compiled | None:
        components = self._components_schema()
        converted = _inline(_convert(schema), components, ())
        if not converted:
            return None  # ``{}``: anything goes
        root = {"allOf": [converted], "components": components}
        return _Compiled(Draft4Validator(root), _fast_check(converted, components))

    def _resolve(self, obj: Any) -> Any:
        """Follow a ``$ref`` to a component (parameters, request bodies)."""
        seen = 0
        while isinstance(obj, Mapping) and "$ref" in obj and seen < 20:
            ref = str(obj["$ref"])
            if not ref.startswith("#/"):
                raise ValueError(f"{self.source or 'document'}: external $ref {ref!r}")
            node: Any = self.document
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            obj = node
            seen += 1
        return obj

    def _compile(self, op: _Operation) -> None:
        with self._lock:
            if not op.compiled:
                self._compile_locked(op)

    def _compile_locked(self, op: _Operation) -> None:
        params: dict[tuple[str, str], _Param] = {}
        declared: Iterable[Any] = [
            *(op.path_item.get("parameters") or []),
            *(op.raw.get("parameters") or []),
        ]
        free_form = False
        for raw_param in declared:
            p = self._resolve(raw_param)
            if not isinstance(p, Mapping):
                continue
            location = str(p.get("in"))
            name = str(p.get("name"))
            if location in ("header", "cookie"):
                continue
            if location == "query" and not _NAME.fullmatch(name):
                free_form = True
                continue
            schema = self._resolve(p.get("schema") or {})
            if not isinstance(schema, Mapping):
                schema = {}
            style = str(p.get("style") or ("simple" if location == "path" else "form"))
            explode = p.get("explode")
            description = str(p.get("description") or "").lower()
            param = _Param(
                name=name,
                location=location,
                required=bool(p.get("required")) or location == "path",
                schema=schema,
                style=style,
                explode=bool(explode) if explode is not None else style == "form",
                comma_separated="comma-separated" in description
                or "comma separated" in description,
            )
            param.validator = self._validator(schema)
            params[(name, location)] = param
        op.params = params
        op.free_form_query = free_form
        op.reserved_prefixes = tuple(
            sorted({n.split("_", 1)[0] + "_" for (n, loc) in params if "_" in n})
        )
        body = self._resolve(op.raw.get("requestBody"))
        if isinstance(body, Mapping):
            op.body_allowed = True
            op.body_required = body.get("required") is True
            content = body.get("content")
            if isinstance(content, Mapping):
                for media, media_obj in content.items():
                    schema = media_obj.get("schema") if isinstance(media_obj, Mapping) else None
                    json_like = "json" in str(media) or media == "*/*"
                    op.media[str(media)] = (
                        self._validator(self._resolve(schema))
                        if json_like and schema is not None
                        else None
                    )
        op.compiled = True


# ------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------


def _base_paths(servers: Any) -> tuple[str, ...]:
    bases: list[str] = []
    if isinstance(servers, list):
        for server in servers:
            if not isinstance(server, Mapping) or not isinstance(server.get("url"), str):
                continue
            url = server["url"]
            variables = server.get("variables")
            if isinstance(variables, Mapping):
                for name, var in variables.items():
                    default = var.get("default", "") if isinstance(var, Mapping) else ""
                    url = url.replace("{" + str(name) + "}", str(default))
            base = urlsplit(url).path.rstrip("/")
            if base not in bases:
                bases.append(base)
    return tuple(bases) or ("",)


def _split(value: str) -> list[str]:
    return value.split(",") if value else []


def _coerce(text: str, schema: Mapping[str, Any]) -> tuple[bool, Any, str]:
    """A query string value as the JSON value its schema describes."""
    kind = schema.get("type")
    if kind == "integer":
        if not _INT.fullmatch(text.strip()):
            return False, None, f"expected an integer, found {text!r}"
        number = int(text)
        bounds = _INT_RANGES.get(str(schema.get("format")))
        if bounds and not bounds[0] <= number <= bounds[1]:
            return False, None, f"{text} is out of range for {schema.get('format')}"
        return True, number, ""
    if kind == "number":
        try:
            return True, float(text), ""
        except ValueError:
            return False, None, f"expected a number, found {text!r}"
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            return True, lowered == "true", ""
        return False, None, f"expected true or false, found {text!r}"
    if kind in ("object", "array"):
        return False, None, f"cannot read {kind} from {text!r}"
    return True, text, ""


def _media_type(content_type: str, media: Mapping[str, Any]) -> str | None:
    wanted = content_type.split(";", 1)[0].strip().lower()
    for candidate in media:
        if candidate.lower() == wanted:
            return candidate
    major = wanted.split("/", 1)[0]
    for candidate in media:
        if candidate in ("*/*", f"{major}/*"):
            return candidate
    return None


def _default_media(media: Mapping[str, Any]) -> str | None:
    return next((c for c in media if "json" in c), next(iter(media), None))


def _pointer(path: Iterable[Any]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


def _short(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."
