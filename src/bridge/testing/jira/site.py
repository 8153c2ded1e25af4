"""The Jira double's site: fields, users, issues, comments and properties in memory, the
helpers a test seeds and inspects them with, and how they look in REST (v2 or v3).

Everything here works without a socket; :mod:`bridge.testing.jira.http` serves it.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bridge.testing._server import HttpDouble
from bridge.testing.jira.jql import JqlSearch
from bridge.testing.jira.model import (
    OPT,
    Comment,
    Deployment,
    Field,
    Issue,
    Kind,
    Selection,
    category_key,
    custom_field,
    default_fields,
    option_of,
    status_json,
)
from bridge.testing.jira.values import (
    adf_text,
    adf_to_text,
    as_datetime,
    change_id,
    change_string,
    jira_time,
    stable_id,
    with_base,
)
from bridge.testing.jira.wire import RecordedRequest, expand_set

HUMAN_ACCOUNT_ID = "human-account"
"""The account behind :meth:`JiraDouble.touch`, seeded comments and webhooks by default."""

EMBEDDED_CHANGELOG_CAP = {"search": 20, "issue": 100}


class JiraSite(HttpDouble[RecordedRequest]):
    """The state of a fake Jira site and the helpers that seed and inspect it as a human
    would. All access goes through ``self._lock``, as HTTP requests run in threads."""

    def __init__(
        self,
        *,
        deployment: Deployment,
        latency: float,
        email: str,
        account_id: str,
        time_zone: str,
        clock: Callable[[], datetime] | None,
    ) -> None:
        if deployment not in ("cloud", "datacenter"):
            raise ValueError(f"deployment must be 'cloud' or 'datacenter', not {deployment!r}")
        super().__init__(latency=latency)
        self.deployment: Deployment = deployment
        self.email = email
        self.account_id = account_id
        self.time_zone = ZoneInfo(time_zone)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._fields: dict[str, Field] = {f.id: f for f in default_fields()}
        self._users: dict[str, str] = {
            account_id: "Bridge Bot",
            HUMAN_ACCOUNT_ID: "Pat Human",
        }
        self._issues: dict[str, Issue] = {}
        self._by_id: dict[str, str] = {}
        self._deleted: dict[str, Issue] = {}
        self._next_id = 10000
        self._next_number: dict[str, int] = {}
        self._next_history = 100000
        self._next_comment = 20000
        self._version = 0
        self._search_cache: dict[tuple[str, str, bool, int], list[Issue]] = {}

    def now(self) -> datetime:
        return self._clock().astimezone(UTC)

    # -- fields -------------------------------------------------------------------------------

    def field_id(self, name_or_id: str) -> str:
        """The id of a field named (case-insensitively) or identified by ``name_or_id``."""
        ref = self._field_ref(name_or_id)
        if ref not in self._fields:
            raise KeyError(f"no field {name_or_id!r}")
        return ref

    def _field_ref(self, name_or_id: str) -> str:
        if name_or_id in self._fields:
            return name_or_id
        m = re.fullmatch(r"cf\[(\d+)\]", name_or_id)
        if m:
            return f"customfield_{m.group(1)}"
        folded = name_or_id.casefold()
        for f in self._fields.values():
            if f.name.casefold() == folded:
                return f.id
        return name_or_id

    def add_field(
        self,
        name: str,
        kind: Literal["number", "string", "textarea", "select", "multiselect", "date", "datetime"],
        *,
        options: Sequence[str] = (),
    ) -> str:
        """Add a custom field (``GET /field`` lists it); returns its id."""
        with self._lock:
            num = max(int(f.id.rsplit("_", 1)[1]) for f in self._fields.values() if f.custom) + 1
            opts = [{"id": str(num * 100 + i), "value": v} for i, v in enumerate(options)]
            table: dict[str, tuple[str, str, Kind, str | None]] = {
                "number": ("number", "float", "number", None),
                "string": ("string", "textfield", "string", None),
                "textarea": ("string", "textarea", "richtext", None),
                "select": ("option", "select", "option", None),
                "multiselect": ("array", "multiselect", "options", "option"),
                "date": ("date", "datepicker", "date", None),
                "datetime": ("datetime", "datetime", "datetime", None),
            }
            type_, custom, field_kind, items = table[kind]
            f = custom_field(num, name, type_, OPT + custom, field_kind, items=items, options=opts)
            self._fields[f.id] = f
            return f.id

    def add_user(self, account_id: str, display_name: str) -> None:
        with self._lock:
            self._users[account_id] = display_name

    # -- seeding and inspecting ---------------------------------------------------------------

    def add_issue(
        self,
        fields: Mapping[str, Any] | None = None,
        key: str | None = None,
        project: str = "OPS",
        changelog: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """Create an issue; returns its key.

        ``fields`` are REST-shaped values by field id or name. Shorthands are expanded:
        ``status``, ``issuetype``, ``priority``, ``resolution`` as names; users as account
        ids; a select as its option value; rich text as a plain string; ``created`` and
        ``updated`` as datetimes. ``changelog`` is a list of histories
        (``{"created", "items", "author"?}``), oldest first.
        """
        with self._lock:
            issue = self._new_issue(dict(fields or {}), key, project)
            for history in changelog or ():
                self._append_history(issue, dict(history))
            self._changed()
            return issue.key

    def bulk_add(
        self,
        n: int,
        *,
        project: str = "OPS",
        fields: Mapping[str, Any] | Callable[[int], Mapping[str, Any]] | None = None,
    ) -> list[str]:
        """Create ``n`` issues at once (thousands in well under a second)."""
        keys: list[str] = []
        with self._lock:
            for i in range(n):
                values = fields(i) if callable(fields) else fields
                keys.append(self._new_issue(dict(values or {}), None, project).key)
            self._changed()
        return keys

    def issue(self, key: str) -> dict[str, Any]:
        """A copy of the issue as Cloud ``GET /rest/api/3/issue/{key}`` shows it (all fields)."""
        with self._lock:
            found = self._get(key)
            return self._render(found, version=3, selection=Selection.all(), expand=set())

    @property
    def issues(self) -> dict[str, dict[str, Any]]:
        """Every issue by key, as :meth:`issue` shows it."""
        with self._lock:
            return {k: self.issue(k) for k in self._issues}

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._issues)

    def changelog(self, key: str) -> list[dict[str, Any]]:
        """The issue's histories, oldest first."""
        with self._lock:
            return copy.deepcopy(self._get(key).histories)

    def comments(self, key: str) -> list[dict[str, Any]]:
        """The issue's comments as v3 shows them (ADF bodies), oldest first."""
        with self._lock:
            return [self._comment_json(self._get(key), c, 3) for c in self._get(key).comments]

    def add_comment(
        self, key: str, body: str | Mapping[str, Any], *, author: str = HUMAN_ACCOUNT_ID
    ) -> str:
        """Add a comment as someone else; returns its id."""
        with self._lock:
            issue = self._get(key)
            doc = adf_text(body) if isinstance(body, str) else dict(body)
            comment = self._new_comment(issue, doc, author)
            self._changed()
            return comment.id

    def properties(self, key: str) -> dict[str, Any]:
        """The issue's properties, key → value."""
        with self._lock:
            return copy.deepcopy(self._get(key).properties)

    def comment_properties(self, key: str, comment_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._comment(self._get(key), comment_id).properties)

    def delete_issue(self, key: str) -> None:
        with self._lock:
            issue = self._get(key)
            del self._issues[issue.key]
            del self._by_id[issue.id]
            self._deleted[issue.key] = issue
            self._changed()

    def touch(self, key: str, author: str = HUMAN_ACCOUNT_ID, **fields: Any) -> None:
        """Change fields as a person would: values (shorthands as in :meth:`add_issue`) are
        set, ``updated`` is bumped and a changelog history by ``author`` is recorded."""
        with self._lock:
            issue = self._get(key)
            values = {self._field_ref(k): v for k, v in fields.items()}
            self._apply(issue, self._expand_values(issue, values), author, metadata=None)
            self._changed()

    # -- webhooks -----------------------------------------------------------------------------

    def webhook(
        self,
        event: str,
        key: str,
        *,
        user_account_id: str | None = None,
        changelog_items: list[dict[str, Any]] | None = None,
        secret: str | None = None,
        identifier: str | None = None,
        retry: int | None = None,
        comment_id: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """A webhook delivery for ``event`` on ``key``: the raw body and its headers.

        The payload is v2-shaped as Cloud sends it (``self`` under ``/rest/api/2/``, comment
        bodies as text). ``jira:issue_updated`` carries ``changelog_items`` or else the items
        of the issue's latest history; comment events carry ``comment_id`` or the latest
        comment. The identifier is the same across retries, so pass it again with ``retry``.
        """
        with self._lock:
            issue = self._issues.get(key) or self._deleted.get(key)
            if issue is None:
                issue = self._get(key)
            actor = user_account_id or HUMAN_ACCOUNT_ID
            payload: dict[str, Any] = {
                "timestamp": int(self.now().timestamp() * 1000),
                "webhookEvent": event,
            }
            rendered = self._render(issue, version=2, selection=Selection.all(), expand=set())
            rendered["fields"].pop("comment", None)
            if event.startswith("comment_"):
                comment = (
                    self._comment(issue, comment_id)
                    if comment_id
                    else (issue.comments[-1] if issue.comments else None)
                )
                if comment is None:
                    raise KeyError(f"{key} has no comment for a {event} event")
                payload["comment"] = self._comment_json(issue, comment, 2)
                reduced = ("summary", "status", "issuetype", "priority", "assignee", "reporter")
                rendered["fields"] = {k: rendered["fields"].get(k) for k in reduced}
                payload["issue"] = rendered
            else:
                payload["issue_event_type_name"] = {
                    "jira:issue_created": "issue_created",
                    "jira:issue_updated": "issue_generic",
                    "jira:issue_deleted": "issue_deleted",
                }.get(event, "issue_generic")
                payload["user"] = self._user_json(actor, version=2)
                payload["issue"] = rendered
                if event == "jira:issue_updated":
                    items = changelog_items
                    history_id = str(self._next_history)
                    if items is None and issue.histories:
                        items = issue.histories[-1]["items"]
                        history_id = issue.histories[-1]["id"]
                    payload["changelog"] = {"id": history_id, "items": copy.deepcopy(items or [])}
            body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Atlassian Webhook HTTP Client",
            "X-Atlassian-Webhook-Identifier": identifier or uuid.uuid4().hex,
            "X-Atlassian-Webhook-Flow": "Primary",
        }
        if retry is not None:
            headers["X-Atlassian-Webhook-Retry"] = str(retry)
        if secret is not None:
            digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature"] = f"sha256={digest}"
        return body, headers

    # -- internals: state ---------------------------------------------------------------------

    def _changed(self) -> None:
        self._version += 1
        self._search_cache.clear()

    def _get(self, key: str) -> Issue:
        issue = self._issues.get(key) or self._issues.get(self._by_id.get(key, ""))
        if issue is None:
            raise KeyError(f"no issue {key!r}")
        return issue

    def _new_issue(self, values: dict[str, Any], key: str | None, project: str) -> Issue:
        if key is not None:
            project, _, number_text = key.rpartition("-")
            if not project or not number_text.isdigit():
                raise ValueError(f"issue key {key!r} is not like PROJ-123")
            number = int(number_text)
            if key in self._issues:
                raise ValueError(f"issue {key} exists")
            self._next_number[project] = max(self._next_number.get(project, 1), number + 1)
        else:
            number = self._next_number.get(project, 1)
            self._next_number[project] = number + 1
            key = f"{project}-{number}"
        issue_id = str(self._next_id)
        self._next_id += 1
        now = self.now()
        values = {self._field_ref(k): v for k, v in values.items()}
        created = as_datetime(values.pop("created", None)) or now
        updated = as_datetime(values.pop("updated", None)) or created
        issue = Issue(issue_id, key, project, number, {}, created, updated)
        defaults: dict[str, Any] = {
            "summary": f"Issue {key}",
            "status": "To Do",
            "issuetype": "Task",
            "priority": "Medium",
            "reporter": HUMAN_ACCOUNT_ID,
            "labels": [],
        }
        for fid, value in defaults.items():
            values.setdefault(fid, value)
        issue.fields = self._expand_values(issue, values)
        issue.fields["project"] = {
            "self": f"{{base}}/rest/api/{{v}}/project/{project}",
            "id": str(10000 + sum(ord(c) for c in project)),
            "key": project,
            "name": project.title(),
            "projectTypeKey": "software",
        }
        issue.fields.setdefault("resolution", None)
        issue.fields.setdefault("resolutiondate", None)
        if issue.fields["resolutiondate"] is None and category_key(issue) == "done":
            issue.fields["resolutiondate"] = jira_time(updated)
        self._issues[key] = issue
        self._by_id[issue_id] = key
        return issue

    def _expand_values(self, issue: Issue, values: Mapping[str, Any]) -> dict[str, Any]:
        """Shorthand seed values → stored (v3) values."""
        out: dict[str, Any] = {}
        for fid, value in values.items():
            f = self._fields.get(fid)
            if value is None or f is None:
                out[fid] = value
            elif fid == "status" and isinstance(value, str):
                out[fid] = status_json(value)
            elif fid == "resolution" and isinstance(value, str):
                out[fid] = {"id": "10000", "name": value, "description": value}
            elif f.kind == "named" and isinstance(value, str):
                out[fid] = {"id": stable_id(value), "name": value}
            elif f.kind == "user" and isinstance(value, str):
                out[fid] = {"accountId": value}
            elif f.kind == "option" and isinstance(value, str):
                out[fid] = option_of(f, {"value": value}) or {"value": value}
            elif f.kind == "options" and isinstance(value, list):
                out[fid] = [
                    option_of(f, {"value": v}) or {"value": v} if isinstance(v, str) else v
                    for v in value
                ]
            elif f.kind == "richtext" and isinstance(value, str):
                out[fid] = adf_text(value)
            elif f.kind in ("datetime", "readonly") and isinstance(value, datetime):
                out[fid] = jira_time(value)
            elif isinstance(value, date) and not isinstance(value, datetime):
                out[fid] = value.isoformat()
            elif f.kind == "components" and isinstance(value, list):
                out[fid] = [{"name": v} if isinstance(v, str) else v for v in value]
            else:
                out[fid] = value
        return out

    def _append_history(self, issue: Issue, history: dict[str, Any]) -> None:
        history.setdefault("id", str(self._next_history))
        self._next_history += 1
        created = history.get("created")
        if isinstance(created, datetime):
            history["created"] = jira_time(created)
        elif created is None:
            history["created"] = jira_time(self.now())
        author = history.get("author")
        if author is None or isinstance(author, str):
            history["author"] = {"accountId": author or HUMAN_ACCOUNT_ID}
        history.setdefault("items", [])
        issue.histories.append(history)

    def _apply(
        self,
        issue: Issue,
        values: Mapping[str, Any],
        author: str,
        metadata: Mapping[str, Any] | None,
    ) -> None:
        """Set stored values; bump ``updated``; record one history of what changed."""
        items: list[dict[str, Any]] = []
        for fid, new in values.items():
            old = issue.fields.get(fid)
            if old == new:
                continue
            issue.fields[fid] = new
            f = self._fields.get(fid)
            items.append(
                {
                    "field": f.name if f and f.custom else fid,
                    "fieldtype": "custom" if f and f.custom else "jira",
                    "fieldId": fid,
                    "from": change_id(old),
                    "fromString": change_string(old),
                    "to": change_id(new),
                    "toString": change_string(new),
                }
            )
            if fid == "status" and isinstance(new, Mapping) and "resolution" not in values:
                # A workflow sets the resolution with a done status and clears it on reopen.
                done = category_key(issue) == "done"
                issue.fields["resolutiondate"] = jira_time(self.now()) if done else None
                issue.fields["resolution"] = (
                    {"id": "10000", "name": "Done", "description": "Done"} if done else None
                )
        if not items:
            return
        now = self.now()
        issue.updated = max(now, issue.updated)
        history: dict[str, Any] = {
            "author": author,
            "created": issue.updated,
            "items": items,
        }
        if metadata:
            history["historyMetadata"] = dict(metadata)
        self._append_history(issue, history)

    def _new_comment(self, issue: Issue, body: dict[str, Any], author: str) -> Comment:
        now = self.now()
        comment = Comment(str(self._next_comment), author, body, now, now, author)
        self._next_comment += 1
        issue.comments.append(comment)
        issue.updated = max(now, issue.updated)
        return comment

    def _comment(self, issue: Issue, comment_id: str) -> Comment:
        for comment in issue.comments:
            if comment.id == comment_id:
                return comment
        raise KeyError(f"{issue.key} has no comment {comment_id}")

    # -- internals: rendering -----------------------------------------------------------------

    def _user_json(self, account_id: str, *, version: int) -> dict[str, Any]:
        name = self._users.get(account_id, account_id)
        if self.deployment == "datacenter":
            return {
                "self": f"{self.url}/rest/api/2/user?username={account_id}",
                "name": account_id,
                "key": account_id,
                "emailAddress": self.email if account_id == self.account_id else None,
                "displayName": name,
                "active": True,
                "timeZone": "UTC",
            }
        return {
            "self": f"{self.url}/rest/api/{version}/user?accountId={account_id}",
            "accountId": account_id,
            "displayName": name,
            "active": True,
            "timeZone": "UTC",
            "accountType": "app" if account_id == self.account_id else "atlassian",
        }

    def _comment_json(self, issue: Issue, comment: Comment, version: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "self": f"{self.url}/rest/api/{version}/issue/{issue.id}/comment/{comment.id}",
            "id": comment.id,
            "author": self._user_json(comment.author, version=version),
            "body": copy.deepcopy(comment.body) if version == 3 else adf_to_text(comment.body),
            "updateAuthor": self._user_json(comment.update_author, version=version),
            "created": jira_time(comment.created),
            "updated": jira_time(comment.updated),
        }
        if self.deployment == "cloud":
            out["jsdPublic"] = True
        return out

    def _value_json(self, issue: Issue, fid: str, version: int) -> Any:
        if fid == "created":
            return jira_time(issue.created)
        if fid == "updated":
            return jira_time(issue.updated)
        if fid == "comment":
            comments = [self._comment_json(issue, c, version) for c in issue.comments]
            return {
                "comments": comments,
                "self": f"{self.url}/rest/api/{version}/issue/{issue.id}/comment",
                "maxResults": len(comments),
                "total": len(comments),
                "startAt": 0,
            }
        value = issue.fields.get(fid)
        if value is None:
            return None
        f = self._fields.get(fid)
        if f is not None and f.kind == "user" and isinstance(value, Mapping):
            return self._user_json(str(value.get("accountId")), version=version)
        if f is not None and f.kind == "richtext" and version == 2:
            return adf_to_text(value)
        return with_base(value, self.url, version)

    def _render(
        self,
        issue: Issue,
        *,
        version: int,
        selection: Selection,
        expand: set[str],
        changelog_cap: int = EMBEDDED_CHANGELOG_CAP["issue"],
        properties: Any = None,
    ) -> dict[str, Any]:
        if selection.id_only:
            return {"id": issue.id}
        chosen = selection.choose(self._fields.values(), issue.fields)
        fields = {fid: self._value_json(issue, fid, version) for fid in chosen}
        out: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,"
            "versionedRepresentations",
            "id": issue.id,
            "self": f"{self.url}/rest/api/{version}/issue/{issue.id}",
            "key": issue.key,
            "fields": fields,
        }
        if "changelog" in expand:
            histories = issue.histories[-changelog_cap:] if changelog_cap else []
            out["changelog"] = {
                "startAt": len(issue.histories) - len(histories),
                "maxResults": len(histories),
                "total": len(issue.histories),
                "histories": [self._history_json(h, version) for h in histories],
            }
        wanted = expand_set(properties)
        if wanted:
            every = "*all" in wanted
            out["properties"] = {
                k: copy.deepcopy(v)
                for k, v in issue.properties.items()
                if (every or k in wanted) and f"-{k}" not in wanted
            }
        return out

    def _history_json(self, history: Mapping[str, Any], version: int) -> dict[str, Any]:
        out = copy.deepcopy(dict(history))
        author = history.get("author")
        if isinstance(author, Mapping) and "accountId" in author:
            out["author"] = self._user_json(str(author["accountId"]), version=version)
        return out

    def _names(self, fids: Iterable[str]) -> dict[str, str]:
        return {fid: self._fields[fid].name for fid in fids if fid in self._fields}

    def _schemas(self, fids: Iterable[str]) -> dict[str, Any]:
        return {fid: dict(self._fields[fid].schema) for fid in fids if fid in self._fields}

    # -- JQL ----------------------------------------------------------------------------------

    def run_jql(self, jql: str, *, caller: str | None = None, bounded: bool = False) -> list[str]:
        """The keys a JQL query selects, in its order (what search would page through)."""
        with self._lock:
            return [i.key for i in self._search(jql, caller or self.account_id, bounded)]

    def _search(self, jql: str, caller: str, bounded: bool) -> list[Issue]:
        cache_key = (jql, caller, bounded, self._version)
        cached = self._search_cache.get(cache_key)
        if cached is not None:
            return cached
        search = JqlSearch(
            self._fields, self._field_ref, caller=caller, now=self.now, time_zone=self.time_zone
        )
        found = search.run(jql, self._issues.values(), bounded=bounded)
        if not search.read_clock:  # a relative date means another answer a moment later
            if len(self._search_cache) > 64:
                self._search_cache.clear()
            self._search_cache[cache_key] = found
        return found
